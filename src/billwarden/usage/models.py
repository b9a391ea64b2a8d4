"""Usage events (kept to make each id count once) and their counters per UTC day and month."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Date, Float, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from billwarden.core.modes import Mode
from billwarden.db.base import Base, IdMixin, TenantMixin, mode_type, utcnow


class UsageEvent(IdMixin, TenantMixin, Base):
    __tablename__ = "usage_events"
    __table_args__ = (
        UniqueConstraint("project_id", "mode", "event_id"),
        Index(
            "ix_usage_events_subject",
            "project_id",
            "mode",
            "subject_type",
            "subject_id",
            "metric",
            "timestamp",
        ),
    )

    event_id: Mapped[str] = mapped_column(String(255))
    subject_type: Mapped[str] = mapped_column(String(20))
    subject_id: Mapped[str] = mapped_column(String(255))
    metric: Mapped[str] = mapped_column(String(64))
    value: Mapped[float] = mapped_column(Float)
    timestamp: Mapped[datetime]
    properties: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)


class UsageCounter(Base):
    """The sum of a subject's events of one metric in one UTC day or month, added to by atomic
    upserts (never read, then written)."""

    __tablename__ = "usage_counters"

    project_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    )
    mode: Mapped[Mode] = mapped_column(mode_type(), primary_key=True)
    subject_type: Mapped[str] = mapped_column(String(20), primary_key=True)
    subject_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    metric: Mapped[str] = mapped_column(String(64), primary_key=True)
    granularity: Mapped[str] = mapped_column(String(5), primary_key=True)  # day | month
    period_start: Mapped[date] = mapped_column(Date, primary_key=True)
    value: Mapped[float] = mapped_column(Float, default=0.0)


class MeterForward(IdMixin, TenantMixin, Base):
    """An event of a metric with a Stripe meter, to be sent to Stripe's meter events (the
    outbox, written with the event): sent by the worker, with the event id as Stripe's
    `identifier`, so a retry is never counted twice."""

    __tablename__ = "meter_forwards"
    __table_args__ = (
        UniqueConstraint("project_id", "mode", "event_id"),
        Index("ix_meter_forwards_due", "status", "next_attempt_at"),
    )

    event_id: Mapped[str] = mapped_column(String(255))
    event_name: Mapped[str] = mapped_column(String(100))  # the meter's
    subject_type: Mapped[str] = mapped_column(String(20))
    subject_id: Mapped[str] = mapped_column(String(255))
    value: Mapped[float] = mapped_column(Float)
    timestamp: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(9), default="pending")  # pending|forwarded|failed
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(default=utcnow)
    claimed_until: Mapped[datetime | None]
    claim_token: Mapped[uuid.UUID | None]
    forwarded_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(String(2000))
