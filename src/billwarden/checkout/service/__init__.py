"""Checkout: sessions from purchase keys, the subject's customer, and applying a completed
session exactly once, whether its webhook or the success page's reconcile-session comes first.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncSession

from billwarden.catalog.service import CatalogPricing, CatalogService
from billwarden.catalog.service.document import LOOKUP_PREFIX, CatalogDocument
from billwarden.checkout.exceptions import (
    AlreadySubscribed,
    CheckoutSessionNotFound,
    FamilyConflict,
    NothingToBuy,
    NotSelfServe,
    PriceNotAllowed,
    PriceNotResolved,
    UnknownPurchaseKey,
)
from billwarden.checkout.models import CheckoutSession
from billwarden.checkout.repository import CheckoutSessionRepository
from billwarden.config import Settings
from billwarden.core.modes import Mode
from billwarden.core.subjects import Subject, SubjectType
from billwarden.crypto import SecretBox
from billwarden.db.base import utcnow
from billwarden.db.locks import lock_name
from billwarden.entitlements.service import EntitlementView
from billwarden.payments.service import PaymentsService
from billwarden.projects.repository import ProjectRepository
from billwarden.stripe_gateway import StripeGateway
from billwarden.subscriptions.service import (
    META_MODE,
    META_PROJECT,
    META_PURCHASE_KEYS,
    META_SUBJECT_ID,
    META_SUBJECT_TYPE,
    EventStamp,
    customer_id_of,
    subject_from_metadata,
)
from billwarden.subscriptions.service.sync import SubscriptionSync

MAX_PURCHASE_KEYS = 10
_SESSION_ID = re.compile(r"cs_[A-Za-z0-9_]{1,250}")
# a family with one of these already is not sold again (cancel or change plan instead)
HOLDING_STATUSES = frozenset({"active", "trialing", "past_due", "paused"})
UiMode = Literal["hosted", "embedded"]


@dataclass(frozen=True)
class CheckoutRequest:
    purchase_keys: list[str]  # empty: price_id, or the catalog's default
    price_id: str | None
    ui_mode: UiMode
    success_url: str | None
    cancel_url: str | None


@dataclass(frozen=True)
class CreatedSession:
    session_id: str
    url: str | None
    client_secret: str | None


@dataclass(frozen=True)
class Reconciled:
    already_processed: bool
    subject: Subject | None
    entitlement: EntitlementView | None


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class CheckoutService:
    def __init__(
        self,
        session: AsyncSession,
        gateway: StripeGateway,
        secret_box: SecretBox,
        project_id: uuid.UUID,
        mode: Mode,
    ) -> None:
        self.session = session
        self.gateway = gateway
        self.project_id = project_id
        self.mode = mode
        # what applies a session's subscription is what applies the webhooks' (and its key)
        self._sync = SubscriptionSync(session, gateway, secret_box, project_id, mode)
        self.mirror = self._sync.mirror
        self.entitlements = self._sync.entitlements
        self.sessions = CheckoutSessionRepository(session)

    async def secret_key(self) -> str:
        """The project's key for this mode; 409 STRIPE_NOT_CONFIGURED without one."""
        return await self._sync.secret_key()

    def sync(self) -> SubscriptionSync:
        return self._sync

    # --- customers ---------------------------------------------------------------------------

    async def ensure_customer(self, subject: Subject) -> tuple[str, bool]:
        """The subject's Stripe customer, created when it has none; (id, created). Callers for
        one subject take turns (a lock on the subject), so concurrent ones find the first one's
        customer; the mapping is unique on (project, mode, subject) besides."""
        await lock_name(
            self.session,
            f"customer:{self.project_id}:{self.mode.value}:{subject.type.value}:{subject.id}",
        )
        existing = await self.mirror.customer_of(self.project_id, self.mode, subject)
        if existing is not None and not existing.deleted:
            return existing.stripe_customer_id, False
        # the key names what is sent (a retry after a rollback gets the same customer back,
        # another member's email a new one) and the customer replaced, if any
        generation = existing.stripe_customer_id if existing is not None else "first"
        key = (
            f"bw-customer:{self.project_id}:{self.mode.value}:{subject.type.value}:"
            f"{_digest(subject.id)}:{_digest(generation + '|' + (subject.email or ''))}"
        )
        customer = await self.gateway.create_customer(
            self.project_id,
            self.mode,
            await self.secret_key(),
            email=subject.email,
            metadata=self._metadata(subject),
            idempotency_key=key,
        )
        customer_id = str(customer["id"])
        if existing is not None:
            await self.mirror.replace_deleted_customer(existing, customer_id, subject.email)
            return customer_id, True
        row, inserted = await self.mirror.map_customer(
            self.project_id, self.mode, subject, customer_id, subject.email
        )
        return row.stripe_customer_id, inserted

    def _metadata(self, subject: Subject, purchase_keys: Sequence[str] = ()) -> dict[str, str]:
        metadata = {
            META_PROJECT: str(self.project_id),
            META_MODE: self.mode.value,
            META_SUBJECT_TYPE: subject.type.value,
            META_SUBJECT_ID: subject.id,
            "userExternalId": subject.id,
        }
        if purchase_keys:
            metadata[META_PURCHASE_KEYS] = ",".join(purchase_keys)[:500]
        if subject.email:
            metadata["userEmail"] = subject.email[:500]
        return metadata

    # --- creating a session ------------------------------------------------------------------

    async def create_session(
        self, subject: Subject, request: CheckoutRequest, settings: Settings
    ) -> CreatedSession:
        secret_key = await self.secret_key()  # STRIPE_NOT_CONFIGURED before anything else
        loaded = await CatalogService(self.session).current(self.project_id)
        catalog = loaded.document if loaded is not None else None
        keys, price_ids, recurring = await self._what_to_sell(catalog, request, settings)
        if catalog is not None and keys:
            await self._refuse_held_families(subject, catalog, keys)
        customer_id, _ = await self.ensure_customer(subject)
        metadata = self._metadata(subject, keys)
        defaults = catalog.checkout if catalog is not None else None
        success_url = (
            request.success_url
            or (defaults.success_url if defaults else None)
            or f"{settings.public_url}/billing/success"
        )
        cancel_url = (
            request.cancel_url
            or (defaults.cancel_url if defaults else None)
            or f"{settings.public_url}/billing/cancel"
        )
        stripe_mode = "subscription" if recurring else "payment"
        params: dict[str, Any] = {
            "mode": stripe_mode,
            "customer": customer_id,
            "client_reference_id": subject.id[:200],
            "line_items": [{"price": price, "quantity": 1} for price in price_ids],
            "metadata": metadata,
        }
        if stripe_mode == "subscription":
            params["subscription_data"] = {"metadata": metadata}
        else:
            params["payment_intent_data"] = {"metadata": metadata}
        if request.ui_mode == "embedded":
            params["ui_mode"] = "embedded_page"
            params["return_url"] = success_url
        else:
            params["success_url"] = success_url
            params["cancel_url"] = cancel_url
        created = await self.gateway.create_checkout_session(
            self.project_id, self.mode, secret_key, params
        )
        await self.sessions.add(
            CheckoutSession(
                project_id=self.project_id,
                mode=self.mode,
                stripe_session_id=str(created["id"]),
                subject_type=subject.type.value,
                subject_id=subject.id,
                purchase_keys=keys,
                price_ids=price_ids,
                stripe_mode=stripe_mode,
                status=str(created.get("status") or "open"),
                stripe_customer_id=customer_id,
            )
        )
        await self.entitlements.begin_checkout(self.project_id, self.mode, subject, customer_id)
        return CreatedSession(str(created["id"]), created.get("url"), created.get("client_secret"))

    async def _what_to_sell(
        self, catalog: CatalogDocument | None, request: CheckoutRequest, settings: Settings
    ) -> tuple[list[str], list[str], bool]:
        """(purchase keys, Stripe price ids, whether any is recurring), or the refusal."""
        if request.price_id is not None:
            return await self._by_price(catalog, request.price_id, settings)
        keys = list(request.purchase_keys)
        if not keys:
            default = catalog.checkout.default_purchase_key if catalog is not None else None
            if default is None:
                raise NothingToBuy(
                    "Name a purchaseKey, purchaseKeys or priceId: the catalog has no "
                    "default_purchase_key."
                )
            keys = [default]
        plans = catalog.plans if catalog is not None else {}
        unknown = [key for key in keys if key not in plans]
        if unknown:
            raise UnknownPurchaseKey(
                f"Unknown purchase key: {', '.join(unknown)}.",
                details={"purchaseKeys": unknown, "known": sorted(plans)},
            )
        assert catalog is not None
        closed = [key for key in keys if not plans[key].self_serve]
        if closed:
            raise NotSelfServe(
                f"These plans are not sold through self-service checkout: {', '.join(closed)}.",
                details={"purchaseKeys": closed},
            )
        families: dict[str, str] = {}
        for key in keys:
            family = plans[key].family
            if family in families:
                raise FamilyConflict(
                    f"{families[family]} and {key} are both plans of the family {family}: "
                    "a checkout buys one plan per family.",
                    details={"family": family, "purchaseKeys": [families[family], key]},
                )
            families[family] = key
        price_ids = [await self._price_of(catalog, key) for key in keys]
        return keys, price_ids, any(plans[key].recurring for key in keys)

    async def _price_of(self, catalog: CatalogDocument, key: str) -> str:
        reference = catalog.plans[key].prices.get(self.mode)
        if reference is None:
            raise PriceNotAllowed(
                f"The plan {key} has no {self.mode.value}-mode price in the catalog.",
                details={"purchaseKey": key},
            )
        if not reference.startswith(LOOKUP_PREFIX):
            return reference
        lookup_key = reference.removeprefix(LOOKUP_PREFIX)
        catalogs = CatalogService(self.session)
        resolved = await catalogs.resolved_prices(self.project_id, self.mode)
        if lookup_key in resolved:
            return resolved[lookup_key]
        pricing = CatalogPricing(
            self.session, self.gateway, self.project_id, self.mode, await self.secret_key()
        )
        found = await pricing.resolve([lookup_key])
        if lookup_key not in found:
            raise PriceNotResolved(
                f"Stripe has no active price with lookup key {lookup_key!r} (plan {key}): "
                "create it with `billwarden catalog push`.",
                details={"purchaseKey": key, "lookupKey": lookup_key},
            )
        return found[lookup_key].id

    async def _by_price(
        self, catalog: CatalogDocument | None, price_id: str, settings: Settings
    ) -> tuple[list[str], list[str], bool]:
        catalogs = CatalogService(self.session)
        price_map = await catalogs.price_map(self.project_id, self.mode, catalog) if catalog else {}
        if price_id in price_map:
            assert catalog is not None
            key = price_map[price_id]
            plan = catalog.plans[key]
            if not plan.self_serve:
                raise NotSelfServe(
                    f"The plan {key} is not sold through self-service checkout.",
                    details={"purchaseKeys": [key]},
                )
            return [key], [price_id], plan.recurring
        if price_id not in await self._extra_allowed(settings):
            raise PriceNotAllowed(
                f"The price {price_id} is not in the project's catalog or allowlist.",
                details={"priceId": price_id},
            )
        price = await self.gateway.retrieve(
            self.project_id, self.mode, await self.secret_key(), f"/v1/prices/{price_id}"
        )
        if price is None:
            raise PriceNotAllowed(f"Stripe has no price {price_id}.", details={"priceId": price_id})
        return [], [price_id], price.get("recurring") is not None

    async def _extra_allowed(self, settings: Settings) -> set[str]:
        """STRIPE_ALLOWED_PRICE_IDS, for the single-tenant project only."""
        if settings.single_tenant_secret_key is None:
            return set()
        project = await ProjectRepository(self.session).get(self.project_id)
        if project is None or project.slug != settings.single_tenant_project_slug:
            return set()
        return set(settings.single_tenant_allowed_price_ids)

    async def _refuse_held_families(
        self, subject: Subject, catalog: CatalogDocument, keys: list[str]
    ) -> None:
        price_map = await CatalogService(self.session).price_map(
            self.project_id, self.mode, catalog
        )
        wanted = {catalog.plans[key].family: key for key in keys}
        for row in await self.mirror.subscriptions_of(self.project_id, self.mode, subject):
            if row.status not in HOLDING_STATUSES:
                continue
            for price in row.price_ids:
                held = price_map.get(price)
                if held is None or held not in catalog.plans:
                    continue
                family = catalog.plans[held].family
                if family in wanted:
                    raise AlreadySubscribed(
                        f"{subject} already has a {row.status} subscription in the family "
                        f"{family} ({held}): change or cancel it instead.",
                        details={
                            "family": family,
                            "subscriptionId": row.stripe_subscription_id,
                            "purchaseKey": held,
                            "status": row.status,
                        },
                    )

    # --- reading and applying sessions -------------------------------------------------------

    async def fetch_session(self, session_id: str, subject: Subject | None) -> dict[str, Any]:
        """The session as Stripe has it, when it is this project's and mode's (and the
        subject's, when one is given); 404 otherwise."""
        known = await self.sessions.by_stripe_id(self.project_id, self.mode, session_id)
        obj = None
        if _SESSION_ID.fullmatch(session_id):
            obj = await self.gateway.retrieve(
                self.project_id,
                self.mode,
                await self.secret_key(),
                f"/v1/checkout/sessions/{session_id}",
            )
        owner = (
            subject_from_metadata(obj.get("metadata"), self.project_id, self.mode) if obj else None
        )
        if owner is None and known is not None:
            owner = _owner_of(known)
        if obj is None or owner is None:
            # not this project's, or no subject billwarden knows: nobody's to reconcile
            raise CheckoutSessionNotFound(
                "No such checkout session for this project.", details={"sessionId": session_id}
            )
        if subject is not None and owner.key != subject.key:
            raise CheckoutSessionNotFound(
                "No such checkout session for this subject.", details={"sessionId": session_id}
            )
        return obj

    async def apply_session(
        self,
        obj: dict[str, Any],
        stamp: EventStamp | None,
        *,
        subject: Subject | None = None,
        settle: bool = False,
        expired: bool = False,
    ) -> Reconciled:
        """Apply a checkout session's outcome, once: the first of its webhook and
        reconcile-session applies it, later ones answer `already_processed`. `settle`: an
        async payment's result (re-applies the subscription). `expired`: it expired unpaid."""
        session_id = obj.get("id")
        if not isinstance(session_id, str) or not session_id:
            raise ValueError("the checkout session has no id")
        # read before anything is written: a field of the wrong type fails the event whole
        stripe_mode = _session_text(obj, "mode")
        stripe_status = _session_text(obj, "status")
        payment_status = _session_text(obj, "payment_status")
        await lock_name(self.session, f"checkout:{self.project_id}:{self.mode}:{session_id}")
        row = await self.sessions.by_stripe_id(self.project_id, self.mode, session_id, fresh=True)
        owner = subject_from_metadata(obj.get("metadata"), self.project_id, self.mode)
        if row is None:
            row = await self.sessions.add(
                CheckoutSession(
                    project_id=self.project_id,
                    mode=self.mode,
                    stripe_session_id=session_id[:255],
                    subject_type=owner.type.value if owner else None,
                    subject_id=owner.id if owner else None,
                    purchase_keys=[],
                    price_ids=[],
                    stripe_mode=(stripe_mode or "subscription")[:20],
                    status="open",
                )
            )
        if owner is None:
            owner = _owner_of(row)
        if subject is not None and owner is not None and subject.key == owner.key:
            owner = subject  # the caller's own view of it, with its email
        status = (stripe_status or row.status)[:20]
        row.status = status
        row.payment_status = payment_status[:32] if payment_status else row.payment_status
        customer_id = customer_id_of(obj)
        subscription = obj.get("subscription")
        if isinstance(subscription, dict):
            subscription = subscription.get("id")
        row.stripe_customer_id = customer_id or row.stripe_customer_id
        row.stripe_subscription_id = (
            subscription if isinstance(subscription, str) else row.stripe_subscription_id
        )
        if expired or status == "expired":
            await self.session.flush()
            if owner is not None:
                await self.entitlements.recompute(
                    self.project_id,
                    self.mode,
                    owner,
                    keep_incomplete=False,
                    event_id=stamp.id if stamp else None,
                )
            return Reconciled(False, owner, None)
        if status != "complete":
            await self.session.flush()
            return Reconciled(False, owner, None)
        already = row.applied_at is not None
        if already and not settle:
            return Reconciled(True, owner, None)
        if owner is not None and customer_id is not None:
            mapped = await self.mirror.customer_of(self.project_id, self.mode, owner)
            if mapped is None:
                await self.mirror.map_customer(
                    self.project_id, self.mode, owner, customer_id, owner.email
                )
        if row.stripe_subscription_id is not None:
            await self.sync().sync_subscription(
                row.stripe_subscription_id, stamp=stamp, subject_hint=owner
            )
        intent = obj.get("payment_intent")
        if isinstance(intent, dict):
            intent = intent.get("id")
        if isinstance(intent, str) and intent:  # a one-time payment: into the payments mirror
            await PaymentsService(self._sync).apply_payment_intent(intent, stamp)
        if owner is not None:
            await self.entitlements.recompute(
                self.project_id, self.mode, owner, event_id=stamp.id if stamp else None
            )
        row.applied_at = row.applied_at or utcnow()
        await self.session.flush()
        return Reconciled(already, owner, None)

    async def reconcile(self, session_id: str, subject: Subject | None) -> Reconciled:
        """The success page's call: fetch the session from Stripe and apply it through the
        webhook's own code; the subject's entitlement after it."""
        obj = await self.fetch_session(session_id, subject)
        result = await self.apply_session(obj, None, subject=subject)
        owner = result.subject or subject
        view = (
            await self.entitlements.view(self.project_id, self.mode, owner)
            if owner is not None
            else None
        )
        return Reconciled(result.already_processed, owner, view)


def _session_text(obj: dict[str, Any], field: str) -> str | None:
    """A text field of a checkout session as Stripe sends it, None when absent or empty;
    ValueError when it holds anything but text (it would be stored as "42")."""
    value = obj.get(field)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ValueError(f"the checkout session's {field} is not text: {type(value).__name__}")
    return value


def _owner_of(row: CheckoutSession) -> Subject | None:
    if row.subject_type is None or row.subject_id is None:
        return None
    return Subject(SubjectType(row.subject_type), row.subject_id)
