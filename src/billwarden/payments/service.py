"""The payments mirror's rules: invoices and one-time payments as Stripe has them now.

Like subscriptions, each is re-fetched from Stripe under a lock on its id and applied whatever
order the events came in; an event strictly older than the one last applied changes nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from billwarden.core.modes import Mode
from billwarden.core.subjects import Subject
from billwarden.db.base import utcnow
from billwarden.db.locks import lock_name
from billwarden.notifications.service import Outbox
from billwarden.payments.models import Payment
from billwarden.payments.repository import (
    PaymentFigures,
    PaymentRepository,
    PaymentTotals,
    SubscriptionCounts,
)
from billwarden.projects.models import Project
from billwarden.subscriptions.service import (
    EventStamp,
    MirrorService,
    customer_id_of,
    subject_from_metadata,
    subject_of_row,
    timestamp,
)
from billwarden.subscriptions.service.sync import SubscriptionSync

INVOICE = "invoice"
ONE_TIME = "payment"


def invoice_subscription_id(invoice: dict[str, Any]) -> str | None:
    """The subscription an invoice belongs to: `parent.subscription_details.subscription`
    since API version 2025-03-31 (top-level `subscription` before)."""
    parent = invoice.get("parent")
    details = parent.get("subscription_details") if isinstance(parent, dict) else None
    subscription = details.get("subscription") if isinstance(details, dict) else None
    if subscription is None:
        subscription = invoice.get("subscription")
    if isinstance(subscription, dict):
        subscription = subscription.get("id")
    return subscription if isinstance(subscription, str) and subscription else None


def _text(value: object, limit: int) -> str | None:
    return value[:limit] if isinstance(value, str) and value else None


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def invoice_status(invoice: dict[str, Any]) -> str:
    status = invoice.get("status")
    if status == "paid":
        return "succeeded"
    if status == "void":
        return "void"
    if status == "uncollectible":
        return "failed"
    if status == "open" and (invoice.get("attempted") or _int(invoice.get("attempt_count")) > 0):
        return "failed"
    return "pending"


def _refund_status(status: str, amount: int, refunded: int) -> str:
    """A paid invoice's status once some of its payment was refunded."""
    if status != "succeeded" or not refunded:
        return status
    return "refunded" if refunded >= amount else "partially_refunded"


def intent_status(intent: dict[str, Any], refunded: int) -> str:
    status = intent.get("status")
    if status == "succeeded":
        received = _int(intent.get("amount_received")) or _int(intent.get("amount"))
        if refunded and refunded >= received:
            return "refunded"
        return "partially_refunded" if refunded else "succeeded"
    if status == "canceled":
        return "void"
    if status == "requires_payment_method" and intent.get("last_payment_error"):
        return "failed"
    return "pending"


