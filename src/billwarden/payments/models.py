"""The payments mirror: one row per Stripe invoice, and per one-time payment (payment intent)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from billwarden.db.base import Base, IdMixin, TenantMixin, utcnow


class Payment(IdMixin, TenantMixin, Base):
    __tablename__ = "payments"
    __table_args__ = (
        UniqueConstraint("project_id", "mode", "stripe_id"),
        Index("ix_payments_subject", "project_id", "mode", "subject_type", "subject_id", "created"),
        # the stats' windows: revenue by when it was paid, failures by when they were created
        Index("ix_payments_paid_at", "project_id", "mode", "paid_at"),
        Index("ix_payments_created", "project_id", "mode", "created"),
    )

    kind: Mapped[str] = mapped_column(String(16))  # invoice | payment
    # the invoice's id, or the payment intent's for a one-time payment
    stripe_id: Mapped[str] = mapped_column(String(255))
    subject_type: Mapped[str | None] = mapped_column(String(20))
    subject_id: Mapped[str | None] = mapped_column(String(255))
    stripe_customer_id: Mapped[str | None] = mapped_column(String(255))
    stripe_subscription_id: Mapped[str | None] = mapped_column(String(255))
    amount: Mapped[int] = mapped_column(default=0)  # minor units: paid, or due while unpaid
    amount_refunded: Mapped[int] = mapped_column(default=0)
    currency: Mapped[str] = mapped_column(String(3))
    # succeeded | failed | pending | refunded | partially_refunded | void
    status: Mapped[str] = mapped_column(String(24))
    description: Mapped[str | None] = mapped_column(String(1000))
    hosted_invoice_url: Mapped[str | None] = mapped_column(String(2000))
    invoice_pdf: Mapped[str | None] = mapped_column(String(2000))
    paid_at: Mapped[datetime | None]
    created: Mapped[datetime]  # Stripe's creation time (the list's order)
    last_event_created: Mapped[datetime | None]
    last_event_id: Mapped[str | None] = mapped_column(String(255))
    synced_at: Mapped[datetime] = mapped_column(default=utcnow)
    raw: Mapped[dict[str, Any]] = mapped_column(JSON)
