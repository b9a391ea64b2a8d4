"""A served billwarden fed by the emulator's real webhook stream: `billwarden worker` processes on
the same database, the emulator account's events and delivery log, the inbox, and waiting until
every emitted event has been applied."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import httpx
import orjson
from sqlalchemy import select

from billwarden.webhooks.models import InboxStatus, WebhookEvent
from tests.checkout.loop import Loop
from tests.conftest import TEST_SECRET_KEY
from tests.webhooks.factories import signed

WORKER_POLL_SECONDS = 0.2
FINISHED = frozenset({InboxStatus.PROCESSED, InboxStatus.IGNORED})
APPLIED_WITHIN = 20.0  # seconds for a handful of events


# --- `billwarden worker` processes ----------------------------------------------------------


def worker_env(database_url: str, emulator_url: str, **settings: str) -> dict[str, str]:
    """The environment of a `billwarden worker` on `database_url` calling the emulator;
    `settings` by name, e.g. `worker_lease_seconds="2"`."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("BILLWARDEN_")}
    env.update(
        BILLWARDEN_DATABASE_URL=database_url,
        BILLWARDEN_SECRET_KEY=TEST_SECRET_KEY,
        BILLWARDEN_STRIPE_API_BASE=emulator_url,
        BILLWARDEN_WORKER_POLL_SECONDS=str(WORKER_POLL_SECONDS),
    )
    env.update({f"BILLWARDEN_{name.upper()}": value for name, value in settings.items()})
    return env


@dataclass
class WorkerProcess:
    """One `billwarden worker` process; its output goes to a file (a pipe nobody reads would
    fill up and stall it)."""

    process: subprocess.Popen[str]
    log_path: Path
    log: IO[str]

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def output(self) -> str:
        if not self.log.closed:
            self.log.flush()
        return self.log_path.read_text(errors="replace")[-4000:]

    def stop(self, timeout: float = 20.0) -> int | None:
        """SIGTERM and wait; SIGKILL when it does not stop in time. Its exit code."""
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        if not self.log.closed:
            self.log.close()
        return self.process.returncode


