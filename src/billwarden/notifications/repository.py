"""Queries for the notification endpoints, the outbox and the delivery log."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select, update

from billwarden.core.modes import Mode
from billwarden.db.repository import RepositoryBase
from billwarden.kit.operations import QueueFigures
from billwarden.notifications.models import (
    ALL_EVENTS,
    Delivery,
    DeliveryStatus,
    OutboxMessage,
    WebhookEndpoint,
)


class EndpointRepository(RepositoryBase[WebhookEndpoint]):
    model = WebhookEndpoint

    async def of_project(
        self, project_id: uuid.UUID, *, limit: int, offset: int
    ) -> tuple[list[WebhookEndpoint], int]:
        condition = WebhookEndpoint.project_id == project_id
        total = await self.session.scalar(select(func.count(WebhookEndpoint.id)).where(condition))
        items = await self.all(
            self.select()
            .where(condition)
            .order_by(WebhookEndpoint.created_at, WebhookEndpoint.id)
            .limit(limit)
            .offset(offset)
        )
        return items, int(total or 0)

    async def in_project(
        self, project_id: uuid.UUID, endpoint_id: uuid.UUID
    ) -> WebhookEndpoint | None:
        return await self.one_or_none(
            self.select().where(
                WebhookEndpoint.id == endpoint_id, WebhookEndpoint.project_id == project_id
            )
        )

    async def subscribed(
        self, project_id: uuid.UUID, mode: Mode, event_type: str
    ) -> list[WebhookEndpoint]:
        """The project's endpoints of `mode` that receive `event_type`."""
        rows = await self.all(
            self.select()
            .where(WebhookEndpoint.project_id == project_id, WebhookEndpoint.mode == mode)
            .order_by(WebhookEndpoint.created_at, WebhookEndpoint.id)
        )
        return [row for row in rows if event_type in row.events or ALL_EVENTS in row.events]


class OutboxRepository(RepositoryBase[OutboxMessage]):
    model = OutboxMessage


class DeliveryRepository(RepositoryBase[Delivery]):
    model = Delivery

    async def claim_due(
        self, now: datetime, limit: int, lease: timedelta, token: uuid.UUID
    ) -> list[uuid.UUID]:
        """Take up to `limit` pending deliveries that are due and held by no live worker, under
        `token`, counting the attempt now (PostgreSQL skips rows another worker is claiming)."""
        due = (
            select(Delivery.id)
            .where(
                Delivery.status == DeliveryStatus.PENDING,
                or_(Delivery.next_attempt_at.is_(None), Delivery.next_attempt_at <= now),
                or_(Delivery.claimed_until.is_(None), Delivery.claimed_until < now),
            )
            .order_by(Delivery.created_at, Delivery.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        ids = list((await self.session.scalars(due)).all())
        if ids:
            await self.session.execute(
                update(Delivery)
                .where(Delivery.id.in_(ids))
                .values(
                    claimed_until=now + lease, claim_token=token, attempts=Delivery.attempts + 1
                )
                .execution_options(synchronize_session=False)
            )
        return ids

    async def backlog(self, now: datetime) -> QueueFigures:
        """How many pending deliveries are due and since when the longest-waiting one has been,
        and how many failed for good (both through the due index): for the operator."""
        due = (
            await self.session.execute(
                select(func.count(), func.min(Delivery.next_attempt_at)).where(
                    Delivery.status == DeliveryStatus.PENDING,
                    or_(Delivery.next_attempt_at.is_(None), Delivery.next_attempt_at <= now),
                )
            )
        ).one()
        failed = await self.session.scalar(
            select(func.count()).where(Delivery.status == DeliveryStatus.FAILED)
        )
        # deliveries carry no mode (their endpoint does): the total only, without a join
        return QueueFigures(due=int(due[0]), oldest_due_at=due[1], failed={"": int(failed or 0)})

    async def held(self, delivery_id: uuid.UUID, token: uuid.UUID) -> Delivery | None:
        """The delivery while `token`'s claim holds it (pending), its row locked."""
        return await self.one_or_none(
            self.select()
            .where(
                Delivery.id == delivery_id,
                Delivery.claim_token == token,
                Delivery.status == DeliveryStatus.PENDING,
            )
            .with_for_update()
            .execution_options(populate_existing=True)
        )

    async def release(self, ids: list[uuid.UUID], token: uuid.UUID) -> None:
        """Give back claims not started (a worker stopping): due at once, the attempt uncounted."""
        await self.session.execute(
            update(Delivery)
            .where(
                Delivery.id.in_(ids),
                Delivery.claim_token == token,
                Delivery.status == DeliveryStatus.PENDING,
            )
            .values(claimed_until=None, claim_token=None, attempts=Delivery.attempts - 1)
            .execution_options(synchronize_session=False)
        )

    async def of_endpoint(
        self, endpoint_id: uuid.UUID, *, limit: int, offset: int
    ) -> tuple[list[Delivery], int]:
        condition = Delivery.endpoint_id == endpoint_id
        total = await self.session.scalar(select(func.count(Delivery.id)).where(condition))
        items = await self.all(
            self.select()
            .where(condition)
            .order_by(Delivery.created_at.desc(), Delivery.id)
            .limit(limit)
            .offset(offset)
        )
        return items, int(total or 0)

    async def of_endpoint_locked(
        self, endpoint_id: uuid.UUID, delivery_id: uuid.UUID
    ) -> Delivery | None:
        return await self.one_or_none(
            self.select()
            .where(Delivery.id == delivery_id, Delivery.endpoint_id == endpoint_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
