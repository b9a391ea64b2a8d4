"""Invoice and payment events, applied from the webhook inbox: each object re-fetched from
Stripe and mirrored; invoice events that move a subscription re-fetch it too."""

from __future__ import annotations

from typing import Any

from billwarden.payments.service import PaymentsService, invoice_subscription_id
from billwarden.subscriptions.service import EventStamp
from billwarden.subscriptions.service.sync import SubscriptionSync
from billwarden.webhooks.service.registry import EventContext, Handler

# invoice events whose outcome moves the subscription (paid, or a failed renewal)
MOVES_SUBSCRIPTION = frozenset(
    {"invoice.paid", "invoice.payment_succeeded", "invoice.payment_failed"}
)


def _service(context: EventContext) -> PaymentsService:
    sync = SubscriptionSync(
        context.session, context.gateway, context.secret_box, context.project_id, context.mode
    )
    return PaymentsService(sync)


def _object_id(context: EventContext) -> str:
    obj: dict[str, Any] = context.event["data"]["object"]
    object_id = obj.get("id")
    if not isinstance(object_id, str) or not object_id:
        raise ValueError("the event's object has no id")
    return object_id


async def invoice_changed(context: EventContext) -> None:
    service = _service(context)
    stamp = EventStamp.of(context.event)
    await service.apply_invoice(_object_id(context), stamp)
    if context.event["type"] in MOVES_SUBSCRIPTION:
        subscription_id = invoice_subscription_id(context.event["data"]["object"])
        if subscription_id is not None:
            await service.sync.sync_subscription(subscription_id, stamp=stamp)


async def payment_intent_changed(context: EventContext) -> None:
    await _service(context).apply_payment_intent(_object_id(context), EventStamp.of(context.event))


async def charge_refunded(context: EventContext) -> None:
    """A refund of a one-time payment billwarden sold, or of an invoice's payment (a
    subscription's): the row's refunded amount follows the charge's."""
    intent = context.event["data"]["object"].get("payment_intent")
    if isinstance(intent, dict):
        intent = intent.get("id")
    if isinstance(intent, str) and intent:
        service = _service(context)
        stamp = EventStamp.of(context.event)
        if await service.apply_payment_intent(intent, stamp) is None:
            await service.apply_invoice_refund(intent, stamp)


HANDLERS: dict[str, Handler] = {
    **dict.fromkeys(
        (
            "invoice.created",
            "invoice.finalized",
            "invoice.paid",
            "invoice.payment_succeeded",
            "invoice.payment_failed",
            "invoice.voided",
            "invoice.marked_uncollectible",
        ),
        invoice_changed,
    ),
    "payment_intent.succeeded": payment_intent_changed,
    "payment_intent.payment_failed": payment_intent_changed,
    "charge.refunded": charge_refunded,
}
