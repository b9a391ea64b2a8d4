"""Queries for the payments mirror."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import and_, or_

from billwarden.core.modes import Mode
from billwarden.core.subjects import Subject
from billwarden.db.repository import RepositoryBase
from billwarden.payments.models import Payment


class PaymentRepository(RepositoryBase[Payment]):
    model = Payment

    async def by_stripe_id(
        self, project_id: uuid.UUID, mode: Mode, stripe_id: str
    ) -> Payment | None:
        return await self.one_or_none(
            self.select().where(
                Payment.project_id == project_id,
                Payment.mode == mode,
                Payment.stripe_id == stripe_id,
            )
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
