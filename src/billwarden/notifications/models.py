"""The tenant app's webhook endpoints, the outbox of notifications and their deliveries."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text
from sqlalchemy import Enum as SAEnum
from sqlalchemy.orm import Mapped, mapped_column

from billwarden.db.base import Base, IdMixin, TenantMixin, utcnow

ENTITLEMENT_UPDATED = "entitlement.updated"
SUBSCRIPTION_UPDATED = "subscription.updated"
PAYMENT_SUCCEEDED = "payment.succeeded"
PAYMENT_FAILED = "payment.failed"
EVENT_TYPES = (ENTITLEMENT_UPDATED, SUBSCRIPTION_UPDATED, PAYMENT_SUCCEEDED, PAYMENT_FAILED)
ALL_EVENTS = "*"


class DeliveryStatus(StrEnum):
    PENDING = "pending"  # to be sent (again, after a failure, at next_attempt_at)
    DELIVERED = "delivered"  # the endpoint answered 2xx
    FAILED = "failed"  # gave up after the last attempt; a manual retry puts it back


def delivery_status_type() -> SAEnum:
    return SAEnum(
        DeliveryStatus,
        native_enum=False,
        create_constraint=True,
        length=9,
        name="delivery_status",
        values_callable=lambda statuses: [status.value for status in statuses],
    )


class WebhookEndpoint(IdMixin, TenantMixin, Base):
    """A URL of the tenant app that receives the project's notifications of one mode."""

    __tablename__ = "notification_endpoints"

    url: Mapped[str] = mapped_column(String(2048))
    # event types it receives, or ["*"] for every one
    events: Mapped[list[str]] = mapped_column(JSON, default=list)
    # the Standard Webhooks signing secret (whsec_...), encrypted with the app's SecretBox
    secret_ciphertext: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class OutboxMessage(IdMixin, TenantMixin, Base):
    """One notification, written with the change it tells of: its body is sent as stored."""

    __tablename__ = "notification_messages"

    event_type: Mapped[str] = mapped_column(String(64))
    # {"type", "timestamp", "data"} exactly as every attempt sends it
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Delivery(IdMixin, Base):
    """One message to one endpoint: its attempts and their outcome (the delivery log)."""

    __tablename__ = "notification_deliveries"
    __table_args__ = (Index("ix_notification_deliveries_due", "status", "next_attempt_at"),)

    endpoint_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("notification_endpoints.id", ondelete="CASCADE"), index=True
    )
    message_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("notification_messages.id", ondelete="CASCADE"), index=True
    )
    event_type: Mapped[str] = mapped_column(String(64))
    status: Mapped[DeliveryStatus] = mapped_column(
        delivery_status_type(), default=DeliveryStatus.PENDING
    )
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(default=utcnow)
    # a worker holds the delivery until then; its token says which claim may record the outcome
    claimed_until: Mapped[datetime | None]
    claim_token: Mapped[uuid.UUID | None]
    last_attempt_at: Mapped[datetime | None]
    last_status_code: Mapped[int | None]
    last_response: Mapped[str | None] = mapped_column(Text)
    last_error: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
