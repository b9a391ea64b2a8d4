"""Queries for usage: storing events once, adding to counters atomically, reading them."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any, cast

import orjson
from sqlalchemy import Table, func, or_, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from billwarden.core.modes import Mode
from billwarden.core.subjects import Subject
from billwarden.kit.operations import QueueFigures
from billwarden.usage.models import MeterForward, UsageCounter, UsageEvent


class UsageRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.dialect = session.get_bind().dialect.name

    async def insert_new(self, rows: Sequence[dict[str, Any]]) -> set[str]:
        """Store the events whose (project, mode, id) is not stored yet; the ids stored now.
        One statement per batch: concurrent batches store each id once. The rows share one
        project, mode and arrival time."""
        if not rows:
            return set()
        if self.dialect == "postgresql":
            # one statement over arrays (unnest), not a row of parameters per event
            first = rows[0]
            result = await self.session.execute(
                _INSERT_EVENTS_PG,
                {
                    "project_id": first["project_id"],
                    "mode": first["mode"].value,
                    "received_at": first["received_at"],
                    "ids": [row["id"] for row in rows],
                    "event_ids": [row["event_id"] for row in rows],
                    "subject_types": [row["subject_type"] for row in rows],
                    "subject_ids": [row["subject_id"] for row in rows],
                    "metrics": [row["metric"] for row in rows],
                    "values": [row["value"] for row in rows],
                    "timestamps": [row["timestamp"] for row in rows],
                    "properties": [
                        orjson.dumps(row["properties"]).decode()
                        if row["properties"] is not None
                        else None
                        for row in rows
                    ],
                },
            )
        else:
            result = await self.session.execute(_insert_events(self.dialect), list(rows))
        return {event_id for (event_id,) in result.all()}

    async def event(
        self, project_id: uuid.UUID, mode: Mode, event_id: str
    ) -> tuple[UsageEvent, MeterForward | None] | None:
        """The event, and its forwarding to a Stripe meter if its metric has one."""
        found = await self.session.scalar(
            select(UsageEvent).where(
                UsageEvent.project_id == project_id,
                UsageEvent.mode == mode,
                UsageEvent.event_id == event_id,
            )
        )
        if found is None:
            return None
        forward = await self.session.scalar(
            select(MeterForward).where(
                MeterForward.project_id == project_id,
                MeterForward.mode == mode,
                MeterForward.event_id == event_id,
            )
        )
        return found, forward

    async def has_event(self, project_id: uuid.UUID, mode: Mode, event_id: str) -> bool:
        found = await self.session.scalar(
            select(UsageEvent.id).where(
                UsageEvent.project_id == project_id,
                UsageEvent.mode == mode,
                UsageEvent.event_id == event_id,
            )
        )
        return found is not None

    async def add_to_counters(self, rows: Sequence[dict[str, Any]]) -> None:
        """value += each row's value, creating the counter when it is the first (an upsert:
        exact under concurrent ingest from several processes)."""
        if not rows:
            return
        if self.dialect == "postgresql":
            first = rows[0]
            await self.session.execute(
                _ADD_TO_COUNTERS_PG,
                {
                    "project_id": first["project_id"],
                    "mode": first["mode"].value,
                    "subject_types": [row["subject_type"] for row in rows],
                    "subject_ids": [row["subject_id"] for row in rows],
                    "metrics": [row["metric"] for row in rows],
                    "granularities": [row["granularity"] for row in rows],
                    "period_starts": [row["period_start"] for row in rows],
                    "values": [row["value"] for row in rows],
                },
            )
        else:
            await self.session.execute(_add_to_counters(self.dialect), list(rows))

    async def counters(
        self,
        project_id: uuid.UUID,
        mode: Mode,
        subject: Subject,
        granularity: str,
        *,
        metrics: Sequence[str] | None = None,
        since: date | None = None,
        until: date | None = None,
    ) -> list[UsageCounter]:
        statement = select(UsageCounter).where(
            UsageCounter.project_id == project_id,
            UsageCounter.mode == mode,
            UsageCounter.subject_type == subject.type.value,
            UsageCounter.subject_id == subject.id,
            UsageCounter.granularity == granularity,
        )
        if metrics is not None:
            statement = statement.where(UsageCounter.metric.in_(list(metrics)))
        if since is not None:
            statement = statement.where(UsageCounter.period_start >= since)
        if until is not None:
            statement = statement.where(UsageCounter.period_start <= until)
        rows = await self.session.scalars(
            statement.order_by(UsageCounter.metric, UsageCounter.period_start)
        )
        return list(rows.all())

    async def total_between(
        self,
        project_id: uuid.UUID,
        mode: Mode,
        subject: Subject,
        metric: str,
        start: datetime,
        end: datetime,
    ) -> float:
        """The sum of the subject's events of `metric` with a timestamp in [start, end) (a
        billing period, which starts at any instant, not at a day's start)."""
        total = await self.session.scalar(
            select(func.coalesce(func.sum(UsageEvent.value), 0.0)).where(
                UsageEvent.project_id == project_id,
                UsageEvent.mode == mode,
                UsageEvent.subject_type == subject.type.value,
                UsageEvent.subject_id == subject.id,
                UsageEvent.metric == metric,
                UsageEvent.timestamp >= start,
                UsageEvent.timestamp < end,
            )
        )
        return float(total or 0.0)


