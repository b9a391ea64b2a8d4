"""Queries for reconciliation runs and records."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import String, and_, cast, func, insert, or_, select, update

from billwarden.core.modes import Mode
from billwarden.db.repository import RepositoryBase
from billwarden.kit.operations import ReconcileFigures
from billwarden.projects.models import Project
from billwarden.reconciliation.models import (
    ACTIVE_RUN,
    ReconcileRecord,
    ReconcileRun,
    RunStatus,
)


class RunRepository(RepositoryBase[ReconcileRun]):
    model = ReconcileRun

    async def active(self, project_id: uuid.UUID, mode: Mode) -> ReconcileRun | None:
        return await self.one_or_none(
            self.select().where(
                ReconcileRun.project_id == project_id,
                ReconcileRun.mode == mode,
                ReconcileRun.status.in_(ACTIVE_RUN),
            ),
            fresh=True,
        )

    async def latest(
        self, project_id: uuid.UUID, mode: Mode, *, finished: bool = False
    ) -> ReconcileRun | None:
        statement = self.select().where(
            ReconcileRun.project_id == project_id, ReconcileRun.mode == mode
        )
        if finished:
            statement = statement.where(ReconcileRun.status == RunStatus.FINISHED)
        return await self.one_or_none(
            statement.order_by(ReconcileRun.requested_at.desc(), ReconcileRun.id).limit(1)
        )

    async def latest_requested(self, project_id: uuid.UUID, mode: Mode) -> datetime | None:
        value: datetime | None = await self.session.scalar(
            select(func.max(ReconcileRun.requested_at)).where(
                ReconcileRun.project_id == project_id, ReconcileRun.mode == mode
            )
        )
        return value

    async def claim(
        self, run_id: uuid.UUID, token: uuid.UUID, now: datetime, lease: timedelta
    ) -> bool:
        """Take the run: queued, or running under a claim that has lapsed (its runner died)."""
        result = await self.session.execute(
            update(ReconcileRun)
            .where(
                ReconcileRun.id == run_id,
                or_(
                    ReconcileRun.status == RunStatus.QUEUED,
                    and_(
                        ReconcileRun.status == RunStatus.RUNNING,
                        ReconcileRun.claimed_until < now,
                    ),
                ),
            )
            .values(
                status=RunStatus.RUNNING,
                started_at=now,
                claimed_until=now + lease,
                claim_token=token,
            )
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0))

    async def lock(self, run_id: uuid.UUID) -> ReconcileRun | None:
        """The run, its row locked until the transaction ends (PostgreSQL; SQLite's writer
        holds the whole database), read fresh."""
        return await self.one_or_none(
            self.select().where(ReconcileRun.id == run_id).with_for_update(), fresh=True
        )

    async def renew(self, run_id: uuid.UUID, token: uuid.UUID, until: datetime, seen: int) -> bool:
        """Extend the runner's lease and record its progress; False when the run is no longer
        this runner's."""
        result = await self.session.execute(
            update(ReconcileRun)
            .where(
                ReconcileRun.id == run_id,
                ReconcileRun.claim_token == token,
                ReconcileRun.status == RunStatus.RUNNING,
            )
            .values(claimed_until=until, subscriptions_seen=seen)
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0))

    async def latest_finished_figures(self) -> ReconcileFigures:
        """The most recent finished run of every project in each mode, added up per mode: for
        the operator. One look-up per project and mode through the latest-run index, however
        many runs are kept."""
        mismatched: dict[str, int] = {}
        reasons: dict[tuple[str, str], int] = {}
        finished: dict[str, datetime] = {}
        for each in Mode:
            mode = each.value
            latest = (
                select(ReconcileRun.id)
                .where(
                    ReconcileRun.project_id == Project.id,
                    ReconcileRun.mode == each,
                    ReconcileRun.status == RunStatus.FINISHED,
                )
                .order_by(ReconcileRun.requested_at.desc(), ReconcileRun.id)
                .limit(1)
                .correlate(Project)
                .scalar_subquery()
            )
            # per project, its run by primary key: never a scan of every run kept
            rows = await self.session.execute(
                select(ReconcileRun.mismatched, ReconcileRun.reasons, ReconcileRun.finished_at)
                .select_from(Project)
                .join(ReconcileRun, ReconcileRun.id == latest)
            )
            for count, run_reasons, finished_at in rows.all():
                mismatched[mode] = mismatched.get(mode, 0) + count
                for reason, records in (run_reasons or {}).items():
                    reasons[mode, reason] = reasons.get((mode, reason), 0) + int(records)
                if finished_at is not None and (
                    mode not in finished or finished_at > finished[mode]
                ):
                    finished[mode] = finished_at
        return ReconcileFigures(mismatched, reasons, finished)

    async def due(self, now: datetime, limit: int) -> list[uuid.UUID]:
        """Runs waiting for a runner: queued, or running under a lapsed claim."""
        rows = await self.session.scalars(
            select(ReconcileRun.id)
            .where(
                or_(
                    ReconcileRun.status == RunStatus.QUEUED,
                    and_(
                        ReconcileRun.status == RunStatus.RUNNING,
                        ReconcileRun.claimed_until < now,
                    ),
                )
            )
            .order_by(ReconcileRun.requested_at)
            .limit(limit)
        )
        return list(rows.all())


class RecordRepository(RepositoryBase[ReconcileRecord]):
    model = ReconcileRecord

    async def add_many(self, rows: Sequence[dict[str, Any]]) -> None:
        for start in range(0, len(rows), 1000):
            await self.session.execute(insert(ReconcileRecord), list(rows[start : start + 1000]))

    async def page(
        self,
        run_id: uuid.UUID,
        *,
        mismatched: bool | None,
        reason: str | None,
        limit: int,
        offset: int,
    ) -> tuple[list[ReconcileRecord], int]:
        conditions = [ReconcileRecord.run_id == run_id]
        if mismatched is not None:
            conditions.append(ReconcileRecord.in_sync.is_(not mismatched))
        if reason is not None:
            conditions.append(ReconcileRecord.reason_codes.contains(f",{reason},"))
        total = await self.session.scalar(select(func.count(ReconcileRecord.id)).where(*conditions))
        rows = await self.all(
            self.select()
            .where(*conditions)
            .order_by(ReconcileRecord.in_sync, ReconcileRecord.subject_id, ReconcileRecord.id)
            .limit(limit)
            .offset(offset)
        )
        return rows, int(total or 0)

    async def for_entitlement(
        self, run_id: uuid.UUID, entitlement_id: uuid.UUID
    ) -> ReconcileRecord | None:
        return await self.one_or_none(
            self.select().where(
                ReconcileRecord.run_id == run_id,
                ReconcileRecord.entitlement_id == entitlement_id,
            )
        )

    async def for_subscription(
        self, run_id: uuid.UUID, subscription_id: str
    ) -> ReconcileRecord | None:
        """The record holding the subscription: found by its id in the stored list's text,
        then checked exactly."""
        rows = await self.all(
            self.select().where(
                ReconcileRecord.run_id == run_id,
                cast(ReconcileRecord.subscription_ids, String).contains(
                    orjson.dumps(subscription_id).decode()
                ),
            )
        )
        return next((row for row in rows if subscription_id in row.subscription_ids), None)
