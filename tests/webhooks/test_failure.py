"""Failures on the way from Stripe to the entitlement lose nothing: a worker killed while it holds
events leaves them to the next run, and an event the database could not store is answered 503
and lands with Stripe's retry."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from billwarden.webhooks.models import InboxStatus
from billwarden_emulator.config import EmulatorConfig
from billwarden_emulator.testing import running_emulator
from tests.checkout.loop import Loop, billing_loop
from tests.conftest import Scratch
from tests.webhooks.stream import (
    APPLIED_WITHIN,
    FINISHED,
    EmulatorAccount,
    active_subscription,
    emulator_account,
    inbox,
    running_workers,
    start_worker,
    updated_events,
    wait_processed,
    wait_stored,
    wait_until_applied,
    worker_env,
)

# the worker killed while it holds events
SLOW_STRIPE_SECONDS = 5.0  # each subscription read while the first worker runs
LEASE_SECONDS = 2
INSIDE_THE_HANDLER_AFTER = 1.0  # seconds after the claim: past the quick events, in a slow one
# storing refused once
WEBHOOK_TIMEOUT_SECONDS = 30.0  # the emulator waits out SQLite's 5 s busy timeout
RETRY_SCHEDULE = (0.5, 1.0, 2.0, 4.0)
DELIVERED_WITHIN = 20.0


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


# --- storing refused once --------------------------------------------------------------------


@pytest.fixture(scope="module")
def patient_emulator_url() -> Iterator[str]:
    """An emulator that waits for billwarden's answer longer than SQLite's busy timeout (the
    session-wide one gives up after 5 s, just when SQLite does) and retries within seconds."""
    config = EmulatorConfig(
        webhook_retry_schedule=RETRY_SCHEDULE, webhook_timeout=WEBHOOK_TIMEOUT_SECONDS
    )
    with running_emulator(config) as url:
        yield url


@asynccontextmanager
async def storing_fails(scratch: Scratch, backend: str) -> AsyncIterator[None]:
    """The database fails billwarden's next attempt to store an event.

    SQLite: another connection holds the write lock for the block, past billwarden's busy
    timeout. PostgreSQL: the first two inserts into `webhook_events` lose their connection, as
    on a server restart or failover (a trigger terminates its own backend, twice): the intake's
    short path and the route's own try, which would otherwise store the event at once once the
    signing secrets are cached."""
    if backend == "sqlite":
        path = scratch.settings.database_url.removeprefix("sqlite+aiosqlite:///")
        holder = sqlite3.connect(path, timeout=10, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        return
    statements = [
        "CREATE SEQUENCE test_store_attempts",
        """CREATE FUNCTION test_lose_first_store() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF nextval('test_store_attempts') <= 2 THEN
                PERFORM pg_terminate_backend(pg_backend_pid());
            END IF;
            RETURN NEW;
        END $$""",
        "CREATE TRIGGER test_lose_first_store BEFORE INSERT ON webhook_events "
        "FOR EACH ROW EXECUTE FUNCTION test_lose_first_store()",
    ]
    async with scratch.engine.begin() as connection:
        for statement in statements:
            await connection.execute(text(statement))
    try:
        yield
    finally:
        async with scratch.engine.begin() as connection:
            await connection.execute(text("DROP TRIGGER test_lose_first_store ON webhook_events"))
            await connection.execute(text("DROP FUNCTION test_lose_first_store()"))
            await connection.execute(text("DROP SEQUENCE test_store_attempts"))


async def delivery_attempts(
    account: EmulatorAccount, event_id: str, *, until_success: bool
) -> list[dict[str, Any]]:
    """The emulator's attempts to deliver the event, once there is one (or a successful one)."""
    deadline = time.monotonic() + DELIVERED_WITHIN
    while True:
        attempts = [a for a in await account.deliveries() if a["event_id"] == event_id]
        if attempts and (not until_success or attempts[-1]["success"]):
            return attempts
        assert time.monotonic() < deadline, attempts
        await asyncio.sleep(0.1)


class TestStorageFailure:
    async def test_a_database_failure_answers_503_and_the_retry_lands_the_event(
        self, scratch: Scratch, patient_emulator_url: str, backend: str
    ) -> None:
        async with (
            billing_loop(scratch, patient_emulator_url) as loop,
            emulator_account(loop) as account,
        ):
            before = await account.event_ids()
            subscription_id = await active_subscription(loop, account, "ida")
            await wait_until_applied(
                loop, await account.event_ids() - before, within=APPLIED_WITHIN
            )
            async with storing_fails(scratch, backend):
                loop.stripe.v1.subscriptions.update(subscription_id, {"cancel_at_period_end": True})
                event = (await updated_events(account, subscription_id))[0]
                await delivery_attempts(account, event["id"], until_success=False)
            rows = await wait_processed(loop, {event["id"]})
            attempts = await delivery_attempts(account, event["id"], until_success=True)
            answer = await loop.entitlement(loop.token("ida"))

        assert [(a["attempt"], a["status_code"]) for a in attempts] == [(1, 503), (2, 200)]
        row = rows[event["id"]]
        assert (row.status, row.attempts) == (InboxStatus.PROCESSED, 1)
        assert answer["entitlement"]["cancelAtPeriodEnd"] is True
        assert answer["entitlement"]["lastEventId"] == event["id"]
        assert active(answer)
