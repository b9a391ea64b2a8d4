"""Webhook delivery for the emulator: signed exactly as Stripe signs, at least once, with retries.

`WebhookDispatcher.publish` snapshots the event bytes and returns at once. A scheduler task releases
published events (after the account's delay and shuffle faults) to one lane per endpoint; each lane
posts its deliveries one at a time in order, so without faults an endpoint sees events in publish
order. A failed attempt (non-2xx, 3xx included, timeout, connection error) is retried after the
next step of `retry_schedule` while the lane carries on; after the last step the delivery is given
up. `on_result` reports the final outcome once per event and endpoint.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import hmac
import itertools
import logging
import random
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from hashlib import sha256
from typing import Any

import httpx
import orjson

from billwarden_emulator.faults import AccountFaults

__all__ = [
    "DEFAULT_RETRY_SCHEDULE",
    "USER_AGENT",
    "EndpointTarget",
    "WebhookDispatcher",
    "sign_payload",
]

logger = logging.getLogger(__name__)

USER_AGENT = "Stripe/1.0 (+https://stripe.com/docs/webhooks)"
CONTENT_TYPE = "application/json; charset=utf-8"
DEFAULT_RETRY_SCHEDULE: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0, 8.0)

ResultCallback = Callable[[str, str, str, bool], None]


@dataclass(frozen=True)
class EndpointTarget:
    """A webhook endpoint as the dispatcher needs it, captured when the event is published."""

    id: str
    url: str
    secrets: tuple[str, ...]
    enabled_events: tuple[str, ...]  # "*" means every event type
    enabled: bool = True

    def wants(self, event_type: str) -> bool:
        return self.enabled and ("*" in self.enabled_events or event_type in self.enabled_events)


def sign_payload(payload: bytes, secrets: Sequence[str], timestamp: int) -> str:
    """The `Stripe-Signature` header value: `t=<timestamp>` then one `v1=` per secret."""
    if isinstance(secrets, str):
        raise TypeError("secrets must be a sequence of secrets, not one string")
    if not secrets:
        raise ValueError("at least one signing secret is required")
    signed = f"{timestamp}.".encode() + payload
    signatures = [
        hmac.new(secret.encode("utf-8"), signed, sha256).hexdigest() for secret in secrets
    ]
    return ",".join([f"t={timestamp}", *(f"v1={signature}" for signature in signatures)])


@dataclass
class _Outcome:
    """Shared by the copies of one delivery (duplicate fault) so the result is reported once."""

    pending: int
    succeeded: bool = False


@dataclass
class _Delivery:
    account_key: str
    generation: int
    event_id: str
    event_type: str
    body: bytes
    endpoint: EndpointTarget
    outcome: _Outcome
    duplicate: bool
    attempts: int = 0


@dataclass
class _Job:
    """One published event waiting to be fanned out to its endpoints."""

    account_key: str
    generation: int
    event_id: str
    event_type: str
    body: bytes
    endpoints: tuple[EndpointTarget, ...]
    duplicate: bool
    delay: float


@dataclass
class _ShuffleBatch:
    """Events published to one account within its shuffle window; released in shuffled order."""

    account_key: str
    generation: int
    rng: random.Random
    jobs: list[_Job] = field(default_factory=list)


_Scheduled = _Job | _ShuffleBatch | _Delivery
_LaneKey = tuple[str, str]


class WebhookDispatcher:
    """Delivers emulated events to webhook endpoints from one background scheduler task."""

    def __init__(
        self,
        *,
        retry_schedule: Sequence[float] = DEFAULT_RETRY_SCHEDULE,
        timeout: float = 5.0,
        on_result: ResultCallback | None = None,
        log_limit: int = 10_000,
    ) -> None:
        if any(delay < 0 for delay in retry_schedule):
            raise ValueError("retry_schedule delays must be >= 0")
        if timeout <= 0:
            raise ValueError("timeout must be > 0")
        self.retry_schedule: tuple[float, ...] = tuple(retry_schedule)
        self.timeout = timeout
        self._on_result = on_result
        self._log_limit = log_limit
        # Guards everything below against publish() called from a worker thread.
        self._lock = threading.RLock()
        self._heap: list[tuple[float, int, _Scheduled]] = []
        self._sequence = itertools.count()
        self._open_batches: dict[str, _ShuffleBatch] = {}
        self._lanes: dict[_LaneKey, deque[_Delivery]] = {}
        self._in_flight: Counter[str] = Counter()  # attempts under way, by account
        self._generations: dict[str, int] = {}
        self._logs: dict[str, deque[dict[str, Any]]] = {}
        # per account, never trimmed (the log is): attempts, successes, duplicates, given up
        self._counts: dict[str, Counter[str]] = {}
        self._failures: dict[str, Counter[str]] = {}  # failed attempts by status or error
        # Set while started.
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wakeup: asyncio.Event | None = None
        self._client: httpx.AsyncClient | None = None
        self._scheduler: asyncio.Task[None] | None = None
        self._workers: dict[_LaneKey, asyncio.Task[None]] = {}

    # Lifecycle

    async def start(self) -> None:
        """Start delivering, including anything published before."""
        if self._scheduler is not None:
            return
        self._loop = asyncio.get_running_loop()
        self._wakeup = asyncio.Event()
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(self.timeout),
            follow_redirects=False,  # a 3xx is a failed delivery, as on Stripe
            trust_env=False,
        )
        self._scheduler = asyncio.create_task(self._run_scheduler(), name="webhook-scheduler")
        with self._lock:
            for lane_key, lane in self._lanes.items():
                if lane:
                    self._ensure_worker(lane_key)
        self._wakeup.set()

    async def stop(self) -> None:
        """Stop delivering; undelivered events stay queued for a later start()."""
        scheduler, self._scheduler = self._scheduler, None
        if scheduler is None:
            return
        tasks = [scheduler, *self._workers.values()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._workers.clear()
        if self._client is not None:
            await self._client.aclose()
        self._client = None
        self._wakeup = None
        self._loop = None

    @property
    def running(self) -> bool:
        return self._scheduler is not None

    # Public operations

    def publish(
        self,
        account_key: str,
        event: dict[str, Any],
        endpoints: Sequence[EndpointTarget],
        faults: AccountFaults,
    ) -> None:
        """Queue `event` for every endpoint that wants it; never blocks."""
        event_type = str(event.get("type", ""))
        targets = tuple(endpoint for endpoint in endpoints if endpoint.wants(event_type))
        if not targets:
            return
        webhook_faults = faults.webhooks
        now = time.monotonic()
        with self._lock:
            job = _Job(
                account_key=account_key,
                generation=self._generations.get(account_key, 0),
                event_id=str(event.get("id", "")),
                event_type=event_type,
                body=orjson.dumps(event),  # snapshot: later changes to `event` are not sent
                endpoints=targets,
                duplicate=faults.duplicates_delivery(),
                delay=webhook_faults.delay,
            )
            if webhook_faults.shuffle_window > 0:
                batch = self._open_batches.get(account_key)
                if batch is None:
                    batch = _ShuffleBatch(account_key, job.generation, faults.shuffle_random)
                    self._open_batches[account_key] = batch
                    self._schedule(now + webhook_faults.shuffle_window, batch)
                batch.jobs.append(job)
            else:
                self._schedule(now + job.delay, job)
        self._notify()

    def delivery_log(self, account_key: str) -> list[dict[str, Any]]:
        """Every delivery attempt for the account, oldest first."""
        with self._lock:
            return [dict(entry) for entry in self._logs.get(account_key, ())]

    def delivery_summary(self, account_key: str) -> dict[str, Any]:
        """The account's deliveries counted (the log keeps only the latest `log_limit`):
        `attempts`, `succeeded` and `failed` attempts (`failed_by_cause`: by the endpoint's
        status code, or the error when there was no answer, e.g. `ConnectError`), `duplicates`
        (extra copies queued by the duplicate faults), `given_up` deliveries, and `pending`
        ones not finished yet."""
        with self._lock:
            counts = self._counts.get(account_key, Counter())
            summary: dict[str, Any] = {
                name: counts[name]
                for name in ("attempts", "succeeded", "failed", "duplicates", "given_up")
            }
            failures = self._failures.get(account_key, Counter())
            summary["failed_by_cause"] = dict(failures.most_common())
        summary["pending"] = self.pending(account_key)
        return summary

    def reset(self, account_key: str) -> None:
        """Forget the account's log and drop its pending deliveries (without reporting them)."""
        with self._lock:
            self._generations[account_key] = self._generations.get(account_key, 0) + 1
            self._logs.pop(account_key, None)
            self._counts.pop(account_key, None)
            self._failures.pop(account_key, None)
            self._open_batches.pop(account_key, None)
            for lane_key in [key for key in self._lanes if key[0] == account_key]:
                self._lanes[lane_key].clear()

    def pending(self, account_key: str | None = None) -> int:
        """Deliveries not yet finally delivered or given up (all accounts when None)."""
        with self._lock:
            if account_key is None:
                count = sum(self._in_flight.values())
            else:
                count = self._in_flight[account_key]
            for _, _, item in self._heap:
                if account_key is not None and item.account_key != account_key:
                    continue
                if self._stale(item.account_key, item.generation):
                    continue
                count += len(item.jobs) if isinstance(item, _ShuffleBatch) else 1
            for (lane_account, _), lane in self._lanes.items():
                if account_key is None or lane_account == account_key:
                    count += len(lane)
            return count

    async def wait_idle(self) -> None:
        """Wait until nothing is queued, scheduled or in flight (bound it with asyncio.timeout)."""
        while self.pending() > 0:  # noqa: ASYNC110 - idleness changes in many places; poll
            await asyncio.sleep(0.01)

    # Scheduling

    def _schedule(self, due: float, item: _Scheduled) -> None:
        heapq.heappush(self._heap, (due, next(self._sequence), item))

    def _notify(self) -> None:
        loop, wakeup = self._loop, self._wakeup
        if loop is None or wakeup is None:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            wakeup.set()
        else:
            with contextlib.suppress(RuntimeError):  # the loop closed under us
                loop.call_soon_threadsafe(wakeup.set)

    async def _run_scheduler(self) -> None:
        assert self._wakeup is not None
        wakeup = self._wakeup
        while True:
            wakeup.clear()
            wait = self._release_due()
            if wait is None:
                await wakeup.wait()
                continue
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await wakeup.wait()

    def _release_due(self) -> float | None:
        """Hand every due item on; return the seconds until the next one (None: nothing left)."""
        with self._lock:
            now = time.monotonic()
            while self._heap and self._heap[0][0] <= now:
                _, _, item = heapq.heappop(self._heap)
                try:
                    if isinstance(item, _ShuffleBatch):
                        self._close_batch(item, now)
                    elif isinstance(item, _Job):
                        self._fan_out(item)
                    else:
                        self._enqueue(item)
                except Exception:  # one bad item must not stop every later delivery
                    logger.exception("webhook scheduler dropped %r", type(item).__name__)
            return max(self._heap[0][0] - now, 0.0) if self._heap else None

    def _close_batch(self, batch: _ShuffleBatch, now: float) -> None:
        if self._open_batches.get(batch.account_key) is batch:
            del self._open_batches[batch.account_key]
        if self._stale(batch.account_key, batch.generation):
            return
        jobs = list(batch.jobs)
        batch.rng.shuffle(jobs)
        for job in jobs:
            self._schedule(now + job.delay, job)

    def _fan_out(self, job: _Job) -> None:
        if self._stale(job.account_key, job.generation):
            return
        copies = 2 if job.duplicate else 1
        if copies > 1:
            counts = self._counts.setdefault(job.account_key, Counter())
            counts["duplicates"] += (copies - 1) * len(job.endpoints)
        for endpoint in job.endpoints:
            outcome = _Outcome(pending=copies)
            for copy in range(copies):
                self._enqueue(
                    _Delivery(
                        account_key=job.account_key,
                        generation=job.generation,
                        event_id=job.event_id,
                        event_type=job.event_type,
                        body=job.body,
                        endpoint=endpoint,
                        outcome=outcome,
                        duplicate=copy > 0,
                    )
                )

    def _enqueue(self, delivery: _Delivery) -> None:
        if self._stale(delivery.account_key, delivery.generation):
            return
        lane_key = (delivery.account_key, delivery.endpoint.id)
        self._lanes.setdefault(lane_key, deque()).append(delivery)
        self._ensure_worker(lane_key)

    def _ensure_worker(self, lane_key: _LaneKey) -> None:
        if self._scheduler is None or lane_key in self._workers:
            return
        self._workers[lane_key] = asyncio.create_task(
            self._drain_lane(lane_key), name=f"webhook-lane-{lane_key[1]}"
        )

    def _stale(self, account_key: str, generation: int) -> bool:
        return self._generations.get(account_key, 0) != generation

    # Delivery

    async def _drain_lane(self, lane_key: _LaneKey) -> None:
        try:
            while True:
                with self._lock:
                    lane = self._lanes.get(lane_key)
                    if not lane:
                        self._lanes.pop(lane_key, None)
                        return
                    delivery = lane.popleft()
                    self._in_flight[delivery.account_key] += 1
                try:
                    await self._attempt(delivery)
                except asyncio.CancelledError:
                    # Stopped mid-attempt: keep it for the next start (at least once).
                    with self._lock:
                        if not self._stale(delivery.account_key, delivery.generation):
                            self._lanes.setdefault(lane_key, deque()).appendleft(delivery)
                    raise
                finally:
                    with self._lock:
                        self._in_flight[delivery.account_key] -= 1
        finally:
            if self._workers.get(lane_key) is asyncio.current_task():
                del self._workers[lane_key]

    async def _attempt(self, delivery: _Delivery) -> None:
        assert self._client is not None
        endpoint = delivery.endpoint
        status_code: int | None = None
        error: str | None = None
        started_at = time.time()
        started = time.perf_counter()
        try:
            headers = {
                "Content-Type": CONTENT_TYPE,
                "User-Agent": USER_AGENT,
                "Stripe-Signature": sign_payload(delivery.body, endpoint.secrets, int(started_at)),
            }
            response = await self._client.post(endpoint.url, content=delivery.body, headers=headers)
            status_code = response.status_code
        except httpx.TimeoutException:
            error = f"timed out after {self.timeout:g}s"
        except Exception as exc:  # a bad URL or endpoint is a failed attempt, never a crash
            error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        duration_ms = (time.perf_counter() - started) * 1000
        success = status_code is not None and 200 <= status_code < 300

        with self._lock:
            if self._stale(delivery.account_key, delivery.generation):
                return
            delivery.attempts += 1
            gives_up = not success and delivery.attempts > len(self.retry_schedule)
            counts = self._counts.setdefault(delivery.account_key, Counter())
            counts["attempts"] += 1
            counts["succeeded" if success else "failed"] += 1
            counts["given_up"] += gives_up
            if not success:
                cause = str(status_code) if status_code is not None else (error or "?")
                failures = self._failures.setdefault(delivery.account_key, Counter())
                failures[cause.split(":")[0]] += 1
            log = self._logs.get(delivery.account_key)
            if log is None:
                log = self._logs[delivery.account_key] = deque(maxlen=self._log_limit)
            log.append(
                {
                    "id": f"whattempt_{uuid.uuid4().hex[:24]}",
                    "event_id": delivery.event_id,
                    "event_type": delivery.event_type,
                    "endpoint_id": endpoint.id,
                    "url": endpoint.url,
                    "attempt": delivery.attempts,
                    "status_code": status_code,
                    "error": error,
                    "success": success,
                    "duplicate": delivery.duplicate,
                    "will_retry": not success and not gives_up,
                    "at": started_at,
                    "duration_ms": round(duration_ms, 3),
                }
            )
            if not success and not gives_up:
                retry_in = self.retry_schedule[delivery.attempts - 1]
                self._schedule(time.monotonic() + retry_in, delivery)
                self._notify()
                return
            outcome = delivery.outcome
            outcome.pending -= 1
            outcome.succeeded = outcome.succeeded or success
            if outcome.pending > 0:
                return
        self._report(delivery, outcome.succeeded)

    def _report(self, delivery: _Delivery, success: bool) -> None:
        if self._on_result is None:
            return
        try:
            self._on_result(delivery.account_key, delivery.event_id, delivery.endpoint.id, success)
        except Exception:
            logger.exception("webhook on_result callback failed for %s", delivery.event_id)