class ForwardRepository:
    """The outbox of meter events for Stripe."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.dialect = session.get_bind().dialect.name

    async def add(self, rows: Sequence[dict[str, Any]]) -> None:
        if rows:
            insert = postgresql.insert if self.dialect == "postgresql" else sqlite.insert
            await self.session.execute(
                insert(MeterForward).on_conflict_do_nothing(
                    index_elements=["project_id", "mode", "event_id"]
                ),
                list(rows),
            )

    async def claim_due(
        self, now: datetime, limit: int, lease: timedelta, token: uuid.UUID
    ) -> list[MeterForward]:
        """Take up to `limit` pending forwards that are due and held by no live worker, under
        `token`, counting the attempt now (PostgreSQL skips rows another worker is claiming)."""
        due = (
            select(MeterForward.id)
            .where(
                MeterForward.status == "pending",
                or_(MeterForward.next_attempt_at.is_(None), MeterForward.next_attempt_at <= now),
                or_(MeterForward.claimed_until.is_(None), MeterForward.claimed_until < now),
            )
            .order_by(MeterForward.timestamp, MeterForward.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        ids = list((await self.session.scalars(due)).all())
        if not ids:
            return []
        await self.session.execute(
            update(MeterForward)
            .where(MeterForward.id.in_(ids))
            .values(
                claimed_until=now + lease, claim_token=token, attempts=MeterForward.attempts + 1
            )
            .execution_options(synchronize_session=False)
        )
        rows = await self.session.scalars(
            select(MeterForward)
            .where(MeterForward.id.in_(ids))
            .execution_options(populate_existing=True)
        )
        return list(rows.all())

    async def backlog(self, now: datetime) -> QueueFigures:
        """How many pending forwards are due and since when the longest-waiting one has been,
        and the failed ones per mode (through the due index): for the operator."""
        due = (
            await self.session.execute(
                select(func.count(), func.min(MeterForward.next_attempt_at)).where(
                    MeterForward.status == "pending",
                    or_(
                        MeterForward.next_attempt_at.is_(None), MeterForward.next_attempt_at <= now
                    ),
                )
            )
        ).one()
        failed = await self.session.execute(
            select(MeterForward.mode, func.count())
            .where(MeterForward.status == "failed")
            .group_by(MeterForward.mode)
        )
        return QueueFigures(
            due=int(due[0]),
            oldest_due_at=due[1],
            failed={str(mode): int(count) for mode, count in failed.all()},
        )

    async def held(self, forward_id: uuid.UUID, token: uuid.UUID) -> MeterForward | None:
        """The forward while `token`'s claim holds it (pending), its row locked."""
        return await self.session.scalar(
            select(MeterForward)
            .where(
                MeterForward.id == forward_id,
                MeterForward.claim_token == token,
                MeterForward.status == "pending",
            )
            .with_for_update()
            .execution_options(populate_existing=True)
        )


_INSERT_EVENTS_PG = text(
    """
    INSERT INTO usage_events (id, project_id, mode, event_id, subject_type, subject_id, metric,
                              value, "timestamp", properties, received_at)
    SELECT u.id, :project_id, :mode, u.event_id, u.subject_type, u.subject_id, u.metric,
           u.value, u.at, CAST(u.properties AS json), :received_at
    FROM unnest(CAST(:ids AS uuid[]), CAST(:event_ids AS varchar[]),
                CAST(:subject_types AS varchar[]), CAST(:subject_ids AS varchar[]),
                CAST(:metrics AS varchar[]), CAST(:values AS double precision[]),
                CAST(:timestamps AS timestamptz[]), CAST(:properties AS text[]))
         AS u(id, event_id, subject_type, subject_id, metric, value, at, properties)
    ON CONFLICT (project_id, mode, event_id) DO NOTHING
    RETURNING event_id
    """
)
# in the rows' order (sorted by the caller): concurrent batches lock the counters in one order
_ADD_TO_COUNTERS_PG = text(
    """
    INSERT INTO usage_counters (project_id, mode, subject_type, subject_id, metric, granularity,
                                period_start, value)
    SELECT :project_id, :mode, u.subject_type, u.subject_id, u.metric, u.granularity,
           u.period_start, u.value
    FROM unnest(CAST(:subject_types AS varchar[]), CAST(:subject_ids AS varchar[]),
                CAST(:metrics AS varchar[]), CAST(:granularities AS varchar[]),
                CAST(:period_starts AS date[]), CAST(:values AS double precision[]))
         AS u(subject_type, subject_id, metric, granularity, period_start, value)
    ON CONFLICT (project_id, mode, subject_type, subject_id, metric, granularity, period_start)
    DO UPDATE SET value = usage_counters.value + excluded.value
    """
)


@functools.cache
def _insert_events(dialect: str) -> Any:
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    # Core, not the ORM's bulk insert: the rows are plain values, and the statement is the hot
    # path of ingest
    table = cast(Table, UsageEvent.__table__)
    return (
        insert(table)
        .on_conflict_do_nothing(index_elements=["project_id", "mode", "event_id"])
        .returning(table.c.event_id)
    )


@functools.cache
def _add_to_counters(dialect: str) -> Any:
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    table = cast(Table, UsageCounter.__table__)
    statement = insert(table)
    return statement.on_conflict_do_update(
        index_elements=[
            "project_id",
            "mode",
            "subject_type",
            "subject_id",
            "metric",
            "granularity",
            "period_start",
        ],
        set_={"value": table.c.value + statement.excluded.value},
    )
