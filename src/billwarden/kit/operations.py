"""What an operator watches besides requests: the workers' queues (due work and how long it has
waited, what gave up) and the last reconciliation of each project, read from the database when
`/metrics` or `/readyz` asks, so every `serve` process reports the same figures. The read is
kept a few seconds (`Operations`), so a busy scraper or load balancer cannot load the database.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from billwarden.config import RECONCILE_REASONS
from billwarden.db.base import utcnow
from billwarden.db.unit_of_work import unit_of_work

logger = logging.getLogger("billwarden")
CACHE_SECONDS = 5.0
MODES = ("test", "live")


@dataclass(frozen=True)
class QueueFigures:
    """One worker's queue: work due now (pending, its time come), when the longest-waiting of it
    became due, and the work given up on (`failed`, by mode when the queue knows it cheaply)."""

    due: int
    oldest_due_at: datetime | None
    failed: dict[str, int]

    def lag_seconds(self, now: datetime) -> float:
        if self.oldest_due_at is None:
            return 0.0
        return max(0.0, (now - self.oldest_due_at).total_seconds())


@dataclass(frozen=True)
class ReconcileFigures:
    """The most recent finished run of every project, added up per mode."""

    mismatched: dict[str, int] = field(default_factory=dict)
    reasons: dict[tuple[str, str], int] = field(default_factory=dict)  # (mode, reason) -> records
    last_finished_at: dict[str, datetime] = field(default_factory=dict)


@dataclass(frozen=True)
class Figures:
    read_at: datetime
    queues: dict[str, QueueFigures]  # inbox | notifications | meter_forwards
    reconcile: ReconcileFigures

    def lags(self) -> dict[str, float]:
        return {name: queue.lag_seconds(self.read_at) for name, queue in self.queues.items()}


ReadFigures = Callable[[AsyncSession, datetime], Awaitable[Figures]]


class Operations:
    """The figures of one app, read at most every `cache_seconds`; concurrent askers share one
    read."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        read: ReadFigures,
        *,
        cache_seconds: float = CACHE_SECONDS,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.read = read
        self.cache_seconds = cache_seconds
        self._figures: Figures | None = None
        self._read_monotonic = 0.0
        self._lock = asyncio.Lock()

    async def figures(self) -> Figures:
        """The figures, read again once the kept ones are older than `cache_seconds`; raises
        when the database cannot be read."""
        if self._fresh():
            assert self._figures is not None
            return self._figures
        async with self._lock:
            if not self._fresh():  # another asker may have read them while we waited
                async with unit_of_work(self.sessionmaker, write=False) as session:
                    self._figures = await self.read(session, utcnow())
                self._read_monotonic = time.monotonic()
            assert self._figures is not None
            return self._figures

    def _fresh(self) -> bool:
        return (
            self._figures is not None
            and time.monotonic() - self._read_monotonic < self.cache_seconds
        )

    async def exposition(self) -> bytes:
        """The figures in Prometheus' text format; `billwarden_operations_up 0` alone when the
        database cannot be read (the request metrics are still served)."""
        try:
            figures: Figures | None = await self.figures()
        except Exception:
            logger.exception("could not read the operational figures for /metrics")
            figures = None
        registry = CollectorRegistry(auto_describe=False)
        registry.register(_FiguresCollector(figures))
        return generate_latest(registry)


# (the metrics' prefix, the queue, what its due and failed figures count, what it holds)
_QUEUES = (
    ("inbox", "inbox", "events", "Stripe events in the webhook inbox"),
    (
        "notification",
        "notifications",
        "deliveries",
        "notification deliveries to the tenant apps' endpoints",
    ),
    ("meter_forward", "meter_forwards", "events", "usage events to forward to Stripe meters"),
)


class _FiguresCollector(Collector):
    def __init__(self, figures: Figures | None) -> None:
        self.figures = figures

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "billwarden_operations_up",
            "1 when the last read of the operational figures (queues, reconciliation) from the "
            "database succeeded, 0 when it failed and the other billwarden_* figures are absent.",
            value=0 if self.figures is None else 1,
        )
        yield up
        if self.figures is None:
            return
        yield from self._queues(self.figures)
        yield from self._reconcile(self.figures.reconcile)

    def _queues(self, figures: Figures) -> Iterator[Metric]:
        for prefix, name, unit, what in _QUEUES:
            queue = figures.queues[name]
            yield GaugeMetricFamily(
                f"billwarden_{prefix}_lag_seconds",
                f"How long the longest-waiting of the {what} that are due has waited since it "
                "became due (0 when none is due).",
                value=queue.lag_seconds(figures.read_at),
            )
            yield GaugeMetricFamily(
                f"billwarden_{prefix}_due_{unit}",
                f"{what.capitalize()} that are due now (pending, first try or a retry whose "
                "time has come).",
                value=queue.due,
            )
            failed = GaugeMetricFamily(
                f"billwarden_{prefix}_failed_{unit}",
                f"{what.capitalize()} given up on after their last attempt (status failed).",
                labels=["mode"] if prefix != "notification" else [],
            )
            if prefix == "notification":
                failed.add_metric([], sum(queue.failed.values()))
            else:
                for mode in MODES:
                    failed.add_metric([mode], queue.failed.get(mode, 0))
            yield failed

    def _reconcile(self, reconcile: ReconcileFigures) -> Iterator[Metric]:
        mismatched = GaugeMetricFamily(
            "billwarden_reconcile_mismatched_records",
            "Records out of sync in the most recent finished reconciliation run of each "
            "project, added up per mode.",
            labels=["mode"],
        )
        for mode in MODES:
            mismatched.add_metric([mode], reconcile.mismatched.get(mode, 0))
        yield mismatched
        reasons = GaugeMetricFamily(
            "billwarden_reconcile_mismatch_reasons",
            "Records of the most recent finished run of each project with each reason, added up "
            "per mode (a record may have several reasons).",
            labels=["mode", "reason"],
        )
        for mode in MODES:
            for reason in RECONCILE_REASONS:  # the known reasons only: a bounded set of series
                reasons.add_metric([mode, reason], reconcile.reasons.get((mode, reason), 0))
        yield reasons
        finished = GaugeMetricFamily(
            "billwarden_reconcile_last_finished_timestamp_seconds",
            "When the most recently finished reconciliation run of any project finished (Unix "
            "time), per mode; absent until one has.",
            labels=["mode"],
        )
        for mode, moment in sorted(reconcile.last_finished_at.items()):
            finished.add_metric([mode], moment.timestamp())
        yield finished
