"""Seed 000's routes (docs/migrating/000-parchment-console.md): the Parchment console's Stripe
lifecycle routes for the signed-in end user, its admin discrepancy tooling and its legacy docs
handoff.

The billing routes call the canonical checkout and self-service services as
`/api/v1/payments/stripe/checkout-session` (uiMode embedded), `/check-session`,
`/create-customer`, `/reconcile-session`, `/cancel-subscription` and `/resume-subscription` do.
The discrepancy routes compare every entitlement snapshot with what the mirror derives (the
reconciliation domain's snapshot_drift and role_mismatch, from the database alone) and repair by
recomputing, audited. Its webhook, `/api/stripe/webhook`, is one of the unscoped webhook routes
(compat/endpoints/webhooks.py); its API-key routes are identity's `/api-dashboard/keys/...`."""

from __future__ import annotations

import functools
import html
import uuid
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import Field, StrictBool, model_validator

from billwarden.audit.service import audit
from billwarden.auth import BillingPrincipal, EndUserCaller, SeedAdmin, SeedAdminPrincipal
from billwarden.checkout.schemas import (
    CustomerRead,
    PurchaseKey,
    Reconciled,
    SessionId,
    SessionStatus,
)
from billwarden.checkout.service import CheckoutRequest, CheckoutService
from billwarden.compat.endpoints.seeds import SEED_000
from billwarden.core.subjects import Subject, SubjectType
from billwarden.db.base import utcnow
from billwarden.db.unit_of_work import DbSession
from billwarden.entitlements.schemas import entitlement_fields
from billwarden.entitlements.service import EntitlementService
from billwarden.errors import error_responses
from billwarden.kit.schemas import CamelModel, Pages
from billwarden.kit.state import AppSecretBox, AppSettings, AppStripeGateway
from billwarden.reconciliation.exceptions import RecordNotFound, UnknownRepair
from billwarden.reconciliation.models import ReconcileRecord
from billwarden.reconciliation.schemas import RecordRead, Summary
from billwarden.reconciliation.service import RECOMPUTE, REPAIR_FOR_REASON, Reconciler
from billwarden.subscriptions.schemas import Changed, SubscriptionId, SubscriptionRead
from billwarden.subscriptions.service.self_service import SelfService

TAG = SEED_000
OVERVIEW_PATH = "/docs/api/overview"
stripe = APIRouter(prefix="/api/stripe", tags=[TAG])
admin = APIRouter(prefix="/api/admin", tags=[TAG])
docs = APIRouter(tags=[TAG])
routers = [stripe, admin, docs]
DISCREPANCY_PATHS = (
    "/billing-entitlement-discrepancies",
    "/stripe-role-discrepancies",  # the console's older name for the same handler
)


# --- Stripe lifecycle ---------------------------------------------------------------------------


class CreateCheckoutSession(CamelModel):
    """One of `purchaseKey` and `purchaseKeys`; neither buys the catalog's
    `default_purchase_key`."""

    purchase_key: PurchaseKey | None = None
    purchase_keys: list[PurchaseKey] | None = Field(default=None, min_length=1, max_length=10)

    @model_validator(mode="after")
    def _one_choice(self) -> CreateCheckoutSession:
        if self.purchase_key is not None and self.purchase_keys is not None:
            raise ValueError("give purchaseKey or purchaseKeys, not both")
        if self.purchase_keys is not None and len(set(self.purchase_keys)) != len(
            self.purchase_keys
        ):
            raise ValueError("purchaseKeys names a plan twice")
        return self


class EmbeddedCheckout(CamelModel):
    client_secret: str = Field(description="For Stripe.js embedded checkout.")
    session_id: str


class ReconcileSessionRequest(CamelModel):
    session_id: SessionId


class SessionReconciled(Reconciled):
    """The console's success-page answer: the session applied (once) and the entitlement."""

    processed: bool = Field(default=True, description="Always true: the session was handled.")


class SubscriptionChange(CamelModel):
    subscription_id: SubscriptionId


def _subject(caller: BillingPrincipal) -> Subject:
    subject = caller.own_subject
    assert subject is not None  # EndUserCaller: always an end user
    return subject


def _checkout(
    caller: BillingPrincipal, session: DbSession, gateway: AppStripeGateway, box: AppSecretBox
) -> CheckoutService:
    return CheckoutService(session, gateway, box, caller.project_id, caller.mode)


def _self_service(
    caller: BillingPrincipal, session: DbSession, gateway: AppStripeGateway, box: AppSecretBox
) -> SelfService:
    return SelfService(session, gateway, box, caller.project_id, caller.mode)


