"""Usage: a batch of events checked one by one, each id counted once, the counters of its UTC day
and month added to in the same transaction; and the figures a subject's quotas read.

A bad event is refused alone (its index, code and message in the answer); the others are kept. An
event already stored (same project, mode and id), or twice in one batch, is a duplicate: counted
once. Counters are upserts (`value = value + excluded.value`), so concurrent batches from several
processes add up exactly.
"""

from __future__ import annotations

import math
import os
import re
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import MAXYEAR, UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from billwarden.catalog.service import CatalogService
from billwarden.core.modes import Mode
from billwarden.core.subjects import SUBJECT_ID_PATTERN, Subject, SubjectType
from billwarden.db.base import utcnow
from billwarden.db.locks import lock_name
from billwarden.entitlements.service import EntitlementService, EntitlementView
from billwarden.usage.exceptions import UnknownMetric
from billwarden.usage.repository import ForwardRepository, UsageRepository

MAX_BATCH = 1000
MAX_AGE = timedelta(days=35)
MAX_AHEAD = timedelta(minutes=5)
MAX_PROPERTIES_KEYS = 50
_SUBJECT_ID = re.compile(SUBJECT_ID_PATTERN)
_EVENT_ID = re.compile(r"[^\x00-\x1f\x7f]{1,255}")
DAY = "day"
MONTH = "month"


@dataclass(frozen=True)
class EventError:
    index: int
    code: str
    message: str


@dataclass
class Ingested:
    accepted: int = 0
    duplicates: int = 0
    errors: list[EventError] = field(default_factory=list)


@dataclass(slots=True)
class _Event:
    event_id: str
    subject: Subject
    metric: str
    value: float
    timestamp: datetime
    properties: dict[str, Any] | None


class _Refused(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _timestamp(raw: object, now: datetime) -> datetime:
    if raw is None:
        return now
    if isinstance(raw, str) and len(raw) <= 64:
        try:
            moment = datetime.fromisoformat(raw)  # "Z" included (Python 3.11)
        except ValueError as exc:
            raise _Refused(
                "VALIDATION_ERROR", "timestamp is an ISO 8601 time or Unix seconds."
            ) from exc
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        elif moment.utcoffset():
            moment = moment.astimezone(UTC)
    elif isinstance(raw, int | float) and not isinstance(raw, bool):
        if not math.isfinite(raw) or not 0 <= raw <= 253402300799:
            raise _Refused("VALIDATION_ERROR", "timestamp is out of range.")
        moment = datetime.fromtimestamp(raw, UTC)
    else:
        raise _Refused("VALIDATION_ERROR", "timestamp is an ISO 8601 time or Unix seconds.")
    if moment < now - MAX_AGE:
        raise _Refused("TIMESTAMP_OUT_OF_RANGE", "An event may be at most 35 days old.")
    if moment > now + MAX_AHEAD:
        raise _Refused("TIMESTAMP_OUT_OF_RANGE", "An event may be at most 5 minutes ahead.")
    return moment


_FIELDS = frozenset(
    {"id", "subjectType", "subjectId", "metric", "value", "timestamp", "properties"}
)
_SUBJECT_TYPES = {kind.value: kind for kind in SubjectType}


def _event(
    raw: object,
    known: set[str],
    own: Subject | None,
    now: datetime,
    subjects: dict[tuple[str, str], Subject],
) -> _Event:
    """One event of a batch, checked; `own`: the end user's subject, the only one it may name;
    `subjects`: the batch's subjects so far (one object each)."""
    if not isinstance(raw, dict):
        raise _Refused("VALIDATION_ERROR", "An event is a JSON object.")
    if not raw.keys() <= _FIELDS:
        unknown = sorted(set(raw) - _FIELDS)
        raise _Refused("VALIDATION_ERROR", f"Unknown field(s): {', '.join(unknown)}.")
    event_id = raw.get("id")
    if not isinstance(event_id, str) or not _EVENT_ID.fullmatch(event_id):
        raise _Refused("VALIDATION_ERROR", "id is required: 1 to 255 printable characters.")
    subject_type = raw.get("subjectType", "user")
    kind = _SUBJECT_TYPES.get(subject_type) if isinstance(subject_type, str) else None
    if kind is None:
        raise _Refused("VALIDATION_ERROR", "subjectType is user or organization.")
    subject_id = raw.get("subjectId")
    if own is not None:
        if subject_id is not None and (subject_type, subject_id) != own.key:
            raise _Refused("SUBJECT_MISMATCH", "An end-user token records for its own subject.")
        subject = own
    else:
        if not isinstance(subject_id, str):
            raise _Refused("VALIDATION_ERROR", "subjectId is required: 1 to 255 characters.")
        found = subjects.get((subject_type, subject_id))
        if found is None:
            if not _SUBJECT_ID.fullmatch(subject_id):
                raise _Refused("VALIDATION_ERROR", "subjectId is required: 1 to 255 characters.")
            found = subjects[(subject_type, subject_id)] = Subject(kind, subject_id)
        subject = found
    metric = raw.get("metric")
    if metric not in known:
        if not isinstance(metric, str) or not metric:
            raise _Refused("VALIDATION_ERROR", "metric is required.")
        raise _Refused(
            "UNKNOWN_METRIC",
            f"Unknown metric {metric[:64]!r}: the catalog has no [metrics.{metric[:64]}] "
            "table and no quota on it.",
        )
    value = raw.get("value", 1)
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not 0 <= value <= 1e15  # NaN fails this too
    ):
        raise _Refused("VALIDATION_ERROR", "value is a number from 0 to 10^15 (default 1).")
    properties = raw.get("properties")
    if properties is not None and (
        not isinstance(properties, dict) or len(properties) > MAX_PROPERTIES_KEYS
    ):
        raise _Refused("VALIDATION_ERROR", "properties is an object of at most 50 keys.")
    return _Event(
        event_id, subject, metric, float(value), _timestamp(raw.get("timestamp"), now), properties
    )


