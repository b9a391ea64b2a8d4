"""Test-helper routes under `/_emulator/`: putting a customer created without a clock on one."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import stripe

from tests.emulator.receiver import WebhookReceiver

DAY = 86_400


@pytest.fixture
def receiver(client: stripe.StripeClient) -> Iterator[WebhookReceiver]:
    """A real endpoint for every event of the test's account."""
    with WebhookReceiver() as running:
        client.v1.webhook_endpoints.create({"url": running.url, "enabled_events": ["*"]})
        yield running


def _delivered(raw: httpx.Client, event_ids: set[str], timeout: float = 10.0) -> list[Any]:
    """The delivery log once every event in `event_ids` has a successful delivery."""
    deadline = time.monotonic() + timeout
    while True:
        log = raw.get("/_emulator/deliveries").json()["data"]
        if event_ids <= {entry["event_id"] for entry in log if entry["success"]}:
            return list(log)
        if time.monotonic() > deadline:
            raise AssertionError(f"events {event_ids} not all delivered; log: {log}")
        time.sleep(0.02)


def _monthly_price(client: stripe.StripeClient) -> str:
    product = client.v1.products.create({"name": "Pro"})
    price = client.v1.prices.create(
        {
            "product": product.id,
            "unit_amount": 1500,
            "currency": "usd",
            "recurring": {"interval": "month"},
        }
    )
    return price.id


class TestAttachTestClock:
    def test_checkout_subscription_of_an_attached_customer_renews_when_the_clock_advances(
        self, client: stripe.StripeClient, raw: httpx.Client, receiver: WebhookReceiver
    ) -> None:
        # the clock starts before the attach moment, as when an app's test set it up earlier
        start = int(time.time()) - 5 * DAY
        clock = client.v1.test_helpers.test_clocks.create({"frozen_time": start})
        customer = client.v1.customers.create({"email": "ada@example.com"})
        assert customer.test_clock is None

        attached = raw.post(
            f"/_emulator/customers/{customer.id}/test_clock", json={"test_clock": clock.id}
        )

        assert attached.status_code == 200
        assert attached.json()["test_clock"] == clock.id
        assert client.v1.customers.retrieve(customer.id).test_clock == clock.id
        update = client.v1.events.list({"type": "customer.updated"}).data[0]
        assert update.data.object["id"] == customer.id
        assert update.data.to_dict()["previous_attributes"] == {"test_clock": None}

        session = client.v1.checkout.sessions.create(
            {
                "mode": "subscription",
                "customer": customer.id,
                "line_items": [{"price": _monthly_price(client), "quantity": 1}],
                "success_url": "https://example.com/ok",
            }
        )
        completed = raw.post(f"/_emulator/checkout/sessions/{session.id}/complete")
        assert completed.status_code == 200
        subscription = client.v1.subscriptions.retrieve(str(completed.json()["subscription"]))
        assert subscription.test_clock == clock.id
        assert subscription.start_date == start  # the clock's time, not the wall clock's
        first_end = subscription["items"].data[0].current_period_end

        advanced = raw.post(
            f"/_emulator/test_clocks/{clock.id}/advance", data={"seconds": 31 * DAY}
        )
        assert advanced.status_code == 200

        renewed = client.v1.subscriptions.retrieve(subscription.id)
        assert renewed.status == "active"
        assert renewed["items"].data[0].current_period_start == first_end
        assert renewed["items"].data[0].current_period_end > first_end
        invoice = client.v1.invoices.retrieve(str(renewed.latest_invoice))
        assert invoice.billing_reason == "subscription_cycle"
        assert invoice.status == "paid" and invoice.amount_paid == 1500
        paid = client.v1.events.list({"type": "invoice.paid"}).data[0]
        assert paid.data.object["id"] == invoice.id
        updated = client.v1.events.list({"type": "customer.subscription.updated"}).data[0]
        assert updated.data.object["id"] == subscription.id
        assert updated.data.object["items"]["data"][0]["current_period_start"] == first_end
        assert updated.data.previous_attributes["items"]["data"][0]["current_period_end"] == (
            first_end
        )
        log = _delivered(raw, {paid.id, updated.id})
        assert {"invoice.paid", "customer.subscription.updated"} <= {
            entry["event_type"] for entry in log if entry["success"]
        }

    def test_form_body_is_accepted(self, client: stripe.StripeClient, raw: httpx.Client) -> None:
        clock = client.v1.test_helpers.test_clocks.create({"frozen_time": int(time.time())})
        customer = client.v1.customers.create({})

        attached = raw.post(
            f"/_emulator/customers/{customer.id}/test_clock", data={"test_clock": clock.id}
        )

        assert attached.status_code == 200
        assert client.v1.customers.list({"test_clock": clock.id}).data[0].id == customer.id


