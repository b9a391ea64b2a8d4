"""Who may use self-service: end users for themselves, project keys for a subject they name.
Project A is configured against the emulator; its subject `end-user-1` has no subscription, so
changes find nothing (404) and the portal finds no customer (404); project B has no Stripe
configuration, yet the mirror reads need none."""

from __future__ import annotations

from tests.authz import PRINCIPALS, Declaration, Routes, policy

SUBJECT = "end-user-1"


def billing_callers(own: int, other: int) -> dict[str, int]:
    """401 for everyone but end users and project keys; project A's get `own`, B's `other`."""
    return policy(
        **{
            **dict.fromkeys(PRINCIPALS, 401),
            "key": own,
            "end_user": own,
            "other_key": other,
            "end_user_other_project": other,
        }
    )


ROUTES: Routes = {
    ("GET", "/api/v1/payments/stripe/my-subscription"): Declaration(
        billing_callers(200, 200), query=lambda w: {"subjectId": SUBJECT}
    ),
    ("POST", "/api/v1/payments/stripe/cancel-subscription"): Declaration(
        billing_callers(404, 404), json=lambda w: {"subjectId": SUBJECT}
    ),
    ("POST", "/api/v1/payments/stripe/resume-subscription"): Declaration(
        billing_callers(404, 404), json=lambda w: {"subjectId": SUBJECT}
    ),
    ("POST", "/api/v1/payments/stripe/update-subscription"): Declaration(
        # project A's catalog has premium_monthly; project B has no catalog at all
        billing_callers(404, 400),
        json=lambda w: {"purchaseKey": "premium_monthly", "subjectId": SUBJECT},
    ),
    ("POST", "/api/v1/payments/stripe/customer-portal"): Declaration(
        billing_callers(404, 404), json=lambda w: {"subjectId": SUBJECT}
    ),
}
