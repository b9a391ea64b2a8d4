"""HTTP routes for checkout: sessions, the subject's customer, check- and reconcile-session.

Each takes an end-user JWT (acting for its own subject) or a project API key (naming the
subject in the request)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from billwarden.auth import BillingCaller
from billwarden.checkout.schemas import (
    CheckoutSessionCreate,
    CheckoutSessionCreated,
    CustomerCreate,
    CustomerRead,
    Reconciled,
    ReconcileSession,
    SessionStatus,
)
from billwarden.checkout.service import CheckoutRequest, CheckoutService
from billwarden.core.subjects import SubjectType
from billwarden.db.unit_of_work import DbSession
from billwarden.entitlements.schemas import entitlement_fields
from billwarden.errors import error_responses
from billwarden.kit.state import AppSecretBox, AppSettings, AppStripeGateway
from billwarden.kit.subjects import SubjectId

router = APIRouter(prefix="/api/v1/payments/stripe", tags=["checkout"])
routers = [router]


def _service(
    caller: BillingCaller, session: DbSession, gateway: AppStripeGateway, box: AppSecretBox
) -> CheckoutService:
    return CheckoutService(session, gateway, box, caller.project_id, caller.mode)


@router.post(
    "/checkout-session",
    status_code=201,
    response_model=CheckoutSessionCreated,
    response_model_exclude_none=True,
    responses=error_responses(400, 401, 403, 409, 502),
    summary="Start a Stripe Checkout for purchase keys (or an allowed price)",
)
async def create_checkout_session(
    body: CheckoutSessionCreate,
    caller: BillingCaller,
    session: DbSession,
    gateway: AppStripeGateway,
    box: AppSecretBox,
    settings: AppSettings,
) -> CheckoutSessionCreated:
    subject = caller.subject(body.subject_type, body.subject_id)
    keys = body.purchase_keys or ([body.purchase_key] if body.purchase_key else [])
    created = await _service(caller, session, gateway, box).create_session(
        subject,
        CheckoutRequest(
            purchase_keys=keys,
            price_id=body.price_id,
            ui_mode=body.ui_mode,
            success_url=body.success_url,
            cancel_url=body.cancel_url,
        ),
        settings,
    )
    return CheckoutSessionCreated(
        session_id=created.session_id, url=created.url, client_secret=created.client_secret
    )


@router.post(
    "/create-customer",
    response_model=CustomerRead,
    responses=error_responses(400, 401, 403, 409, 502),
    summary="Create or reuse the subject's Stripe customer",
)
async def create_customer(
    caller: BillingCaller,
    session: DbSession,
    gateway: AppStripeGateway,
    box: AppSecretBox,
    body: CustomerCreate | None = None,
) -> CustomerRead:
    body = body or CustomerCreate()
    subject = caller.subject(body.subject_type, body.subject_id)
    customer_id, created = await _service(caller, session, gateway, box).ensure_customer(subject)
    return CustomerRead(customer_id=customer_id, created=created)


@router.get(
    "/check-session",
    response_model=SessionStatus,
    responses=error_responses(400, 401, 403, 404, 409, 502),
    summary="A checkout session's status as Stripe has it",
)
async def check_session(
    caller: BillingCaller,
    session: DbSession,
    gateway: AppStripeGateway,
    box: AppSecretBox,
    session_id: Annotated[str, Query(min_length=1, max_length=255)],
    subject_type: Annotated[SubjectType, Query(alias="subjectType")] = SubjectType.USER,
    subject_id: Annotated[SubjectId | None, Query(alias="subjectId")] = None,
) -> SessionStatus:
    subject = caller.own_subject or (
        caller.subject(subject_type, subject_id) if subject_id is not None else None
    )
    obj = await _service(caller, session, gateway, box).fetch_session(session_id, subject)
    return SessionStatus.of(obj)


@router.post(
    "/reconcile-session",
    response_model=Reconciled,
    responses=error_responses(400, 401, 403, 404, 409, 502),
    summary="Apply a finished checkout now (once) and answer the subject's entitlement",
)
async def reconcile_session(
    body: ReconcileSession,
    caller: BillingCaller,
    session: DbSession,
    gateway: AppStripeGateway,
    box: AppSecretBox,
) -> Reconciled:
    subject = caller.own_subject or (
        caller.subject(body.subject_type, body.subject_id) if body.subject_id else None
    )
    service = _service(caller, session, gateway, box)
    obj = await service.fetch_session(body.session_id, subject)
    result = await service.apply_session(obj, None, subject=subject)
    owner = result.subject or subject
    assert owner is not None  # fetch_session answers only sessions with an owner
    view = await service.entitlements.view(caller.project_id, caller.mode, owner)
    return Reconciled(
        session_id=str(obj["id"]),
        already_processed=result.already_processed,
        status=obj.get("status"),
        payment_status=obj.get("payment_status"),
        **entitlement_fields(view),
    )