@stripe.post(
    "/create-checkout-session",
    response_model=EmbeddedCheckout,
    responses=error_responses(400, 401, 403, 409, 502),
    summary="Start an embedded Stripe Checkout for purchase keys",
)
async def create_checkout_session(
    body: CreateCheckoutSession,
    caller: EndUserCaller,
    session: DbSession,
    gateway: AppStripeGateway,
    box: AppSecretBox,
    settings: AppSettings,
) -> EmbeddedCheckout:
    """Unknown key 400 UNKNOWN_PURCHASE_KEY, not self-serve 400 NOT_SELF_SERVE; two plans of a
    family 409 FAMILY_CONFLICT; a family the caller holds already 409 ALREADY_SUBSCRIBED."""
    keys = body.purchase_keys or ([body.purchase_key] if body.purchase_key else [])
    created = await _checkout(caller, session, gateway, box).create_session(
        _subject(caller),
        CheckoutRequest(
            purchase_keys=keys,
            price_id=None,
            ui_mode="embedded",
            success_url=None,
            cancel_url=None,
        ),
        settings,
    )
    assert created.client_secret is not None  # an embedded session always has one
    return EmbeddedCheckout(client_secret=created.client_secret, session_id=created.session_id)


@stripe.get(
    "/check-session",
    response_model=SessionStatus,
    responses=error_responses(400, 401, 404, 409, 502),
    summary="The caller's checkout session as Stripe has it",
)
async def check_session(
    caller: EndUserCaller,
    session: DbSession,
    gateway: AppStripeGateway,
    box: AppSecretBox,
    session_id: Annotated[str, Query(min_length=1, max_length=255)],
) -> SessionStatus:
    """Another user's session, or none: 404 CHECKOUT_SESSION_NOT_FOUND."""
    obj = await _checkout(caller, session, gateway, box).fetch_session(session_id, _subject(caller))
    return SessionStatus.of(obj)


@stripe.post(
    "/create-customer",
    response_model=CustomerRead,
    responses=error_responses(400, 401, 403, 409, 502),
    summary="Create or reuse the caller's Stripe customer",
)
async def create_customer(
    caller: EndUserCaller, session: DbSession, gateway: AppStripeGateway, box: AppSecretBox
) -> CustomerRead:
    customer_id, created = await _checkout(caller, session, gateway, box).ensure_customer(
        _subject(caller)
    )
    return CustomerRead(customer_id=customer_id, created=created)


async def _changed(service: SelfService, subject: Subject, row: Any) -> Changed:
    plans = await service.plans()
    view = await service.sync.entitlements.view(service.project_id, service.mode, subject)
    return Changed(subscription=SubscriptionRead.of(row, plans), **entitlement_fields(view))


@stripe.post(
    "/cancel-subscription",
    response_model=Changed,
    responses=error_responses(400, 401, 403, 404, 409, 502),
    summary="Cancel the caller's membership subscription at the period's end",
)
async def cancel_subscription(
    body: SubscriptionChange,
    caller: EndUserCaller,
    session: DbSession,
    gateway: AppStripeGateway,
    box: AppSecretBox,
) -> Changed:
    """A subscription that also bundles other families (API, ...): 409 BUNDLED_SUBSCRIPTION."""
    service = _self_service(caller, session, gateway, box)
    subject = _subject(caller)
    row = await service.cancel(subject, body.subscription_id, at_period_end=True)
    return await _changed(service, subject, row)


@stripe.post(
    "/resume-subscription",
    response_model=Changed,
    responses=error_responses(400, 401, 403, 404, 409, 502),
    summary="Undo a scheduled cancellation, or resume a paused subscription",
)
async def resume_subscription(
    body: SubscriptionChange,
    caller: EndUserCaller,
    session: DbSession,
    gateway: AppStripeGateway,
    box: AppSecretBox,
) -> Changed:
    """A subscription that also bundles other families: 409 BUNDLED_SUBSCRIPTION; one that has
    ended: 409 NOT_RESUMABLE."""
    service = _self_service(caller, session, gateway, box)
    subject = _subject(caller)
    row = await service.resume(subject, body.subscription_id)
    return await _changed(service, subject, row)


async def reconcile_session(
    body: ReconcileSessionRequest,
    caller: EndUserCaller,
    session: DbSession,
    gateway: AppStripeGateway,
    box: AppSecretBox,
) -> SessionReconciled:
    """Apply a finished checkout now (once: `alreadyProcessed` when its webhook or an earlier
    call applied it) and answer the caller's entitlement."""
    subject = _subject(caller)
    service = _checkout(caller, session, gateway, box)
    obj = await service.fetch_session(body.session_id, subject)
    result = await service.apply_session(obj, None, subject=subject)
    view = await service.entitlements.view(
        caller.project_id, caller.mode, result.subject or subject
    )
    return SessionReconciled(
        session_id=str(obj["id"]),
        already_processed=result.already_processed,
        status=obj.get("status"),
        payment_status=obj.get("payment_status"),
        **entitlement_fields(view),
    )


