"""Bringing Stripe's current state into the mirror and the entitlement snapshots.

The webhook handlers and reconcile-session both come through here, so a subscription is applied
by one piece of code whichever way the news arrives. A subscription is re-fetched from Stripe
under a lock on its id: two workers applying events of one subscription take turns, and the
later fetch (the newer state) is the one that stays.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from billwarden.catalog.service import CatalogService
from billwarden.core.modes import Mode
from billwarden.core.subjects import Subject
from billwarden.crypto import SecretBox
from billwarden.db.locks import lock_name
from billwarden.entitlements.service import EntitlementService
from billwarden.notifications.models import SUBSCRIPTION_UPDATED
from billwarden.notifications.service import Outbox
from billwarden.projects.exceptions import StripeNotConfigured as ProjectStripeNotConfigured
from billwarden.projects.stripe_config import StripeConfigService
from billwarden.stripe_gateway import StripeGateway
from billwarden.subscriptions.exceptions import StripeNotConfigured
from billwarden.subscriptions.models import Subscription
from billwarden.subscriptions.service import EventStamp, MirrorService

ENDED = frozenset({"canceled", "incomplete_expired"})
# a subscription is read with its discounts' coupons, which its recurring amount (MRR) takes off
DISCOUNTS = ["discounts.source.coupon"]


class SubscriptionSync:
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
        self.secret_box = secret_box
        self.project_id = project_id
        self.mode = mode
        self.mirror = MirrorService(session)
        self.entitlements = EntitlementService(session)
        self._secret_key: str | None = None

    async def secret_key(self) -> str:
        """The project's key for this mode; 409 STRIPE_NOT_CONFIGURED without one."""
        if self._secret_key is None:
            try:
                credentials = await StripeConfigService(
                    self.session, self.secret_box
                ).get_credentials(self.project_id, self.mode)
            except ProjectStripeNotConfigured as exc:
                raise StripeNotConfigured(
                    f"The project has no {self.mode.value}-mode Stripe configuration: set it "
                    "with PUT /api/v1/payments/stripe/projects/{id}/config first.",
                    details={"mode": self.mode.value},
                ) from exc
            self._secret_key = credentials.secret_key
        return self._secret_key

    async def fetch(self, path: str, *, expand: list[str] | None = None) -> dict[str, Any] | None:
        return await self.gateway.retrieve(
            self.project_id, self.mode, await self.secret_key(), path, expand=expand
        )

    async def sync_subscription(
        self,
        subscription_id: str,
        *,
        stamp: EventStamp | None,
        payload: dict[str, Any] | None = None,
        subject_hint: Subject | None = None,
    ) -> set[Subject]:
        """Apply Stripe's current state of the subscription and recompute the entitlements it
        touches; the subjects recomputed. An event strictly older than the one last applied
        changes nothing (the mirror holds newer state already) and calls no one. When Stripe
        no longer has the subscription, the event's own object (`payload`) is applied."""
        await lock_name(
            self.session, f"subscription:{self.project_id}:{self.mode}:{subscription_id}"
        )
        row = await self.mirror.subscription(
            self.project_id, self.mode, subscription_id, fresh=True
        )
        if row is not None and stamp is not None and stamp.is_older_than(row.last_event_created):
            return set()
        current = await self.fetch(f"/v1/subscriptions/{subscription_id}", expand=DISCOUNTS)
        if current is None:
            # Stripe no longer has it: only an ending is taken from the event itself (a stale
            # "active" payload must never outlive a deletion delivered before it)
            if payload is None or payload.get("status") not in ENDED:
                return set()
            current = payload
        catalogs = CatalogService(self.session)
        loaded = await catalogs.current(self.project_id)
        price_map = (
            await catalogs.price_map(self.project_id, self.mode, loaded.document)
            if loaded is not None
            else {}
        )
        before = _state(row) if row is not None else None
        applied = await self.mirror.apply_subscription(
            self.project_id,
            self.mode,
            current,
            stamp=stamp,
            price_map=price_map,
            subject_hint=subject_hint,
        )
        if applied.row is not None and applied.applied and _state(applied.row) != before:
            await Outbox(self.session).emit(
                self.project_id, self.mode, SUBSCRIPTION_UPDATED, _notice(applied.row)
            )
        for subject in sorted(applied.subjects, key=lambda subject: subject.key):
            await self.entitlements.recompute(
                self.project_id, self.mode, subject, event_id=stamp.id if stamp else None
            )
        return applied.subjects

    async def apply_customer(self, obj: dict[str, Any], stamp: EventStamp) -> Subject | None:
        """customer.updated|deleted: re-fetch the customer (as subscriptions are, so the order
        of deliveries never matters) and keep its email and deletion. A customer billwarden
        never mapped belongs to no subject and is not fetched."""
        stripe_id = obj.get("id")
        if not isinstance(stripe_id, str) or not stripe_id:
            raise ValueError("the event's customer has no id")
        customers = self.mirror.customers
        if await customers.by_stripe_id(self.project_id, self.mode, stripe_id) is None:
            return None  # not a subject's customer: nothing to lock, fetch or apply
        await lock_name(self.session, f"stripe-customer:{self.project_id}:{self.mode}:{stripe_id}")
        row = await customers.by_stripe_id(self.project_id, self.mode, stripe_id, fresh=True)
        if row is None or stamp.is_older_than(row.last_event_created):
            return None
        current = await self.fetch(f"/v1/customers/{stripe_id}")
        gone = current is None or bool(current.get("deleted"))
        email = row.email if gone or current is None else current.get("email")
        subject = await self.mirror.apply_customer(
            row, stamp, email=email if isinstance(email, str) else None, deleted=gone
        )
        if subject is not None:
            await self.entitlements.recompute(
                self.project_id, self.mode, subject, event_id=stamp.id
            )
        return subject


def _state(row: Subscription) -> tuple[Any, ...]:
    """What a change of which sends `subscription.updated`."""
    return (
        row.status,
        list(row.price_ids),
        row.current_period_start,
        row.current_period_end,
        row.cancel_at_period_end,
        row.cancel_at,
        row.canceled_at,
        row.pause_behavior,
        row.pause_resumes_at,
        row.trial_end,
        row.ended_at,
        row.subject_type,
        row.subject_id,
    )


def _notice(row: Subscription) -> dict[str, Any]:
    """The mirror row's public fields, as `subscription.updated` carries them."""
    return {
        "id": row.stripe_subscription_id,
        "customer": row.stripe_customer_id,
        "subjectType": row.subject_type,
        "subjectId": row.subject_id,
        "status": row.status,
        "priceIds": list(row.price_ids),
        "purchaseKeys": list(row.purchase_keys),
        "currentPeriodStart": row.current_period_start,
        "currentPeriodEnd": row.current_period_end,
        "cancelAtPeriodEnd": row.cancel_at_period_end,
        "cancelAt": row.cancel_at,
        "canceledAt": row.canceled_at,
        "endedAt": row.ended_at,
        "trialEnd": row.trial_end,
        "pauseBehavior": row.pause_behavior,
        "pauseResumesAt": row.pause_resumes_at,
    }
