"""Who may call seed 003's routes (merged by tests/compat/authz.py): end users only, for
themselves. Project A is configured against the emulator and its catalog has no such price
(400 PRICE_NOT_ALLOWED); project B has no Stripe configuration (409 STRIPE_NOT_CONFIGURED). The
end user has never checked out, so the portal finds no customer (404) and the list is empty."""

from __future__ import annotations

from tests.authz import PRINCIPALS, Declaration, Routes, policy


def end_users(own: int, other: int) -> dict[str, int]:
    """401 for everyone but end users; project A's get `own`, project B's `other`."""
    return policy(
        **{**dict.fromkeys(PRINCIPALS, 401), "end_user": own, "end_user_other_project": other}
    )


ROUTES: Routes = {
    ("POST", "/api/auth/stripe/checkout"): Declaration(
        end_users(400, 409), json=lambda w: {"price_id": "price_matrixunknown"}
    ),
    ("POST", "/api/auth/stripe/portal"): Declaration(end_users(404, 404)),
    ("GET", "/api/auth/subscriptions"): Declaration(end_users(200, 200)),
}
