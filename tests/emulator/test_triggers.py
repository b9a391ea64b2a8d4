"""`run_trigger`: each supported event type reaches a real endpoint, signed, with its object."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
import pytest
import stripe

from billwarden_emulator.triggers import TRIGGERS, TriggerFailed, run_trigger
from tests.emulator.receiver import WebhookReceiver

METADATA = {"project": "acme", "subject": "user-42"}


@dataclass
class Endpoint:
    receiver: WebhookReceiver
    secret: str


@pytest.fixture
def endpoint(client: stripe.StripeClient) -> Iterator[Endpoint]:
    """A real webhook receiver registered for every event of the test's account."""
    with WebhookReceiver() as receiver:
        created = client.v1.webhook_endpoints.create({"url": receiver.url, "enabled_events": ["*"]})
        assert created.secret is not None
        yield Endpoint(receiver, created.secret)


def _latest_event(client: stripe.StripeClient, event_type: str) -> stripe.Event:
    events = client.v1.events.list({"type": event_type}).data
    assert events, f"no {event_type} event was emitted"
    return events[0]


def _delivered(endpoint: Endpoint, raw: httpx.Client, event_id: str) -> tuple[str, bytes]:
    """The signature header and body the receiver got for `event_id`, once the delivery log says
    it was delivered."""
    deadline = time.monotonic() + 10
    while True:
        log = raw.get("/_emulator/deliveries").json()["data"]
        if any(entry["event_id"] == event_id and entry["success"] for entry in log):
            break
        if time.monotonic() > deadline:
            raise AssertionError(f"{event_id} was not delivered; log: {log}")
        time.sleep(0.02)
    for headers, body in list(endpoint.receiver.requests):
        if orjson.loads(body)["id"] == event_id:
            return headers["stripe-signature"], body
    raise AssertionError(f"the receiver did not get {event_id}")


def _object(client: stripe.StripeClient, event_type: str) -> dict[str, Any]:
    found: dict[str, Any] = _latest_event(client, event_type).data.object.to_dict()
    return found


class TestEveryTriggerDeliversASignedEvent:
    @pytest.mark.parametrize("event_type", TRIGGERS)
    def test_event_reaches_the_endpoint_with_the_main_object(
        self,
        emulator_url: str,
        api_key: str,
        client: stripe.StripeClient,
        raw: httpx.Client,
        endpoint: Endpoint,
        event_type: str,
    ) -> None:
        result = run_trigger(emulator_url, api_key, event_type, metadata=METADATA)

        assert result.event_type == event_type
        event = _latest_event(client, event_type)
        assert event.data.object["id"] == result.object_id
        signature, body = _delivered(endpoint, raw, event.id)
        received = stripe.Webhook.construct_event(body, signature, endpoint.secret)
        assert received.type == event_type
        assert received.data.object["id"] == result.object_id

    def test_the_supported_types_are_the_four_billwarden_handles(self) -> None:
        assert TRIGGERS == (
            "checkout.session.completed",
            "customer.subscription.updated",
            "customer.subscription.deleted",
            "invoice.payment_failed",
        )


