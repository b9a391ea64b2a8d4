"""Queries for the payments mirror."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, case, func, or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from billwarden.core.modes import Mode
from billwarden.core.subjects import Subject
from billwarden.db.repository import RepositoryBase
from billwarden.payments.models import Payment
from billwarden.projects.models import Project, StripeConfig
from billwarden.subscriptions.models import Subscription
from billwarden.webhooks.models import InboxStatus, WebhookEvent

# a subscription that never started (its first payment never came) counts nowhere
NEVER_STARTED = ("incomplete", "incomplete_expired")
# statuses that bill: their yearly amount is the MRR's (a trial pays nothing yet)
BILLING = ("active", "past_due")
# payments whose money came in (refunds are taken off separately)
PAID = ("succeeded", "refunded", "partially_refunded")


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
    """Subscriptions and payments of one project, or of several (the cross-project lists), in
    one mode, filtered, newest first. `projects` None: every project (a superuser's lists)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def subscriptions(
        self, projects: Collection[uuid.UUID] | None, filters: ListFilters
    ) -> list[Subscription]:
        return await self._page(
            Subscription,
            Subscription.created_at,
            Subscription.stripe_subscription_id,
            projects,
            filters,
        )

    async def payments(
        self, projects: Collection[uuid.UUID] | None, filters: ListFilters
    ) -> list[Payment]:
        return await self._page(Payment, Payment.created, Payment.stripe_id, projects, filters)

    async def _page(
        self,
        model: Any,
        created: Any,
        stripe_id: Any,
        projects: Collection[uuid.UUID] | None,
        filters: ListFilters,
    ) -> list[Any]:
        statement = select(model).where(
            model.mode == filters.mode, *_among(model.project_id, projects)
        )
        cursor = None
        if filters.starting_after is not None:
            anchor = await self.session.scalar(
                statement.where(stripe_id == filters.starting_after).limit(1)
            )
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


def _among(column: Any, projects: Collection[uuid.UUID] | None) -> list[ColumnElement[bool]]:
    return [] if projects is None else [column.in_(list(projects))]


def _within(column: Any, start: datetime, end: datetime | None) -> ColumnElement[bool]:
    within: ColumnElement[bool] = column >= start
    return within & (column < end) if end is not None else within


def _count(condition: ColumnElement[bool]) -> Any:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def _total(condition: ColumnElement[bool], value: Any) -> Any:
    return func.coalesce(func.sum(case((condition, value), else_=0)), 0)


@dataclass(frozen=True)
class SubscriptionCounts:
    """One project's subscriptions in one currency: counts now, and over the window."""

    project_id: uuid.UUID
    currency: str | None
    active: int
    trialing: int
    past_due: int
    annual_amount: float  # of the billing ones (active, past_due), minor units
    new: int  # started in the window
    churned: int  # ended in the window
    live_at_start: int  # started before the window and not ended before it


@dataclass(frozen=True)
class PaymentTotals:
    """One project's payments in one currency over the window."""

    project_id: uuid.UUID
    currency: str
    paid_count: int
    paid: int  # minor units paid in the window
    refunded: int  # of those, refunded since
    failed_count: int
    failed: int  # minor units of the payments created in the window whose last state is failed


@dataclass(frozen=True)
class MonthlyFigures:
    """One currency's history, month by month (null currency: subscriptions of no price)."""

    currency: str | None
    months: list[datetime]
    mrr: list[float]  # minor units, at each month's end
    new: list[int]
    churned: list[int]


@dataclass(frozen=True)
class EndpointState:
    """A project's Stripe set-up in one mode, as the payments overview shows it."""

    project_id: uuid.UUID
    mode: Mode
    configured: bool
    checked_at: datetime | None
    check_valid: bool | None
    last_event_at: datetime | None
    failed_events: int