class TestAttachTestClockRefusals:
    def _refusal(self, response: httpx.Response, status: int) -> dict[str, Any]:
        assert response.status_code == status
        error: dict[str, Any] = response.json()["error"]
        assert error["type"] == "invalid_request_error"
        return error

    def test_customer_already_on_a_clock_is_refused(
        self, client: stripe.StripeClient, raw: httpx.Client
    ) -> None:
        first = client.v1.test_helpers.test_clocks.create({"frozen_time": int(time.time())})
        second = client.v1.test_helpers.test_clocks.create({"frozen_time": int(time.time())})
        customer = client.v1.customers.create({"test_clock": first.id})

        response = raw.post(
            f"/_emulator/customers/{customer.id}/test_clock", json={"test_clock": second.id}
        )

        error = self._refusal(response, 400)
        assert error["param"] == "test_clock"
        assert f"already on test clock {first.id}" in error["message"]
        assert client.v1.customers.retrieve(customer.id).test_clock == first.id

    def test_customer_with_a_live_subscription_is_refused(
        self, client: stripe.StripeClient, raw: httpx.Client
    ) -> None:
        clock = client.v1.test_helpers.test_clocks.create({"frozen_time": int(time.time())})
        customer = client.v1.customers.create({})
        subscription = client.v1.subscriptions.create(
            {"customer": customer.id, "items": [{"price": _monthly_price(client)}]}
        )

        response = raw.post(
            f"/_emulator/customers/{customer.id}/test_clock", json={"test_clock": clock.id}
        )

        error = self._refusal(response, 400)
        assert subscription.id in error["message"] and "cancel it" in error["message"]
        assert client.v1.customers.retrieve(customer.id).test_clock is None

    def test_customer_whose_subscriptions_are_canceled_can_be_attached(
        self, client: stripe.StripeClient, raw: httpx.Client
    ) -> None:
        clock = client.v1.test_helpers.test_clocks.create({"frozen_time": int(time.time())})
        customer = client.v1.customers.create({})
        subscription = client.v1.subscriptions.create(
            {"customer": customer.id, "items": [{"price": _monthly_price(client)}]}
        )
        client.v1.subscriptions.cancel(subscription.id)

        response = raw.post(
            f"/_emulator/customers/{customer.id}/test_clock", json={"test_clock": clock.id}
        )

        assert response.status_code == 200
        assert response.json()["test_clock"] == clock.id

    def test_unknown_clock_is_404(self, client: stripe.StripeClient, raw: httpx.Client) -> None:
        customer = client.v1.customers.create({})

        response = raw.post(
            f"/_emulator/customers/{customer.id}/test_clock", json={"test_clock": "clock_nope"}
        )

        error = self._refusal(response, 404)
        assert error["code"] == "resource_missing" and error["param"] == "test_clock"
        assert "clock_nope" in error["message"]

    def test_unknown_customer_is_404(self, client: stripe.StripeClient, raw: httpx.Client) -> None:
        clock = client.v1.test_helpers.test_clocks.create({"frozen_time": int(time.time())})

        response = raw.post(
            "/_emulator/customers/cus_nope/test_clock", json={"test_clock": clock.id}
        )

        assert self._refusal(response, 404)["code"] == "resource_missing"

    def test_missing_clock_parameter_is_refused(
        self, client: stripe.StripeClient, raw: httpx.Client
    ) -> None:
        customer = client.v1.customers.create({})

        response = raw.post(f"/_emulator/customers/{customer.id}/test_clock", json={})

        assert self._refusal(response, 400)["code"] == "parameter_missing"

    def test_another_accounts_clock_is_not_found(
        self, client: stripe.StripeClient, raw: httpx.Client, emulator_url: str
    ) -> None:
        other = stripe.StripeClient(
            f"sk_test_{uuid.uuid4().hex}", base_addresses={"api": emulator_url}
        )
        foreign = other.v1.test_helpers.test_clocks.create({"frozen_time": int(time.time())})
        customer = client.v1.customers.create({})

        response = raw.post(
            f"/_emulator/customers/{customer.id}/test_clock", json={"test_clock": foreign.id}
        )

        assert self._refusal(response, 404)["code"] == "resource_missing"
