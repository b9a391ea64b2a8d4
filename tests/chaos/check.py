"""The chaos run's verdict, worked out independently of billwarden's code: what Stripe's final
state (the emulator's objects) implies for every mirror row (customers, subscriptions, invoice
payments) and every entitlement snapshot, compared with what billwarden stored, field by field;
and every event Stripe emitted found in the inbox, applied."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from billwarden.entitlements.models import Entitlement
from billwarden.payments.models import Payment
from billwarden.subscriptions.models import Customer, Subscription
from billwarden.webhooks.models import InboxStatus, WebhookEvent

FINISHED = frozenset({InboxStatus.PROCESSED, InboxStatus.IGNORED})
GRANTING = ("active", "trialing")
# as billwarden ranks the subscriptions of one subject to pick the one that speaks for it
STANDING = {
    "active": 0,
    "trialing": 1,
    "past_due": 2,
    "paused": 3,
    "unpaid": 4,
    "incomplete": 5,
    "incomplete_expired": 6,
    "canceled": 7,
}


@dataclass
class StripeState:
    """The emulator's final objects of the run's account."""

    customers: list[dict[str, Any]]
    subscriptions: list[dict[str, Any]]
    invoices: list[dict[str, Any]]
    refunded: dict[str, int]  # invoice id -> amount refunded of its payments


@dataclass
class Mirror:
    """What billwarden stored for the project."""

    customers: list[Customer]
    subscriptions: list[Subscription]
    payments: list[Payment]
    entitlements: list[Entitlement]
    inbox: dict[str, tuple[InboxStatus, int, str | None]]  # event id -> status, attempts, error


async def read_inbox(
    engine: AsyncEngine, project_id: uuid.UUID
) -> dict[str, tuple[InboxStatus, int, str | None]]:
    async with AsyncSession(engine) as session:
        inbox = await session.execute(
            select(
                WebhookEvent.event_id,
                WebhookEvent.status,
                WebhookEvent.attempts,
                WebhookEvent.last_error,
            ).where(WebhookEvent.project_id == project_id)
        )
        return {event_id: (status, attempts, error) for event_id, status, attempts, error in inbox}


async def read_mirror(engine: AsyncEngine, project_id: uuid.UUID) -> Mirror:
    async with AsyncSession(engine) as session:

        async def rows(model: Any) -> list[Any]:
            found = await session.scalars(select(model).where(model.project_id == project_id))
            return list(found.all())

        return Mirror(
            await rows(Customer),
            await rows(Subscription),
            await rows(Payment),
            await rows(Entitlement),
            await read_inbox(engine, project_id),
        )


def when(value: object) -> datetime | None:
    """A Stripe timestamp or a stored datetime, as an aware UTC datetime."""
    if value is None:
        return None
    if isinstance(value, int):
        return datetime.fromtimestamp(value, UTC)
    assert isinstance(value, datetime), value
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def price_ids(subscription: dict[str, Any]) -> list[str]:
    return [item["price"]["id"] for item in subscription["items"]["data"]]


def period(subscription: dict[str, Any]) -> tuple[datetime | None, datetime | None]:
    items = subscription["items"]["data"]
    return (
        when(min(item["current_period_start"] for item in items)),
        when(max(item["current_period_end"] for item in items)),
    )


def subject_of(obj: dict[str, Any]) -> str | None:
    subject_id = obj["metadata"].get("bw_subject_id")
    return f"{obj['metadata'].get('bw_subject_type')}:{subject_id}" if subject_id else None


def _differences(
    kind: str, key: str, billwarden: dict[str, Any], stripe: dict[str, Any]
) -> list[str]:
    return [
        f"{kind} {key}: {field} is {billwarden[field]!r} in billwarden, {stripe[field]!r} in Stripe"
        for field in stripe
        if billwarden[field] != stripe[field]
    ]


def _missing_and_extra(kind: str, ours: set[str], theirs: set[str]) -> list[str]:
    return [f"{kind} {key}: in Stripe, not in billwarden" for key in sorted(theirs - ours)] + [
        f"{kind} {key}: in billwarden, not in Stripe" for key in sorted(ours - theirs)
    ]


# --- mirror rows ------------------------------------------------------------------------------


def compare_customers(mirror: Mirror, stripe: StripeState) -> list[str]:
    rows = {row.stripe_customer_id: row for row in mirror.customers}
    objects = {obj["id"]: obj for obj in stripe.customers}
    found = _missing_and_extra("customer", set(rows), set(objects))
    for customer_id in sorted(rows.keys() & objects.keys()):
        row, obj = rows[customer_id], objects[customer_id]
        found += _differences(
            "customer",
            customer_id,
            {
                "email": row.email,
                "deleted": row.deleted,
                "subject": f"{row.subject_type}:{row.subject_id}",
            },
            {"email": obj["email"], "deleted": False, "subject": subject_of(obj)},
        )
    return found


def subscription_fields(obj: dict[str, Any]) -> dict[str, Any]:
    start, end = period(obj)
    return {
        "status": obj["status"],
        "price_ids": sorted(price_ids(obj)),
        "current_period_start": start,
        "current_period_end": end,
        "cancel_at_period_end": obj["cancel_at_period_end"],
        "cancel_at": when(obj["cancel_at"]),
        "canceled_at": when(obj["canceled_at"]),
        "ended_at": when(obj["ended_at"]),
        "customer": obj["customer"],
        "subject": subject_of(obj),
    }


def mirrored_fields(row: Subscription) -> dict[str, Any]:
    return {
        "status": row.status,
        "price_ids": sorted(row.price_ids),
        "current_period_start": when(row.current_period_start),
        "current_period_end": when(row.current_period_end),
        "cancel_at_period_end": row.cancel_at_period_end,
        "cancel_at": when(row.cancel_at),
        "canceled_at": when(row.canceled_at),
        "ended_at": when(row.ended_at),
        "customer": row.stripe_customer_id,
        "subject": f"{row.subject_type}:{row.subject_id}" if row.subject_id else None,
    }


def compare_subscriptions(mirror: Mirror, stripe: StripeState) -> list[str]:
    rows = {row.stripe_subscription_id: row for row in mirror.subscriptions}
    objects = {obj["id"]: obj for obj in stripe.subscriptions}
    found = _missing_and_extra("subscription", set(rows), set(objects))
    for subscription_id in sorted(rows.keys() & objects.keys()):
        found += _differences(
            "subscription",
            subscription_id,
            mirrored_fields(rows[subscription_id]),
            subscription_fields(objects[subscription_id]),
        )
    return found


def payment_fields(invoice: dict[str, Any], refunded: int) -> dict[str, Any]:
    """An invoice as the payments mirror documents it (docs/payments.md): paid is succeeded
    (refunded, or partially refunded, once its payment is), void is void, uncollectible or open
    after a failed attempt is failed, else pending; the amount paid, or due while unpaid."""
    status = invoice["status"]
    if status == "paid" and refunded:
        expected = "refunded" if refunded >= invoice["amount_paid"] else "partially_refunded"
    elif status == "paid":
        expected = "succeeded"
    elif status == "void":
        expected = "void"
    elif status == "uncollectible" or (status == "open" and invoice["attempt_count"] > 0):
        expected = "failed"
    else:
        expected = "pending"
    parent = invoice.get("parent") or {}
    details = parent.get("subscription_details") or {}
    transitions = invoice.get("status_transitions") or {}
    return {
        "status": expected,
        "amount": invoice["amount_paid"] if status == "paid" else invoice["amount_due"],
        "amount_refunded": refunded,
        "currency": invoice["currency"],
        "customer": invoice["customer"],
        "subscription": details.get("subscription"),
        "paid_at": when(transitions.get("paid_at")),
    }


def compare_payments(mirror: Mirror, stripe: StripeState) -> list[str]:
    rows = {row.stripe_id: row for row in mirror.payments if row.kind == "invoice"}
    objects = {obj["id"]: obj for obj in stripe.invoices}
    found = _missing_and_extra("invoice", set(rows), set(objects))
    # the run sells subscriptions only: no one-time payment may appear
    found += [
        f"payment {row.stripe_id}: a one-time payment row, but nothing was sold once"
        for row in mirror.payments
        if row.kind != "invoice"
    ]
    for invoice_id in sorted(rows.keys() & objects.keys()):
        row = rows[invoice_id]
        found += _differences(
            "invoice",
            invoice_id,
            {
                "status": row.status,
                "amount": row.amount,
                "amount_refunded": row.amount_refunded,
                "currency": row.currency,
                "customer": row.stripe_customer_id,
                "subscription": row.stripe_subscription_id,
                "paid_at": when(row.paid_at),
            },
            payment_fields(objects[invoice_id], stripe.refunded.get(invoice_id, 0)),
        )
    return found


# --- entitlement snapshots --------------------------------------------------------------------


class Catalog:
    """The run's catalog document, read as its owner reads it."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.plans: dict[str, dict[str, Any]] = document["plans"]
        self.order = list(self.plans)
        self.primary = next(
            family for family, spec in document["families"].items() if spec.get("primary")
        )
        self.free_features = sorted(document["free"]["features"])
        self.key_of_price = {
            price: key for key, plan in self.plans.items() for price in plan["prices"].values()
        }

    def keys(self, subscription: dict[str, Any]) -> list[str]:
        return [self.key_of_price[p] for p in price_ids(subscription) if p in self.key_of_price]

    def grants(self, subscription: dict[str, Any]) -> bool:
        return subscription["status"] in GRANTING

    def in_primary(self, subscription: dict[str, Any]) -> bool:
        return any(self.plans[key]["family"] == self.primary for key in self.keys(subscription))

    def expected(self, subscriptions: list[dict[str, Any]]) -> dict[str, Any]:
        """The snapshot of a subject with these Stripe subscriptions: access from the active or
        trialing ones, the plan label from the primary family's plan among them, and the rest
        from the subscription that speaks for the subject (granting first, then of the primary
        family, then by standing and the latest period end)."""
        speaker = min(
            subscriptions,
            key=lambda s: (
                not self.grants(s),
                not self.in_primary(s),
                STANDING.get(s["status"], 8),
                -period(s)[1].timestamp(),  # type: ignore[union-attr]
                s["id"],
            ),
        )
        granting = [s for s in subscriptions if self.grants(s)]
        keys = sorted({key for s in granting for key in self.keys(s)}, key=self.order.index)
        leading = [key for key in keys if self.plans[key]["family"] == self.primary] or keys
        features = sorted({f for key in keys for f in self.plans[key].get("features", [])})
        primary_prices = [
            p
            for p in price_ids(speaker)
            if p in self.key_of_price and self.plans[self.key_of_price[p]]["family"] == self.primary
        ]
        start, end = period(speaker)
        return {
            "plan": self.plans[leading[0]]["entitlement"] if granting else "FREE",
            "status": speaker["status"].upper(),
            "granted": bool(granting),
            "features": features if granting else self.free_features,
            "plans": keys,
            "stripe_subscription_id": speaker["id"],
            "stripe_customer_id": speaker["customer"],
            "stripe_price_id": (primary_prices or price_ids(speaker))[0],
            "current_period_start": start,
            "current_period_end": end,
            "cancel_at_period_end": speaker["cancel_at_period_end"],
        }


