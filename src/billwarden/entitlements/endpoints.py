"""HTTP routes for entitlements: reads and checks, answered from the snapshot (never Stripe)."""

from __future__ import annotations

from fastapi import APIRouter

from billwarden.auth import BillingCaller, EndUser, ProjectKey, end_user_subject
from billwarden.core.subjects import Subject, SubjectType
from billwarden.db.unit_of_work import DbSession
from billwarden.entitlements.schemas import (
    CheckResult,
    EntitlementCheck,
    EntitlementResponse,
    entitlement_fields,
)
from billwarden.entitlements.service import EntitlementService, check_feature
from billwarden.errors import error_responses
from billwarden.kit.subjects import SubjectId

router = APIRouter(prefix="/api/v1/entitlements", tags=["entitlements"])
routers = [router]


@router.get(
    "/me",
    response_model=EntitlementResponse,
    responses=error_responses(401),
    summary="The calling end user's entitlement (its organization's, when the token names one)",
)
async def my_entitlement(user: EndUser, session: DbSession) -> EntitlementResponse:
    view = await EntitlementService(session).view(
        user.project_id, user.mode, end_user_subject(user)
    )
    return EntitlementResponse.of(view)


@router.post(
    "/check",
    response_model=CheckResult,
    responses=error_responses(400, 401, 403),
    summary="May the subject use a feature? (end-user token, or API key naming the subject)",
)
async def check(body: EntitlementCheck, caller: BillingCaller, session: DbSession) -> CheckResult:
    subject = caller.subject(body.subject_type, body.subject_id)
    view = await EntitlementService(session).view(caller.project_id, caller.mode, subject)
    allowed, reason = check_feature(view, body.feature)
    return CheckResult(
        allowed=allowed, reason=reason, entitlement=entitlement_fields(view)["entitlement"]
    )


@router.get(
    "/{subject_type}/{subject_id}",
    response_model=EntitlementResponse,
    responses=error_responses(400, 401),
    summary="A subject's entitlement (project API key); the free one for an unknown subject",
)
async def subject_entitlement(
    subject_type: SubjectType, subject_id: SubjectId, key: ProjectKey, session: DbSession
) -> EntitlementResponse:
    view = await EntitlementService(session).view(
        key.project_id, key.mode, Subject(subject_type, subject_id)
    )
    return EntitlementResponse.of(view)
