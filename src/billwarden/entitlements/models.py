"""One entitlement snapshot per (project, mode, subject): what access reads, never Stripe."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from billwarden.db.base import Base, IdMixin, TenantMixin, utcnow


class Entitlement(IdMixin, TenantMixin, Base):
    __tablename__ = "entitlements"
    __table_args__ = (UniqueConstraint("project_id", "mode", "subject_type", "subject_id"),)

    subject_type: Mapped[str] = mapped_column(String(20))
    subject_id: Mapped[str] = mapped_column(String(255))
    user_email: Mapped[str | None] = mapped_column(String(320))
    plan: Mapped[str] = mapped_column(String(32))  # FREE | PREMIUM_MONTHLY | ...
    status: Mapped[str] = mapped_column(String(32))  # NONE | INCOMPLETE | ACTIVE | ...
    # whether a subscription grants access; a past_due one only until grace_until
    granted: Mapped[bool] = mapped_column(default=False)
    grace_until: Mapped[datetime | None]
    stripe_customer_id: Mapped[str | None] = mapped_column(String(255))
    stripe_subscription_id: Mapped[str | None] = mapped_column(String(255))
    stripe_price_id: Mapped[str | None] = mapped_column(String(255))
    current_period_start: Mapped[datetime | None]
    current_period_end: Mapped[datetime | None]
    cancel_at_period_end: Mapped[bool] = mapped_column(default=False)
    features: Mapped[list[str]] = mapped_column(JSON, default=list)
    quotas: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    role: Mapped[str | None] = mapped_column(String(64))
    plans: Mapped[list[str]] = mapped_column(JSON, default=list)
    # when it was last computed, and the Stripe event that last changed its inputs
    last_synced_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_event_id: Mapped[str | None] = mapped_column(String(255))
