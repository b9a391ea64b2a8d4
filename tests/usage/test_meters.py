"""Usage events of a metered metric go to Stripe's meter events from the outbox, each once: the
emulator's meter summaries equal billwarden's counters, also after a worker killed mid-batch."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select

from billwarden.core.modes import Mode
from billwarden.db.engine import create_sessionmaker
from billwarden.db.unit_of_work import unit_of_work
from billwarden.usage.models import MeterForward, UsageCounter
from billwarden.usage.service import UsageService
from tests.catalog.factories import Catalogs
from tests.checkout.factories import catalog_document
from tests.checkout.loop import Loop, billing_loop
from tests.conftest import TEST_SECRET_KEY, Scratch
from tests.factories import Factories
from tests.reconciliation.test_reconcile import subscribed


async def metered(scratch: Scratch, loop: Loop) -> None:
    """The loop's catalog, with api_calls counted by the Stripe meter `api_calls`."""
    document = catalog_document(loop.prices)
    document["metrics"] = {"api_calls": {"stripe_meter_event": "api_calls"}}

    async def build(made: Factories) -> None:
        await Catalogs(made.people.session).load(loop.project.id, document)

    await scratch.setup(build)
    loop.stripe.v1.billing.meters.create(
        {
            "display_name": "API calls",
            "event_name": "api_calls",
            "default_aggregation": {"formula": "sum"},
        }
    )


async def api_key(scratch: Scratch, loop: Loop) -> str:
    async def build(made: Factories) -> str:
        owner = await made.people.user()
        return await made.people.api_key(loop.project, owner)

    return await scratch.setup(build)


async def forwards(scratch: Scratch) -> dict[str, int]:
    async with scratch.session() as session:
        rows = await session.execute(
            select(MeterForward.status, func.count()).group_by(MeterForward.status)
        )
        return {status: int(count) for status, count in rows.all()}


async def counted(scratch: Scratch, subject_id: str) -> float:
    async with scratch.session() as session:
        value = await session.scalar(
            select(func.sum(UsageCounter.value)).where(
                UsageCounter.subject_id == subject_id, UsageCounter.granularity == "month"
            )
        )
    return float(value or 0)


def summed(loop: Loop, customer: str) -> float:
    """The emulator's sum of the meter's events for the customer, today and yesterday."""
    (meter,) = loop.stripe.v1.billing.meters.list().data
    now = datetime.now(UTC)
    start = int((now - timedelta(days=2)).replace(minute=0, second=0, microsecond=0).timestamp())
    end = int((now + timedelta(hours=1)).replace(minute=0, second=0, microsecond=0).timestamp())
    summaries = loop.stripe.v1.billing.meters.event_summaries.list(
        meter.id, {"customer": customer, "start_time": start, "end_time": end}
    )
    return float(sum(summary.aggregated_value for summary in summaries.data))


class TestMeterForwarding:
    async def test_events_reach_the_meter_once_each(
        self, scratch: Scratch, emulator_url: str
    ) -> None:
        async with billing_loop(scratch, emulator_url) as loop:
            await metered(scratch, loop)
            await subscribed(loop, "ada")
            token = loop.bearer(loop.token("ada"))
            batch = {
                "events": [{"id": f"m{n}", "metric": "api_calls", "value": n} for n in range(1, 6)]
            }
            first = await loop.http.post("/api/v1/usage/events", json=batch, headers=token)
            assert first.json()["accepted"] == 5, first.text
            again = await loop.http.post("/api/v1/usage/events", json=batch, headers=token)
            assert again.json()["duplicates"] == 5
            deadline = time.monotonic() + 15
            while (await forwards(scratch)) != {"forwarded": 5}:
                assert time.monotonic() < deadline, await forwards(scratch)
                await asyncio.sleep(0.1)
            customer = (await loop.entitlement(loop.token("ada")))["entitlement"][
                "stripeCustomerId"
            ]
            assert summed(loop, customer) == await counted(scratch, "ada") == 15
            key = {"Authorization": f"Bearer {await api_key(scratch, loop)}"}
            one = await loop.http.get("/api/v1/usage/events/m3", headers=key)
            assert one.status_code == 200, one.text
            assert (one.json()["value"], one.json()["subjectId"]) == (3, "ada")
            meter = one.json()["meter"]
            assert (meter["eventName"], meter["status"], meter["lastError"]) == (
                "api_calls",
                "forwarded",
                None,
            )
            assert meter["forwardedAt"] is not None
            missing = await loop.http.get("/api/v1/usage/events/nope", headers=key)
            assert missing.status_code == 404
            assert missing.json()["code"] == "USAGE_EVENT_NOT_FOUND"

    async def test_a_killed_worker_loses_nothing_and_counts_nothing_twice(
        self, scratch: Scratch, scratch_database: str, emulator_url: str, tmp_path: Path
    ) -> None:
        async with billing_loop(scratch, emulator_url) as loop:
            await metered(scratch, loop)
            await subscribed(loop, "ada")
            customer = (await loop.entitlement(loop.token("ada")))["entitlement"][
                "stripeCustomerId"
            ]
        # the served app (and its embedded worker) has stopped: only `billwarden worker` sends
        sessions = create_sessionmaker(scratch.engine)
        async with unit_of_work(sessions) as session:
            result = await UsageService(session).ingest(
                loop.project.id,
                Mode.TEST,
                [{"id": f"k{n}", "subjectId": "ada", "metric": "api_calls"} for n in range(400)],
                own=None,
            )
        assert result.accepted == 400
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("BILLWARDEN_")},
            "BILLWARDEN_DATABASE_URL": scratch_database,
            "BILLWARDEN_SECRET_KEY": TEST_SECRET_KEY,
            "BILLWARDEN_STRIPE_API_BASE": emulator_url,
            "BILLWARDEN_WORKER_POLL_SECONDS": "0.2",
            "BILLWARDEN_WORKER_LEASE_SECONDS": "1",
        }

        def start() -> subprocess.Popen[str]:
            return subprocess.Popen(
                [sys.executable, "-m", "billwarden", "worker"],
                env=env,
                cwd=tmp_path,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                text=True,
            )

        worker = start()
        try:
            deadline = time.monotonic() + 30
            while (await forwards(scratch)).get("forwarded", 0) < 50:
                assert time.monotonic() < deadline, await forwards(scratch)
                await asyncio.sleep(0.02)
            os.kill(worker.pid, signal.SIGKILL)  # mid-batch: some sent, some not recorded
            worker.wait(timeout=10)
            assert (await forwards(scratch)).get("forwarded", 0) < 400
            worker = start()
            while (await forwards(scratch)) != {"forwarded": 400}:
                assert time.monotonic() < deadline, await forwards(scratch)
                await asyncio.sleep(0.1)
        finally:
            worker.kill()
            worker.wait(timeout=10)
        assert summed(loop, customer) == await counted(scratch, "ada") == 400
