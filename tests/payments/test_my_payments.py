"""The payments mirror end to end: invoices of a subscription as the emulator bills it, read back
newest first with a cursor."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from billwarden.db.engine import create_sessionmaker
from billwarden.db.unit_of_work import unit_of_work
from tests.checkout.loop import Loop, billing_loop
from tests.conftest import Scratch
from tests.notifications.factories import Endpoints, Receiver, receiving

DAY = 86400
URL = "/api/v1/payments/stripe/my-payments"


def active(answer: dict[str, Any]) -> bool:
    return bool(answer["hasPremiumAccess"]) and answer["entitlement"]["status"] == "ACTIVE"


async def payments(loop: Loop, token: str, **params: Any) -> dict[str, Any]:
    answer = await loop.http.get(URL, params=params, headers=loop.bearer(token))
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


async def eventually_payments(
    loop: Loop, token: str, count: int, *, within: float = 10.0
) -> dict[str, Any]:
    deadline = time.monotonic() + within
    while True:
        found = await payments(loop, token, limit=100)
        statuses = [payment["status"] for payment in found["data"]]
        if len(found["data"]) >= count and "pending" not in statuses:
            return found
        assert time.monotonic() < deadline, found
        await asyncio.sleep(0.05)


class TestMyPayments:
    async def test_a_subscription_s_invoices_paid_then_failed_newest_first(
        self, scratch: Scratch, emulator_url: str
    ) -> None:
        async with billing_loop(scratch, emulator_url) as loop:
            token = loop.token("ada")
            assert await payments(loop, token) == {"data": [], "hasMore": False}
            session_id = await loop.checkout(token, purchaseKey="premium_monthly")
            clock = loop.clock()
            customer = await loop.customer_of(session_id)
            await loop.emulator(f"/_emulator/customers/{customer}/test_clock", test_clock=clock)
            await loop.pay(session_id)
            await loop.eventually(token, active)
            first = await eventually_payments(loop, token, 1)
            await loop.emulator(f"/_emulator/customers/{customer}/card", outcome="declined")
            await loop.advance(clock, 31 * DAY)
            both = await eventually_payments(loop, token, 2)
            page = await payments(loop, token, limit=1)
            rest = await payments(loop, token, limit=1, startingAfter=page["data"][0]["id"])
            other = await payments(loop, loop.token("bob"))
        (paid,) = first["data"]
        assert paid["kind"] == "invoice" and paid["status"] == "succeeded"
        assert (paid["amount"], paid["currency"]) == (900, "usd")
        assert paid["subscriptionId"].startswith("sub_")
        assert paid["paidAt"] is not None and paid["hostedInvoiceUrl"]
        renewal, original = both["data"]
        assert original["id"] == paid["id"]
        assert renewal["status"] == "failed" and renewal["paidAt"] is None
        assert renewal["amount"] == 900
        assert page["hasMore"] is True and page["data"] == [renewal]
        assert rest == {"data": [original], "hasMore": False}
        assert other == {"data": [], "hasMore": False}

    async def test_a_bad_cursor_or_limit_is_refused_or_empty(
        self, scratch: Scratch, emulator_url: str
    ) -> None:
        async with billing_loop(scratch, emulator_url) as loop:
            token = loop.token("cy")
            big = await loop.http.get(URL, params={"limit": 101}, headers=loop.bearer(token))
            unknown = await payments(loop, token, startingAfter="in_unknown")
        assert (big.status_code, big.json()["code"]) == (400, "VALIDATION_ERROR")
        assert unknown == {"data": [], "hasMore": False}


class TestPaymentNotifications:
    async def test_a_paid_then_a_failed_invoice_notify_once_each(
        self, scratch: Scratch, emulator_url: str
    ) -> None:
        with receiving(Receiver()) as receiver:
            async with billing_loop(scratch, emulator_url) as loop:
                async with unit_of_work(create_sessionmaker(scratch.engine)) as session:
                    _, secret = await Endpoints(session, scratch.secret_box).endpoint(
                        loop.project.id, receiver.url, ["payment.succeeded", "payment.failed"]
                    )
                token = loop.token("dee")
                session_id = await loop.checkout(token, purchaseKey="premium_monthly")
                clock = loop.clock()
                customer = await loop.customer_of(session_id)
                await loop.emulator(f"/_emulator/customers/{customer}/test_clock", test_clock=clock)
                await loop.pay(session_id)
                await eventually_payments(loop, token, 1)
                await loop.emulator(f"/_emulator/customers/{customer}/card", outcome="declined")
                await loop.advance(clock, 31 * DAY)
                await eventually_payments(loop, token, 2)
                deadline = time.monotonic() + 15
                while len(receiver.requests) < 2:
                    assert time.monotonic() < deadline, receiver.requests
                    await asyncio.sleep(0.05)
                await asyncio.sleep(0.5)  # nothing more arrives
        events = receiver.verified(secret)
        assert [event["type"] for event in events] == ["payment.succeeded", "payment.failed"]
        paid, failed = (event["data"] for event in events)
        assert (paid["subjectId"], paid["kind"], paid["amount"]) == ("dee", "invoice", 900)
        assert failed["status"] == "failed" and failed["subscriptionId"] == paid["subscriptionId"]
