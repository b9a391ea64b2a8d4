"""Self-service: the subject's own subscriptions, cancel and resume (cancellable families only),
plan changes within a family, and the billing portal.

Every change goes through the gateway with an idempotency key naming the change and the state
it was made from (a retried request is applied once; the next change is a new one), then the
subscription is re-fetched under its lock and applied through the webhooks' own code, and the
entitlement recomputed, so the answer already shows the result and the webhooks that follow
change nothing.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from billwarden.catalog.service import CatalogService
from billwarden.catalog.service.document import CatalogDocument
from billwarden.core.modes import Mode
from billwarden.core.subjects import Subject
from billwarden.crypto import SecretBox
from billwarden.stripe_gateway import StripeGateway
from billwarden.subscriptions.exceptions import (
    AlreadyOnPlan,
    BundledSubscription,
    FamilyMismatch,
    NoCustomer,
    NotCancellable,
    NotResumable,
    NotSelfServe,
    PriceNotResolved,
    SubscriptionEnded,
    SubscriptionNotFound,
    SubscriptionRequired,
    UnknownPurchaseKey,
)
from billwarden.subscriptions.models import Subscription
from billwarden.subscriptions.service import subject_of_row
from billwarden.subscriptions.service.sync import ENDED, SubscriptionSync

PRORATION_BEHAVIORS = ("create_prorations", "always_invoice", "none")


@dataclass(frozen=True)
class Plans:
    """The catalog in force and its prices in this mode (price id -> purchase key)."""

    catalog: CatalogDocument | None
    price_map: dict[str, str]

    def keys_of(self, row: Subscription) -> list[str]:
        plans = self.catalog.plans if self.catalog is not None else {}
        mapped = [self.price_map[p] for p in row.price_ids if p in self.price_map]
        return [key for key in dict.fromkeys([*mapped, *row.purchase_keys]) if key in plans]

    def families_of(self, row: Subscription) -> set[str]:
        assert self.catalog is not None or not self.keys_of(row)
        return (
            {self.catalog.plans[key].family for key in self.keys_of(row)} if self.catalog else set()
        )

    def in_primary(self, row: Subscription) -> bool:
        primary = self.catalog.primary_family if self.catalog is not None else None
        return primary is not None and primary in self.families_of(row)


def _digest(*parts: object) -> str:
    return hashlib.sha256("|".join(str(part) for part in parts).encode()).hexdigest()[:40]


class SelfService:
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
        self.sync = SubscriptionSync(session, gateway, secret_box, project_id, mode)

    async def plans(self) -> Plans:
        catalogs = CatalogService(self.session)
        loaded = await catalogs.current(self.project_id)
        if loaded is None:
            return Plans(None, {})
        return Plans(
            loaded.document, await catalogs.price_map(self.project_id, self.mode, loaded.document)
        )

    async def subscriptions(self, subject: Subject) -> list[Subscription]:
        """The subject's subscriptions, newest first."""
        rows = await self.sync.mirror.subscriptions_of(self.project_id, self.mode, subject)
        return sorted(rows, key=lambda row: row.created_at, reverse=True)

    async def secret_key(self) -> str:
        return await self.sync.secret_key()

    # --- finding the subscription ------------------------------------------------------------

    async def find(
        self, subject: Subject, subscription_id: str | None, plans: Plans, *, family: str | None
    ) -> Subscription:
        """The subject's subscription by id (another subject's is 404), or its one live
        subscription in `family` (the primary family when None)."""
        if subscription_id is not None:
            row = await self.sync.mirror.subscription(self.project_id, self.mode, subscription_id)
            owner = subject_of_row(row) if row is not None else None
            if row is None or owner is None or owner.key != subject.key:
                raise SubscriptionNotFound(
                    "No such subscription of this subject.",
                    details={"subscriptionId": subscription_id},
                )
            return row
        wanted = family or (plans.catalog.primary_family if plans.catalog else None)
        live = [
            row
            for row in await self.subscriptions(subject)
            if row.status not in ENDED and wanted is not None and wanted in plans.families_of(row)
        ]
        if not live:
            raise SubscriptionNotFound(
                f"{subject} has no live subscription"
                + (f" in the family {wanted}." if wanted else "."),
                details={"family": wanted},
            )
        if len(live) > 1:
            raise SubscriptionRequired(
                "The subject has several subscriptions there: name one with subscriptionId.",
                details={"subscriptionIds": [row.stripe_subscription_id for row in live]},
            )
        return live[0]

    def _require_cancellable(self, row: Subscription, plans: Plans) -> None:
        """Seed 000's rule: only a subscription whose items all belong to cancellable families."""
        families = plans.families_of(row)
        catalog = plans.catalog
        cancellable = {
            f for f in families if catalog is not None and catalog.families[f].cancellable
        }
        others = sorted(families - cancellable)
        if cancellable and others:
            raise BundledSubscription(
                "This subscription also bundles plans of families that self-service does not "
                f"cancel or resume ({', '.join(others)}); change it in the billing portal.",
                details={"families": sorted(families), "notCancellable": others},
            )
        if not cancellable:
            raise NotCancellable(
                "Self-service does not cancel or resume this subscription's plans.",
                details={"families": sorted(families)},
            )

    # --- changes -----------------------------------------------------------------------------

    async def cancel(
        self, subject: Subject, subscription_id: str | None, *, at_period_end: bool
    ) -> Subscription:
        plans = await self.plans()
        row = await self.find(subject, subscription_id, plans, family=None)
        self._require_cancellable(row, plans)
        if row.status in ENDED:
            raise SubscriptionEnded("This subscription has ended already.")
        if at_period_end:
            return await self._change(row, "update", {"cancel_at_period_end": True}, "cancel-end")
        return await self._change(row, "cancel", {}, "cancel-now")

    async def resume(self, subject: Subject, subscription_id: str | None) -> Subscription:
        plans = await self.plans()
        row = await self.find(subject, subscription_id, plans, family=None)
        self._require_cancellable(row, plans)
        if row.status in ENDED:
            raise NotResumable(
                "This subscription has ended and cannot be resumed: check out again.",
                details={"subscriptionId": row.stripe_subscription_id, "status": row.status},
            )
        if row.status == "paused":
            return await self._change(row, "resume", {}, "resume")
        if row.pause_behavior is not None:
            return await self._change(row, "update", {"pause_collection": ""}, "unpause")
        if row.cancel_at_period_end:
            return await self._change(row, "update", {"cancel_at_period_end": False}, "uncancel")
        if row.cancel_at is not None:
            return await self._change(row, "update", {"cancel_at": ""}, "uncancel-at")
        return row  # nothing scheduled to undo

    async def change_plan(
        self,
        subject: Subject,
        purchase_key: str,
        subscription_id: str | None,
        proration_behavior: str,
    ) -> Subscription:
        plans = await self.plans()
        catalog = plans.catalog
        if catalog is None or purchase_key not in catalog.plans:
            raise UnknownPurchaseKey(
                f"Unknown purchase key: {purchase_key}.", details={"purchaseKey": purchase_key}
            )
        target = catalog.plans[purchase_key]
        if not target.self_serve:
            raise NotSelfServe(
                f"The plan {purchase_key} is not sold through self-service.",
                details={"purchaseKey": purchase_key},
            )
        row = await self.find(subject, subscription_id, plans, family=target.family)
        if row.status in ENDED:
            raise SubscriptionEnded("This subscription has ended: check out again.")
        item = self._item_in_family(row, plans, target.family)
        if item is None:
            raise FamilyMismatch(
                f"This subscription has no plan of the family {target.family}: "
                f"{purchase_key} cannot replace one of its plans.",
                details={"family": target.family, "families": sorted(plans.families_of(row))},
            )
        item_id, current_key = item
        if current_key == purchase_key:
            raise AlreadyOnPlan(
                f"The subscription is on {purchase_key} already.",
                details={"purchaseKey": purchase_key},
            )
        price = next((p for p, key in plans.price_map.items() if key == purchase_key), None)
        if price is None:
            raise PriceNotResolved(
                f"The plan {purchase_key} has no price in Stripe for this mode yet: run "
                "`billwarden catalog push`.",
                details={"purchaseKey": purchase_key},
            )
        params = {
            "items": [{"id": item_id, "price": price}],
            "proration_behavior": proration_behavior,
        }
        return await self._change(row, "update", params, f"plan:{purchase_key}")

    def _item_in_family(
        self, row: Subscription, plans: Plans, family: str
    ) -> tuple[str, str] | None:
        """(item id, purchase key) of the subscription's item whose plan is of `family`."""
        assert plans.catalog is not None
        items = row.raw.get("items") if isinstance(row.raw, dict) else None
        data = items.get("data") if isinstance(items, dict) else None
        for item in data if isinstance(data, list) else []:
            price = item.get("price") if isinstance(item, dict) else None
            price_id = price.get("id") if isinstance(price, dict) else price
            key = plans.price_map.get(price_id) if isinstance(price_id, str) else None
            if key is not None and plans.catalog.plans[key].family == family:
                return str(item["id"]), key
        return None

    async def _change(
        self, row: Subscription, action: str, params: dict[str, Any], what: str
    ) -> Subscription:
        """Send the change (keyed by what it is and the state it was made from), then apply
        Stripe's state at once, through the webhooks' own code."""
        key = "bw-self:" + _digest(
            self.project_id,
            self.mode.value,
            row.stripe_subscription_id,
            what,
            sorted(params.items(), key=lambda item: item[0]),  # every parameter sent
            row.synced_at.isoformat(),
            row.last_event_id,
        )
        answer = await self.gateway.change_subscription(
            self.project_id,
            self.mode,
            await self.secret_key(),
            row.stripe_subscription_id,
            action,
            params,
            idempotency_key=key,
        )
        await self.sync.sync_subscription(row.stripe_subscription_id, stamp=None, payload=answer)
        fresh = await self.sync.mirror.subscription(
            self.project_id, self.mode, row.stripe_subscription_id
        )
        assert fresh is not None
        return fresh

    async def portal(self, subject: Subject, return_url: str) -> str:
        customer = await self.sync.mirror.customer_of(self.project_id, self.mode, subject)
        if customer is None or customer.deleted:
            raise NoCustomer(
                f"{subject} has no Stripe customer yet: it has never checked out.",
            )
        return await self.gateway.create_portal_session(
            self.project_id,
            self.mode,
            await self.secret_key(),
            customer=customer.stripe_customer_id,
            return_url=return_url,
        )
