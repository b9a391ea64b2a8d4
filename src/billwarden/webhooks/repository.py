"""Queries for the webhook inbox."""

from __future__ import annotations

import functools
import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from billwarden.core.modes import Mode
from billwarden.db.repository import RepositoryBase
from billwarden.kit.operations import QueueFigures
from billwarden.webhooks.models import InboxStatus, WebhookEvent


class WebhookEventRepository(RepositoryBase[WebhookEvent]):
    model = WebhookEvent

    async def insert_if_new(self, values: dict[str, Any]) -> bool:
        """Store the event unless (project, mode, event id) is there already; whether it was
        new. One statement, so concurrent deliveries of one event store it once."""
        statement = _insert_if_new(self.session.get_bind().dialect.name)
        inserted = (
            await self.session.execute(statement, {"id": uuid.uuid4(), **values})
        ).scalar_one_or_none()
        return inserted is not None

    async def claim_due(
        self, now: datetime, limit: int, lease: timedelta, token: uuid.UUID
    ) -> list[uuid.UUID]:
        """Take up to `limit` pending events that are due and held by no live worker, under
        `token`: each attempt is counted now, and the event is ours until the lease ends.
        PostgreSQL skips rows another worker is claiming or applying; SQLite's one writer claims
        one batch at a time."""
        due = (
            select(WebhookEvent.id)
            .where(
                WebhookEvent.status == InboxStatus.PENDING,
                or_(WebhookEvent.next_attempt_at.is_(None), WebhookEvent.next_attempt_at <= now),
                or_(WebhookEvent.claimed_until.is_(None), WebhookEvent.claimed_until < now),
            )
            .order_by(WebhookEvent.event_created, WebhookEvent.received_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        ids = list((await self.session.scalars(due)).all())
        if ids:
            await self.session.execute(
                update(WebhookEvent)
                .where(WebhookEvent.id.in_(ids))
                .values(
                    claimed_until=now + lease,
                    claim_token=token,
                    attempts=WebhookEvent.attempts + 1,
                )
                .execution_options(synchronize_session=False)
            )
        return ids

    async def backlog(self, now: datetime) -> QueueFigures:
        """How many pending events are due and since when the longest-waiting one has been (the
        due index), and the failed ones per mode (the failed index): for the operator."""
        due = (
            await self.session.execute(
                select(func.count(), func.min(WebhookEvent.next_attempt_at)).where(
                    WebhookEvent.status == InboxStatus.PENDING,
                    or_(
                        WebhookEvent.next_attempt_at.is_(None), WebhookEvent.next_attempt_at <= now
                    ),
                )
            )
        ).one()
        failed = await self.session.execute(
            select(WebhookEvent.mode, func.count())
            .where(WebhookEvent.status == InboxStatus.FAILED)
            .group_by(WebhookEvent.mode)
        )
        return QueueFigures(
            due=int(due[0]),
            oldest_due_at=due[1],
            failed={str(mode): int(count) for mode, count in failed.all()},
        )

    async def lock(self, event_row_id: uuid.UUID) -> WebhookEvent | None:
        """The event, its row locked until the transaction ends (PostgreSQL; SQLite's writer
        holds the whole database): one applier, replay or failure record at a time."""
        return await self.one_or_none(
            self.select()
            .where(WebhookEvent.id == event_row_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )

    async def release(self, ids: list[uuid.UUID], token: uuid.UUID) -> None:
        """Give back claims not started (a worker stopping): due at once, the attempt uncounted."""
        await self.session.execute(
            update(WebhookEvent)
            .where(
                WebhookEvent.id.in_(ids),
                WebhookEvent.claim_token == token,
                WebhookEvent.status == InboxStatus.PENDING,
            )
            .values(claimed_until=None, claim_token=None, attempts=WebhookEvent.attempts - 1)
            .execution_options(synchronize_session=False)
        )

    async def list_events(
        self,
        project_id: uuid.UUID,
        *,
        mode: Mode | None,
        status: InboxStatus | None,
        event_type: str | None,
        limit: int,
        offset: int,
    ) -> tuple[list[WebhookEvent], int]:
        conditions = [WebhookEvent.project_id == project_id]
        if mode is not None:
            conditions.append(WebhookEvent.mode == mode)
        if status is not None:
            conditions.append(WebhookEvent.status == status)
        if event_type is not None:
            conditions.append(WebhookEvent.event_type == event_type)
        total = await self.session.scalar(select(func.count(WebhookEvent.id)).where(*conditions))
        items = await self.all(
            self.select()
            .where(*conditions)
            .order_by(WebhookEvent.received_at.desc(), WebhookEvent.id)
            .limit(limit)
            .offset(offset)
        )
        return items, int(total or 0)


@functools.cache
def _insert_if_new(dialect: str) -> Any:
    """One statement per dialect, its values bound at execution: built and compiled once, not
    for every delivery (the intake's hot path)."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return (
        insert(WebhookEvent)
        .on_conflict_do_nothing(index_elements=["project_id", "mode", "event_id"])
        .returning(WebhookEvent.id)
    )
