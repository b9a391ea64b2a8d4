"""Which handler applies which Stripe event type: an explicit map, checked when it is built."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from billwarden.core.modes import Mode
from billwarden.crypto import SecretBox
from billwarden.stripe_gateway import StripeGateway

# the event types billwarden's domains may handle; a handler for any other name is a typo
KNOWN_EVENT_TYPES = frozenset(
    {
        "checkout.session.completed",
        "checkout.session.async_payment_succeeded",
        "checkout.session.async_payment_failed",
        "checkout.session.expired",
        "customer.created",
        "customer.updated",
        "customer.deleted",
        "customer.subscription.created",
        "customer.subscription.updated",
        "customer.subscription.deleted",
        "customer.subscription.paused",
        "customer.subscription.resumed",
        "customer.subscription.trial_will_end",
        "invoice.created",
        "invoice.finalized",
        "invoice.paid",
        "invoice.payment_succeeded",
        "invoice.payment_failed",
        "invoice.voided",
        "invoice.marked_uncollectible",
        "payment_intent.succeeded",
        "payment_intent.payment_failed",
        "charge.refunded",
    }
)


@dataclass(frozen=True)
class EventContext:
    """What a handler gets: the event's transaction, its project and mode, the event, and
    what calling Stripe for the project takes (handlers re-fetch objects through the gateway)."""

    session: AsyncSession
    project_id: uuid.UUID
    mode: Mode
    event: dict[str, Any]
    gateway: StripeGateway
    secret_box: SecretBox


Handler = Callable[[EventContext], Awaitable[None]]


class UnknownEventType(ValueError):
    pass


class HandlerRegistry:
    """Event type -> handler. Types without a handler are stored and marked `ignored`."""

    def __init__(self, handlers: Mapping[str, Handler]) -> None:
        unknown = sorted(set(handlers) - KNOWN_EVENT_TYPES)
        if unknown:
            raise UnknownEventType(f"handlers registered for unknown Stripe event types: {unknown}")
        self._handlers = dict(handlers)

    def handler_for(self, event_type: str) -> Handler | None:
        return self._handlers.get(event_type)

    @property
    def event_types(self) -> frozenset[str]:
        return frozenset(self._handlers)
