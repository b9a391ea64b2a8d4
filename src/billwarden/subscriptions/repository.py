"""Queries for the mirror of customers and subscriptions."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from sqlalchemy import select, tuple_

from billwarden.core.modes import Mode
from billwarden.core.subjects import Subject
from billwarden.db.repository import RepositoryBase
from billwarden.subscriptions.models import Customer, Subscription


class CustomerRepository(RepositoryBase[Customer]):
    model = Customer

    async def for_subject(
        self, project_id: uuid.UUID, mode: Mode, subject: Subject
    ) -> Customer | None:
        return await self.one_or_none(
            self.select().where(
                Customer.project_id == project_id,
                Customer.mode == mode,
                Customer.subject_type == subject.type.value,
                Customer.subject_id == subject.id,
            )
        )

    async def by_stripe_id(
        self,
        project_id: uuid.UUID,
        mode: Mode,
        stripe_customer_id: str,
        *,
        lock: bool = False,
        fresh: bool = False,
    ) -> Customer | None:
        statement = self.select().where(
            Customer.project_id == project_id,
            Customer.mode == mode,
            Customer.stripe_customer_id == stripe_customer_id,
        )
        return await self.one_or_none(
            statement.with_for_update() if lock else statement, fresh=fresh or lock
        )


class SubscriptionRepository(RepositoryBase[Subscription]):
    model = Subscription

    async def by_stripe_id(
        self, project_id: uuid.UUID, mode: Mode, stripe_subscription_id: str, *, fresh: bool = False
    ) -> Subscription | None:
        return await self.one_or_none(
            self.select().where(
                Subscription.project_id == project_id,
                Subscription.mode == mode,
                Subscription.stripe_subscription_id == stripe_subscription_id,
            ),
            fresh=fresh,
        )

    async def for_subject(
        self, project_id: uuid.UUID, mode: Mode, subject: Subject, *, fresh: bool = False
    ) -> list[Subscription]:
        return await self.all(
            self.select()
            .where(
                Subscription.project_id == project_id,
                Subscription.mode == mode,
                Subscription.subject_type == subject.type.value,
                Subscription.subject_id == subject.id,
            )
            .order_by(Subscription.created_at, Subscription.stripe_subscription_id),
            fresh=fresh,
        )

    async def for_subjects(
        self, project_id: uuid.UUID, mode: Mode, subjects: Iterable[Subject]
    ) -> list[Subscription]:
        keys = [(subject.type.value, subject.id) for subject in subjects]
        if not keys:
            return []
        return await self.all(
            select(Subscription).where(
                Subscription.project_id == project_id,
                Subscription.mode == mode,
                tuple_(Subscription.subject_type, Subscription.subject_id).in_(keys),
            )
        )
