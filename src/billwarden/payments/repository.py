"""Queries for the payments mirror."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from billwarden.core.modes import Mode
from billwarden.core.subjects import Subject
from billwarden.db.repository import RepositoryBase
from billwarden.payments.models import Payment
from billwarden.subscriptions.models import Subscription


class PaymentRepository(RepositoryBase[Payment]):
    model = Payment

    async def by_stripe_id(
        self, project_id: uuid.UUID, mode: Mode, stripe_id: str, *, fresh: bool = False
    ) -> Payment | None:
        return await self.one_or_none(
            self.select().where(
                Payment.project_id == project_id,
                Payment.mode == mode,
                Payment.stripe_id == stripe_id,
            ),
            fresh=fresh,
        )

    async def for_subject(
        self,
        project_id: uuid.UUID,
        mode: Mode,
        subject: Subject,
        *,
        limit: int,
        after: tuple[datetime, str] | None,
    ) -> list[Payment]:
        """Newest first, `limit` of them, after the (created, stripe id) cursor when given."""
        statement = self.select().where(
            Payment.project_id == project_id,
            Payment.mode == mode,
            Payment.subject_type == subject.type.value,
            Payment.subject_id == subject.id,
        )
        if after is not None:
            created, stripe_id = after
            statement = statement.where(
                or_(
                    Payment.created < created,
                    and_(Payment.created == created, Payment.stripe_id < stripe_id),
                )
            )
        return await self.all(
            statement.order_by(Payment.created.desc(), Payment.stripe_id.desc()).limit(limit)
        )


def newest_first_after(
    statement: Select[Any], created: Any, stripe_id: Any, cursor: tuple[datetime, str] | None
) -> Select[Any]:
    """Newest first, after the (created, Stripe id) cursor when given."""
    if cursor is not None:
        at, after_id = cursor
        statement = statement.where(or_(created < at, and_(created == at, stripe_id < after_id)))
    return statement.order_by(created.desc(), stripe_id.desc())


class ProjectLists:
    """A project's subscriptions and payments in one mode, filtered, newest first."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def subscriptions(
        self,
        project_id: uuid.UUID,
        mode: Mode,
        *,
        status: str | None,
        subject_id: str | None,
        since: datetime | None,
        until: datetime | None,
        starting_after: str | None,
        limit: int,
    ) -> list[Subscription]:
        table = Subscription
        statement = select(table).where(table.project_id == project_id, table.mode == mode)
        cursor = None
        if starting_after is not None:
            anchor = await self.session.scalar(
                statement.where(table.stripe_subscription_id == starting_after)
            )
            if anchor is None:
                return []
            cursor = (anchor.created_at, anchor.stripe_subscription_id)
        if status is not None:
            statement = statement.where(table.status == status)
        if subject_id is not None:
            statement = statement.where(table.subject_id == subject_id)
        if since is not None:
            statement = statement.where(table.created_at >= since)
        if until is not None:
            statement = statement.where(table.created_at < until)
        statement = newest_first_after(
            statement, table.created_at, table.stripe_subscription_id, cursor
        )
        return list((await self.session.scalars(statement.limit(limit))).all())

    async def payments(
        self,
        project_id: uuid.UUID,
        mode: Mode,
        *,
        status: str | None,
        subject_id: str | None,
        since: datetime | None,
        until: datetime | None,
        starting_after: str | None,
        limit: int,
    ) -> list[Payment]:
        statement = select(Payment).where(Payment.project_id == project_id, Payment.mode == mode)
        cursor = None
        if starting_after is not None:
            anchor = await self.session.scalar(statement.where(Payment.stripe_id == starting_after))
            if anchor is None:
                return []
            cursor = (anchor.created, anchor.stripe_id)
        if status is not None:
            statement = statement.where(Payment.status == status)
        if subject_id is not None:
            statement = statement.where(Payment.subject_id == subject_id)
        if since is not None:
            statement = statement.where(Payment.created >= since)
        if until is not None:
            statement = statement.where(Payment.created < until)
        statement = newest_first_after(statement, Payment.created, Payment.stripe_id, cursor)
        return list((await self.session.scalars(statement.limit(limit))).all())
