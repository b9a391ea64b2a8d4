"""Failures on the way from Stripe to the entitlement lose nothing: a worker killed while it holds
events leaves them to the next run."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from billwarden.webhooks.models import InboxStatus
from tests.checkout.loop import Loop, billing_loop
from tests.conftest import Scratch
from tests.webhooks.stream import (
    APPLIED_WITHIN,
    FINISHED,
    emulator_account,
    inbox,
    running_workers,
    start_worker,
    wait_stored,
    wait_until_applied,
    worker_env,
)

# the worker killed while it holds events
SLOW_STRIPE_SECONDS = 5.0  # each subscription read while the first worker runs
LEASE_SECONDS = 2
INSIDE_THE_HANDLER_AFTER = 1.0  # seconds after the claim: past the quick events, in a slow one


def active(answer: dict[str, Any]) -> bool:
    return bool(answer["hasPremiumAccess"]) and answer["entitlement"]["status"] == "ACTIVE"


class TestWorkerKilled:
    async def test_killed_between_storing_and_applying_the_next_run_applies_the_events(
        self, scratch: Scratch, scratch_database: str, emulator_url: str, tmp_path: Path
    ) -> None:
        env = worker_env(scratch_database, emulator_url, worker_lease_seconds=str(LEASE_SECONDS))
        async with (
            billing_loop(scratch, emulator_url, embedded_worker=False) as loop,
            emulator_account(loop) as account,
        ):
            before = await account.event_ids()
            token = loop.token("kim", email="kim@example.test")
            await account.pay(await loop.checkout(token, purchaseKey="premium_monthly"))
            emitted = await account.event_ids() - before
            stored = await wait_stored(loop, emitted)
            await account.post(
                "/_emulator/faults",
                latency=[
                    {"method": "GET", "path": "/v1/subscriptions*", "seconds": SLOW_STRIPE_SECONDS}
                ],
            )
            first = start_worker(env, tmp_path, "killed")
            try:
                claimed_at = await wait_claimed(loop, first.alive)
                await asyncio.sleep(INSIDE_THE_HANDLER_AFTER)
                os.kill(first.pid, signal.SIGKILL)
                first.process.wait(timeout=10)
            finally:
                first.stop()
            killed_after = time.monotonic() - claimed_at
            at_kill = await inbox(loop)
            entitlement_at_kill = await loop.entitlement(token)
            await account.post("/_emulator/faults", latency=[])
            with running_workers(1, env, tmp_path) as workers:
                await wait_until_applied(loop, emitted, within=APPLIED_WITHIN, workers=workers)
            final = await inbox(loop)
            answer = await loop.entitlement(token)

        assert first.process.returncode == -signal.SIGKILL
        assert killed_after < SLOW_STRIPE_SECONDS  # inside a handler still waiting for Stripe
        assert all(row.status is InboxStatus.PENDING for row in stored.values())
        held = sorted(
            event_id
            for event_id, row in at_kill.items()
            if row.status is InboxStatus.PENDING and row.claim_token is not None
        )
        assert held, "the killed worker held no event it had not applied"
        assert all(at_kill[event_id].attempts == 1 for event_id in held)
        assert entitlement_at_kill["entitlement"]["status"] == "INCOMPLETE"
        assert entitlement_at_kill["hasPremiumAccess"] is False
        held_types = {at_kill[event_id].event_type for event_id in held}
        assert "checkout.session.completed" in held_types or (
            "customer.subscription.created" in held_types
        )
        for event_id in held:
            assert final[event_id].status in FINISHED, final[event_id].last_error
            assert final[event_id].attempts == 2  # the killed run's claim, then the next run's
            assert final[event_id].claim_token is None
        assert active(answer), answer
        assert answer["entitlement"]["plan"] == "PREMIUM_MONTHLY"


async def wait_claimed(loop: Loop, alive: Callable[[], bool]) -> float:
    """When a worker's claim on the loop's events was first seen."""
    deadline = time.monotonic() + APPLIED_WITHIN
    while True:
        rows = await inbox(loop)
        if any(row.claim_token is not None for row in rows.values()):
            return time.monotonic()
        assert alive(), "the worker stopped before claiming anything"
        assert time.monotonic() < deadline, "no event was claimed"
        await asyncio.sleep(0.02)
