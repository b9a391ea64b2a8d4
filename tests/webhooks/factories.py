"""Stripe events: signed as Stripe signs them, or stored straight into the inbox."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import Any

import orjson
import stripe
from sqlalchemy.ext.asyncio import AsyncSession

from billwarden.config import Settings
from billwarden.core.modes import Mode
from billwarden.kit.state import build_secret_box
from billwarden.stripe_gateway import StripeGateway
from billwarden.webhooks.models import InboxStatus, WebhookEvent
from billwarden.webhooks.repository import WebhookEventRepository
from billwarden.webhooks.service import StripeAccess


def stripe_event(
    event_type: str = "customer.subscription.updated",
    *,
    event_id: str | None = None,
    object_id: str = "sub_1",
    created: int | None = None,
) -> dict[str, Any]:
    return {
        "id": event_id or f"evt_{uuid.uuid4().hex}",
        "object": "event",
        "api_version": "2026-10-28.endive",
        "created": created if created is not None else int(time.time()),
        "type": event_type,
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "data": {"object": {"id": object_id, "object": "subscription"}},
    }


def signed(body: bytes, secret: str, *, timestamp: int | None = None) -> dict[str, str]:
    """Headers of a delivery signed as Stripe signs one."""
    header = stripe.WebhookSignature.generate_signature_header(
        body.decode(), secret, timestamp=timestamp
    )
    return {"Stripe-Signature": header, "Content-Type": "application/json"}


class Events:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def stored(
        self,
        project_id: uuid.UUID,
        event_id: str,
        event_type: str = "customer.subscription.updated",
        mode: Mode = Mode.TEST,
    ) -> WebhookEvent:
        event = stripe_event(event_type, event_id=event_id)
        await WebhookEventRepository(self.session).insert_if_new(
            {
                "project_id": project_id,
                "mode": mode,
                "event_id": event_id,
                "event_type": event_type,
                "object_id": "sub_1",
                "event_created": datetime.fromtimestamp(event["created"], UTC),
                "payload": orjson.dumps(event).decode(),
                "received_at": datetime.now(UTC),
                "status": InboxStatus.PENDING,
                "attempts": 0,
                "next_attempt_at": datetime.now(UTC),
            }
        )
        row = await WebhookEventRepository(self.session).one_or_none(
            WebhookEventRepository(self.session)
            .select()
            .where(WebhookEvent.project_id == project_id, WebhookEvent.event_id == event_id)
        )
        assert row is not None
        return row


def stripe_access(settings: Settings) -> StripeAccess:
    """What a worker's handlers call Stripe with, from the test's settings."""
    gateway = StripeGateway(api_base=settings.stripe_api_base, max_network_retries=0)
    return StripeAccess(gateway, build_secret_box(settings))
