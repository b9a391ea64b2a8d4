"""HTTP routes for the subject's own payments (seed 002's my-payments)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from billwarden.auth import BillingCaller, ProjectMemberAccess
from billwarden.core.modes import Mode
from billwarden.core.subjects import SubjectType
from billwarden.db.unit_of_work import DbSession
from billwarden.errors import error_responses
from billwarden.kit.subjects import SubjectId
from billwarden.payments.repository import ListFilters, ProjectLists
from billwarden.payments.schemas import (
    PaymentList,
    PaymentRead,
    ProjectPayment,
    ProjectPayments,
    ProjectSubscription,
    ProjectSubscriptions,
)
from billwarden.payments.service import payments_of

router = APIRouter(prefix="/api/v1/payments/stripe", tags=["payments"])
projects = APIRouter(
    prefix="/api/v1/payments/stripe/projects/{project_id}",
    tags=["payments"],
    responses=error_responses(400, 401, 403, 404),
)
routers = [router, projects]
Limit = Annotated[int, Query(ge=1, le=100, description="Items per page.")]
StartingAfter = Annotated[
    str | None,
    Query(alias="startingAfter", min_length=1, max_length=255, description="The last id seen."),
]
TestMode = Annotated[bool, Query(description="true: test mode (default); false: live mode.")]
Since = Annotated[datetime | None, Query(alias="from", description="Created at or after.")]
Until = Annotated[datetime | None, Query(alias="to", description="Created before.")]
SubjectFilter = Annotated[str | None, Query(alias="subjectId", min_length=1, max_length=255)]
Status = Annotated[str | None, Query(min_length=1, max_length=32)]


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
    rows = await ProjectLists(session).subscriptions(access.project.id, filters)
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
    rows = await ProjectLists(session).payments(access.project.id, filters)
    shown = filters.limit - 1
    return ProjectPayments(
        data=[ProjectPayment.of_row(row) for row in rows[:shown]], has_more=len(rows) > shown
    )
