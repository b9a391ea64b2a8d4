"""HTTP routes for self-service billing (seed 002's paths): the subject's subscriptions, cancel,
resume, plan changes and the billing portal. An end-user token acts for its own subject; a
project API key names the subject (`subjectType`, `subjectId`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from billwarden.auth import BillingCaller, BillingPrincipal
from billwarden.core.subjects import Subject, SubjectType
from billwarden.db.unit_of_work import DbSession
from billwarden.entitlements.schemas import entitlement_fields
from billwarden.errors import error_responses
from billwarden.kit.state import AppSecretBox, AppSettings, AppStripeGateway
from billwarden.kit.subjects import SubjectId
from billwarden.subscriptions.models import Subscription
from billwarden.subscriptions.schemas import (
    CancelSubscription,
    Changed,
    MySubscriptions,
    PortalRequest,
    PortalSession,
    ResumeSubscription,
    SubscriptionRead,
    UpdateSubscription,
)
from billwarden.subscriptions.service.self_service import SelfService
from billwarden.subscriptions.service.sync import ENDED

router = APIRouter(prefix="/api/v1/payments/stripe", tags=["self-service"])
routers = [router]
CHANGES = error_responses(400, 401, 403, 404, 409, 502)


def _service(
    caller: BillingPrincipal, session: DbSession, gateway: AppStripeGateway, box: AppSecretBox
) -> SelfService:
    return SelfService(session, gateway, box, caller.project_id, caller.mode)


async def _changed(service: SelfService, subject: Subject, row: Subscription) -> Changed:
    plans = await service.plans()
    view = await service.sync.entitlements.view(service.project_id, service.mode, subject)
    return Changed(subscription=SubscriptionRead.of(row, plans), **entitlement_fields(view))


@router.get(
    "/my-subscription",
    response_model=MySubscriptions,
    responses=error_responses(400, 401, 403),
    summary="The subject's subscriptions, from the mirror",
)
async def my_subscription(
    caller: BillingCaller,
    session: DbSession,
    gateway: AppStripeGateway,
    box: AppSecretBox,
    subject_type: Annotated[SubjectType, Query(alias="subjectType")] = SubjectType.USER,
    subject_id: Annotated[SubjectId | None, Query(alias="subjectId")] = None,
) -> MySubscriptions:
    subject = caller.subject(subject_type, subject_id)
    service = _service(caller, session, gateway, box)
    plans = await service.plans()
    rows = await service.subscriptions(subject)
    reads = [SubscriptionRead.of(row, plans) for row in rows]
    live = [row for row in rows if row.status not in ENDED]
    leading = next((row for row in live if plans.in_primary(row)), None) or (
        live[0] if live else (rows[0] if rows else None)
    )
    return MySubscriptions(
        subscription=SubscriptionRead.of(leading, plans) if leading is not None else None,
        subscriptions=reads,
    )


@router.post(
    "/cancel-subscription",
    response_model=Changed,
    responses=CHANGES,
    summary="Cancel the subject's subscription (at the period's end by default)",
)
async def cancel_subscription(
    body: CancelSubscription,
    caller: BillingCaller,
    session: DbSession,
    gateway: AppStripeGateway,
    box: AppSecretBox,
) -> Changed:
    subject = caller.subject(body.subject_type, body.subject_id)
    service = _service(caller, session, gateway, box)
    row = await service.cancel(subject, body.subscription_id, at_period_end=body.at_period_end)
    return await _changed(service, subject, row)


@router.post(
    "/resume-subscription",
    response_model=Changed,
    responses=CHANGES,
    summary="Undo a scheduled cancellation, or resume a paused subscription",
)
async def resume_subscription(
    body: ResumeSubscription,
    caller: BillingCaller,
    session: DbSession,
    gateway: AppStripeGateway,
    box: AppSecretBox,
) -> Changed:
    subject = caller.subject(body.subject_type, body.subject_id)
    service = _service(caller, session, gateway, box)
    row = await service.resume(subject, body.subscription_id)
    return await _changed(service, subject, row)


@router.post(
    "/update-subscription",
    response_model=Changed,
    responses=CHANGES,
    summary="Change to another plan of the same family; the other items stay",
)
async def update_subscription(
    body: UpdateSubscription,
    caller: BillingCaller,
    session: DbSession,
    gateway: AppStripeGateway,
    box: AppSecretBox,
) -> Changed:
    subject = caller.subject(body.subject_type, body.subject_id)
    service = _service(caller, session, gateway, box)
    row = await service.change_plan(
        subject, body.purchase_key, body.subscription_id, body.proration_behavior
    )
    return await _changed(service, subject, row)


@router.post(
    "/customer-portal",
    response_model=PortalSession,
    responses=error_responses(400, 401, 403, 404, 409, 502),
    summary="A Stripe billing-portal session for the subject's customer",
)
async def customer_portal(
    caller: BillingCaller,
    session: DbSession,
    gateway: AppStripeGateway,
    box: AppSecretBox,
    settings: AppSettings,
    body: PortalRequest | None = None,
) -> PortalSession:
    body = body or PortalRequest()
    subject = caller.subject(body.subject_type, body.subject_id)
    return_url = body.return_url or f"{settings.public_url}/billing"
    url = await _service(caller, session, gateway, box).portal(subject, return_url)
    return PortalSession(url=url)