class PaymentFigures:
    """The numbers a team watches, computed in the database (one grouped query per table), per
    project and currency."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def plan_for_each_window(self) -> None:
        """PostgreSQL: plan these queries for the window they are sent with. A prepared
        statement otherwise falls back, from its sixth run on a connection, to a plan for any
        window, which reads a year of payments through the indexes at twice the time of a
        parallel scan (bench/stats.py). For this transaction only."""
        if self.session.get_bind().dialect.name == "postgresql":
            await self.session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))

    async def subscriptions(
        self,
        projects: Collection[uuid.UUID] | None,
        mode: Mode,
        since: datetime,
        until: datetime,
    ) -> list[SubscriptionCounts]:
        row = Subscription
        started = row.status.not_in(NEVER_STARTED)
        statement = (
            select(
                row.project_id,
                row.currency,
                _count(row.status == "active"),
                _count(row.status == "trialing"),
                _count(row.status == "past_due"),
                _total(row.status.in_(BILLING), func.coalesce(row.annual_amount, 0.0)),
                _count(started & (row.started_at >= since) & (row.started_at < until)),
                _count(started & (row.ended_at >= since) & (row.ended_at < until)),
                _count(
                    started
                    & (row.started_at < since)
                    & (row.ended_at.is_(None) | (row.ended_at >= since))
                ),
            )
            .where(row.mode == mode, *_among(row.project_id, projects))
            .group_by(row.project_id, row.currency)
        )
        return [
            SubscriptionCounts(
                project_id=found[0],
                currency=found[1],
                active=int(found[2]),
                trialing=int(found[3]),
                past_due=int(found[4]),
                annual_amount=float(found[5]),
                new=int(found[6]),
                churned=int(found[7]),
                live_at_start=int(found[8]),
            )
            for found in (await self.session.execute(statement)).all()
        ]

    async def payments(
        self,
        projects: Collection[uuid.UUID] | None,
        mode: Mode,
        since: datetime,
        until: datetime,
    ) -> list[PaymentTotals]:
        row = Payment
        paid_in = (row.paid_at >= since) & (row.paid_at < until)
        created_in = (row.created >= since) & (row.created < until)
        paid = paid_in & row.status.in_(PAID)
        failed = created_in & (row.status == "failed")
        statement = (
            select(
                row.project_id,
                row.currency,
                _count(paid),
                _total(paid, row.amount),
                _total(paid, row.amount_refunded),
                _count(failed),
                _total(failed, row.amount),
            )
            # each window on its own index (ix_payments_paid_at, ix_payments_created)
            .where(row.mode == mode, *_among(row.project_id, projects), or_(paid_in, created_in))
            .group_by(row.project_id, row.currency)
        )
        return [
            PaymentTotals(
                project_id=found[0],
                currency=found[1],
                paid_count=int(found[2]),
                paid=int(found[3]),
                refunded=int(found[4]),
                failed_count=int(found[5]),
                failed=int(found[6]),
            )
            for found in (await self.session.execute(statement)).all()
        ]

    async def monthly(
        self,
        projects: Collection[uuid.UUID] | None,
        mode: Mode,
        months: list[datetime],
        now: datetime,
    ) -> list[MonthlyFigures]:
        """Per currency and month (`months`: the first instant of each, oldest first): the MRR
        at the month's end (or now) of the subscriptions live then (started, not ended, trial
        over) at their current amount, and the subscriptions started and ended in the month.
        One grouped query."""
        row = Subscription
        started = row.status.not_in(NEVER_STARTED)
        ends = [*months[1:], None]
        columns: list[Any] = [row.currency]
        for start, end in zip(months, ends, strict=True):
            moment = min(end, now) if end is not None else now
            live = (
                started
                & (row.started_at <= moment)
                & (row.ended_at.is_(None) | (row.ended_at > moment))
                & (row.trial_end.is_(None) | (row.trial_end <= moment))
            )
            if end is None:  # now: what bills now, as the MRR figure counts it
                live = live & row.status.in_(BILLING)
            columns += [
                _total(live, func.coalesce(row.annual_amount, 0.0)),
                _count(started & _within(row.started_at, start, end)),
                _count(started & _within(row.ended_at, start, end)),
            ]
        statement = (
            select(*columns)
            .where(row.mode == mode, *_among(row.project_id, projects))
            .group_by(row.currency)
        )
        found = []
        for values in (await self.session.execute(statement)).all():
            currency, rest = values[0], values[1:]
            found.append(
                MonthlyFigures(
                    currency=currency,
                    months=list(months),
                    mrr=[round(float(rest[i]) / 12, 2) for i in range(0, len(rest), 3)],
                    new=[int(rest[i]) for i in range(1, len(rest), 3)],
                    churned=[int(rest[i]) for i in range(2, len(rest), 3)],
                )
            )
        return found

    async def projects(self, projects: Collection[uuid.UUID] | None) -> list[Project]:
        statement = select(Project).where(*_among(Project.id, projects))
        return list((await self.session.scalars(statement.order_by(Project.name))).all())

    async def endpoints(self, projects: Collection[uuid.UUID] | None) -> list[EndpointState]:
        """Per project and mode with a configuration or an event: the active configuration's
        last check, the last event received and the events that failed for good."""
        configs = (
            await self.session.execute(
                select(
                    StripeConfig.project_id,
                    StripeConfig.mode,
                    StripeConfig.checked_at,
                    StripeConfig.check_valid,
                ).where(StripeConfig.is_active, *_among(StripeConfig.project_id, projects))
            )
        ).all()
        # the inbox keeps every event: the last one per (project, mode) is read from the end of
        # ix_webhook_events_received, and failures are counted on ix_webhook_events_failed
        failing = await self.session.execute(
            select(WebhookEvent.project_id, WebhookEvent.mode, func.count())
            .where(
                WebhookEvent.status == InboxStatus.FAILED,
                *_among(WebhookEvent.project_id, projects),
            )
            .group_by(WebhookEvent.project_id, WebhookEvent.mode)
        )
        failed = {(project_id, mode): int(count) for project_id, mode, count in failing.all()}
        shown = [project.id for project in await self.projects(projects)]
        events: list[tuple[uuid.UUID, Mode, datetime | None, int]] = []
        for project_id in shown:
            for mode in Mode:
                last = await self.session.scalar(
                    select(WebhookEvent.received_at)
                    .where(WebhookEvent.project_id == project_id, WebhookEvent.mode == mode)
                    .order_by(WebhookEvent.received_at.desc())
                    .limit(1)
                )
                if last is not None or (project_id, mode) in failed:
                    events.append((project_id, mode, last, failed.get((project_id, mode), 0)))
        found: dict[tuple[uuid.UUID, Mode], EndpointState] = {}
        for project_id, mode, checked_at, valid in configs:
            found[(project_id, mode)] = EndpointState(
                project_id, mode, True, checked_at, valid, None, 0
            )
        for project_id, mode, last_event_at, failures in events:
            known = found.get((project_id, mode))
            found[(project_id, mode)] = EndpointState(
                project_id,
                mode,
                known is not None,
                known.checked_at if known else None,
                known.check_valid if known else None,
                last_event_at,
                failures,
            )
        return list(found.values())
