"""Wire shapes for payments (seed 002's fields, camelCase)."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from billwarden.kit.schemas import CamelModel
from billwarden.payments.models import Payment


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
