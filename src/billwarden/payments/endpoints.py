"""HTTP routes for the subject's own payments (seed 002's my-payments)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from billwarden.auth import BillingCaller
from billwarden.core.subjects import SubjectType
from billwarden.db.unit_of_work import DbSession
from billwarden.errors import error_responses
from billwarden.kit.subjects import SubjectId
from billwarden.payments.schemas import PaymentList, PaymentRead
from billwarden.payments.service import payments_of

router = APIRouter(prefix="/api/v1/payments/stripe", tags=["payments"])
routers = [router]


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
