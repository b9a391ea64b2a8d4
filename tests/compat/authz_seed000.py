"""Who may call seed 000's routes (merged by tests/compat/authz.py).

The Stripe lifecycle routes take end users only (the console's signed-in user): project A is
configured against the emulator, so its end user gets past authentication to what the flow
answers; project B has no Stripe configuration (409 STRIPE_NOT_CONFIGURED where Stripe is
needed). The discrepancy routes take the project's admins (console admins, or end users whose
role is one of the project's adminRoles: project A has none). The docs handoff is public."""

from __future__ import annotations

from tests.authz import PRINCIPALS, PUBLIC, Declaration, Routes, World, policy

STRIPE = "/api/stripe"
SESSION = "cs_test_matrix"


def end_users(own: int, other: int) -> dict[str, int]:
    """401 for everyone but end users; project A's get `own`, project B's `other`."""
    return policy(
        **{**dict.fromkeys(PRINCIPALS, 401), "end_user": own, "end_user_other_project": other}
    )


def _project(world: World) -> dict[str, str]:
    return {"projectId": str(world.project.id)}


# console admins of project A (and superusers); its members and end users without an admin
# role are refused; keys are no admins
SEED_ADMIN = policy(
    anonymous=401,
    member=403,
    member_token=403,
    admin=200,
    other_admin=404,
    superuser=200,
    key=401,
    other_key=401,
    deactivated_key=401,
    end_user=403,
    end_user_expired=401,
    end_user_wrong_secret=401,
    end_user_other_project=403,
)

ROUTES: Routes = {
    # project A's catalog has no such plan
    ("POST", f"{STRIPE}/create-checkout-session"): Declaration(
        end_users(400, 409), json=lambda w: {"purchaseKey": "no_such_plan"}
    ),
    ("GET", f"{STRIPE}/check-session"): Declaration(
        end_users(404, 409), query=lambda w: {"session_id": SESSION}
    ),
    ("POST", f"{STRIPE}/create-customer"): Declaration(end_users(200, 409)),
    # the end user has no subscription: nothing to change (the mirror needs no Stripe)
    ("POST", f"{STRIPE}/cancel-subscription"): Declaration(
        end_users(404, 404), json=lambda w: {"subscriptionId": "sub_matrix"}
    ),
    ("POST", f"{STRIPE}/resume-subscription"): Declaration(
        end_users(404, 404), json=lambda w: {"subscriptionId": "sub_matrix"}
    ),
    ("POST", f"{STRIPE}/reconcile-session"): Declaration(
        end_users(404, 409), json=lambda w: {"sessionId": SESSION}
    ),
    ("POST", f"{STRIPE}/verify-and-update-role"): Declaration(
        end_users(404, 409), json=lambda w: {"sessionId": SESSION}
    ),
    ("GET", "/api/docs"): Declaration(policy(**dict.fromkeys(PRINCIPALS, 307))),
    ("GET", "/api-dashboard/docs"): Declaration(policy(**dict.fromkeys(PRINCIPALS, 307))),
    ("GET", "/docs/api/overview"): Declaration(PUBLIC),
}
for _path in (
    "/api/admin/billing-entitlement-discrepancies",
    "/api/admin/stripe-role-discrepancies",
):
    ROUTES[("GET", _path)] = Declaration(SEED_ADMIN, query=_project)
    ROUTES[("POST", _path)] = Declaration(SEED_ADMIN, query=_project, json=lambda w: {"all": True})