for _path, _summary in (
    ("/reconcile-session", "Apply a finished checkout now (once) and answer the entitlement"),
    ("/verify-and-update-role", "The older success flows' name for reconcile-session"),
):
    stripe.add_api_route(
        _path,
        reconcile_session,
        methods=["POST"],
        response_model=SessionReconciled,
        responses=error_responses(400, 401, 403, 404, 409, 502),
        summary=_summary,
        name=f"seed000_{_path.strip('/').replace('-', '_')}",
    )


# --- admin: entitlement discrepancies -----------------------------------------------------------


class Discrepancies(CamelModel):
    checked_at: datetime
    summary: Summary = Field(description="Every subject checked: in sync and mismatched.")
    records: list[RecordRead] = Field(
        description="The mismatched subjects (paged), each with its reasons and differences."
    )
    matching: int = Field(description="Mismatched subjects in all (for paging).")


class DiscrepancyRepair(CamelModel):
    """`entitlementId` repairs that snapshot; `all: true` every mismatched one."""

    entitlement_id: uuid.UUID | None = None
    action: str = Field(default=RECOMPUTE, min_length=1, max_length=64)
    all: StrictBool = False

    @model_validator(mode="after")
    def _one_target(self) -> DiscrepancyRepair:
        if (self.entitlement_id is None) == (not self.all):
            raise ValueError("give entitlementId or all: true (one of them)")
        return self


class DiscrepanciesRepaired(CamelModel):
    repaired: int = Field(description="Snapshots recomputed.")
    records: list[RecordRead] = Field(description="Each repaired subject checked again.")


def _reconciler(principal: SeedAdminPrincipal, request: Request) -> Reconciler:
    state = request.app.state
    return Reconciler(
        None, state.stripe_gateway, state.secret_box, principal.project_id, principal.mode
    )


def _read(record: dict[str, Any]) -> RecordRead:
    return RecordRead.of(ReconcileRecord(**record))


def _subject_of(record: dict[str, Any]) -> Subject:
    return Subject(SubjectType(record["subject_type"]), record["subject_id"])


async def discrepancies(
    principal: SeedAdmin, request: Request, session: DbSession, pages: Pages
) -> Discrepancies:
    """Read from the database: no Stripe call."""
    records = await _reconciler(principal, request).check_snapshots(session)
    mismatched = sorted(
        (record for record in records if not record["in_sync"]),
        key=lambda record: (record["subject_type"], record["subject_id"]),
    )
    window = mismatched[pages.offset : pages.offset + pages.limit]
    return Discrepancies(
        checked_at=records[0]["checked_at"] if records else utcnow(),
        summary=Summary(
            total=len(records), in_sync=len(records) - len(mismatched), mismatched=len(mismatched)
        ),
        records=[_read(record) for record in window],
        matching=len(mismatched),
    )


async def repair_discrepancies(
    body: DiscrepancyRepair, principal: SeedAdmin, request: Request, session: DbSession
) -> DiscrepanciesRepaired:
    """Recompute the snapshot from the mirror (the reconciliation domain's `recompute`), audited
    with before and after. Another action: 400 UNKNOWN_REPAIR; no such entitlement: 404."""
    if body.action != RECOMPUTE:
        raise UnknownRepair(
            f"Unknown repair {body.action!r}: these routes only recompute.",
            details={"action": body.action},
        )
    reconciler = _reconciler(principal, request)
    if body.entitlement_id is not None:
        subject = await _entitlement_subject(session, principal, body.entitlement_id)
        chosen = await reconciler.check_snapshots(session, subject)
    else:
        chosen = [
            record
            for record in await reconciler.check_snapshots(session)
            if not record["in_sync"]
            and all(REPAIR_FOR_REASON[reason] == RECOMPUTE for reason in record["reasons"])
        ]
    entitlements = EntitlementService(session)
    checked = []
    for record in chosen:
        subject = _subject_of(record)
        snapshot = await entitlements.recompute(principal.project_id, principal.mode, subject)
        [after] = await reconciler.check_snapshots(session, subject)
        await audit(
            session,
            principal.actor,
            f"reconciliation.{RECOMPUTE}",
            project_id=principal.project_id,
            target_type="entitlement",
            target_id=snapshot.id,
            mode=principal.mode,
            before=record["local"],
            after=after["local"],
        )
        checked.append(after)
    return DiscrepanciesRepaired(
        repaired=len(checked), records=[_read(record) for record in checked]
    )


