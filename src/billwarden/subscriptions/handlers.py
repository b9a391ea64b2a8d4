"""Stripe events that move subscriptions and customers, applied from the webhook inbox.

Subscription events, and invoice events of a subscription, re-fetch the subscription from
Stripe and apply that (`SubscriptionSync`), so the order and number of deliveries never matter.
"""

from __future__ import annotations

from typing import Any

from billwarden.subscriptions.service import EventStamp
from billwarden.subscriptions.service.sync import SubscriptionSync
from billwarden.webhooks.service.registry import EventContext, Handler


def _sync(context: EventContext) -> SubscriptionSync:
    return SubscriptionSync(
        context.session, context.gateway, context.secret_box, context.project_id, context.mode
    )


def _object(context: EventContext) -> dict[str, Any]:
    obj: dict[str, Any] = context.event["data"]["object"]
    return obj


def invoice_subscription_id(invoice: dict[str, Any]) -> str | None:
    """The subscription an invoice belongs to: `parent.subscription_details.subscription`
    since API version 2025-03-31 (top-level `subscription` before)."""
    parent = invoice.get("parent")
    details = parent.get("subscription_details") if isinstance(parent, dict) else None
    subscription = details.get("subscription") if isinstance(details, dict) else None
    if subscription is None:
        subscription = invoice.get("subscription")
    if isinstance(subscription, dict):
        subscription = subscription.get("id")
    return subscription if isinstance(subscription, str) and subscription else None


async def subscription_changed(context: EventContext) -> None:
    obj = _object(context)
    subscription_id = obj.get("id")
    if not isinstance(subscription_id, str) or not subscription_id:
        raise ValueError("the event's subscription has no id")
    await _sync(context).sync_subscription(
        subscription_id, stamp=EventStamp.of(context.event), payload=obj
    )


async def invoice_changed(context: EventContext) -> None:
    subscription_id = invoice_subscription_id(_object(context))
    if subscription_id is None:
        return  # a one-time invoice moves no subscription
    await _sync(context).sync_subscription(subscription_id, stamp=EventStamp.of(context.event))


async def customer_changed(context: EventContext) -> None:
    await _sync(context).apply_customer(_object(context), EventStamp.of(context.event))


HANDLERS: dict[str, Handler] = {
    "customer.subscription.created": subscription_changed,
    "customer.subscription.updated": subscription_changed,
    "customer.subscription.deleted": subscription_changed,
    "customer.subscription.paused": subscription_changed,
    "customer.subscription.resumed": subscription_changed,
    "customer.subscription.trial_will_end": subscription_changed,
    "invoice.paid": invoice_changed,
    "invoice.payment_succeeded": invoice_changed,
    "invoice.payment_failed": invoice_changed,
    "customer.updated": customer_changed,
    "customer.deleted": customer_changed,
}
