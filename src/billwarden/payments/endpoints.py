"""HTTP routes for payments: the subject's own (seed 002's my-payments), a project's lists, and
the figures across every project a console user can see (seed 002's aggregated routes)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from sqlalchemy.ext.asyncio import AsyncSession

from billwarden.auth import BillingCaller, CurrentConsoleUser, ProjectMemberAccess, member_access
from billwarden.core.modes import Mode
from billwarden.core.subjects import SubjectType
from billwarden.db.base import utcnow
from billwarden.db.unit_of_work import DbSession
from billwarden.errors import InvalidInput, error_responses
from billwarden.identity.models import User
from billwarden.kit.schemas import IsoDateTime
from billwarden.kit.subjects import SubjectId
from billwarden.payments.repository import ListFilters, PaymentFigures, ProjectLists
from billwarden.payments.schemas import (
    CrossProjectSubscription,
    CrossProjectSubscriptions,
    ModeState,
    PaymentList,
    PaymentProject,
    PaymentProjects,
    PaymentRead,
    PaymentStatsRead,
    ProjectPayment,
    ProjectPayments,
    ProjectSubscription,
    ProjectSubscriptions,
    Transaction,
    Transactions,
)
from billwarden.payments.service import payment_stats, payments_of
from billwarden.projects.service import MembershipService

router = APIRouter(prefix="/api/v1/payments/stripe", tags=["payments"])
projects = APIRouter(
    prefix="/api/v1/payments/stripe/projects/{project_id}",
    tags=["payments"],
    responses=error_responses(400, 401, 403, 404),
)
aggregated = APIRouter(
    prefix="/api/v1/payments", tags=["payments"], responses=error_responses(400, 401, 404)
)
routers = [router, projects, aggregated]
STATS_WINDOW = timedelta(days=30)
Limit = Annotated[int, Query(ge=1, le=100, description="Items per page.")]
StartingAfter = Annotated[
    str | None,
    Query(alias="startingAfter", min_length=1, max_length=255, description="The last id seen."),
]
TestMode = Annotated[bool, Query(description="true: test mode (default); false: live mode.")]
Since = Annotated[IsoDateTime | None, Query(alias="from", description="Created at or after.")]
Until = Annotated[IsoDateTime | None, Query(alias="to", description="Created before.")]
SubjectFilter = Annotated[str | None, Query(alias="subjectId", min_length=1, max_length=255)]
Status = Annotated[str | None, Query(min_length=1, max_length=32)]


def _window_start(end: datetime) -> datetime:
    """STATS_WINDOW before `end`, or the first moment there is (a window ending in the year 1)."""
    try:
        return end - STATS_WINDOW
    except OverflowError:
        return datetime.min.replace(tzinfo=UTC)


def _aware(value: datetime | None) -> datetime | None:
    # a time without an offset is read as UTC
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


@router.get(
    "/my-payments",
    response_model=PaymentList,
    responses=error_responses(400, 401, 403),
    summary="The subject's invoices and one-time payments, newest first",
)
async def my_payments(
    caller: BillingCaller,
    session: DbSession,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    starting_after: Annotated[
        str | None, Query(alias="startingAfter", min_length=1, max_length=255)
    ] = None,
    subject_type: Annotated[SubjectType, Query(alias="subjectType")] = SubjectType.USER,
    subject_id: Annotated[SubjectId | None, Query(alias="subjectId")] = None,
) -> PaymentList:
    subject = caller.subject(subject_type, subject_id)
    rows = await payments_of(
        session,
        caller.project_id,
        caller.mode,
        subject,
        limit=limit + 1,
        starting_after=starting_after,
    )
    return PaymentList(
        data=[PaymentRead.of(row) for row in rows[:limit]], has_more=len(rows) > limit
    )


async def list_filters(
    limit: Limit = 20,
    starting_after: StartingAfter = None,
    test_mode: TestMode = True,
    status: Status = None,
    subject_id: SubjectFilter = None,
    since: Since = None,
    until: Until = None,
) -> ListFilters:
    """The lists' query: one more than `limit` is read, to tell whether more follow."""
    return ListFilters(
        mode=Mode.TEST if test_mode else Mode.LIVE,
        status=status,
        subject_id=subject_id,
        since=_aware(since),
        until=_aware(until),
        starting_after=starting_after,
        limit=limit + 1,
    )


Filters = Annotated[ListFilters, Depends(list_filters)]


@projects.get(
    "/subscriptions",
    response_model=ProjectSubscriptions,
    summary="The project's subscriptions, newest first (members)",
)
async def project_subscriptions(
    access: ProjectMemberAccess, session: DbSession, filters: Filters
) -> ProjectSubscriptions:
    rows = await ProjectLists(session).subscriptions([access.project.id], filters)
    shown = filters.limit - 1
    return ProjectSubscriptions(
        data=[ProjectSubscription.of(row) for row in rows[:shown]], has_more=len(rows) > shown
    )


