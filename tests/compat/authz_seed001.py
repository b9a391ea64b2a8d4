"""Who may call seed 001's routes (merged by tests/compat/authz.py): end users check out and read
their own entitlement; the reconciliation is for the project's admins (console admins, or end
users whose role is one of the project's adminRoles, none in the matrix's world).

Project A is configured against the emulator and its catalog has no plan `no_such_plan`, so its
end users get past authentication to 400; project B has no Stripe configuration (409). Project
A's `end-user-1` has a granting entitlement, so an answer shows whose data it holds."""

from __future__ import annotations

from billwarden.core.subjects import Subject, SubjectType
from tests.authz import ALLOW, END_USER, MACHINE, PRINCIPALS, Declaration, Routes, World, policy
from tests.entitlements.factories import Snapshots
from tests.factories import Factories

RECONCILIATION = "/api/admin/billing/reconciliation"
CHECKOUT_PAST_AUTH = policy(
    **{
        **dict.fromkeys(PRINCIPALS, 401),
        "end_user": 400,
        "end_user_other_project": 409,
    }
)
SEED_ADMIN = policy(
    anonymous=401,
    member=403,
    member_token=403,
    admin=ALLOW,
    other_admin=404,
    superuser=ALLOW,
    **{
        **dict.fromkeys(MACHINE, 401),
        "end_user": 403,  # a valid token without an admin role
        "end_user_other_project": 403,
    },
)


async def prepare(world: World, made: Factories) -> None:
    """Project A has an entitlement to repair."""
    snapshot = await Snapshots(made.people.session).granted(
        world.project.id, Subject(SubjectType.USER, "seed-001-user")
    )
    world.extra["seed001_entitlement"] = snapshot.id


def _project(world: World) -> dict[str, str]:
    return {"projectId": str(world.project.id)}


ROUTES: Routes = {
    ("POST", "/api/checkout"): Declaration(
        CHECKOUT_PAST_AUTH, json=lambda w: {"plan": "no_such_plan"}
    ),
    ("GET", "/api/premium/entitlement"): Declaration(
        END_USER, shows_project_a=lambda answer: answer["hasPremiumAccess"]
    ),
    ("GET", RECONCILIATION): Declaration(SEED_ADMIN, query=_project),
    ("POST", RECONCILIATION): Declaration(
        SEED_ADMIN,
        query=_project,
        json=lambda w: {
            "entitlementId": str(w.extra["seed001_entitlement"]),
            "action": "reset_to_free",
        },
    ),
}