class TestTriggerObjects:
    def test_checkout_completes_a_paid_subscription_session_carrying_the_metadata(
        self, emulator_url: str, api_key: str, client: stripe.StripeClient
    ) -> None:
        result = run_trigger(emulator_url, api_key, "checkout.session.completed", metadata=METADATA)

        session = client.v1.checkout.sessions.retrieve(result.object_id)
        assert session.mode == "subscription"
        assert session.status == "complete" and session.payment_status == "paid"
        assert session.metadata.to_dict() == METADATA
        subscription = client.v1.subscriptions.retrieve(str(session.subscription))
        assert subscription.status == "active"
        assert subscription.metadata.to_dict() == METADATA
        completed = _object(client, "checkout.session.completed")
        assert completed["metadata"] == METADATA and completed["subscription"] == subscription.id
        assert result.requests == [
            "POST /v1/products",
            "POST /v1/prices",
            "POST /v1/checkout/sessions",
            f"POST /_emulator/checkout/sessions/{session.id}/complete",
        ]

    def test_subscription_updated_schedules_the_cancellation_at_period_end(
        self, emulator_url: str, api_key: str, client: stripe.StripeClient
    ) -> None:
        result = run_trigger(
            emulator_url, api_key, "customer.subscription.updated", metadata=METADATA
        )

        event = _latest_event(client, "customer.subscription.updated")
        assert event.data.object["cancel_at_period_end"] is True
        assert event.data.object["metadata"].to_dict() == METADATA
        assert event.data.to_dict()["previous_attributes"]["cancel_at_period_end"] is False
        subscription = client.v1.subscriptions.retrieve(result.object_id)
        assert subscription.status == "active" and subscription.cancel_at_period_end is True
        assert result.requests == [
            "POST /v1/customers",
            "POST /v1/products",
            "POST /v1/prices",
            "POST /v1/subscriptions",
            f"POST /v1/subscriptions/{result.object_id}",
        ]

    def test_subscription_deleted_cancels_it_now(
        self, emulator_url: str, api_key: str, client: stripe.StripeClient
    ) -> None:
        result = run_trigger(
            emulator_url, api_key, "customer.subscription.deleted", metadata=METADATA
        )

        deleted = _object(client, "customer.subscription.deleted")
        assert deleted["status"] == "canceled" and deleted["metadata"] == METADATA
        assert client.v1.subscriptions.retrieve(result.object_id).status == "canceled"
        assert result.requests[-1] == f"DELETE /v1/subscriptions/{result.object_id}"

    def test_invoice_payment_failed_leaves_the_first_invoice_open(
        self, emulator_url: str, api_key: str, client: stripe.StripeClient
    ) -> None:
        result = run_trigger(emulator_url, api_key, "invoice.payment_failed", metadata=METADATA)

        invoice = client.v1.invoices.retrieve(result.object_id)
        assert invoice.status == "open" and invoice.attempt_count == 1
        assert invoice.billing_reason == "subscription_create"
        failed = _object(client, "invoice.payment_failed")
        details = failed["parent"]["subscription_details"]
        assert details["metadata"] == METADATA
        subscription = client.v1.subscriptions.retrieve(details["subscription"])
        assert subscription.status == "incomplete" and subscription.metadata.to_dict() == METADATA

    def test_without_metadata_nothing_is_added(
        self, emulator_url: str, api_key: str, client: stripe.StripeClient
    ) -> None:
        result = run_trigger(emulator_url, api_key, "checkout.session.completed")

        session = client.v1.checkout.sessions.retrieve(result.object_id)
        assert session.metadata.to_dict() == {}
        assert client.v1.subscriptions.retrieve(str(session.subscription)).metadata.to_dict() == {}


class TestTriggerErrors:
    def test_unknown_event_type_names_the_supported_ones_and_sends_nothing(
        self, emulator_url: str, api_key: str, client: stripe.StripeClient
    ) -> None:
        with pytest.raises(ValueError, match=r"customer\.created") as caught:
            run_trigger(emulator_url, api_key, "customer.created")

        for supported in TRIGGERS:
            assert supported in str(caught.value)
        assert client.v1.events.list({"limit": 1}).data == []

    def test_an_error_answer_raises_with_the_emulators_message(
        self, emulator_url: str, api_key: str, raw: httpx.Client, client: stripe.StripeClient
    ) -> None:
        raw.post(
            "/_emulator/faults",
            json={"requests": [{"method": "POST", "path": "/v1/checkout/sessions", "status": 500}]},
        )

        with pytest.raises(TriggerFailed) as caught:
            run_trigger(emulator_url, api_key, "checkout.session.completed")

        failure = caught.value
        assert failure.status == 500
        assert failure.message == "An unknown error occurred on Stripe's servers."
        assert failure.request == "POST /v1/checkout/sessions"
        assert failure.message in str(failure)
        assert failure.requests[-1] == "POST /v1/checkout/sessions"
        assert client.v1.events.list({"type": "checkout.session.completed"}).data == []

    def test_a_revoked_key_raises_with_the_401_message(
        self, emulator_url: str, api_key: str, raw: httpx.Client
    ) -> None:
        raw.post("/_emulator/keys/revoke")

        with pytest.raises(TriggerFailed) as caught:
            run_trigger(emulator_url, api_key, "customer.subscription.deleted")

        assert caught.value.status == 401
        assert caught.value.request == "POST /v1/customers"
        assert caught.value.message

    def test_an_unreachable_emulator_raises(self, api_key: str) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        # nothing listens on the port once the probe is closed

        with pytest.raises(TriggerFailed, match="could not reach the emulator") as caught:
            run_trigger(f"http://127.0.0.1:{port}", api_key, "invoice.payment_failed", timeout=2)

        assert caught.value.status is None
