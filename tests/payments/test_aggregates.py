"""Seed 002's aggregated routes: subscriptions, transactions, projects and stats across every
project a console user can see; the stats of a seeded data set equal the figures worked out by
hand below."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from billwarden.core.modes import Mode
from billwarden.core.subjects import Subject, SubjectType
from billwarden.identity.models import User
from billwarden.payments.models import Payment
from billwarden.projects.stripe_config import StripeConfigService
from billwarden.subscriptions.service import MirrorService
from billwarden.webhooks.models import InboxStatus, WebhookEvent
from tests.identity.factories import People
from tests.projects.factories import ProjectWithSecret, Tenants

WINDOW = {"from": "2026-11-01T00:00:00Z", "to": "2026-12-01T00:00:00Z"}


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def item(amount: int, interval: str, *, currency: str = "usd", quantity: int = 1, count: int = 1):
    return {
        "quantity": quantity,
        "price": {
            "id": f"price_{uuid.uuid4().hex[:8]}",
            "currency": currency,
            "unit_amount": amount,
            "recurring": {"interval": interval, "interval_count": count, "usage_type": "licensed"},
        },
    }


async def subscribe(
    session: AsyncSession,
    project: ProjectWithSecret,
    name: str,
    status: str,
    items: list[dict[str, Any]],
    *,
    started: str,
    ended: str | None = None,
    mode: Mode = Mode.TEST,
) -> None:
    """A subscription as Stripe sends it, applied by the mirror (which types its figures)."""
    await MirrorService(session).apply_subscription(
        project.id,
        mode,
        {
            "id": f"sub_{name}",
            "object": "subscription",
            "customer": f"cus_{name}",
            "status": status,
            "currency": items[0]["price"]["currency"],
            "start_date": int(at(started).timestamp()),
            "created": int(at(started).timestamp()),
            "ended_at": int(at(ended).timestamp()) if ended else None,
            "items": {"object": "list", "data": items},
        },
        stamp=None,
        price_map={},
        subject_hint=Subject(SubjectType.USER, name),
    )


def pay(
    project: ProjectWithSecret,
    stripe_id: str,
    amount: int,
    status: str,
    *,
    currency: str = "usd",
    created: str,
    paid: bool = True,
    refunded: int = 0,
    mode: Mode = Mode.TEST,
) -> Payment:
    return Payment(
        project_id=project.id,
        mode=mode,
        kind="payment" if stripe_id.startswith("pi_") else "invoice",
        stripe_id=stripe_id,
        subject_type="user",
        subject_id="payer",
        amount=amount,
        amount_refunded=refunded,
        currency=currency,
        status=status,
        created=at(created),
        paid_at=at(created) if paid else None,
        raw={},
    )


@pytest.fixture
async def seeded(
    session: AsyncSession, people: People, tenants: Tenants
) -> tuple[User, ProjectWithSecret, ProjectWithSecret, ProjectWithSecret]:
    """Two projects of one owner (named so that `first` sorts first) and one of someone else,
    in two currencies, with monthly, quarterly, yearly, weekly and daily prices, a bundle,
    trials, cancellations, refunds and failed payments, and live-mode rows that never count."""
    owner = await people.user()
    first = await tenants.project(owner, "a first shop")
    second = await tenants.project(owner, "b second shop")
    outsider = await tenants.project(await people.user(), "c not ours")
    s = session
    # first: usd 900 monthly x1 and x3, usd 9900 yearly (past_due), a trial, a cancellation in
    # the window, one that never started, and eur 500 weekly x2
    await subscribe(s, first, "m1", "active", [item(900, "month")], started="2026-10-01")
    await subscribe(
        s, first, "m2", "active", [item(900, "month", quantity=3)], started="2026-11-10"
    )
    await subscribe(s, first, "y1", "past_due", [item(9900, "year")], started="2026-06-01")
    await subscribe(s, first, "t1", "trialing", [item(900, "month")], started="2026-11-20")
    await subscribe(
        s, first, "c1", "canceled", [item(900, "month")], started="2026-09-01", ended="2026-11-15"
    )
    await subscribe(
        s,
        first,
        "i1",
        "incomplete_expired",
        [item(900, "month")],
        started="2026-11-05",
        ended="2026-11-06",
    )
    await subscribe(
        s,
        first,
        "w1",
        "active",
        [item(500, "week", currency="eur", quantity=2)],
        started="2026-08-01",
    )
    await subscribe(
        s, first, "live1", "active", [item(100000, "month")], started="2026-11-02", mode=Mode.LIVE
    )
    # second: eur 100 daily, usd 3000 every 3 months, a bundle (usd 900 monthly + 12000
    # yearly), and a cancellation before the window
    await subscribe(
        s, second, "d1", "active", [item(100, "day", currency="eur")], started="2026-10-15"
    )
    await subscribe(s, second, "q1", "active", [item(3000, "month", count=3)], started="2026-11-25")
    await subscribe(
        s,
        second,
        "b1",
        "active",
        [item(900, "month"), item(12000, "year")],
        started="2026-01-01",
    )
    await subscribe(
        s, second, "c2", "canceled", [item(900, "month")], started="2026-05-01", ended="2026-10-20"
    )
    await subscribe(s, outsider, "x1", "active", [item(999900, "month")], started="2026-11-03")
    payments = [
        pay(first, "in_1", 900, "succeeded", created="2026-11-02"),
        pay(first, "in_2", 2700, "succeeded", created="2026-11-10"),
        pay(first, "in_3", 9900, "partially_refunded", created="2026-11-03", refunded=4000),
        pay(first, "in_4", 900, "refunded", created="2026-11-05", refunded=900),
        pay(first, "in_5", 9900, "failed", created="2026-11-20", paid=False),
        pay(first, "in_6", 900, "failed", created="2026-10-20", paid=False),  # before
        pay(first, "pi_1", 1000, "succeeded", currency="eur", created="2026-11-12"),
        pay(first, "in_7", 1000, "succeeded", currency="eur", created="2026-10-31T23:59:59"),
        pay(first, "in_8", 500, "pending", created="2026-11-25", paid=False),
        pay(first, "in_9", 900, "void", created="2026-11-26", paid=False),
        pay(first, "in_live", 5000, "succeeded", created="2026-11-02", mode=Mode.LIVE),
        pay(second, "in_10", 3650, "succeeded", currency="eur", created="2026-11-30T23:00:00"),
        pay(second, "in_11", 100, "failed", currency="eur", created="2026-11-11", paid=False),
        pay(second, "in_12", 3000, "succeeded", created="2026-12-01"),  # `to` is exclusive
        pay(outsider, "in_x", 7777, "succeeded", created="2026-11-02"),
    ]
    session.add_all(payments)
    await session.flush()
    return owner, first, second, outsider


def money(
    currency: str,
    annual: float,
    *,
    paid: int = 0,
    gross: int = 0,
    refunded: int = 0,
    failed: int = 0,
    failed_amount: int = 0,
) -> dict[str, Any]:
    return {
        "currency": currency,
        "mrr": round(annual / 12, 2),
        "arr": annual,
        "revenue": gross - refunded,
        "grossPaid": gross,
        "refunded": refunded,
        "payments": paid,
        "failedPayments": {"count": failed, "amount": failed_amount},
    }


def counts(
    active: int, trialing: int, past_due: int, new: int, churned: int, live: int
) -> dict[str, Any]:
    return {
        "active": active,
        "trialing": trialing,
        "pastDue": past_due,
        "new": new,
        "churned": churned,
        "liveAtStart": live,
        "churnRate": round(churned / live, 4) if live else None,
    }


class TestStats:
    async def test_figures_equal_those_worked_out_by_hand(
        self, client: httpx.AsyncClient, people: People, seeded: Any
    ) -> None:
        owner, first, second, _ = seeded
        answer = await client.get(
            "/api/v1/payments/stats", params=WINDOW, headers=people.bearer(owner)
        )
        assert answer.status_code == 200, answer.text
        stats = answer.json()
        # first: billing usd 900*12 + 900*3*12 + 9900 = 53100 a year; eur 500*2*52 = 52000.
        # Live at the start: m1, y1, c1, w1; new: m2, t1 (i1 never started); churned: c1.
        # usd paid: 900 + 2700 + 9900 + 900, refunded 4000 + 900; failed in_5 (in_6 is before).
        first_figures = {
            "subscriptions": counts(3, 1, 1, 2, 1, 4),
            "currencies": [
                money("eur", 52000, paid=1, gross=1000),
                money(
                    "usd",
                    53100,
                    paid=4,
                    gross=14400,
                    refunded=4900,
                    failed=1,
                    failed_amount=9900,
                ),
            ],
        }
        # second: eur 100*365 = 36500; usd 3000*12/3 + 900*12 + 12000 = 34800. Live at the
        # start: d1, b1 (c2 ended before); new: q1. eur paid 3650, failed 100; in_12 is at `to`.
        second_figures = {
            "subscriptions": counts(3, 0, 0, 1, 0, 2),
            "currencies": [
                money("eur", 36500, paid=1, gross=3650, failed=1, failed_amount=100),
                money("usd", 34800),
            ],
        }
        assert stats["projects"] == [
            {"projectId": str(first.id), "name": "a first shop", "slug": first.project.slug}
            | first_figures,
            {"projectId": str(second.id), "name": "b second shop", "slug": second.project.slug}
            | second_figures,
        ]
        assert stats["total"] == {
            "subscriptions": counts(6, 1, 1, 3, 1, 6),
            "currencies": [
                money("eur", 88500, paid=2, gross=4650, failed=1, failed_amount=100),
                money(
                    "usd",
                    87900,
                    paid=4,
                    gross=14400,
                    refunded=4900,
                    failed=1,
                    failed_amount=9900,
                ),
            ],
        }
        assert stats["total"]["currencies"][1]["mrr"] == 7325.0
        assert stats["total"]["subscriptions"]["churnRate"] == 0.1667
        assert (stats["testMode"], stats["from"], stats["to"]) == (
            True,
            "2026-11-01T00:00:00Z",
            "2026-12-01T00:00:00Z",
        )

    async def test_live_mode_and_one_project(
        self, client: httpx.AsyncClient, people: People, seeded: Any
    ) -> None:
        owner, first, _, _ = seeded
        live = await client.get(
            "/api/v1/payments/stats",
            params={**WINDOW, "test_mode": "false"},
            headers=people.bearer(owner),
        )
        assert live.status_code == 200, live.text
        assert live.json()["total"] == {
            "subscriptions": counts(1, 0, 0, 1, 0, 0),
            "currencies": [money("usd", 1200000, paid=1, gross=5000)],
        }
        only_first = await client.get(
            "/api/v1/payments/stats",
            params={**WINDOW, "projectId": str(first.id)},
            headers=people.bearer(owner),
        )
        assert [p["projectId"] for p in only_first.json()["projects"]] == [str(first.id)]
        assert only_first.json()["total"]["subscriptions"] == counts(3, 1, 1, 2, 1, 4)

    async def test_the_default_window_is_the_last_30_days(
        self, client: httpx.AsyncClient, people: People, seeded: Any
    ) -> None:
        owner = seeded[0]
        answer = await client.get("/api/v1/payments/stats", headers=people.bearer(owner))
        assert answer.status_code == 200
        start = datetime.fromisoformat(answer.json()["from"])
        end = datetime.fromisoformat(answer.json()["to"])
        assert end - start == timedelta(days=30)
        assert abs(end - datetime.now(UTC)) < timedelta(minutes=1)

    async def test_refusals(self, client: httpx.AsyncClient, people: People, seeded: Any) -> None:
        owner, _, _, outsider = seeded
        headers = people.bearer(owner)
        backwards = await client.get(
            "/api/v1/payments/stats",
            params={"from": "2026-12-01T00:00:00Z", "to": "2026-11-01T00:00:00Z"},
            headers=headers,
        )
        assert backwards.status_code == 400
        assert backwards.json()["code"] == "VALIDATION_ERROR"
        not_a_date = await client.get(
            "/api/v1/payments/stats", params={"from": "yesterday"}, headers=headers
        )
        assert not_a_date.status_code == 400
        assert not_a_date.json()["code"] == "VALIDATION_ERROR"
        seconds = await client.get(
            "/api/v1/payments/stats", params={"to": "1700000000"}, headers=headers
        )
        assert (seconds.status_code, seconds.json()["code"]) == (400, "VALIDATION_ERROR")
        # an offset that takes it before the year 1 in UTC
        for path in ("stats", "subscriptions", "transactions"):
            early = await client.get(
                f"/api/v1/payments/{path}",
                params={"from": "0001-01-01T00:00:00+21:00"},
                headers=headers,
            )
            assert (early.status_code, early.json()["code"]) == (400, "VALIDATION_ERROR"), path
            assert early.json()["details"]["fields"][0]["field"] == "from"
        # a window ending in the year 1 starts there
        first_days = await client.get(
            "/api/v1/payments/stats", params={"to": "0001-01-05T00:00:00Z"}, headers=headers
        )
        assert first_days.status_code == 200, first_days.text
        assert first_days.json()["from"].startswith("0001-01-01T00:00:00")
        for path in ("stats", "subscriptions", "transactions"):
            theirs = await client.get(
                f"/api/v1/payments/{path}", params={"projectId": str(outsider.id)}, headers=headers
            )
            assert theirs.status_code == 404, path
            assert theirs.json()["code"] == "PROJECT_NOT_FOUND"
        anonymous = await client.get("/api/v1/payments/stats")
        assert anonymous.status_code == 401


class TestLists:
    async def test_every_visible_project_newest_first(
        self, client: httpx.AsyncClient, people: People, seeded: Any
    ) -> None:
        owner, first, second, _ = seeded
        headers = people.bearer(owner)
        answer = await client.get(
            "/api/v1/payments/transactions", params={"limit": 100}, headers=headers
        )
        assert answer.status_code == 200, answer.text
        shown = [(row["id"], row["projectId"]) for row in answer.json()["data"]]
        assert [stripe_id for stripe_id, _ in shown] == [
            "in_12",
            "in_10",
            "in_9",
            "in_8",
            "in_5",
            "pi_1",
            "in_11",
            "in_2",
            "in_4",
            "in_3",
            "in_1",
            "in_7",
            "in_6",
        ]
        assert {project for _, project in shown} == {str(first.id), str(second.id)}
        paged = await client.get(
            "/api/v1/payments/transactions",
            params={"limit": 2, "startingAfter": "in_9", "status": "failed"},
            headers=headers,
        )
        assert [row["id"] for row in paged.json()["data"]] == ["in_5", "in_11"]
        assert paged.json()["hasMore"] is True
        subscriptions = await client.get(
            "/api/v1/payments/subscriptions",
            params={"projectId": str(second.id), "status": "active"},
            headers=headers,
        )
        assert subscriptions.status_code == 200
        assert sorted(row["id"] for row in subscriptions.json()["data"]) == [
            "sub_b1",
            "sub_d1",
            "sub_q1",
        ]
        assert {row["projectId"] for row in subscriptions.json()["data"]} == {str(second.id)}

    async def test_a_superuser_sees_every_project(
        self, client: httpx.AsyncClient, people: People, seeded: Any
    ) -> None:
        outsider = seeded[3]
        root = await people.user(superuser=True)
        answer = await client.get(
            "/api/v1/payments/subscriptions", params={"limit": 100}, headers=people.bearer(root)
        )
        assert str(outsider.id) in {row["projectId"] for row in answer.json()["data"]}


class TestProjects:
    async def test_each_project_with_its_stripe_set_up_per_mode(
        self,
        client: httpx.AsyncClient,
        session: AsyncSession,
        people: People,
        tenants: Tenants,
        seeded: Any,
    ) -> None:
        owner, first, second, _ = seeded
        headers = people.bearer(owner)
        await StripeConfigService(session, tenants.secret_box).set_stripe_config(
            first.project, Mode.TEST, secret_key=f"sk_test_{uuid.uuid4().hex}"
        )
        checked = await client.post(
            f"/api/v1/payments/stripe/projects/{first.id}/validate-credentials", headers=headers
        )
        assert checked.status_code == 200 and checked.json()["valid"] is True
        received = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
        for number, status in enumerate(
            (InboxStatus.PROCESSED, InboxStatus.FAILED, InboxStatus.FAILED)
        ):
            session.add(
                WebhookEvent(
                    project_id=first.id,
                    mode=Mode.TEST,
                    event_id=f"evt_{number}",
                    event_type="invoice.paid",
                    event_created=received,
                    payload="{}",
                    received_at=received + timedelta(minutes=number),
                    status=status,
                    attempts=1,
                )
            )
        await session.flush()
        answer = await client.get("/api/v1/payments/projects", headers=headers)
        assert answer.status_code == 200, answer.text
        never = {
            "configured": False,
            "credentialsValid": None,
            "credentialsCheckedAt": None,
            "lastWebhookAt": None,
            "failedEvents": 0,
        }
        first_row, second_row = answer.json()["data"]
        assert (first_row["projectId"], second_row["projectId"]) == (str(first.id), str(second.id))
        test = first_row["test"]
        assert test["configured"] is True and test["credentialsValid"] is True
        assert datetime.fromisoformat(test["credentialsCheckedAt"]) > received
        assert test["lastWebhookAt"] == "2026-11-20T12:02:00Z"
        assert test["failedEvents"] == 2
        assert first_row["live"] == never
        assert second_row["test"] == never and second_row["live"] == never