class PaymentsService:
    def __init__(self, sync: SubscriptionSync) -> None:
        self.sync = sync
        self.session: AsyncSession = sync.session
        self.project_id = sync.project_id
        self.mode: Mode = sync.mode
        self.payments = PaymentRepository(self.session)
        self.mirror = MirrorService(self.session)

    async def _locked_row(
        self, stripe_id: str, stamp: EventStamp | None
    ) -> tuple[bool, Payment | None]:
        """(whether to apply, the row if any), under the payment's lock."""
        await lock_name(self.session, f"payment:{self.project_id}:{self.mode}:{stripe_id}")
        row = await self.payments.by_stripe_id(self.project_id, self.mode, stripe_id, fresh=True)
        if row is not None and stamp is not None and stamp.is_older_than(row.last_event_created):
            return False, row
        return True, row

    async def _subject(self, obj: dict[str, Any], subscription_id: str | None) -> Subject | None:
        owner = subject_from_metadata(obj.get("metadata"), self.project_id, self.mode)
        if owner is not None:
            return owner
        owner = await self.mirror.subject_of_customer(
            self.project_id, self.mode, customer_id_of(obj)
        )
        if owner is None and subscription_id is not None:
            row = await self.mirror.subscription(self.project_id, self.mode, subscription_id)
            owner = subject_of_row(row) if row is not None else None
        return owner

    async def _notify(self, row: Payment, previous: str | None) -> None:
        """payment.succeeded / payment.failed to the tenant app, once per change of status."""
        if row.status == previous or row.status not in ("succeeded", "failed"):
            return
        event_type = "payment.succeeded" if row.status == "succeeded" else "payment.failed"
        await Outbox(self.session).emit(
            self.project_id,
            self.mode,
            event_type,
            {
                "id": row.stripe_id,
                "kind": row.kind,
                "subjectType": row.subject_type,
                "subjectId": row.subject_id,
                "amount": row.amount,
                "currency": row.currency,
                "status": row.status,
                "paidAt": row.paid_at.isoformat() if row.paid_at else None,
                "subscriptionId": row.stripe_subscription_id,
                "customerId": row.stripe_customer_id,
            },
        )

    def _stamp(self, row: Payment, stamp: EventStamp | None) -> None:
        if stamp is not None and not stamp.is_older_than(row.last_event_created):
            row.last_event_created = stamp.created
            row.last_event_id = stamp.id
        row.synced_at = utcnow()

    async def _row(
        self, kind: str, stripe_id: str, obj: dict[str, Any], row: Payment | None
    ) -> Payment:
        if row is None:
            row = Payment(
                project_id=self.project_id,
                mode=self.mode,
                kind=kind,
                stripe_id=stripe_id[:255],
                currency=str(obj.get("currency") or "usd")[:3],
                status="pending",
                created=timestamp(obj.get("created")) or utcnow(),
                raw=obj,
            )
            self.session.add(row)
        return row

    async def apply_invoice(self, invoice_id: str, stamp: EventStamp | None) -> Payment | None:
        """The invoice as Stripe has it now, in the mirror."""
        apply, row = await self._locked_row(invoice_id, stamp)
        if not apply:
            return row
        obj = await self.sync.fetch(f"/v1/invoices/{invoice_id}")
        if obj is None:
            return row
        subscription_id = invoice_subscription_id(obj)
        owner = await self._subject(obj, subscription_id)
        if owner is None and row is None:
            return None  # not a customer of this project's subjects (another app's invoice)
        previous = row.status if row is not None else None
        row = await self._row(INVOICE, invoice_id, obj, row)
        row.subject_type = owner.type.value if owner is not None else row.subject_type
        row.subject_id = owner.id if owner is not None else row.subject_id
        row.stripe_customer_id = customer_id_of(obj)
        row.stripe_subscription_id = subscription_id
        paid = obj.get("status") == "paid"
        row.amount = _int(obj.get("amount_paid")) if paid else _int(obj.get("amount_due"))
        row.currency = str(obj.get("currency") or row.currency)[:3]
        row.status = _refund_status(invoice_status(obj), row.amount, row.amount_refunded or 0)
        row.description = _text(obj.get("description"), 1000) or _line_description(obj)
        row.hosted_invoice_url = _text(obj.get("hosted_invoice_url"), 2000)
        row.invoice_pdf = _text(obj.get("invoice_pdf"), 2000)
        transitions = obj.get("status_transitions")
        row.paid_at = (
            timestamp(transitions.get("paid_at")) if isinstance(transitions, dict) else None
        )
        row.raw = obj
        self._stamp(row, stamp)
        await self.session.flush()
        await self._notify(row, previous)
        return row

    async def apply_payment_intent(
        self, intent_id: str, stamp: EventStamp | None
    ) -> Payment | None:
        """A one-time payment billwarden sold (its checkout's metadata names this project);
        other payment intents (an invoice's) are the invoices' business."""
        apply, row = await self._locked_row(intent_id, stamp)
        if not apply:
            return row
        obj = await self.sync.fetch(f"/v1/payment_intents/{intent_id}")
        if obj is None:
            return row
        owner = subject_from_metadata(obj.get("metadata"), self.project_id, self.mode)
        if owner is None and row is None:
            return None
        previous = row.status if row is not None else None
        row = await self._row(ONE_TIME, intent_id, obj, row)
        if owner is not None:
            row.subject_type, row.subject_id = owner.type.value, owner.id
        row.stripe_customer_id = customer_id_of(obj)
        row.amount = _int(obj.get("amount_received")) or _int(obj.get("amount"))
        row.currency = str(obj.get("currency") or row.currency)[:3]
        refunded = await self._refunded(obj)
        row.amount_refunded = refunded
        row.status = intent_status(obj, refunded)
        row.description = _text(obj.get("description"), 1000)
        if obj.get("status") == "succeeded" and row.paid_at is None:
            row.paid_at = stamp.created if stamp is not None else utcnow()
        row.raw = obj
        self._stamp(row, stamp)
        await self.session.flush()
        await self._notify(row, previous)
        return row

    async def apply_invoice_refund(self, intent_id: str, stamp: EventStamp | None) -> None:
        """A refund of the payment intent that paid an invoice: the invoice's row (read again)
        with what its payments' charges have refunded in all."""
        found = await self.sync.gateway.list_page(
            self.project_id,
            self.mode,
            await self.sync.secret_key(),
            "/v1/invoice_payments",
            {"payment": {"type": "payment_intent", "payment_intent": intent_id}, "limit": 1},
        )
        invoice_id = next(
            (
                str(payment["invoice"])
                for payment in found["data"]
                if isinstance(payment, dict) and isinstance(payment.get("invoice"), str)
            ),
            None,
        )
        if invoice_id is None:
            return
        row = await self.apply_invoice(invoice_id, stamp)
        if row is None or row.kind != INVOICE:
            return
        intent = await self.sync.fetch(f"/v1/payment_intents/{intent_id}")
        if intent is None:
            return
        row.amount_refunded = await self._refunded(intent)
        row.status = _refund_status(row.status, row.amount, row.amount_refunded)
        await self.session.flush()

    async def _refunded(self, intent: dict[str, Any]) -> int:
        charge = intent.get("latest_charge")
        if isinstance(charge, dict):
            return _int(charge.get("amount_refunded"))
        if isinstance(charge, str) and charge:
            fetched = await self.sync.fetch(f"/v1/charges/{charge}")
            return _int(fetched.get("amount_refunded")) if fetched else 0
        return 0


