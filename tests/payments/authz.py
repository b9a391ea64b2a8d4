"""Who may read payments: end users their own, project keys a subject's they name."""

from __future__ import annotations

from tests.authz import PRINCIPALS, PROJECT_MEMBER, Declaration, Routes, policy, project_path

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
    ("GET", "/api/v1/payments/stripe/projects/{project_id}/subscriptions"): Declaration(
        PROJECT_MEMBER, path=project_path
    ),
    ("GET", "/api/v1/payments/stripe/projects/{project_id}/payments"): Declaration(
        PROJECT_MEMBER, path=project_path
    ),
    ("GET", "/api/v1/payments/stripe/my-payments"): Declaration(
        BILLING_CALLER, query=lambda w: {"subjectId": "end-user-1"}
    ),
}
