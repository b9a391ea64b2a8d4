"""The webhook inbox: every verified Stripe event, raw, once per (project, mode, event id)."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import Enum as SAEnum
from sqlalchemy import Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from billwarden.db.base import Base, IdMixin, TenantMixin, utcnow


class InboxStatus(StrEnum):
    PENDING = "pending"  # stored; to be applied (again, after a failure, at next_attempt_at)
    PROCESSED = "processed"  # its handler ran and committed
    IGNORED = "ignored"  # no handler for its type; kept all the same
    FAILED = "failed"  # gave up after the last attempt; replay puts it back


def inbox_status_type() -> SAEnum:
    return SAEnum(
        InboxStatus,
        native_enum=False,
        create_constraint=True,
        length=9,
        name="inbox_status",
        values_callable=lambda statuses: [status.value for status in statuses],
    )


class WebhookEvent(IdMixin, TenantMixin, Base):
    __tablename__ = "webhook_events"
    __table_args__ = (
        UniqueConstraint("project_id", "mode", "event_id"),
        Index("ix_webhook_events_due", "status", "next_attempt_at"),
        # the last event received per project and mode, and the ones that failed for good
        Index("ix_webhook_events_received", "project_id", "mode", "received_at"),
        Index(
            "ix_webhook_events_failed",
            "project_id",
            "mode",
            sqlite_where=text("status = 'failed'"),
            postgresql_where=text("status = 'failed'"),
        ),
    )

    event_id: Mapped[str] = mapped_column(String(255))
    event_type: Mapped[str] = mapped_column(String(255))
    # the id of the Stripe object the event is about (data.object.id)
    object_id: Mapped[str | None] = mapped_column(String(255))
    event_created: Mapped[datetime]
    # the body exactly as Stripe sent and signed it
    payload: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    status: Mapped[InboxStatus] = mapped_column(inbox_status_type(), default=InboxStatus.PENDING)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(default=utcnow)
    # a worker holds the event until then; past it, another worker may take it over. The token
    # says which claim it is: only its holder may mark the outcome
    claimed_until: Mapped[datetime | None]
    claim_token: Mapped[uuid.UUID | None]
    processed_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