def _line_description(invoice: dict[str, Any]) -> str | None:
    lines = invoice.get("lines")
    data = lines.get("data") if isinstance(lines, dict) else None
    first = data[0] if isinstance(data, list) and data else None
    return _text(first.get("description"), 1000) if isinstance(first, dict) else None


async def payments_of(
    session: AsyncSession,
    project_id: uuid.UUID,
    mode: Mode,
    subject: Subject,
    *,
    limit: int,
    starting_after: str | None,
) -> list[Payment]:
    """The subject's payments, newest first, after the payment `starting_after` (its Stripe id)."""
    payments = PaymentRepository(session)
    after = None
    if starting_after is not None:
        anchor = await payments.by_stripe_id(project_id, mode, starting_after)
        if anchor is None or (anchor.subject_type, anchor.subject_id) != (
            subject.type.value,
            subject.id,
        ):
            return []
        after = (anchor.created, anchor.stripe_id)
    return await payments.for_subject(project_id, mode, subject, limit=limit, after=after)


# --- the numbers a team watches (seed 002's stats) -----------------------------------------


@dataclass
class CurrencyFigures:
    """Money in one currency: never added to another currency's."""

    currency: str
    annual_amount: float = 0.0  # what the billing subscriptions bill in a year (ARR)
    paid_count: int = 0
    paid: int = 0
    refunded: int = 0
    failed_count: int = 0
    failed: int = 0

    @property
    def arr(self) -> float:
        return round(self.annual_amount, 2)

    @property
    def mrr(self) -> float:
        return round(self.annual_amount / 12, 2)

    @property
    def revenue(self) -> int:
        return self.paid - self.refunded


@dataclass
class Figures:
    """Subscription counts (whatever their currency) and money per currency."""

    active: int = 0
    trialing: int = 0
    past_due: int = 0
    new: int = 0
    churned: int = 0
    live_at_start: int = 0
    currencies: dict[str, CurrencyFigures] = field(default_factory=dict)

    @property
    def churn_rate(self) -> float | None:
        """Churned in the window over those live at its start; None when none was."""
        return round(self.churned / self.live_at_start, 4) if self.live_at_start else None

    def money(self, currency: str) -> CurrencyFigures:
        return self.currencies.setdefault(currency, CurrencyFigures(currency))

    def add_subscriptions(self, counts: SubscriptionCounts) -> None:
        self.active += counts.active
        self.trialing += counts.trialing
        self.past_due += counts.past_due
        self.new += counts.new
        self.churned += counts.churned
        self.live_at_start += counts.live_at_start
        if counts.currency is not None:
            self.money(counts.currency).annual_amount += counts.annual_amount

    def add_payments(self, totals: PaymentTotals) -> None:
        money = self.money(totals.currency)
        money.paid_count += totals.paid_count
        money.paid += totals.paid
        money.refunded += totals.refunded
        money.failed_count += totals.failed_count
        money.failed += totals.failed


@dataclass(frozen=True)
class PaymentStats:
    total: Figures
    projects: list[tuple[Project, Figures]]  # every project asked for, by name


async def payment_stats(
    session: AsyncSession,
    projects: Collection[uuid.UUID] | None,
    mode: Mode,
    since: datetime,
    until: datetime,
) -> PaymentStats:
    """Counts and money of `projects` (None: every project) in one mode: subscriptions active,
    trialing and past_due now, MRR and ARR of the billing ones (active and past_due), and over
    [since, until): subscriptions started and ended, the churn rate, revenue (paid minus
    refunded) and failed payments; per project, and in total per currency."""
    figures = PaymentFigures(session)
    await figures.plan_for_each_window()
    per_project = {project.id: (project, Figures()) for project in await figures.projects(projects)}
    total = Figures()
    for counts in await figures.subscriptions(projects, mode, since, until):
        if counts.project_id in per_project:
            per_project[counts.project_id][1].add_subscriptions(counts)
            total.add_subscriptions(counts)
    for totals in await figures.payments(projects, mode, since, until):
        if totals.project_id in per_project:
            per_project[totals.project_id][1].add_payments(totals)
            total.add_payments(totals)
    return PaymentStats(total, list(per_project.values()))
