"""Checkout sessions billwarden created or applied, so each is applied exactly once."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from billwarden.db.base import Base, IdMixin, TenantMixin, utcnow


class CheckoutSession(IdMixin, TenantMixin, Base):
    __tablename__ = "checkout_sessions"
    __table_args__ = (UniqueConstraint("project_id", "mode", "stripe_session_id"),)

    stripe_session_id: Mapped[str] = mapped_column(String(255))
    # null for a session made outside billwarden whose metadata names no subject
    subject_type: Mapped[str | None] = mapped_column(String(20))
    subject_id: Mapped[str | None] = mapped_column(String(255))
    purchase_keys: Mapped[list[str]] = mapped_column(JSON, default=list)
    price_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    stripe_mode: Mapped[str] = mapped_column(String(20))  # subscription | payment
    status: Mapped[str] = mapped_column(String(20))  # open | complete | expired
    payment_status: Mapped[str | None] = mapped_column(String(32))
    stripe_customer_id: Mapped[str | None] = mapped_column(String(255))
    stripe_subscription_id: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # when its completion was applied (by the webhook or reconcile-session, whichever came first)
    applied_at: Mapped[datetime | None]
