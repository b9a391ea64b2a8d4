"""Who may read entitlements: end users their own, project keys any subject of their project.
Project A's `end-user-1` has a granting snapshot, so an answer shows whose data it holds."""

from __future__ import annotations

from billwarden.core.subjects import Subject, SubjectType
from tests.authz import END_USER, PRINCIPALS, PROJECT_KEY, Declaration, Routes, World, policy
from tests.entitlements.factories import Snapshots
from tests.factories import Factories

SUBJECT = "end-user-1"  # the matrix's end-user tokens are for this user
# an end-user token or a project key; console credentials are neither
BILLING_CALLER = policy(
    **{
        **dict.fromkeys(PRINCIPALS, 401),
        "key": 200,
        "other_key": 200,
        "end_user": 200,
        "end_user_other_project": 200,
    }
)


ROUTES: Routes = {
    ("GET", "/api/v1/entitlements/me"): Declaration(
        END_USER, shows_project_a=lambda answer: answer["hasPremiumAccess"]
    ),
    ("GET", "/api/v1/entitlements/{subject_type}/{subject_id}"): Declaration(
        PROJECT_KEY,
        path=lambda w: {"subject_type": "user", "subject_id": SUBJECT},
        shows_project_a=lambda answer: answer["hasPremiumAccess"],
    ),
    ("POST", "/api/v1/entitlements/check"): Declaration(
        BILLING_CALLER,
        json=lambda w: {"feature": "export", "subjectId": SUBJECT},
        shows_project_a=lambda answer: answer["allowed"],
    ),
}


async def prepare(world: World, made: Factories) -> None:
    await Snapshots(made.people.session).granted(
        world.project.id, Subject(SubjectType.USER, SUBJECT)
    )
