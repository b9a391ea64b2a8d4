"""Wire shapes for payments (seed 002's fields, camelCase)."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from billwarden.kit.schemas import CamelModel
from billwarden.payments.models import Payment
from billwarden.subscriptions.models import Subscription


class PaymentRead(CamelModel):
    id: str = Field(description="The invoice's id, or the payment intent's for a one-time payment.")
    kind: str = Field(description="invoice or payment.")
    amount: int = Field(description="Minor units: paid, or due while unpaid.")
    amount_refunded: int
    currency: str
    status: str = Field(
        description="succeeded, failed, pending, refunded, partially_refunded or void."
    )
    paid_at: datetime | None
    created_at: datetime
    description: str | None
    hosted_invoice_url: str | None
    invoice_pdf: str | None
    subscription_id: str | None

    @classmethod
    def of(cls, row: Payment) -> PaymentRead:
        return cls(
            id=row.stripe_id,
            kind=row.kind,
            amount=row.amount,
            amount_refunded=row.amount_refunded,
            currency=row.currency,
            status=row.status,
            paid_at=row.paid_at,
            created_at=row.created,
            description=row.description,
            hosted_invoice_url=row.hosted_invoice_url,
            invoice_pdf=row.invoice_pdf,
            subscription_id=row.stripe_subscription_id,
        )


class PaymentList(CamelModel):
    data: list[PaymentRead] = Field(description="Newest first.")
    has_more: bool = Field(description="More after the last one: pass its id as startingAfter.")


class ProjectPayment(PaymentRead):
    subject_type: str | None
    subject_id: str | None
    customer_id: str | None

    @classmethod
    def of_row(cls, row: Payment) -> ProjectPayment:
        return cls(
            **PaymentRead.of(row).model_dump(),
            subject_type=row.subject_type,
            subject_id=row.subject_id,
            customer_id=row.stripe_customer_id,
        )


class ProjectPayments(CamelModel):
    data: list[ProjectPayment] = Field(description="Newest first.")
    has_more: bool


class ProjectSubscription(CamelModel):
    id: str
    status: str
    subject_type: str | None
    subject_id: str | None
    customer_id: str
    price_ids: list[str]
    plans: list[str]
    current_period_start: datetime | None
    current_period_end: datetime | None
    cancel_at_period_end: bool
    canceled_at: datetime | None
    trial_end: datetime | None
    created_at: datetime

    @classmethod
    def of(cls, row: Subscription) -> ProjectSubscription:
        return cls(
            id=row.stripe_subscription_id,
            status=row.status,
            subject_type=row.subject_type,
            subject_id=row.subject_id,
            customer_id=row.stripe_customer_id,
            price_ids=list(row.price_ids),
            plans=list(row.purchase_keys),
            current_period_start=row.current_period_start,
            current_period_end=row.current_period_end,
            cancel_at_period_end=row.cancel_at_period_end,
            canceled_at=row.canceled_at,
            trial_end=row.trial_end,
            created_at=row.created_at,
        )


class ProjectSubscriptions(CamelModel):
    data: list[ProjectSubscription] = Field(description="Newest first.")
    has_more: bool