def month_of(day: date) -> date:
    return day.replace(day=1)


class UsageService:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.usage = UsageRepository(session)

    async def known_metrics(self, project_id: uuid.UUID) -> list[str]:
        return (await self._metrics(project_id))[0]

    async def _metrics(self, project_id: uuid.UUID) -> tuple[list[str], dict[str, str]]:
        """The metrics the catalog knows, and those whose events go to a Stripe meter (with the
        meter's event name): one read of the catalog."""
        loaded = await CatalogService(self.session).current(project_id)
        if loaded is None:
            return [], {}
        meters = {
            name: metric.stripe_meter_event
            for name, metric in loaded.document.metrics.items()
            if metric.stripe_meter_event is not None
        }
        return loaded.document.known_metrics, meters

    async def ingest(
        self,
        project_id: uuid.UUID,
        mode: Mode,
        batch: list[Any],
        *,
        own: Subject | None,
    ) -> Ingested:
        """Check each event, store the new ones and add them to their day's and month's
        counters, in the caller's transaction."""
        now = utcnow()
        names, meters = await self._metrics(project_id)
        known = set(names)
        result = Ingested()
        events: dict[str, _Event] = {}
        subjects: dict[tuple[str, str], Subject] = {}
        for index, raw in enumerate(batch):
            try:
                event = _event(raw, known, own, now, subjects)
            except _Refused as refused:
                result.errors.append(EventError(index, refused.code, refused.message))
                continue
            if event.event_id in events:
                result.duplicates += 1  # twice in one batch: once
                continue
            events[event.event_id] = event
        stored = await self._store(project_id, mode, list(events.values()), now, meters)
        result.accepted = len(stored)
        result.duplicates += len(events) - len(stored)
        return result

    async def _store(
        self,
        project_id: uuid.UUID,
        mode: Mode,
        events: list[_Event],
        now: datetime,
        meters: dict[str, str],
    ) -> set[str]:
        """Store the events not stored yet and add them to their counters; their ids."""
        # the rows' ids from one read of the system's randomness, not one call per row
        randomness = os.urandom(16 * len(events))
        stored = await self.usage.insert_new(
            [
                {
                    "id": uuid.UUID(bytes=randomness[16 * index : 16 * index + 16], version=4),
                    "project_id": project_id,
                    "mode": mode,
                    "event_id": event.event_id,
                    "subject_type": event.subject.type.value,
                    "subject_id": event.subject.id,
                    "metric": event.metric,
                    "value": event.value,
                    "timestamp": event.timestamp,
                    "properties": event.properties,
                    "received_at": now,
                }
                for index, event in enumerate(events)
            ]
        )
        by_id = {event.event_id: event for event in events}
        await ForwardRepository(self.session).add(
            [
                {
                    "id": uuid.uuid4(),
                    "project_id": project_id,
                    "mode": mode,
                    "event_id": event.event_id,
                    "event_name": meters[event.metric],
                    "subject_type": event.subject.type.value,
                    "subject_id": event.subject.id,
                    "value": event.value,
                    "timestamp": event.timestamp,
                    "status": "pending",
                    "attempts": 0,
                    "next_attempt_at": now,
                }
                for event in (by_id[event_id] for event_id in stored)
                if event.metric in meters
            ]
        )
        sums: dict[tuple[str, str, str, str, date], float] = defaultdict(float)
        for event_id in stored:
            event = by_id[event_id]
            day = event.timestamp.date()
            who = (event.subject.type.value, event.subject.id, event.metric)
            sums[(*who, DAY, day)] += event.value
            sums[(*who, MONTH, month_of(day))] += event.value
        await self.usage.add_to_counters(
            [
                {
                    "project_id": project_id,
                    "mode": mode,
                    "subject_type": subject_type,
                    "subject_id": subject_id,
                    "metric": metric,
                    "granularity": granularity,
                    "period_start": start,
                    "value": value,
                }
                # in key order: concurrent batches take the counters' row locks in one order
                for (subject_type, subject_id, metric, granularity, start), value in sorted(
                    sums.items()
                )
            ]
        )
        return stored

    async def series(
        self,
        project_id: uuid.UUID,
        mode: Mode,
        subject: Subject,
        granularity: str,
        *,
        metric: str | None,
        since: date,
        until: date,
    ) -> dict[str, list[tuple[date, float]]]:
        """Per metric, the counters from `since` to `until` (inclusive), every period listed,
        zero where nothing was recorded."""
        metrics = [metric] if metric is not None else await self.known_metrics(project_id)
        if granularity == MONTH:
            since = month_of(since)  # a month is keyed by its first day
        rows = await self.usage.counters(
            project_id, mode, subject, granularity, metrics=metrics, since=since, until=until
        )
        found = {(row.metric, row.period_start): row.value for row in rows}
        periods = _periods(granularity, since, until)
        return {
            name: [(start, found.get((name, start), 0.0)) for start in periods] for name in metrics
        }

    async def day(
        self, project_id: uuid.UUID, mode: Mode, subject: Subject, day: date
    ) -> dict[str, float]:
        """Every known metric's total of one UTC day, zero-filled."""
        metrics = await self.known_metrics(project_id)
        rows = await self.usage.counters(
            project_id, mode, subject, DAY, metrics=metrics, since=day, until=day
        )
        found = {row.metric: row.value for row in rows}
        return {name: found.get(name, 0.0) for name in metrics}

    async def quotas(
        self, project_id: uuid.UUID, mode: Mode, subject: Subject
    ) -> dict[str, dict[str, Any]]:
        """The subject's quotas now (its entitlement's: its granting plans', or the free
        tier's), each with what is used in its current period and when that period ends."""
        view = await EntitlementService(self.session).view(project_id, mode, subject)
        figures: dict[str, dict[str, Any]] = {}
        for metric in view.quotas:
            found = await self._figures(project_id, mode, subject, view, metric)
            assert found is not None
            figures[metric] = {
                "limit": found.limit,
                "used": found.used,
                "remaining": found.remaining,
                "period": found.period,
                "resetsAt": found.resets_at,
            }
        return figures

    async def _figures(
        self,
        project_id: uuid.UUID,
        mode: Mode,
        subject: Subject,
        view: EntitlementView,
        metric: str,
    ) -> QuotaFigures | None:
        """The quota on `metric` and its use in the current period; None: no quota."""
        quota = view.quotas.get(metric)
        if quota is None:
            return None
        period = str(quota.get("period"))
        limit = float(quota.get("limit", 0))
        now = utcnow()
        today = now.date()
        snapshot = view.snapshot
        if period == MONTH:
            rows = await self.usage.counters(
                project_id, mode, subject, MONTH, metrics=[metric],
                since=month_of(today), until=month_of(today),
            )  # fmt: skip
            used = sum(row.value for row in rows)
            first = month_of(today)
            resets = datetime(first.year + (first.month == 12), first.month % 12 + 1, 1, tzinfo=UTC)
        elif (
            period == "billing_period"
            and snapshot is not None
            and snapshot.current_period_start is not None
            and snapshot.current_period_end is not None
        ):
            resets = snapshot.current_period_end
            used = await self.usage.total_between(
                project_id, mode, subject, metric, snapshot.current_period_start, resets
            )
        else:  # day, and a billing period with no subscription period: the day
            rows = await self.usage.counters(
                project_id, mode, subject, DAY, metrics=[metric], since=today, until=today
            )
            used = sum(row.value for row in rows)
            resets = datetime(today.year, today.month, today.day, tzinfo=UTC) + timedelta(days=1)
        return QuotaFigures(limit, used, max(0.0, limit - used), period, resets)

    async def check(
        self,
        project_id: uuid.UUID,
        mode: Mode,
        subject: Subject,
        metric: str,
        amount: float,
        view: EntitlementView | None = None,
    ) -> QuotaDecision:
        """Whether `amount` more of `metric` fits the subject's quota now (no quota: it
        does)."""
        if view is None:
            view = await EntitlementService(self.session).view(project_id, mode, subject)
        # a quota in the subject's entitlement names a metric of the catalog (snapshots take
        # their quotas from it), so the catalog is read only for a metric without one: a hot
        # entitlement check with a quota reads the counters alone
        if metric not in view.quotas and metric not in await self.known_metrics(project_id):
            raise UnknownMetric(f"Unknown metric {metric!r}.", details={"metric": metric})
        figures = await self._figures(project_id, mode, subject, view, metric)
        if figures is None:
            return QuotaDecision(True, None)
        return QuotaDecision(figures.used + amount <= figures.limit, figures)

    async def consume(
        self,
        project_id: uuid.UUID,
        mode: Mode,
        subject: Subject,
        event_id: str,
        metric: str,
        amount: float,
    ) -> tuple[QuotaDecision, bool]:
        """Check and record in one step: under a lock on the subject's metric (across
        processes), the event is recorded only if it fits the quota; (the decision with the
        figures after it, whether it was already recorded). An id recorded before is not
        recorded again and answers allowed."""
        await lock_name(
            self.session, f"usage:{project_id}:{mode}:{subject.type.value}:{subject.id}:{metric}"
        )
        decision = await self.check(project_id, mode, subject, metric, amount)
        if await self.usage.has_event(project_id, mode, event_id):
            return QuotaDecision(True, decision.figures), True
        if not decision.allowed:
            return decision, False
        now = utcnow()
        _, meters = await self._metrics(project_id)
        await self._store(
            project_id, mode, [_Event(event_id, subject, metric, amount, now, None)], now, meters
        )
        after = await self.check(project_id, mode, subject, metric, 0)
        return QuotaDecision(True, after.figures), False


@dataclass(frozen=True)
class QuotaFigures:
    limit: float
    used: float
    remaining: float
    period: str
    resets_at: datetime


@dataclass(frozen=True)
class QuotaDecision:
    allowed: bool
    figures: QuotaFigures | None  # None: no quota on the metric


def _periods(granularity: str, since: date, until: date) -> list[date]:
    if granularity == DAY:
        return [since + timedelta(days=n) for n in range((until - since).days + 1)]
    periods = []
    current = month_of(since)
    while current <= until:
        periods.append(current)
        if current.year == MAXYEAR and current.month == 12:
            break  # the last month there is: no next one to stop at
        current = date(current.year + (current.month == 12), current.month % 12 + 1, 1)
    return periods
