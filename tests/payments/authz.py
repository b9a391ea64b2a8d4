"""Who may read payments: end users their own, project keys a subject's they name, console users
the figures of the projects they can see, and of no other."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from billwarden.core.modes import Mode
from billwarden.payments.models import Payment
from billwarden.subscriptions.models import Subscription
from tests.authz import (
    CONSOLE_USER,
    PRINCIPALS,
    PROJECT_MEMBER,
    Declaration,
    Routes,
    World,
    policy,
    project_path,
)
from tests.factories import Factories

# project A bills in eur, project B in usd: an answer showing eur shows project A's data
CURRENCIES = {"a": "eur", "b": "usd"}
PROJECT_A: dict[str, str] = {}  # its id, once the world is made


async def prepare(world: World, made: Factories) -> None:
    """A subscription and a payment in each project, told apart by their ids and currency."""
    session = made.people.session
    PROJECT_A["id"] = str(world.project.id)
    now = datetime.now(UTC)
    for name, project_id in (("a", world.project.id), ("b", world.other_project.id)):
        currency = CURRENCIES[name]
        session.add(
            Subscription(
                project_id=project_id,
                mode=Mode.TEST,
                stripe_subscription_id=f"sub_matrix_{name}",
                stripe_customer_id=f"cus_matrix_{name}",
                status="active",
                currency=currency,
                annual_amount=12000.0,
                started_at=now,
                raw={},
            )
        )
        session.add(
            Payment(
                project_id=project_id,
                mode=Mode.TEST,
                kind="invoice",
                stripe_id=f"in_matrix_{name}",
                amount=1000,
                currency=currency,
                status="succeeded",
                created=now,
                paid_at=now,
                raw={},
            )
        )
    await session.flush()


def _lists_project_a(body: Any) -> bool:
    return any(row["id"].endswith("_matrix_a") for row in body["data"])


def _counts_project_a(body: Any) -> bool:
    return any(money["currency"] == "eur" for money in body["total"]["currencies"])


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
    ("GET", "/api/v1/payments/subscriptions"): Declaration(
        CONSOLE_USER, shows_project_a=_lists_project_a
    ),
    ("GET", "/api/v1/payments/transactions"): Declaration(
        CONSOLE_USER, shows_project_a=_lists_project_a
    ),
    ("GET", "/api/v1/payments/projects"): Declaration(
        CONSOLE_USER,
        shows_project_a=lambda body: any(
            row["projectId"] == PROJECT_A["id"] for row in body["data"]
        ),
    ),
    ("GET", "/api/v1/payments/stats"): Declaration(CONSOLE_USER, shows_project_a=_counts_project_a),
}
