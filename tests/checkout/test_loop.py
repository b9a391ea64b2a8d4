"""The core loop end to end over HTTP: the emulator delivers signed webhooks to a served
billwarden, whose worker applies them to the mirror and the entitlement snapshots."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from typing import Any

import httpx
from sqlalchemy import select

from billwarden.webhooks.models import InboxStatus, WebhookEvent
from tests.checkout.factories import MONTHLY
from tests.checkout.loop import Loop, billing_loop
from tests.conftest import Scratch

DAY = 86400


def active(answer: dict[str, Any]) -> bool:
    return bool(answer["hasPremiumAccess"]) and answer["entitlement"]["status"] == "ACTIVE"


async def paid_with_clock(loop: Loop, token: str) -> tuple[str, str]:
    """Check out, put the new customer on a test clock, pay; (clock, subscription) once active."""
    session_id = await loop.checkout(token, purchaseKey="premium_monthly")
    clock = loop.clock()
    await loop.emulator(
        f"/_emulator/customers/{await loop.customer_of(session_id)}/test_clock", test_clock=clock
    )
    await loop.pay(session_id)
    answer = await loop.eventually(token, active)
    return clock, answer["entitlement"]["stripeSubscriptionId"]


class TestTheLoop:
    async def test_checkout_pay_active_with_premium_access(
        self, scratch: Scratch, emulator_url: str
    ) -> None:
        async with billing_loop(scratch, emulator_url) as loop:
            token = loop.token("ada", email="ada@example.test")
            before = await loop.entitlement(token)
            assert before["entitlement"]["plan"] == "FREE"
            assert before["entitlement"]["status"] == "NONE"
            assert before["hasPremiumAccess"] is False
            assert before["features"] == ["basic"]

            session_id = await loop.checkout(token, purchaseKey="premium_monthly")
            pending = await loop.entitlement(token)
            assert pending["entitlement"]["status"] == "INCOMPLETE"
            assert pending["hasPremiumAccess"] is False
            await loop.pay(session_id)
            answer = await loop.eventually(token, active)
            # the team's figures follow from the same webhooks: one new active subscription
            # whose monthly price is the MRR, and its first invoice paid
            deadline = time.monotonic() + 10
            while True:
                stats = (await loop.http.get("/api/v1/payments/stats", headers=loop.owner)).json()
                if stats["total"]["currencies"] and stats["total"]["currencies"][0]["payments"]:
                    break
                assert time.monotonic() < deadline, stats
                await asyncio.sleep(0.05)

        assert stats["total"]["subscriptions"]["active"] == 1
        assert stats["total"]["subscriptions"]["new"] == 1
        (usd,) = stats["total"]["currencies"]
        assert (usd["currency"], usd["mrr"], usd["arr"]) == ("usd", MONTHLY, MONTHLY * 12)
        assert (usd["grossPaid"], usd["revenue"]) == (MONTHLY, MONTHLY)
        entitlement = answer["entitlement"]
        assert entitlement["plan"] == "PREMIUM_MONTHLY"
        assert entitlement["userExternalId"] == "ada"
        assert entitlement["userEmail"] == "ada@example.test"
        assert entitlement["stripePriceId"] == loop.prices["premium_monthly"]
        assert entitlement["stripeSubscriptionId"].startswith("sub_")
        assert entitlement["stripeCustomerId"].startswith("cus_")
        assert entitlement["lastEventId"].startswith("evt_")
        assert answer["features"] == ["export", "premium"]
        assert answer["role"] == "premium"
        assert answer["plans"] == ["premium_monthly"]
        assert entitlement["quotas"] == {"api_calls": {"limit": 10000, "period": "day"}}
        stripe_subscription = loop.stripe.v1.subscriptions.retrieve(
            entitlement["stripeSubscriptionId"]
        )
        assert stripe_subscription.metadata["bw_subject_id"] == "ada"
        assert stripe_subscription.metadata["userEmail"] == "ada@example.test"
        period_end = stripe_subscription["items"].data[0].current_period_end
        assert datetime.fromisoformat(entitlement["currentPeriodEnd"]).timestamp() == period_end

    async def test_renewal_by_test_clock_moves_the_period(
        self, scratch: Scratch, emulator_url: str
    ) -> None:
        async with billing_loop(scratch, emulator_url) as loop:
            token = loop.token("bob")
            clock, _ = await paid_with_clock(loop, token)
            first = (await loop.entitlement(token))["entitlement"]["currentPeriodEnd"]
            await loop.advance(clock, 31 * DAY)
            renewed = await loop.eventually(
                token, lambda a: a["entitlement"]["currentPeriodEnd"] != first
            )
        assert active(renewed)
        assert renewed["entitlement"]["currentPeriodStart"] == first

    async def test_a_failed_renewal_is_past_due_with_access_only_within_grace(
        self, scratch: Scratch, emulator_url: str
    ) -> None:
        async with billing_loop(scratch, emulator_url) as loop:
            token = loop.token("cy")
            clock, subscription_id = await paid_with_clock(loop, token)
            customer = loop.stripe.v1.subscriptions.retrieve(subscription_id).customer
            await loop.emulator(f"/_emulator/customers/{customer}/card", outcome="declined")
            await loop.advance(clock, 31 * DAY)
            lapsed = await loop.eventually(
                token, lambda a: a["entitlement"]["status"] == "PAST_DUE"
            )
            assert lapsed["hasPremiumAccess"] is False  # the project's grace is 0 days
            assert lapsed["features"] == ["basic"]
            check = await loop.http.post(
                "/api/v1/entitlements/check", json={"feature": "export"}, headers=loop.bearer(token)
            )
            assert check.status_code == 200
            assert (check.json()["allowed"], check.json()["reason"]) == (False, "status_past_due")

            grace = await loop.http.patch(
                f"/api/v1/projects/{loop.project.id}",
                json={"pastDueGraceDays": 3},
                headers=loop.owner,
            )
            assert grace.status_code == 200, grace.text
            assert grace.json()["pastDueGraceDays"] == 3
            graced = await loop.entitlement(token)
        assert graced["entitlement"]["status"] == "PAST_DUE"
        assert graced["hasPremiumAccess"] is True
        assert "export" in graced["features"]

    async def test_cancel_at_period_end_then_the_clock_past_it_is_free(
        self, scratch: Scratch, emulator_url: str
    ) -> None:
        async with billing_loop(scratch, emulator_url) as loop:
            token = loop.token("dee")
            clock, subscription_id = await paid_with_clock(loop, token)
            loop.stripe.v1.subscriptions.update(subscription_id, {"cancel_at_period_end": True})
            scheduled = await loop.eventually(
                token, lambda a: a["entitlement"]["cancelAtPeriodEnd"] is True
            )
            assert active(scheduled)  # paid until the period ends
            await loop.advance(clock, 32 * DAY)
            ended = await loop.eventually(token, lambda a: a["entitlement"]["status"] == "CANCELED")
        assert ended["entitlement"]["plan"] == "FREE"
        assert ended["hasPremiumAccess"] is False
        assert ended["features"] == ["basic"]

    async def test_async_payment_pending_then_succeeded_is_active(
        self, scratch: Scratch, emulator_url: str
    ) -> None:
        async with billing_loop(scratch, emulator_url) as loop:
            token = loop.token("eve")
            session_id = await loop.checkout(token)  # the catalog's default purchase key
            await loop.pay(session_id, outcome="async_pending")
            pending = await loop.eventually(
                token, lambda a: a["entitlement"]["stripeSubscriptionId"] is not None
            )
            assert pending["hasPremiumAccess"] is False
            assert pending["entitlement"]["status"] == "INCOMPLETE"
            await loop.emulator(
                f"/_emulator/checkout/sessions/{session_id}/async_payment", outcome="succeeded"
            )
            answer = await loop.eventually(token, active)
        assert answer["entitlement"]["plan"] == "PREMIUM_MONTHLY"

    async def test_an_expired_checkout_grants_nothing(
        self, scratch: Scratch, emulator_url: str
    ) -> None:
        async with billing_loop(scratch, emulator_url) as loop:
            token = loop.token("fay")
            session_id = await loop.checkout(token, purchaseKey="premium_monthly")
            loop.stripe.v1.checkout.sessions.expire(session_id)
            answer = await loop.eventually(token, lambda a: a["entitlement"]["status"] == "NONE")
            async with loop.scratch.session() as session:
                rows = (
                    await session.scalars(
                        select(WebhookEvent).where(
                            WebhookEvent.event_type == "checkout.session.expired"
                        )
                    )
                ).all()
        assert [row.status for row in rows] == [InboxStatus.PROCESSED]
        assert answer["hasPremiumAccess"] is False
        assert answer["entitlement"]["plan"] == "FREE"

    async def test_reconcile_session_grants_at_once_and_applies_once(
        self, scratch: Scratch, emulator_url: str
    ) -> None:
        # deliveries held back 30 s: the success page comes before the webhook
        async with billing_loop(scratch, emulator_url) as loop:
            await loop.emulator("/_emulator/faults", webhooks={"delay": 30.0})
            token = loop.token("gus")
            session_id = await loop.checkout(token, purchaseKey="premium_monthly")
            await loop.pay(session_id)
            first = await loop.http.post(
                "/api/v1/payments/stripe/reconcile-session",
                json={"sessionId": session_id},
                headers=loop.bearer(token),
            )
            async with httpx.AsyncClient(base_url=loop.emulator_url) as http:
                log = await http.get(
                    "/_emulator/deliveries", headers={"Authorization": f"Bearer {loop.stripe_key}"}
                )
            assert log.json()["data"] == []  # no webhook had arrived
            again = await loop.http.post(
                "/api/v1/payments/stripe/reconcile-session",
                json={"sessionId": session_id},
                headers=loop.bearer(token),
            )
            status = await loop.http.get(
                "/api/v1/payments/stripe/check-session",
                params={"session_id": session_id},
                headers=loop.bearer(token),
            )
            other = await loop.http.post(
                "/api/v1/payments/stripe/reconcile-session",
                json={"sessionId": session_id},
                headers=loop.bearer(loop.token("mallory")),
            )
        assert first.status_code == 200, first.text
        assert first.json()["alreadyProcessed"] is False
        assert first.json()["hasPremiumAccess"] is True
        assert first.json()["entitlement"]["status"] == "ACTIVE"
        assert again.json()["alreadyProcessed"] is True
        assert status.status_code == 200
        assert status.json()["status"] == "complete"
        assert status.json()["paymentStatus"] == "paid"
        assert (
            status.json()["subscriptionId"] == first.json()["entitlement"]["stripeSubscriptionId"]
        )
        assert (other.status_code, other.json()["code"]) == (404, "CHECKOUT_SESSION_NOT_FOUND")
