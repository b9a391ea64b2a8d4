"""Wire shapes for payments (seed 002's fields, camelCase)."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import Field

from billwarden.kit.schemas import CamelModel
from billwarden.payments.models import Payment
from billwarden.payments.repository import EndpointState
from billwarden.payments.service import CurrencyFigures, Figures, PaymentStats
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


# --- across the caller's projects (seed 002's aggregated routes) ---------------------------


class CrossProjectSubscription(ProjectSubscription):
    project_id: uuid.UUID

    @classmethod
    def of_row(cls, row: Subscription) -> CrossProjectSubscription:
        return cls(**ProjectSubscription.of(row).model_dump(), project_id=row.project_id)


class CrossProjectSubscriptions(CamelModel):
    data: list[CrossProjectSubscription] = Field(description="Newest first.")
    has_more: bool


class Transaction(ProjectPayment):
    project_id: uuid.UUID

    @classmethod
    def of_payment(cls, row: Payment) -> Transaction:
        return cls(**ProjectPayment.of_row(row).model_dump(), project_id=row.project_id)


class Transactions(CamelModel):
    data: list[Transaction] = Field(description="Newest first.")
    has_more: bool


class ModeState(CamelModel):
    configured: bool = Field(description="An active Stripe configuration exists for the mode.")
    credentials_valid: bool | None = Field(
        description="Whether Stripe accepted the secret key at the last validate-credentials; "
        "null: never checked."
    )
    credentials_checked_at: datetime | None
    last_webhook_at: datetime | None = Field(description="When the last Stripe event arrived.")
    failed_events: int = Field(description="Inbox events that failed for good (replay them).")

    @classmethod
    def of(cls, state: EndpointState | None) -> ModeState:
        if state is None:
            return cls(
                configured=False,
                credentials_valid=None,
                credentials_checked_at=None,
                last_webhook_at=None,
                failed_events=0,
            )
        return cls(
            configured=state.configured,
            credentials_valid=state.check_valid,
            credentials_checked_at=state.checked_at,
            last_webhook_at=state.last_event_at,
            failed_events=state.failed_events,
        )


class PaymentProject(CamelModel):
    project_id: uuid.UUID
    name: str
    slug: str
    test: ModeState
    live: ModeState


class PaymentProjects(CamelModel):
    data: list[PaymentProject] = Field(description="By name.")


class FailedPayments(CamelModel):
    count: int
    amount: int = Field(description="Minor units.")


class CurrencyStats(CamelModel):
    currency: str
    mrr: float = Field(
        description="Monthly recurring revenue in minor units: the active and past_due "
        "subscriptions' yearly amount over 12 (yearly prices / 12, weekly * 52 / 12, daily * "
        "365 / 12, times quantity), before discounts and taxes."
    )
    arr: float = Field(description="MRR * 12, in minor units.")
    revenue: int = Field(description="Paid in the window minus what was refunded of it.")
    gross_paid: int = Field(description="Paid in the window, before refunds.")
    refunded: int
    payments: int = Field(description="Payments paid in the window.")
    failed_payments: FailedPayments = Field(
        description="Payments created in the window whose last state is failed."
    )

    @classmethod
    def of(cls, money: CurrencyFigures) -> CurrencyStats:
        return cls(
            currency=money.currency,
            mrr=money.mrr,
            arr=money.arr,
            revenue=money.revenue,
            gross_paid=money.paid,
            refunded=money.refunded,
            payments=money.paid_count,
            failed_payments=FailedPayments(count=money.failed_count, amount=money.failed),
        )


class SubscriptionStats(CamelModel):
    active: int = Field(description="Now.")
    trialing: int = Field(description="Now.")
    past_due: int = Field(description="Now.")
    new: int = Field(description="Started in the window.")
    churned: int = Field(description="Ended in the window.")
    live_at_start: int = Field(description="Started before the window, not ended before it.")
    churn_rate: float | None = Field(description="churned / liveAtStart; null when 0 were live.")


class StatsFigures(CamelModel):
    subscriptions: SubscriptionStats
    currencies: list[CurrencyStats] = Field(description="One per currency, never summed.")

    @classmethod
    def of(cls, figures: Figures) -> StatsFigures:
        return cls(
            subscriptions=SubscriptionStats(
                active=figures.active,
                trialing=figures.trialing,
                past_due=figures.past_due,
                new=figures.new,
                churned=figures.churned,
                live_at_start=figures.live_at_start,
                churn_rate=figures.churn_rate,
            ),
            currencies=[
                CurrencyStats.of(figures.currencies[code]) for code in sorted(figures.currencies)
            ],
        )


class ProjectStats(StatsFigures):
    project_id: uuid.UUID
    name: str
    slug: str


class PaymentStatsRead(CamelModel):
    test_mode: bool
    from_: datetime = Field(alias="from", description="The window's start (inclusive).")
    to: datetime = Field(description="The window's end (exclusive).")
    total: StatsFigures = Field(description="Every project of the answer, per currency.")
    projects: list[ProjectStats] = Field(description="Each project the caller can see, by name.")

    @classmethod
    def of(
        cls, stats: PaymentStats, *, test_mode: bool, since: datetime, until: datetime
    ) -> PaymentStatsRead:
        return cls.model_validate(
            {
                "testMode": test_mode,
                "from": since,
                "to": until,
                "total": StatsFigures.of(stats.total),
                "projects": [
                    ProjectStats(
                        **StatsFigures.of(figures).model_dump(),
                        project_id=project.id,
                        name=project.name,
                        slug=project.slug,
                    )
                    for project, figures in stats.projects
                ],
            }
        )
