"""Wire shapes for self-service (seed 002's fields, camelCase)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field, StrictBool, StringConstraints

from billwarden.catalog.service.document import PURCHASE_KEY_PATTERN
from billwarden.core.subjects import SubjectType
from billwarden.entitlements.schemas import EntitlementResponse
from billwarden.kit.schemas import CamelModel
from billwarden.kit.subjects import SubjectIdField, SubjectTypeField
from billwarden.subscriptions.models import Subscription
from billwarden.subscriptions.service.self_service import Plans

SubscriptionId = Annotated[
    str, StringConstraints(min_length=5, max_length=255, pattern=r"^sub_[A-Za-z0-9_]+$")
]
PurchaseKey = Annotated[
    str, StringConstraints(min_length=1, max_length=100, pattern=f"^(?:{PURCHASE_KEY_PATTERN})$")
]
Url = Annotated[str, StringConstraints(min_length=1, max_length=2000, pattern=r"^https?://\S+$")]


class SubjectBody(CamelModel):
    subject_type: SubjectTypeField = SubjectType.USER
    subject_id: SubjectIdField = None


class SubscriptionRead(CamelModel):
    id: str = Field(description="Stripe's subscription id.")
    status: str
    plans: list[str] = Field(description="The catalog's purchase keys its prices map to.")
    price_id: str | None
    amount: int | None = Field(description="Per interval, in the currency's minor unit.")
    currency: str | None
    interval: str | None
    current_period_end: datetime | None
    cancel_at_period_end: bool
    trial_end: datetime | None
    paused_until: datetime | None

    @classmethod
    def of(cls, row: Subscription, plans: Plans) -> SubscriptionRead:
        keys = plans.keys_of(row)
        price, amount, currency, interval = _leading_item(row, plans)
        return cls(
            id=row.stripe_subscription_id,
            status=row.status,
            plans=keys,
            price_id=price,
            amount=amount,
            currency=currency,
            interval=interval,
            current_period_end=row.current_period_end,
            cancel_at_period_end=row.cancel_at_period_end,
            trial_end=row.trial_end,
            paused_until=row.pause_resumes_at,
        )


def _leading_item(
    row: Subscription, plans: Plans
) -> tuple[str | None, int | None, str | None, str | None]:
    """The price of the primary family's item (else the first), with what it charges."""
    items = row.raw.get("items") if isinstance(row.raw, dict) else None
    data = [item for item in (items.get("data") if isinstance(items, dict) else None) or []]
    primary = plans.catalog.primary_family if plans.catalog is not None else None

    def leads(item: Any) -> bool:
        price = item.get("price") if isinstance(item, dict) else None
        price_id = price.get("id") if isinstance(price, dict) else None
        key = plans.price_map.get(price_id) if isinstance(price_id, str) else None
        return (
            key is not None
            and plans.catalog is not None
            and (plans.catalog.plans[key].family == primary)
        )

    chosen = next((item for item in data if leads(item)), data[0] if data else None)
    price = chosen.get("price") if isinstance(chosen, dict) else None
    if not isinstance(price, dict):
        return (row.price_ids[0] if row.price_ids else None), None, None, None
    quantity = chosen.get("quantity") if isinstance(chosen, dict) else None
    unit = price.get("unit_amount")
    amount = unit * (quantity or 1) if isinstance(unit, int) else None
    recurring = price.get("recurring")
    interval = recurring.get("interval") if isinstance(recurring, dict) else None
    return price.get("id"), amount, price.get("currency"), interval


class MySubscriptions(CamelModel):
    subscription: SubscriptionRead | None = Field(
        description="The primary family's live subscription (else the newest), or null."
    )
    subscriptions: list[SubscriptionRead] = Field(description="Every one, newest first.")


class CancelSubscription(SubjectBody):
    subscription_id: SubscriptionId | None = None
    at_period_end: StrictBool = True


class ResumeSubscription(SubjectBody):
    subscription_id: SubscriptionId | None = None


class UpdateSubscription(SubjectBody):
    purchase_key: PurchaseKey
    subscription_id: SubscriptionId | None = None
    proration_behavior: Literal["create_prorations", "always_invoice", "none"] = "create_prorations"


class PortalRequest(SubjectBody):
    return_url: Url | None = None


class PortalSession(CamelModel):
    url: str


class Changed(EntitlementResponse):
    """The subscription as Stripe has it after the change, and the subject's entitlement."""

    subscription: SubscriptionRead
