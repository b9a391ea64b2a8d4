"""Notifications end to end: a served billwarden and the emulator as Stripe, a receiver standing
in for the tenant app; every notification verified with the Standard Webhooks library."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable
from typing import Any

from billwarden.core.modes import Mode
from billwarden.db.engine import create_sessionmaker
from billwarden.db.unit_of_work import unit_of_work
from tests.checkout.loop import Loop, billing_loop
from tests.conftest import Scratch
from tests.notifications.factories import Endpoints, Receiver, receiving


def active(answer: dict[str, Any]) -> bool:
    return bool(answer["hasPremiumAccess"]) and answer["entitlement"]["status"] == "ACTIVE"


async def endpoint(loop: Loop, receiver: Receiver) -> tuple[str, str]:
    async with unit_of_work(create_sessionmaker(loop.scratch.engine)) as session:
        row, secret = await Endpoints(session, loop.scratch.secret_box).endpoint(
            loop.project.id, receiver.url, ["*"], Mode.TEST
        )
    return str(row.id), secret


async def until(done: Callable[[], bool], *, within: float = 15.0) -> None:
    deadline = time.monotonic() + within
    while not done():
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)


async def deliveries(loop: Loop, endpoint_id: str) -> list[dict[str, Any]]:
    answer = await loop.http.get(
        f"/api/v1/projects/{loop.project.id}/webhook-endpoints/{endpoint_id}/deliveries",
        headers=loop.owner,
    )
    assert answer.status_code == 200, answer.text
    items: list[dict[str, Any]] = answer.json()["items"]
    return items


async def settled(loop: Loop, endpoint_id: str, webhook_id: str) -> dict[str, Any]:
    """The delivery of `webhook_id` once it is no longer pending."""
    deadline = time.monotonic() + 15
    while True:
        found = [d for d in await deliveries(loop, endpoint_id) if d["webhookId"] == webhook_id]
        if found and found[0]["status"] != "pending":
            return found[0]
        assert time.monotonic() < deadline, found
        await asyncio.sleep(0.05)


def granted(receiver: Receiver) -> bool:
    return any(
        r.json["data"]["status"] == "ACTIVE" for r in receiver.of_type("entitlement.updated")
    )


class TestDelivery:
    async def test_paid_checkout_sends_a_verified_entitlement_updated(
        self, scratch: Scratch, emulator_url: str
    ) -> None:
        with receiving(Receiver()) as receiver:
            async with billing_loop(scratch, emulator_url) as loop:
                _, secret = await endpoint(loop, receiver)
                token = loop.token("ada", email="ada@example.test")
                await loop.pay(await loop.checkout(token, purchaseKey="premium_monthly"))
                await loop.eventually(token, active)
                await until(lambda: granted(receiver))
        bodies = receiver.verified(secret)
        last = [b for b in bodies if b["type"] == "entitlement.updated"][-1]
        assert last["data"]["subjectId"] == "ada"
        assert last["data"]["plan"] == "PREMIUM_MONTHLY"
        assert last["data"]["hasPremiumAccess"] is True
        assert "timestamp" in last
        assert any(b["type"] == "subscription.updated" for b in bodies)
        assert all(r.headers["webhook-signature"].startswith("v1,") for r in receiver.requests)

    async def test_a_receiver_answering_500_gets_the_retry_and_a_manual_retry(
        self, scratch: Scratch, emulator_url: str
    ) -> None:
        with receiving(Receiver(answers=[500])) as receiver:
            async with billing_loop(
                scratch, emulator_url, notification_retry_base_seconds=0.2
            ) as loop:
                endpoint_id, secret = await endpoint(loop, receiver)
                token = loop.token("bo")
                await loop.pay(await loop.checkout(token, purchaseKey="premium_monthly"))
                await loop.eventually(token, active)
                await until(lambda: granted(receiver))
                first = receiver.requests[0].id
                await until(lambda: [r.id for r in receiver.requests].count(first) == 2)
                retried = await settled(loop, endpoint_id, first)
                assert retried["status"] == "delivered"
                assert retried["attempts"] == 2
                assert retried["lastStatusCode"] == 200
                # manual redelivery: the same message once more
                answer = await loop.http.post(
                    f"/api/v1/projects/{loop.project.id}/webhook-endpoints/{endpoint_id}"
                    f"/deliveries/{retried['id']}/retry",
                    headers=loop.owner,
                )
                assert answer.status_code == 200, answer.text
                await until(lambda: [r.id for r in receiver.requests].count(first) == 3)
        receiver.verified(secret)

    async def test_duplicated_stripe_deliveries_notify_once_per_change(
        self, scratch: Scratch, emulator_url: str
    ) -> None:
        with receiving(Receiver()) as receiver:
            async with billing_loop(scratch, emulator_url) as loop:
                endpoint_id, secret = await endpoint(loop, receiver)
                await loop.emulator("/_emulator/faults", webhooks={"duplicate": True})
                try:
                    token = loop.token("cy")
                    await loop.pay(await loop.checkout(token, purchaseKey="premium_monthly"))
                    await loop.eventually(token, active)
                    await until(lambda: granted(receiver))
                    await asyncio.sleep(2.0)  # the duplicates arrive and are applied
                    for item in await deliveries(loop, endpoint_id):
                        assert (await settled(loop, endpoint_id, item["webhookId"]))[
                            "status"
                        ] == "delivered"
                finally:
                    await loop.emulator("/_emulator/faults", webhooks={"duplicate": False})
        bodies = receiver.verified(secret)
        assert len({r.id for r in receiver.requests}) == len(receiver.requests)
        for event_type in ("entitlement.updated", "subscription.updated"):
            datas = [b["data"] for b in bodies if b["type"] == event_type]
            assert datas, event_type
            # each notification tells of a change: no two in a row say the same
            assert all(a != b for a, b in itertools.pairwise(datas)), datas
        statuses = [b["data"]["status"] for b in bodies if b["type"] == "entitlement.updated"]
        assert statuses.count("ACTIVE") == 1, statuses