def start_worker(env: dict[str, str], directory: Path, name: str = "worker") -> WorkerProcess:
    log_path = directory / f"{name}.log"
    log = log_path.open("a")
    process = subprocess.Popen(
        [sys.executable, "-m", "billwarden", "worker"],
        env=env,
        cwd=directory,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    return WorkerProcess(process, log_path, log)


@contextmanager
def running_workers(
    count: int, env: dict[str, str], directory: Path
) -> Iterator[list[WorkerProcess]]:
    """`count` worker processes, stopped when the block ends whatever happened."""
    workers: list[WorkerProcess] = []
    try:
        for number in range(count):
            workers.append(start_worker(env, directory, f"worker{number}"))
        yield workers
    finally:
        for worker in workers:
            worker.stop()


# --- the emulator account -------------------------------------------------------------------


class EmulatorAccount:
    """The loop's Stripe account in the emulator, over one kept-alive connection: raw JSON
    reads, the `/_emulator/` helpers, and what it emitted and delivered."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def get(self, path: str, **params: Any) -> dict[str, Any]:
        answer = await self.http.get(path, params=params)
        assert answer.status_code == 200, answer.text
        result: dict[str, Any] = answer.json()
        return result

    async def post(self, path: str, **body: Any) -> dict[str, Any]:
        answer = await self.http.post(path, json=body)
        assert answer.status_code == 200, answer.text
        result: dict[str, Any] = answer.json()
        return result

    async def pay(self, session_id: str) -> dict[str, Any]:
        """Complete the checkout session, paid (what the customer does on the hosted page)."""
        return await self.post(f"/_emulator/checkout/sessions/{session_id}/complete")

    async def events(self, **filters: Any) -> list[dict[str, Any]]:
        """Every event emitted (`GET /v1/events`, all pages), newest first, raw."""
        events: list[dict[str, Any]] = []
        params: dict[str, Any] = {"limit": 100, **filters}
        while True:
            page = await self.get("/v1/events", **params)
            events.extend(page["data"])
            if not page["has_more"]:
                return events
            params["starting_after"] = page["data"][-1]["id"]

    async def event_ids(self) -> set[str]:
        return {event["id"] for event in await self.events()}

    async def event(self, event_id: str) -> dict[str, Any]:
        return await self.get(f"/v1/events/{event_id}")

    async def deliveries(self) -> list[dict[str, Any]]:
        """The webhook delivery attempts, oldest first."""
        return list((await self.get("/_emulator/deliveries"))["data"])


@asynccontextmanager
async def emulator_account(loop: Loop) -> AsyncIterator[EmulatorAccount]:
    headers = {"Authorization": f"Bearer {loop.stripe_key}"}
    async with httpx.AsyncClient(base_url=loop.emulator_url, headers=headers, timeout=60) as http:
        yield EmulatorAccount(http)


# --- the loop's subscriptions and their events ------------------------------------------------


async def active_subscription(loop: Loop, account: EmulatorAccount, subject: str) -> str:
    """`subject`'s paid premium_monthly subscription, once billwarden grants it."""
    token = loop.token(subject, email=f"{subject}@example.test")
    await account.pay(await loop.checkout(token, purchaseKey="premium_monthly"))
    answer = await loop.eventually(
        token, lambda a: bool(a["hasPremiumAccess"]), within=APPLIED_WITHIN
    )
    subscription_id: str = answer["entitlement"]["stripeSubscriptionId"]
    return subscription_id


async def updated_events(account: EmulatorAccount, subscription_id: str) -> list[dict[str, Any]]:
    """The subscription's `customer.subscription.updated` events, newest first."""
    events = await account.events(type="customer.subscription.updated")
    return [event for event in events if event["data"]["object"]["id"] == subscription_id]


# --- webhook endpoints ----------------------------------------------------------------------


async def split_deliveries(loop: Loop, lanes: Sequence[Sequence[str]]) -> None:
    """Give the account one webhook endpoint per lane of event types, all at billwarden's URL,
    and billwarden every endpoint's signing secret: the emulator delivers to each endpoint in
    turn, so lanes deliver side by side (as an account with several endpoints does)."""
    (endpoint,) = loop.stripe.v1.webhook_endpoints.list().data
    loop.stripe.v1.webhook_endpoints.update(endpoint.id, {"enabled_events": list(lanes[0])})
    secrets = [loop.webhook_secret]
    for lane in lanes[1:]:
        created = loop.stripe.v1.webhook_endpoints.create(
            {"url": endpoint.url, "enabled_events": list(lane)}
        )
        assert created.secret is not None
        secrets.append(created.secret)
    answer = await loop.http.put(
        f"/api/v1/payments/stripe/projects/{loop.project.id}/config",
        params={"test_mode": "true"},
        json={"webhookSecrets": secrets},
        headers=loop.owner,
    )
    assert answer.status_code == 200, answer.text


async def disable_deliveries(loop: Loop) -> None:
    """Disable the account's webhook endpoints: what is emitted from now on reaches billwarden
    only when the test posts it."""
    for endpoint in loop.stripe.v1.webhook_endpoints.list().data:
        loop.stripe.v1.webhook_endpoints.update(endpoint.id, {"disabled": True})


# --- billwarden's inbox ---------------------------------------------------------------------


def webhook_url(loop: Loop) -> str:
    return f"{loop.url}/api/v1/payments/stripe/webhooks/{loop.project.id}/test"


async def post_event(loop: Loop, http: httpx.AsyncClient, event: dict[str, Any]) -> httpx.Response:
    """Deliver `event` to billwarden as Stripe does, signed with the loop's webhook secret."""
    body = orjson.dumps(event)
    headers = signed(body, loop.webhook_secret)
    return await http.post(webhook_url(loop), content=body, headers=headers)


async def inbox(loop: Loop) -> dict[str, WebhookEvent]:
    """The loop's project's stored events, by Stripe event id."""
    async with loop.scratch.session() as session:
        rows = (
            await session.scalars(
                select(WebhookEvent).where(WebhookEvent.project_id == loop.project.id)
            )
        ).all()
    return {row.event_id: row for row in rows}


async def inbox_statuses(loop: Loop) -> dict[str, InboxStatus]:
    """The statuses of the loop's project's stored events, by Stripe event id."""
    async with loop.scratch.session() as session:
        rows = (
            await session.execute(
                select(WebhookEvent.event_id, WebhookEvent.status).where(
                    WebhookEvent.project_id == loop.project.id
                )
            )
        ).all()
    return {event_id: status for event_id, status in rows}


@dataclass
class Quiescence:
    """The inbox once every awaited event was stored and applied."""

    statuses: dict[str, InboxStatus]
    waited: float

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for status in self.statuses.values():
            counts[status.value] = counts.get(status.value, 0) + 1
        return counts


async def wait_until_applied(
    loop: Loop,
    event_ids: set[str],
    *,
    within: float,
    workers: Sequence[WorkerProcess] = (),
) -> Quiescence:
    """Wait until every event of `event_ids` is in the inbox and none is pending or failed
    (each processed or ignored), the workers staying alive meanwhile."""
    started = time.monotonic()
    while True:
        statuses = await inbox_statuses(loop)
        missing = event_ids - statuses.keys()
        unfinished = sorted(e for e, status in statuses.items() if status not in FINISHED)
        if not missing and not unfinished:
            return Quiescence(statuses, time.monotonic() - started)
        for worker in workers:
            assert worker.alive(), f"a worker died:\n{worker.output()}"
        waited = time.monotonic() - started
        if waited >= within:
            rows = await inbox(loop)
            stuck = [
                (rows[e].event_type, rows[e].status.value, rows[e].attempts, rows[e].last_error)
                for e in unfinished[:5]
            ]
            raise AssertionError(
                f"after {waited:.0f} s: {len(missing)} events not stored (e.g. "
                f"{sorted(missing)[:5]}), {len(unfinished)} not applied (e.g. {stuck})"
            )
        await asyncio.sleep(0.5)


async def wait_stored(loop: Loop, event_ids: set[str]) -> dict[str, WebhookEvent]:
    """The inbox rows of `event_ids` once every one is stored."""
    deadline = time.monotonic() + APPLIED_WITHIN
    while True:
        rows = await inbox(loop)
        if event_ids <= rows.keys():
            return {event_id: rows[event_id] for event_id in event_ids}
        assert time.monotonic() < deadline, f"not stored: {event_ids - rows.keys()}"
        await asyncio.sleep(0.05)


async def wait_processed(loop: Loop, event_ids: set[str]) -> dict[str, WebhookEvent]:
    """The inbox rows of `event_ids` once each is stored and processed."""
    deadline = time.monotonic() + APPLIED_WITHIN
    while True:
        rows = await inbox(loop)
        if all(e in rows and rows[e].status is InboxStatus.PROCESSED for e in event_ids):
            return {e: rows[e] for e in event_ids}
        assert time.monotonic() < deadline, {
            e: (rows[e].status.value, rows[e].attempts, rows[e].last_error) if e in rows else None
            for e in event_ids
        }
        await asyncio.sleep(0.05)