def snapshot_fields(row: Entitlement) -> dict[str, Any]:
    return {
        "plan": row.plan,
        "status": row.status,
        "granted": row.granted,
        "features": sorted(row.features),
        "plans": list(row.plans),
        "stripe_subscription_id": row.stripe_subscription_id,
        "stripe_customer_id": row.stripe_customer_id,
        "stripe_price_id": row.stripe_price_id,
        "current_period_start": when(row.current_period_start),
        "current_period_end": when(row.current_period_end),
        "cancel_at_period_end": row.cancel_at_period_end,
    }


def compare_entitlements(mirror: Mirror, stripe: StripeState, catalog: Catalog) -> list[str]:
    by_subject: dict[str, list[dict[str, Any]]] = {}
    for subscription in stripe.subscriptions:
        subject = subject_of(subscription)
        if subject is not None:
            by_subject.setdefault(subject, []).append(subscription)
    rows = {f"{row.subject_type}:{row.subject_id}": row for row in mirror.entitlements}
    found = [
        f"entitlement {subject}: no snapshot in billwarden"
        for subject in sorted(by_subject.keys() - rows.keys())
    ]
    found += [
        f"entitlement {subject}: a snapshot granting access with no subscription in Stripe"
        for subject in sorted(rows.keys() - by_subject.keys())
        if rows[subject].granted
    ]
    for subject in sorted(by_subject.keys() & rows.keys()):
        found += _differences(
            "entitlement",
            subject,
            snapshot_fields(rows[subject]),
            catalog.expected(by_subject[subject]),
        )
    return found


# --- the inbox --------------------------------------------------------------------------------


def compare_inbox(mirror: Mirror, emitted: dict[str, str]) -> list[str]:
    """Every event Stripe emitted (id -> type) stored and applied (processed, or ignored as
    billwarden documents for the types it does not handle)."""
    found = [
        f"event {event_id} ({emitted[event_id]}): not in billwarden's inbox"
        for event_id in sorted(emitted.keys() - mirror.inbox.keys())
    ]
    for event_id in sorted(mirror.inbox):
        status, attempts, error = mirror.inbox[event_id]
        kind = emitted.get(event_id, "not emitted by Stripe after the run began")
        if status not in FINISHED:
            found.append(
                f"event {event_id} ({kind}): {status.value} after {attempts} attempt(s): {error}"
            )
    return found


def compare(
    mirror: Mirror, stripe: StripeState, catalog: Catalog, emitted: dict[str, str]
) -> list[str]:
    """Every mismatch, the inbox's first."""
    return [
        *compare_inbox(mirror, emitted),
        *compare_customers(mirror, stripe),
        *compare_subscriptions(mirror, stripe),
        *compare_payments(mirror, stripe),
        *compare_entitlements(mirror, stripe, catalog),
    ]
