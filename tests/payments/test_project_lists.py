"""A project's subscriptions and payments for its members: filtered, newest first, paged."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from billwarden.core.modes import Mode
from billwarden.payments.models import Payment
from billwarden.subscriptions.models import Subscription
from tests.identity.factories import People
from tests.projects.factories import Tenants

BASE = datetime(2026, 11, 1, tzinfo=UTC)


def subscription(
    project_id: object, number: int, status: str, mode: Mode = Mode.TEST
) -> Subscription:
    return Subscription(
        project_id=project_id,
        mode=mode,
        stripe_subscription_id=f"sub_{number:03d}",
        stripe_customer_id=f"cus_{number:03d}",
        subject_type="user",
        subject_id=f"user-{number % 2}",
        status=status,
        price_ids=["price_a"],
        purchase_keys=["premium_monthly"],
        created_at=BASE + timedelta(days=number),
        raw={},
    )


def payment(project_id: object, number: int, status: str) -> Payment:
    return Payment(
        project_id=project_id,
        mode=Mode.TEST,
        kind="invoice",
        stripe_id=f"in_{number:03d}",
        subject_type="user",
        subject_id=f"user-{number % 2}",
        amount=900,
        currency="usd",
        status=status,
        created=BASE + timedelta(days=number),
        raw={},
    )


class TestProjectLists:
    async def test_filters_order_and_pages(
        self, client: httpx.AsyncClient, session: AsyncSession, people: People, tenants: Tenants
    ) -> None:
        owner = await people.user()
        project = await tenants.project(owner)
        other = await tenants.project(await people.user())
        statuses = ["active", "canceled", "active", "past_due", "active"]
        for number, status in enumerate(statuses):
            session.add(subscription(project.id, number, status))
            session.add(
                payment(project.id, number, "succeeded" if status != "past_due" else "failed")
            )
        session.add(subscription(project.id, 9, "active", Mode.LIVE))
        session.add(subscription(other.id, 10, "active"))
        await session.flush()
        headers = people.bearer(owner)
        url = f"/api/v1/payments/stripe/projects/{project.id}"

        async def ids(path: str, **params: object) -> tuple[list[str], bool]:
            answer = await client.get(f"{url}/{path}", params=params, headers=headers)
            assert answer.status_code == 200, answer.text
            return [item["id"] for item in answer.json()["data"]], answer.json()["hasMore"]

        assert await ids("subscriptions") == (
            ["sub_004", "sub_003", "sub_002", "sub_001", "sub_000"],
            False,
        )
        assert await ids("subscriptions", status="active") == (
            ["sub_004", "sub_002", "sub_000"],
            False,
        )
        assert await ids("subscriptions", subjectId="user-1") == (["sub_003", "sub_001"], False)
        assert await ids("subscriptions", limit=2) == (["sub_004", "sub_003"], True)
        assert await ids("subscriptions", limit=2, startingAfter="sub_003") == (
            ["sub_002", "sub_001"],
            True,
        )
        assert await ids("subscriptions", test_mode="false") == (["sub_009"], False)
        window = {"from": "2026-11-02T00:00:00Z", "to": "2026-11-04T00:00:00"}
        assert await ids("subscriptions", **window) == (["sub_002", "sub_001"], False)
        assert await ids("payments", status="failed") == (["in_003"], False)
        assert await ids("payments", limit=1, startingAfter="in_001") == (["in_000"], False)
        assert await ids("payments", startingAfter="in_unknown") == ([], False)
        first = (await client.get(f"{url}/payments", headers=headers)).json()["data"][0]
        assert (first["subjectType"], first["subjectId"], first["amount"]) == (
            "user",
            "user-0",
            900,
        )

    async def test_bad_filters_are_400(
        self, client: httpx.AsyncClient, people: People, tenants: Tenants
    ) -> None:
        owner = await people.user()
        project = await tenants.project(owner)
        url = f"/api/v1/payments/stripe/projects/{project.id}/payments"
        for params in ({"limit": 0}, {"limit": 101}, {"from": "yesterday"}, {"test_mode": "maybe"}):
            answer = await client.get(url, params=params, headers=people.bearer(owner))
            assert (answer.status_code, answer.json()["code"]) == (400, "VALIDATION_ERROR"), params

    async def test_a_time_written_as_a_number_is_400_not_read_as_seconds_since_1970(
        self, client: httpx.AsyncClient, people: People, tenants: Tenants
    ) -> None:
        owner = await people.user()
        project = await tenants.project(owner)
        for listing in ("subscriptions", "payments"):
            url = f"/api/v1/payments/stripe/projects/{project.id}/{listing}"
            for params in ({"to": "-1.5"}, {"from": "1700000000"}, {"to": " 0 "}):
                answer = await client.get(url, params=params, headers=people.bearer(owner))
                assert answer.status_code == 400, (listing, params)
                assert answer.json()["code"] == "VALIDATION_ERROR"
                [field] = answer.json()["details"]["fields"]
                assert (field["location"], field["field"]) == ("query", next(iter(params)))
            iso = await client.get(
                url,
                params={"from": "2026-11-02", "to": "2026-11-04T00:00:00Z"},
                headers=people.bearer(owner),
            )
            assert iso.status_code == 200, listing
