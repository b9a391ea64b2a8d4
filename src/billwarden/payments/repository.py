"""Queries for the payments mirror."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
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


@dataclass(frozen=True)
class ListFilters:
    """What a project's lists are filtered and paged by."""

    mode: Mode
    status: str | None
    subject_id: str | None
    since: datetime | None  # created at or after
    until: datetime | None  # created before
    starting_after: str | None  # the last Stripe id of the previous page
    limit: int


class ProjectLists:
    """A project's subscriptions and payments in one mode, filtered, newest first."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def subscriptions(
        self, project_id: uuid.UUID, filters: ListFilters
    ) -> list[Subscription]:
        return await self._page(
            Subscription,
            Subscription.created_at,
            Subscription.stripe_subscription_id,
            project_id,
            filters,
        )

    async def payments(self, project_id: uuid.UUID, filters: ListFilters) -> list[Payment]:
        return await self._page(Payment, Payment.created, Payment.stripe_id, project_id, filters)

    async def _page(
        self, model: Any, created: Any, stripe_id: Any, project_id: uuid.UUID, filters: ListFilters
    ) -> list[Any]:
        statement = select(model).where(model.project_id == project_id, model.mode == filters.mode)
        cursor = None
        if filters.starting_after is not None:
            anchor = await self.session.scalar(statement.where(stripe_id == filters.starting_after))
            if anchor is None:
                return []
            cursor = (getattr(anchor, created.key), getattr(anchor, stripe_id.key))
        if filters.status is not None:
            statement = statement.where(model.status == filters.status)
        if filters.subject_id is not None:
            statement = statement.where(model.subject_id == filters.subject_id)
        if filters.since is not None:
            statement = statement.where(created >= filters.since)
        if filters.until is not None:
            statement = statement.where(created < filters.until)
        statement = newest_first_after(statement, created, stripe_id, cursor)
        return list((await self.session.scalars(statement.limit(filters.limit))).all())
