"""Who may start and inspect checkouts: end users for themselves, project keys for a subject
they name. Project A is configured against the emulator; project B has no
Stripe configuration, so its callers get past authentication to 409 STRIPE_NOT_CONFIGURED (the
flows themselves have their own tests)."""

from __future__ import annotations

from tests.authz import PRINCIPALS, Declaration, Routes, policy

SUBJECT = "end-user-1"


def past_auth(own_project: int) -> dict[str, int]:
    """401 for everyone but the billing callers; project A's get `own_project`."""
    return policy(
        **{
            **dict.fromkeys(PRINCIPALS, 401),
            "key": own_project,
            "end_user": own_project,
            "other_key": 409,
            "end_user_other_project": 409,
        }
    )


ROUTES: Routes = {
    # project A's catalog has no such plan
    ("POST", "/api/v1/payments/stripe/checkout-session"): Declaration(
        past_auth(400), json=lambda w: {"purchaseKey": "no_such_plan", "subjectId": SUBJECT}
    ),
    ("POST", "/api/v1/payments/stripe/create-customer"): Declaration(
        past_auth(200), json=lambda w: {"subjectId": SUBJECT}
    ),
    ("GET", "/api/v1/payments/stripe/check-session"): Declaration(
        past_auth(404), query=lambda w: {"session_id": "cs_test_matrix", "subjectId": SUBJECT}
    ),
    ("POST", "/api/v1/payments/stripe/reconcile-session"): Declaration(
        past_auth(404), json=lambda w: {"sessionId": "cs_test_matrix", "subjectId": SUBJECT}
    ),
}
