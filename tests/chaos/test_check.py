"""The chaos run's verdict can fail: each kind of difference between billwarden's rows and
Stripe's objects is reported, and equal ones are not."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from billwarden.entitlements.models import Entitlement
from billwarden.payments.models import Payment
from billwarden.subscriptions.models import Customer, Subscription
from billwarden.webhooks.models import InboxStatus
from tests.chaos.check import (
    Catalog,
    Mirror,
    StripeState,
    compare,
)
from tests.checkout.factories import catalog_document

PRICES = {
    key: f"price_{key}"
    for key in ("premium_monthly", "premium_yearly", "api_pro", "premium_plus", "enterprise")
}
START, END = 1_800_000_000, 1_802_592_000


def at(value: int) -> datetime:
    return datetime.fromtimestamp(value, UTC)


def stripe_state(**changes: Any) -> StripeState:
    subscription = {
        "id": "sub_1",
        "status": "active",
        "items": {
            "data": [
                {
                    "price": {"id": PRICES["premium_monthly"]},
                    "current_period_start": START,
                    "current_period_end": END,
                }
            ]
        },
        "cancel_at_period_end": False,
        "cancel_at": None,
        "canceled_at": None,
        "ended_at": None,
        "customer": "cus_1",
        "metadata": {"bw_subject_type": "user", "bw_subject_id": "ada"},
        **changes,
    }
    customer = {
        "id": "cus_1",
        "email": "ada@example.test",
        "metadata": {"bw_subject_type": "user", "bw_subject_id": "ada"},
    }
    invoice = {
        "id": "in_1",
        "status": "paid",
        "attempt_count": 1,
        "amount_paid": 900,
        "amount_due": 900,
        "currency": "usd",
        "customer": "cus_1",
        "parent": {"subscription_details": {"subscription": "sub_1"}},
        "status_transitions": {"paid_at": START},
    }
    return StripeState([customer], [subscription], [invoice], refunded={})


def mirror(**subscription_changes: Any) -> Mirror:
    subscription = Subscription(
        stripe_subscription_id="sub_1",
        stripe_customer_id="cus_1",
        subject_type="user",
        subject_id="ada",
        status="active",
        price_ids=[PRICES["premium_monthly"]],
        current_period_start=at(START),
        current_period_end=at(END),
        cancel_at_period_end=False,
        cancel_at=None,
        canceled_at=None,
        ended_at=None,
        **subscription_changes,
    )
    customer = Customer(
        subject_type="user",
        subject_id="ada",
        stripe_customer_id="cus_1",
        email="ada@example.test",
        deleted=False,
    )
    payment = Payment(
        kind="invoice",
        stripe_id="in_1",
        stripe_customer_id="cus_1",
        stripe_subscription_id="sub_1",
        amount=900,
        amount_refunded=0,
        currency="usd",
        status="succeeded",
        paid_at=at(START),
    )
    entitlement = Entitlement(
        subject_type="user",
        subject_id="ada",
        plan="PREMIUM_MONTHLY",
        status="ACTIVE",
        granted=True,
        features=["export", "premium"],
        plans=["premium_monthly"],
        stripe_subscription_id="sub_1",
        stripe_customer_id="cus_1",
        stripe_price_id=PRICES["premium_monthly"],
        current_period_start=at(START),
        current_period_end=at(END),
        cancel_at_period_end=False,
    )
    inbox = {"evt_1": (InboxStatus.PROCESSED, 1, None)}
    return Mirror([customer], [subscription], [payment], [entitlement], inbox)


CATALOG = Catalog(catalog_document(PRICES))
EMITTED = {"evt_1": "customer.subscription.created"}


class TestVerdict:
    def test_equal_state_has_no_mismatch(self) -> None:
        assert compare(mirror(), stripe_state(), CATALOG, EMITTED) == []

    def test_a_stale_status_is_a_mismatch_of_the_row_and_of_the_snapshot(self) -> None:
        found = compare(mirror(), stripe_state(status="past_due"), CATALOG, EMITTED)
        assert "subscription sub_1: status is 'active' in billwarden, 'past_due' in Stripe" in found
        assert any(line.startswith("entitlement user:ada: granted is True") for line in found)

    def test_a_missed_cancel_flag_is_a_mismatch(self) -> None:
        found = compare(mirror(), stripe_state(cancel_at_period_end=True), CATALOG, EMITTED)
        assert any("cancel_at_period_end is False in billwarden, True" in f for f in found)

    def test_a_missing_or_unapplied_event_is_a_mismatch(self) -> None:
        emitted = {**EMITTED, "evt_2": "invoice.paid"}
        assert compare(mirror(), stripe_state(), CATALOG, emitted) == [
            "event evt_2 (invoice.paid): not in billwarden's inbox"
        ]
        pending = mirror()
        pending.inbox["evt_1"] = (InboxStatus.FAILED, 8, "boom")
        assert compare(pending, stripe_state(), CATALOG, EMITTED) == [
            "event evt_1 (customer.subscription.created): failed after 8 attempt(s): boom"
        ]

    def test_a_refund_not_mirrored_is_a_mismatch(self) -> None:
        state = stripe_state()
        state.refunded["in_1"] = 450
        found = compare(mirror(), state, CATALOG, EMITTED)
        assert found == [
            "invoice in_1: status is 'succeeded' in billwarden, 'partially_refunded' in Stripe",
            "invoice in_1: amount_refunded is 0 in billwarden, 450 in Stripe",
        ]