async def _entitlement_subject(
    session: DbSession, principal: SeedAdminPrincipal, entitlement_id: uuid.UUID
) -> Subject:
    snapshot = await EntitlementService(session).snapshots.get(entitlement_id)
    if (
        snapshot is None
        or snapshot.project_id != principal.project_id
        or snapshot.mode != principal.mode
    ):
        raise RecordNotFound(
            "No such entitlement in this project.",
            details={"entitlementId": str(entitlement_id)},
        )
    return Subject(SubjectType(snapshot.subject_type), snapshot.subject_id)


for _path in DISCREPANCY_PATHS:
    _name = _path.strip("/").replace("-", "_")
    admin.add_api_route(
        _path,
        discrepancies,
        methods=["GET"],
        response_model=Discrepancies,
        responses=error_responses(400, 401, 403, 404),
        summary="Entitlement snapshots that differ from what the mirror derives (admins)",
        name=f"seed000_{_name}",
    )
    admin.add_api_route(
        _path,
        repair_discrepancies,
        methods=["POST"],
        response_model=DiscrepanciesRepaired,
        responses=error_responses(400, 401, 403, 404),
        summary="Recompute one snapshot, or every mismatched one, audited (admins)",
        name=f"seed000_repair_{_name}",
    )


# --- docs handoff -------------------------------------------------------------------------------


async def docs_handoff() -> RedirectResponse:
    return RedirectResponse(OVERVIEW_PATH, status_code=307)


for _path in ("/api/docs", "/api-dashboard/docs"):
    docs.add_api_route(
        _path,
        docs_handoff,
        methods=["GET"],
        status_code=307,
        response_class=RedirectResponse,
        summary=f"The console's legacy docs link: redirects to {OVERVIEW_PATH}",
        name=f"seed000_docs_{_path.strip('/').replace('-', '_').replace('/', '_')}",
    )

# no script at all; the page's own style only
_OVERVIEW_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)
_GUIDES = Path(__file__).resolve().parents[4] / "docs" / "migrating"


@functools.cache
def _guides() -> tuple[str, ...]:
    """The migration guides' file names, when billwarden runs from its source tree."""
    return tuple(sorted(path.name for path in _GUIDES.glob("*.md"))) if _GUIDES.is_dir() else ()


def _seed_tags(request: Request) -> list[str]:
    """The drop-in surfaces' tags, as the OpenAPI document groups them."""
    paths = request.app.openapi().get("paths", {})
    return sorted(
        {
            tag
            for item in paths.values()
            for operation in item.values()
            if isinstance(operation, dict)
            for tag in operation.get("tags", ())
            if isinstance(tag, str) and tag.startswith("seed")
        }
    )


def _overview_html(tags: list[str], guides: tuple[str, ...]) -> str:
    surfaces = "".join(
        f'<li><a href="/docs#/{html.escape(quote(tag, safe=":"))}">{html.escape(tag)}</a></li>'
        for tag in tags
    )
    listed = "".join(f"<li><code>docs/migrating/{html.escape(name)}</code></li>" for name in guides)
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>API overview · billwarden</title>
<style>
  body {{ font: 15px/1.5 system-ui, sans-serif; max-width: 46rem; margin: 2rem auto;
          padding: 0 1rem; color: #1b1f24; }}
  a {{ color: #0b57d0; }}
  code {{ background: #eef1f5; padding: 0 .25rem; border-radius: 3px; }}
</style>
</head>
<body>
<main>
<h1>billwarden API overview</h1>
<p>billwarden is a self-hosted billing control plane for Stripe. Its canonical API lives under
<code>/api/v1</code>; the routes of the systems it replaces keep their own paths.</p>
<h2>Reference</h2>
<ul>
<li><a href="/docs">Interactive API documentation</a> (every route, grouped by tag)</li>
<li><a href="/openapi.json">The OpenAPI document</a> (<code>/openapi.json</code>)</li>
</ul>
<h2>Drop-in surfaces</h2>
<p>Each replaced system's routes, grouped in the interactive documentation:</p>
<ul>{surfaces}</ul>
<h2>Migration guides</h2>
<p>One per replaced system, in billwarden's documentation (<code>docs/migrating/</code>): what to
configure, which route maps where, and what differs.</p>
<ul>{listed}</ul>
</main>
</body>
</html>
"""


@docs.get(
    OVERVIEW_PATH,
    response_class=HTMLResponse,
    summary="The API overview page: the OpenAPI docs and the migration guides",
)
async def api_overview(request: Request) -> HTMLResponse:
    return HTMLResponse(
        _overview_html(_seed_tags(request), _guides()),
        headers={"Content-Security-Policy": _OVERVIEW_POLICY},
    )
