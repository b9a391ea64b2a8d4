"""The mirror: Stripe customers mapped to subjects, and one row per Stripe subscription."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Float, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from billwarden.db.base import Base, IdMixin, TenantMixin, TimestampMixin, utcnow


class Customer(IdMixin, TenantMixin, TimestampMixin, Base):
    """A subject's Stripe customer in one mode: one per subject, one subject per customer."""

    __tablename__ = "billing_customers"
    __table_args__ = (
        UniqueConstraint("project_id", "mode", "subject_type", "subject_id"),
        UniqueConstraint("project_id", "mode", "stripe_customer_id"),
    )

    subject_type: Mapped[str] = mapped_column(String(20))
    subject_id: Mapped[str] = mapped_column(String(255))
    stripe_customer_id: Mapped[str] = mapped_column(String(255))
    email: Mapped[str | None] = mapped_column(String(320))
    # Stripe deleted the customer: the subject gets a new one at its next checkout
    deleted: Mapped[bool] = mapped_column(default=False)
    last_event_created: Mapped[datetime | None]
    last_event_id: Mapped[str | None] = mapped_column(String(255))


class Subscription(IdMixin, TenantMixin, Base):
    """A Stripe subscription as last applied: typed columns for the rules, the raw object kept."""

    __tablename__ = "billing_subscriptions"
    __table_args__ = (
        UniqueConstraint("project_id", "mode", "stripe_subscription_id"),
        Index(
            "ix_billing_subscriptions_subject", "project_id", "mode", "subject_type", "subject_id"
        ),
    )

    stripe_subscription_id: Mapped[str] = mapped_column(String(255))
    stripe_customer_id: Mapped[str] = mapped_column(String(255))
    # null while no subject is known for its customer (a subscription made outside billwarden)
    subject_type: Mapped[str | None] = mapped_column(String(20))
    subject_id: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(32))
    price_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    # the catalog's purchase keys for those prices, when it was applied
    purchase_keys: Mapped[list[str]] = mapped_column(JSON, default=list)
    current_period_start: Mapped[datetime | None]
    current_period_end: Mapped[datetime | None]
    cancel_at_period_end: Mapped[bool] = mapped_column(default=False)
    cancel_at: Mapped[datetime | None]
    canceled_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    trial_end: Mapped[datetime | None]
    # for the money figures (payments' stats): what it bills in a year, in minor units of its
    # currency (service.recurring_amount), and when Stripe started it
    currency: Mapped[str | None] = mapped_column(String(3))
    annual_amount: Mapped[float | None] = mapped_column(Float)
    started_at: Mapped[datetime | None]
    pause_behavior: Mapped[str | None] = mapped_column(String(32))
    pause_resumes_at: Mapped[datetime | None]
    # when it last became past_due (the start of the project's grace period)
    past_due_since: Mapped[datetime | None]
    # the event last applied to it: an older one never overwrites it
    last_event_created: Mapped[datetime | None]
    last_event_id: Mapped[str | None] = mapped_column(String(255))
    synced_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    raw: Mapped[dict[str, Any]] = mapped_column(JSON)
