"""Checkout session events, applied from the webhook inbox through the same code as
reconcile-session, so a session is applied once whichever comes first."""

from __future__ import annotations

from billwarden.checkout.service import CheckoutService
from billwarden.subscriptions.service import EventStamp
from billwarden.webhooks.service.registry import EventContext, Handler


def _service(context: EventContext) -> CheckoutService:
    return CheckoutService(
        context.session, context.gateway, context.secret_box, context.project_id, context.mode
    )


async def session_completed(context: EventContext) -> None:
    await _service(context).apply_session(
        context.event["data"]["object"], EventStamp.of(context.event)
    )


async def async_payment_settled(context: EventContext) -> None:
    await _service(context).apply_session(
        context.event["data"]["object"], EventStamp.of(context.event), settle=True
    )


async def session_expired(context: EventContext) -> None:
    await _service(context).apply_session(
        context.event["data"]["object"], EventStamp.of(context.event), expired=True
    )


HANDLERS: dict[str, Handler] = {
    "checkout.session.completed": session_completed,
    "checkout.session.async_payment_succeeded": async_payment_settled,
    "checkout.session.async_payment_failed": async_payment_settled,
    "checkout.session.expired": session_expired,
}
