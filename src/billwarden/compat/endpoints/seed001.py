"""Seed 001's routes (docs/migrating/001-entitlement-store.md): the entitlement store's checkout,
the signed-in user's entitlement, and the owners' reconciliation with its two repairs.

Checkout and the entitlement act for the end user's own subject (EndUserCaller), through the
canonical checkout and entitlement services. The reconciliation reads Stripe live, as the seed
does: each GET compares the whole project's mode with Stripe in-process (reconciliation's
Reconciler, the comparison a run makes) and stores nothing, so it always shows the current state
and a run under way neither blocks it nor is disturbed by it. Repairs go through reconciliation's
Repairs, audited with the caller, and answer the record checked again."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Request
from pydantic import Field

from billwarden.auth import EndUserCaller, SeedAdmin
from billwarden.checkout.schemas import PurchaseKey, Url
from billwarden.checkout.service import CheckoutRequest, CheckoutService
from billwarden.compat.endpoints.seeds import SEED_001
from billwarden.core.subjects import Subject, SubjectType
from billwarden.db.unit_of_work import DbSession
from billwarden.entitlements.repository import EntitlementRepository
from billwarden.entitlements.schemas import EntitlementRecord, EntitlementResponse
from billwarden.entitlements.service import EntitlementService
from billwarden.errors import error_responses
from billwarden.kit.schemas import CamelModel
from billwarden.kit.state import AppSecretBox, AppSettings, AppStripeGateway
from billwarden.reconciliation.exceptions import RecordNotFound, UnknownRepair
from billwarden.reconciliation.models import ReconcileRecord
from billwarden.reconciliation.schemas import RecordRead, Summary
from billwarden.reconciliation.service import REPAIRS, Reconciler, Repairs

router = APIRouter(tags=[SEED_001])
routers = [router]


class CheckoutBody(CamelModel):
    plan: PurchaseKey | None = Field(
        default=None,
        description="A purchase key of the catalog (premium_monthly, premium_yearly); absent: "
        "the catalog's default_purchase_key.",
    )
    success_url: Url | None = None
    cancel_url: Url | None = None


class CheckoutStarted(CamelModel):
    url: str | None = Field(description="Stripe's hosted checkout page.")
    session_id: str


class ReconciliationRecord(RecordRead):
    user_external_id: str | None = Field(
        description="The record's user (its subject's id); null for a Stripe subscription of "
        "no known subject."
    )


class LiveReconciliation(CamelModel):
    stripe_available: bool = Field(
        description="Whether Stripe could be read to the end; false: the records compare the "
        "database alone."
    )
    stripe_error: str | None
    summary: Summary
    records: list[ReconciliationRecord] = Field(description="Mismatched first.")


class RepairBody(CamelModel):
    entitlement_id: uuid.UUID
    action: str = Field(
        min_length=1,
        max_length=64,
        description="sync_from_stripe or reset_to_free (billwarden also takes recompute).",
    )
    reason: str | None = Field(default=None, max_length=2000, description="Kept in the audit log.")


class Repaired(CamelModel):
    record: ReconciliationRecord = Field(description="The record checked again against Stripe.")
    entitlement: EntitlementRecord = Field(description="The entitlement after the repair.")
    has_premium_access: bool


@router.post(
    "/api/checkout",
    response_model=CheckoutStarted,
    responses=error_responses(400, 401, 409, 502),
    summary="Start a Stripe Checkout for the signed-in user's plan; seeds an INCOMPLETE "
    "entitlement",
)
async def checkout(
    body: CheckoutBody,
    caller: EndUserCaller,
    session: DbSession,
    gateway: AppStripeGateway,
    box: AppSecretBox,
    settings: AppSettings,
) -> CheckoutStarted:
    subject = caller.own_subject
    assert subject is not None  # EndUserCaller: always an end user
    created = await CheckoutService(
        session, gateway, box, caller.project_id, caller.mode
    ).create_session(
        subject,
        CheckoutRequest(
            purchase_keys=[body.plan] if body.plan is not None else [],
            price_id=None,
            ui_mode="hosted",
            success_url=body.success_url,
            cancel_url=body.cancel_url,
        ),
        settings,
    )
    return CheckoutStarted(url=created.url, session_id=created.session_id)


@router.get(
    "/api/premium/entitlement",
    response_model=EntitlementResponse,
    responses=error_responses(401),
    summary="The signed-in user's entitlement and access decision (its organization's, when "
    "the token names one)",
)
async def premium_entitlement(caller: EndUserCaller, session: DbSession) -> EntitlementResponse:
    subject = caller.own_subject
    assert subject is not None
    view = await EntitlementService(session).view(caller.project_id, caller.mode, subject)
    return EntitlementResponse.of(view)


def _record(found: dict[str, Any]) -> ReconciliationRecord:
    """A record as the reconciler returns it, in the canonical record's wire shape."""
    read = RecordRead.of(ReconcileRecord(**found))
    return ReconciliationRecord(
        **read.model_dump(), user_external_id=read.subject.id if read.subject else None
    )