@projects.get(
    "/payments",
    response_model=ProjectPayments,
    summary="The project's invoices and one-time payments, newest first (members)",
)
async def project_payments(
    access: ProjectMemberAccess, session: DbSession, filters: Filters
) -> ProjectPayments:
    rows = await ProjectLists(session).payments([access.project.id], filters)
    shown = filters.limit - 1
    return ProjectPayments(
        data=[ProjectPayment.of_row(row) for row in rows[:shown]], has_more=len(rows) > shown
    )


# --- across every project the console user can see ------------------------------------------

ProjectFilter = Annotated[
    uuid.UUID | None,
    Query(alias="projectId", description="Only this project (one the caller can see)."),
]


async def visible_projects(
    session: AsyncSession, user: User, project_id: uuid.UUID | None
) -> list[uuid.UUID] | None:
    """The projects the user can see (None: every project, for a superuser), or only
    `project_id`, which the user must be able to see (404 PROJECT_NOT_FOUND otherwise)."""
    if project_id is not None:
        await member_access(session, user, project_id)
        return [project_id]
    if user.is_superuser:
        return None
    _, memberships = await MembershipService(session).project_ids_of(user)
    return memberships


@aggregated.get(
    "/subscriptions",
    response_model=CrossProjectSubscriptions,
    summary="Subscriptions of every project the caller can see, newest first (console users)",
)
async def all_subscriptions(
    user: CurrentConsoleUser, session: DbSession, filters: Filters, project_id: ProjectFilter = None
) -> CrossProjectSubscriptions:
    projects_seen = await visible_projects(session, user, project_id)
    rows = await ProjectLists(session).subscriptions(projects_seen, filters)
    shown = filters.limit - 1
    return CrossProjectSubscriptions(
        data=[CrossProjectSubscription.of_row(row) for row in rows[:shown]],
        has_more=len(rows) > shown,
    )


@aggregated.get(
    "/transactions",
    response_model=Transactions,
    summary="Invoices and one-time payments of every project the caller can see, newest first",
)
async def all_transactions(
    user: CurrentConsoleUser, session: DbSession, filters: Filters, project_id: ProjectFilter = None
) -> Transactions:
    projects_seen = await visible_projects(session, user, project_id)
    rows = await ProjectLists(session).payments(projects_seen, filters)
    shown = filters.limit - 1
    return Transactions(
        data=[Transaction.of_payment(row) for row in rows[:shown]], has_more=len(rows) > shown
    )


@aggregated.get(
    "/projects",
    response_model=PaymentProjects,
    summary="Every project the caller can see, with its Stripe set-up per mode",
)
async def payment_projects(user: CurrentConsoleUser, session: DbSession) -> PaymentProjects:
    projects_seen = await visible_projects(session, user, None)
    figures = PaymentFigures(session)
    states = {
        (state.project_id, state.mode): state for state in await figures.endpoints(projects_seen)
    }
    return PaymentProjects(
        data=[
            PaymentProject(
                project_id=project.id,
                name=project.name,
                slug=project.slug,
                test=ModeState.of(states.get((project.id, Mode.TEST))),
                live=ModeState.of(states.get((project.id, Mode.LIVE))),
            )
            for project in await figures.projects(projects_seen)
        ]
    )


@aggregated.get(
    "/stats",
    response_model=PaymentStatsRead,
    summary="Subscription counts, MRR, ARR, revenue, failed payments and churn, per currency",
)
async def stats(
    user: CurrentConsoleUser,
    session: DbSession,
    test_mode: TestMode = True,
    since: Annotated[
        IsoDateTime | None, Query(alias="from", description="Default: 30 days before `to`.")
    ] = None,
    until: Annotated[IsoDateTime | None, Query(alias="to", description="Default: now.")] = None,
    project_id: ProjectFilter = None,
) -> PaymentStatsRead:
    """Counts now (active, trialing, past_due) and over the window [from, to): per project the
    caller can see, and in total; money per currency, never summed across currencies."""
    end = _aware(until) or utcnow()
    start = _aware(since) or _window_start(end)
    if start >= end:
        raise InvalidInput("`from` must be before `to`.", details={"field": "from"})
    projects_seen = await visible_projects(session, user, project_id)
    mode = Mode.TEST if test_mode else Mode.LIVE
    figures = await payment_stats(session, projects_seen, mode, start, end)
    return PaymentStatsRead.of(figures, test_mode=test_mode, since=start, until=end)
