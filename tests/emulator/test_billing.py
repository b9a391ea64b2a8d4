"""Billing behaviour users see: renewals, declines and retries, checkout outcomes, pause/resume,
trials, prorations, meter events, and state surviving a restart through the snapshot file."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import httpx
import pytest
import stripe

from billwarden_emulator.config import EmulatorConfig
from billwarden_emulator.testing import running_emulator

DAY = 86_400


def _setup(client: stripe.StripeClient, *, card: str | None = None) -> tuple[str, str, str]:
    """A clock, a customer on it (with an optional test card outcome) and a monthly price."""
    clock = client.v1.test_helpers.test_clocks.create({"frozen_time": int(time.time())})
    params: dict[str, object] = {"test_clock": clock.id, "email": "bill@example.com"}
    if card is not None:
        params["metadata"] = {"emulator_card": card}
    customer = client.v1.customers.create(params)  # type: ignore[arg-type]
    price = client.v1.prices.create(
        {
            "product_data": {"name": "Pro"},
            "unit_amount": 2000,
            "currency": "usd",
            "recurring": {"interval": "month"},
        }
    )
    return clock.id, customer.id, price.id


def _advance(client: stripe.StripeClient, clock_id: str, seconds: int) -> None:
    clock = client.v1.test_helpers.test_clocks.retrieve(clock_id)
    client.v1.test_helpers.test_clocks.advance(
        clock_id, {"frozen_time": clock.frozen_time + seconds}
    )


def _types_since(client: stripe.StripeClient, event_id: str | None) -> list[str]:
    params: dict[str, object] = {"limit": 100}
    if event_id is not None:
        params["ending_before"] = event_id
    return [e.type for e in reversed(client.v1.events.list(params).data)]  # type: ignore[arg-type]


def _latest_event_id(client: stripe.StripeClient) -> str:
    return client.v1.events.list({"limit": 1}).data[0].id


class TestRenewals:
    def test_clock_advance_renews_and_pays_a_new_invoice(self, client: stripe.StripeClient) -> None:
        clock, customer, price = _setup(client)
        subscription = client.v1.subscriptions.create(
            {"customer": customer, "items": [{"price": price}]}
        )
        first_end = subscription["items"].data[0].current_period_end
        mark = _latest_event_id(client)
        _advance(client, clock, 31 * DAY)
        renewed = client.v1.subscriptions.retrieve(subscription.id)
        assert renewed.status == "active"
        assert renewed["items"].data[0].current_period_start == first_end
        assert renewed["items"].data[0].current_period_end > first_end
        invoice = client.v1.invoices.retrieve(str(renewed.latest_invoice))
        assert invoice.billing_reason == "subscription_cycle"
        assert invoice.status == "paid" and invoice.amount_paid == 2000
        types = [t for t in _types_since(client, mark) if not t.startswith("test_helpers")]
        assert types[:3] == [
            "customer.subscription.updated",
            "invoice.created",
            "invoice.finalized",
        ]
        assert types.index("invoice.paid") < types.index("invoice.payment_succeeded")
        invoices = client.v1.invoices.list({"subscription": subscription.id}).data
        assert len(invoices) == 2

    def test_declined_renewal_goes_past_due_and_is_canceled_after_retries(
        self, client: stripe.StripeClient
    ) -> None:
        clock, customer, price = _setup(client)
        subscription = client.v1.subscriptions.create(
            {"customer": customer, "items": [{"price": price}]}
        )
        client.v1.customers.update(customer, {"metadata": {"emulator_card": "declined"}})
        _advance(client, clock, 31 * DAY)
        late = client.v1.subscriptions.retrieve(subscription.id)
        assert late.status == "past_due"
        invoice = client.v1.invoices.retrieve(str(late.latest_invoice))
        assert invoice.status == "open" and invoice.attempt_count == 1
        assert invoice.next_payment_attempt is not None
        assert client.v1.events.list({"type": "invoice.payment_failed"}).data
        _advance(client, clock, 16 * DAY)
        assert client.v1.subscriptions.retrieve(subscription.id).status == "canceled"
        assert client.v1.invoices.retrieve(invoice.id).attempt_count == 4

    def test_past_due_recovers_when_the_card_works_again(
        self, client: stripe.StripeClient, raw: httpx.Client
    ) -> None:
        _, customer, price = _setup(client, card="insufficient_funds")
        subscription = client.v1.subscriptions.create(
            {"customer": customer, "items": [{"price": price}]}
        )
        assert subscription.status == "incomplete"
        with pytest.raises(stripe.CardError) as caught:
            client.v1.invoices.pay(str(subscription.latest_invoice))
        assert caught.value.json_body["error"]["decline_code"] == "insufficient_funds"
        raw.post(f"/_emulator/customers/{customer}/card", data={"outcome": "succeeds"})
        paid = client.v1.invoices.pay(str(subscription.latest_invoice))
        assert paid.status == "paid"
        assert client.v1.subscriptions.retrieve(subscription.id).status == "active"

    def test_incomplete_subscription_expires_after_23_hours(
        self, client: stripe.StripeClient
    ) -> None:
        clock, customer, price = _setup(client, card="declined")
        subscription = client.v1.subscriptions.create(
            {"customer": customer, "items": [{"price": price}]}
        )
        _advance(client, clock, 24 * 3600)
        assert client.v1.subscriptions.retrieve(subscription.id).status == "incomplete_expired"

    def test_create_prorations_land_on_the_next_renewal_invoice(
        self, client: stripe.StripeClient
    ) -> None:
        clock, customer, price = _setup(client)
        bigger = client.v1.prices.create(
            {
                "product_data": {"name": "Max"},
                "unit_amount": 5000,
                "currency": "usd",
                "recurring": {"interval": "month"},
            }
        )
        subscription = client.v1.subscriptions.create(
            {"customer": customer, "items": [{"price": price}]}
        )
        _advance(client, clock, 10 * DAY)
        client.v1.subscriptions.update(
            subscription.id,
            {"items": [{"id": subscription["items"].data[0].id, "price": bigger.id}]},
        )
        assert len(client.v1.invoices.list({"subscription": subscription.id}).data) == 1
        _advance(client, clock, 25 * DAY)
        renewal = client.v1.invoices.list({"subscription": subscription.id}).data[0]
        lines = client.v1.invoices.line_items.list(renewal.id).data
        prorations = [
            line
            for line in lines
            if line.parent and line.parent.subscription_item_details.proration  # type: ignore[union-attr]
        ]
        assert len(prorations) == 2
        assert renewal.amount_due > 5000


class TestCheckoutOutcomes:
    def _session(self, client: stripe.StripeClient) -> stripe.checkout.Session:
        price = client.v1.prices.create(
            {
                "product_data": {"name": "Pro"},
                "unit_amount": 900,
                "currency": "usd",
                "recurring": {"interval": "month"},
            }
        )
        return client.v1.checkout.sessions.create(
            {
                "mode": "subscription",
                "customer_email": "new@example.com",
                "line_items": [{"price": price.id, "quantity": 1}],
                "success_url": "https://example.com/ok",
            }
        )

    def test_declined_card_answers_402_and_leaves_the_session_open(
        self, client: stripe.StripeClient, raw: httpx.Client
    ) -> None:
        session = self._session(client)
        response = raw.post(
            f"/_emulator/checkout/sessions/{session.id}/complete", data={"outcome": "card_declined"}
        )
        assert response.status_code == 402
        assert response.json()["error"]["code"] == "card_declined"
        assert client.v1.checkout.sessions.retrieve(session.id).status == "open"
        assert client.v1.subscriptions.list({"status": "all"}).data == []

    @pytest.mark.parametrize(
        ("outcome", "event_type", "status"),
        [
            ("succeeded", "checkout.session.async_payment_succeeded", "active"),
            ("failed", "checkout.session.async_payment_failed", "incomplete"),
        ],
    )
    def test_async_payment_completes_unpaid_then_settles(
        self,
        client: stripe.StripeClient,
        raw: httpx.Client,
        outcome: str,
        event_type: str,
        status: str,
    ) -> None:
        session = self._session(client)
        raw.post(
            f"/_emulator/checkout/sessions/{session.id}/complete",
            data={"outcome": "async_pending"},
        )
        pending = client.v1.checkout.sessions.retrieve(session.id)
        assert pending.status == "complete" and pending.payment_status == "unpaid"
        completed = client.v1.events.list({"type": "checkout.session.completed"}).data[0]
        assert completed.data.object["payment_status"] == "unpaid"
        settled = raw.post(
            f"/_emulator/checkout/sessions/{session.id}/async_payment", data={"outcome": outcome}
        )
        assert settled.status_code == 200
        assert client.v1.events.list({"type": event_type}).data
        subscription = client.v1.subscriptions.retrieve(str(pending.subscription))
        assert subscription.status == status

    def test_expire_and_line_items(self, client: stripe.StripeClient) -> None:
        session = self._session(client)
        expanded = client.v1.checkout.sessions.retrieve(session.id, {"expand": ["line_items"]})
        assert expanded.line_items is not None
        assert expanded.line_items.data[0].amount_total == 900
        expired = client.v1.checkout.sessions.expire(session.id)
        assert expired.status == "expired"
        with pytest.raises(stripe.InvalidRequestError):
            client.v1.checkout.sessions.expire(session.id)


class TestPauseResumeAndTrials:
    def test_pause_and_resume_emit_their_events(self, client: stripe.StripeClient) -> None:
        _, customer, price = _setup(client)
        subscription = client.v1.subscriptions.create(
            {"customer": customer, "items": [{"price": price}]}
        )
        with pytest.raises(stripe.InvalidRequestError):
            client.v1.subscriptions.resume(subscription.id)
        mark = _latest_event_id(client)
        assert client.v1.subscriptions.pause(subscription.id).status == "paused"
        assert client.v1.subscriptions.resume(subscription.id).status == "active"
        types = _types_since(client, mark)
        assert types[:2] == ["customer.subscription.updated", "customer.subscription.paused"]
        assert "customer.subscription.resumed" in types

    def test_pause_collection_keeps_status_and_sends_no_paused_event(
        self, client: stripe.StripeClient
    ) -> None:
        _, customer, price = _setup(client)
        subscription = client.v1.subscriptions.create(
            {"customer": customer, "items": [{"price": price}]}
        )
        updated = client.v1.subscriptions.update(
            subscription.id, {"pause_collection": {"behavior": "void"}}
        )
        assert updated.status == "active"
        assert updated.pause_collection is not None
        assert updated.pause_collection.behavior == "void"
        assert client.v1.events.list({"type": "customer.subscription.paused"}).data == []
        cleared = client.v1.subscriptions.update(subscription.id, {"pause_collection": ""})  # type: ignore[typeddict-item]
        assert cleared.pause_collection is None

    def test_trial_warns_three_days_ahead_then_charges(self, client: stripe.StripeClient) -> None:
        clock, customer, price = _setup(client)
        subscription = client.v1.subscriptions.create(
            {"customer": customer, "items": [{"price": price}], "trial_period_days": 7}
        )
        assert subscription.status == "trialing"
        assert client.v1.invoices.retrieve(str(subscription.latest_invoice)).amount_due == 0
        _advance(client, clock, 5 * DAY)
        assert client.v1.events.list({"type": "customer.subscription.trial_will_end"}).data
        assert client.v1.subscriptions.retrieve(subscription.id).status == "trialing"
        _advance(client, clock, 3 * DAY)
        active = client.v1.subscriptions.retrieve(subscription.id)
        assert active.status == "active"
        assert client.v1.invoices.retrieve(str(active.latest_invoice)).amount_paid == 2000


class TestCustomersAndUsage:
    def test_deleting_a_customer_cancels_its_subscriptions_first(
        self, client: stripe.StripeClient
    ) -> None:
        _, customer, price = _setup(client)
        subscription = client.v1.subscriptions.create(
            {"customer": customer, "items": [{"price": price}]}
        )
        mark = _latest_event_id(client)
        deleted = client.v1.customers.delete(customer)
        assert deleted.deleted is True
        assert _types_since(client, mark) == ["customer.subscription.deleted", "customer.deleted"]
        assert client.v1.subscriptions.retrieve(subscription.id).status == "canceled"
        assert client.v1.customers.retrieve(customer).deleted is True

    def test_meter_event_identifier_is_deduplicated(self, client: stripe.StripeClient) -> None:
        client.v1.billing.meters.create(
            {
                "display_name": "API requests",
                "event_name": "api_requests",
                "default_aggregation": {"formula": "sum"},
            }
        )
        customer = client.v1.customers.create()
        params = {
            "event_name": "api_requests",
            "payload": {"stripe_customer_id": customer.id, "value": "5"},
            "identifier": "batch-1",
        }
        first = client.v1.billing.meter_events.create(params)  # type: ignore[arg-type]
        assert isinstance(first, stripe.billing.MeterEvent)
        with pytest.raises(stripe.InvalidRequestError) as repeated:
            client.v1.billing.meter_events.create(params)  # type: ignore[arg-type]
        assert repeated.value.param == "identifier"
        with pytest.raises(stripe.InvalidRequestError) as caught:
            client.v1.billing.meter_events.create(
                {**params, "identifier": "old", "timestamp": int(time.time()) - 40 * DAY}  # type: ignore[typeddict-item]
            )
        assert caught.value.param == "timestamp"

    def test_portal_session_and_credential_checks(self, client: stripe.StripeClient) -> None:
        customer = client.v1.customers.create()
        portal = client.v1.billing_portal.sessions.create(
            {"customer": customer.id, "return_url": "https://example.com/account"}
        )
        assert portal.id.startswith("bps_") and portal.url.startswith("http")
        assert client.v1.accounts.retrieve_current().id.startswith("acct_")
        assert client.v1.balance.retrieve().object == "balance"


class TestSnapshot:
    def test_state_survives_a_restart(self, tmp_path: Path) -> None:
        config = EmulatorConfig(snapshot_path=tmp_path / "emulator.json")
        key = f"sk_test_{uuid.uuid4().hex}"
        with running_emulator(config) as url:
            client = stripe.StripeClient(key, base_addresses={"api": url})
            customer = client.v1.customers.create({"email": "kept@example.com"})
        with running_emulator(config) as url:
            client = stripe.StripeClient(key, base_addresses={"api": url})
            assert client.v1.customers.retrieve(customer.id).email == "kept@example.com"
            assert client.v1.events.list({"type": "customer.created"}).data