@router.get(
    "/api/admin/billing/reconciliation",
    response_model=LiveReconciliation,
    responses=error_responses(401, 403, 404),
    summary="Every entitlement and subscription compared with Stripe now (owners and admins)",
)
async def reconciliation(
    principal: SeedAdmin,
    request: Request,
    gateway: AppStripeGateway,
    box: AppSecretBox,
) -> LiveReconciliation:
    """Reads all of Stripe's subscriptions of the project's mode on every call (100 a page):
    for large accounts, use the stored runs of /api/v1/admin/billing/reconciliation."""
    reconciler = Reconciler(
        request.app.state.sessionmaker, gateway, box, principal.project_id, principal.mode
    )
    found = await reconciler.run()
    records = sorted(
        (_record(record) for record in found),
        key=lambda record: (record.in_sync, record.user_external_id or "", record.subscription_ids),
    )
    in_sync = sum(1 for record in records if record.in_sync)
    return LiveReconciliation(
        stripe_available=reconciler.stripe_available,
        stripe_error=reconciler.stripe_error,
        summary=Summary(total=len(records), in_sync=in_sync, mismatched=len(records) - in_sync),
        records=records,
    )


@router.post(
    "/api/admin/billing/reconciliation",
    response_model=Repaired,
    responses=error_responses(400, 401, 403, 404, 409, 502),
    summary="Repair one entitlement: sync_from_stripe or reset_to_free, audited (owners and "
    "admins)",
)
async def repair(
    body: RepairBody,
    principal: SeedAdmin,
    session: DbSession,
    gateway: AppStripeGateway,
    box: AppSecretBox,
) -> Repaired:
    """`sync_from_stripe`: Stripe's subscriptions of the user into billwarden, then the
    entitlement from them; `reset_to_free`: the entitlement back to free (Stripe and the
    subscriptions billwarden holds untouched). Unknown action 400 UNKNOWN_REPAIR; no such
    entitlement 404 RECORD_NOT_FOUND."""
    if body.action not in REPAIRS:
        raise UnknownRepair(
            f"Unknown repair {body.action!r}: one of {', '.join(REPAIRS)}.",
            details={"action": body.action},
        )
    snapshot = await EntitlementRepository(session).get(body.entitlement_id)
    if (
        snapshot is None
        or snapshot.project_id != principal.project_id
        or snapshot.mode != principal.mode
    ):
        raise RecordNotFound(
            "No such entitlement.", details={"entitlementId": str(body.entitlement_id)}
        )
    subject = Subject(SubjectType(snapshot.subject_type), snapshot.subject_id)
    known = [snapshot.stripe_subscription_id] if snapshot.stripe_subscription_id else []
    project_id, mode = principal.project_id, principal.mode
    before = await Reconciler(None, gateway, box, project_id, mode).check_subject(
        session, subject, known
    )
    checked = await Repairs(session, gateway, box, project_id, mode).repair_found(
        before, body.action, principal.actor, body.reason
    )
    view = await EntitlementService(session).view(project_id, mode, subject)
    answer = EntitlementResponse.of(view)
    return Repaired(
        record=_record(checked),
        entitlement=answer.entitlement,
        has_premium_access=answer.has_premium_access,
    )
