"""The mirror's rules: who a Stripe object belongs to, and applying it without going back in time.

Order: each mirrored object keeps the `created` and id of the event last applied to it. An event
strictly older than that is not applied; two events of the same second are not ordered by their
timestamps at all (Stripe's `created` has one-second resolution), which is why subscription
events re-fetch the object from Stripe (`sync.py`) rather than trust either payload.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from billwarden.core.modes import Mode
from billwarden.core.subjects import SUBJECT_ID_MAX_LENGTH, Subject, SubjectType
from billwarden.db.base import utcnow
from billwarden.subscriptions.models import Customer, Subscription
from billwarden.subscriptions.repository import CustomerRepository, SubscriptionRepository

# the metadata billwarden puts on the checkout sessions and subscriptions it creates
META_PROJECT = "bw_project"
META_MODE = "bw_mode"
META_SUBJECT_TYPE = "bw_subject_type"
META_SUBJECT_ID = "bw_subject_id"
META_PURCHASE_KEYS = "bw_purchase_keys"


@dataclass(frozen=True)
class EventStamp:
    """The event a change comes from: its id and `created` second."""

    id: str
    created: datetime

    @classmethod
    def of(cls, event: dict[str, Any]) -> EventStamp:
        return cls(str(event["id"]), datetime.fromtimestamp(int(event["created"]), UTC))

    def is_older_than(self, last_created: datetime | None) -> bool:
        """Strictly older: the same second is never "older" (its order is unknown)."""
        return last_created is not None and self.created < last_created


def timestamp(value: object) -> datetime | None:
    """A Stripe unix timestamp as an aware datetime; anything else as None."""
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    try:
        return datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _text(value: object, limit: int = 255) -> str | None:
    return value[:limit] if isinstance(value, str) and value else None


def subject_from_metadata(metadata: object, project_id: uuid.UUID, mode: Mode) -> Subject | None:
    """The subject billwarden wrote into an object's metadata, when it is this project's."""
    if not isinstance(metadata, dict):
        return None
    if metadata.get(META_PROJECT) != str(project_id) or metadata.get(META_MODE) != mode.value:
        return None
    subject_id = metadata.get(META_SUBJECT_ID)
    try:
        subject_type = SubjectType(metadata.get(META_SUBJECT_TYPE, ""))
    except ValueError:
        return None
    if not isinstance(subject_id, str) or not 0 < len(subject_id) <= SUBJECT_ID_MAX_LENGTH:
        return None
    return Subject(subject_type, subject_id)


def subject_of_row(row: Subscription | Customer) -> Subject | None:
    if row.subject_type is None or row.subject_id is None:
        return None
    return Subject(SubjectType(row.subject_type), row.subject_id)


def customer_id_of(obj: dict[str, Any]) -> str | None:
    customer = obj.get("customer")
    if isinstance(customer, dict):
        customer = customer.get("id")
    return _text(customer)


@dataclass
class AppliedSubscription:
    row: Subscription | None
    applied: bool
    # the subjects whose entitlement depends on this change (two when it changed hands)
    subjects: set[Subject] = field(default_factory=set)


class MirrorService:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.customers = CustomerRepository(session)
        self.subscriptions = SubscriptionRepository(session)

    # --- customers ---------------------------------------------------------------------------

    async def customer_of(
        self, project_id: uuid.UUID, mode: Mode, subject: Subject
    ) -> Customer | None:
        return await self.customers.for_subject(project_id, mode, subject)

    async def map_customer(
        self,
        project_id: uuid.UUID,
        mode: Mode,
        subject: Subject,
        stripe_customer_id: str,
        email: str | None,
    ) -> tuple[Customer, bool]:
        """Record `stripe_customer_id` as the subject's customer unless the subject has one
        already; the row in force (concurrent callers all end with the first one's) and whether
        this call made it."""
        inserted = await self.customers.insert_ignoring_conflict(
            {
                "id": uuid.uuid4(),
                "project_id": project_id,
                "mode": mode,
                "subject_type": subject.type.value,
                "subject_id": subject.id,
                "stripe_customer_id": stripe_customer_id,
                "email": email,
                "deleted": False,
                "created_at": utcnow(),
                "updated_at": utcnow(),
            },
            ["project_id", "mode", "subject_type", "subject_id"],
        )
        row = await self.customers.for_subject(project_id, mode, subject)
        assert row is not None
        return row, inserted

    async def replace_deleted_customer(
        self, row: Customer, stripe_customer_id: str, email: str | None
    ) -> Customer:
        row.stripe_customer_id = stripe_customer_id
        row.email = email
        row.deleted = False
        row.last_event_created = None
        row.last_event_id = None
        await self.session.flush()
        return row

    async def subject_of_customer(
        self, project_id: uuid.UUID, mode: Mode, stripe_customer_id: str | None
    ) -> Subject | None:
        if stripe_customer_id is None:
            return None
        row = await self.customers.by_stripe_id(project_id, mode, stripe_customer_id)
        return subject_of_row(row) if row is not None else None

    async def apply_customer(
        self,
        row: Customer,
        stamp: EventStamp,
        *,
        email: str | None,
        deleted: bool,
    ) -> Subject | None:
        """customer.updated|deleted: the mapped customer's email and deletion as Stripe has them
        now (a deletion is final: Stripe never brings a customer back)."""
        row.email = _text(email, 320)
        row.deleted = row.deleted or deleted
        if not stamp.is_older_than(row.last_event_created):
            row.last_event_created = stamp.created
            row.last_event_id = stamp.id
        await self.session.flush()
        return subject_of_row(row)

    # --- subscriptions -----------------------------------------------------------------------

    async def subscription(
        self, project_id: uuid.UUID, mode: Mode, stripe_subscription_id: str, *, fresh: bool = False
    ) -> Subscription | None:
        return await self.subscriptions.by_stripe_id(
            project_id, mode, stripe_subscription_id, fresh=fresh
        )

    async def subscriptions_of(
        self, project_id: uuid.UUID, mode: Mode, subject: Subject
    ) -> list[Subscription]:
        return await self.subscriptions.for_subject(project_id, mode, subject)

    async def apply_subscription(
        self,
        project_id: uuid.UUID,
        mode: Mode,
        obj: dict[str, Any],
        *,
        stamp: EventStamp | None,
        price_map: dict[str, str],
        subject_hint: Subject | None = None,
    ) -> AppliedSubscription:
        """Make the mirror row say what `obj` (a Stripe subscription) says, unless the row has
        applied a strictly newer event. `stamp` None: a fresh read of Stripe's current state
        (reconcile-session), applied whatever the row's last event."""
        stripe_id = _text(obj.get("id"))
        customer_id = customer_id_of(obj)
        status = _text(obj.get("status"), 32)
        if stripe_id is None or customer_id is None or status is None:
            raise ValueError("a subscription needs an id, a customer and a status")
        # under the subscription's lock: what was committed while waiting for it, not an
        # object this session read before
        row = await self.subscriptions.by_stripe_id(project_id, mode, stripe_id, fresh=True)
        if row is not None and stamp is not None and stamp.is_older_than(row.last_event_created):
            return AppliedSubscription(row, applied=False)
        previous = subject_of_row(row) if row is not None else None
        subject = (
            subject_from_metadata(obj.get("metadata"), project_id, mode)
            or await self.subject_of_customer(project_id, mode, customer_id)
            or previous
            or subject_hint
        )
        if row is None:
            row = Subscription(
                project_id=project_id,
                mode=mode,
                stripe_subscription_id=stripe_id,
                stripe_customer_id=customer_id,
                status=status,
                raw=obj,
            )
            self.session.add(row)
        prices = price_ids_of(obj)
        old_status = row.status if row.id is not None else None
        row.stripe_customer_id = customer_id
        row.subject_type = subject.type.value if subject is not None else None
        row.subject_id = subject.id if subject is not None else None
        row.status = status
        row.price_ids = prices
        row.purchase_keys = [price_map[price] for price in prices if price in price_map]
        row.currency, row.annual_amount = recurring_amount(obj)
        row.started_at = timestamp(obj.get("start_date")) or timestamp(obj.get("created"))
        start, end = period_of(obj)
        row.current_period_start = start
        row.current_period_end = end
        row.cancel_at_period_end = bool(obj.get("cancel_at_period_end"))
        row.cancel_at = timestamp(obj.get("cancel_at"))
        row.canceled_at = timestamp(obj.get("canceled_at"))
        row.ended_at = timestamp(obj.get("ended_at"))
        row.trial_end = timestamp(obj.get("trial_end"))
        pause = obj.get("pause_collection")
        row.pause_behavior = _text(pause.get("behavior"), 32) if isinstance(pause, dict) else None
        row.pause_resumes_at = (
            timestamp(pause.get("resumes_at")) if isinstance(pause, dict) else None
        )
        if status != "past_due":
            row.past_due_since = None
        elif old_status != "past_due" or row.past_due_since is None:
            row.past_due_since = stamp.created if stamp is not None else utcnow()
        if stamp is not None and not stamp.is_older_than(row.last_event_created):
            row.last_event_created = stamp.created
            row.last_event_id = stamp.id
        row.synced_at = utcnow()
        row.raw = obj
        await self.session.flush()
        subjects = {s for s in (previous, subject) if s is not None}
        return AppliedSubscription(row, applied=True, subjects=subjects)


def price_ids_of(obj: dict[str, Any]) -> list[str]:
    items = obj.get("items")
    data = items.get("data") if isinstance(items, dict) else None
    prices: list[str] = []
    for item in data if isinstance(data, list) else []:
        price = item.get("price") if isinstance(item, dict) else None
        price_id = price.get("id") if isinstance(price, dict) else price
        if isinstance(price_id, str) and price_id not in prices:
            prices.append(price_id[:255])
    return prices


# billing periods in a year, per price interval: MRR is a year's amount over 12
PERIODS_PER_YEAR = {"day": 365, "week": 52, "month": 12, "year": 1}


def recurring_amount(obj: dict[str, Any]) -> tuple[str | None, float | None]:
    """A subscription's currency and what it bills in a year, in minor units: each licensed
    item's unit amount times its quantity, times its billing periods in a year (a yearly price
    once, a monthly one 12 times, a weekly one 52, a daily one 365, each over its
    `interval_count`). Metered items and prices without a unit amount (tiered) add nothing;
    taxes are not taken off. The subscription's recurring discounts are (`discounts` expanded to
    their coupons, as `SubscriptionSync` reads it): a percent off takes its share, an amount off
    (in the subscription's currency) comes off each billing period; a `once` discount, or one
    that has ended, does not recur and is not taken off. None when no item has a recurring
    price."""
    currency = _text(obj.get("currency"), 3)
    items = obj.get("items")
    data = items.get("data") if isinstance(items, dict) else None
    total: float | None = None
    periods: float | None = None  # billing periods a year, of the first licensed item
    for item in data if isinstance(data, list) else []:
        price = item.get("price") if isinstance(item, dict) else None
        recurring = price.get("recurring") if isinstance(price, dict) else None
        if not isinstance(price, dict) or not isinstance(recurring, dict):
            continue
        currency = currency or _text(price.get("currency"), 3)
        per_year = PERIODS_PER_YEAR.get(str(recurring.get("interval")))
        count = recurring.get("interval_count") or 1
        unit = price.get("unit_amount")
        quantity = item.get("quantity", 1)
        total = total or 0.0
        if (
            per_year is None
            or recurring.get("usage_type") == "metered"
            or not all(isinstance(n, int) and not isinstance(n, bool) for n in (unit, quantity))
            or not isinstance(count, int)
            or count < 1
        ):
            continue
        total += unit * quantity * per_year / count
        periods = periods or per_year / count
    currency = currency.lower() if currency else None
    if total is not None:
        total = _discounted(obj, total, currency, periods or 0.0)
    return currency, total


def _discounted(obj: dict[str, Any], total: float, currency: str | None, periods: float) -> float:
    """`total` (a year) less the subscription's recurring discounts whose coupons are expanded."""
    now = utcnow().timestamp()
    for discount in obj.get("discounts") or ():
        if not isinstance(discount, dict):
            continue  # an id: not expanded, nothing known of it
        end = discount.get("end")
        if isinstance(end, int) and not isinstance(end, bool) and end <= now:
            continue
        source = discount.get("source")
        coupon = source.get("coupon") if isinstance(source, dict) else discount.get("coupon")
        if not isinstance(coupon, dict) or coupon.get("duration") == "once":
            continue
        percent = coupon.get("percent_off")
        amount = coupon.get("amount_off")
        if isinstance(percent, int | float) and not isinstance(percent, bool):
            total *= max(0.0, 1 - min(float(percent), 100.0) / 100)
        elif (
            isinstance(amount, int)
            and not isinstance(amount, bool)
            and str(coupon.get("currency") or "").lower() == currency
        ):
            total = max(0.0, total - amount * periods)
    return total


def period_of(obj: dict[str, Any]) -> tuple[datetime | None, datetime | None]:
    """The current period, from the items (API version 2025-03-31 and later carry it there);
    the earliest start and latest end when items differ."""
    items = obj.get("items")
    data = items.get("data") if isinstance(items, dict) else None
    starts = []
    ends = []
    for item in data if isinstance(data, list) else []:
        if isinstance(item, dict):
            starts.append(timestamp(item.get("current_period_start")))
            ends.append(timestamp(item.get("current_period_end")))
    known_starts = [value for value in starts if value is not None]
    known_ends = [value for value in ends if value is not None]
    return (min(known_starts) if known_starts else None, max(known_ends) if known_ends else None)
