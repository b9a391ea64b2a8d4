"""Stripe events that move subscriptions and customers, applied from the webhook inbox.

Subscription events re-fetch the subscription from Stripe and apply that (`SubscriptionSync`), so
the order and number of deliveries never matter; invoice events (the payments domain) re-fetch
the invoice's subscription the same way.
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


async def subscription_changed(context: EventContext) -> None:
    obj = _object(context)
    subscription_id = obj.get("id")
    if not isinstance(subscription_id, str) or not subscription_id:
        raise ValueError("the event's subscription has no id")
    await _sync(context).sync_subscription(
        subscription_id, stamp=EventStamp.of(context.event), payload=obj
    )


async def customer_changed(context: EventContext) -> None:
    await _sync(context).apply_customer(_object(context), EventStamp.of(context.event))


HANDLERS: dict[str, Handler] = {
    "customer.subscription.created": subscription_changed,
    "customer.subscription.updated": subscription_changed,
    "customer.subscription.deleted": subscription_changed,
    "customer.subscription.paused": subscription_changed,
    "customer.subscription.resumed": subscription_changed,
    "customer.subscription.trial_will_end": subscription_changed,
    "customer.updated": customer_changed,
    "customer.deleted": customer_changed,
}
