"""Fault knobs set per account through `/_emulator/faults`, observed through the official SDK."""

from __future__ import annotations

import time
import uuid

import httpx
import pytest
import stripe

from tests.emulator.receiver import WebhookReceiver


def _configure(raw: httpx.Client, spec: dict[str, object]) -> httpx.Response:
    return raw.post("/_emulator/faults", json=spec)


class TestRequestFaults:
    def test_next_n_requests_fail_with_500_then_succeed(
        self, client: stripe.StripeClient, raw: httpx.Client
    ) -> None:
        spec = {
            "requests": [{"method": "POST", "path": "/v1/customers", "status": 500, "count": 2}]
        }
        assert _configure(raw, spec).status_code == 200
        for _ in range(2):
            with pytest.raises(stripe.APIError) as caught:
                client.v1.customers.create()
            assert caught.value.http_status == 500
        assert client.v1.customers.create().id.startswith("cus_")
        assert raw.get("/_emulator/faults").json()["requests"] == []
        assert len(client.v1.customers.list().data) == 1

    def test_429_answers_rate_limit(self, client: stripe.StripeClient, raw: httpx.Client) -> None:
        _configure(raw, {"requests": [{"path": "/v1/subscriptions*", "status": 429}]})
        with pytest.raises(stripe.RateLimitError) as caught:
            client.v1.subscriptions.list()
        assert caught.value.http_status == 429
        assert caught.value.json_body["error"]["code"] == "rate_limit"
        assert client.v1.subscriptions.list().data == []

    def test_sdk_retries_carry_through_a_500(
        self, emulator_url: str, api_key: str, raw: httpx.Client
    ) -> None:
        _configure(raw, {"requests": [{"path": "/v1/customers", "status": 500, "count": 1}]})
        retrying = stripe.StripeClient(
            api_key, base_addresses={"api": emulator_url}, max_network_retries=2
        )
        created = retrying.v1.customers.create({"email": "retry@example.com"})
        # the SDK reuses its idempotency key, so the retry creates exactly one customer
        assert [c.id for c in retrying.v1.customers.list().data] == [created.id]

    def test_latency_delays_matching_requests_only(
        self, client: stripe.StripeClient, raw: httpx.Client
    ) -> None:
        _configure(raw, {"latency": [{"method": "GET", "path": "/v1/balance", "seconds": 0.3}]})
        started = time.monotonic()
        client.v1.balance.retrieve()
        assert time.monotonic() - started >= 0.3
        started = time.monotonic()
        client.v1.customers.list()
        assert time.monotonic() - started < 0.3

    def test_faults_are_per_account_and_reset(
        self, client: stripe.StripeClient, raw: httpx.Client, emulator_url: str
    ) -> None:
        _configure(raw, {"requests": [{"path": "/v1/customers", "status": 500, "count": 5}]})
        other = stripe.StripeClient(
            f"sk_test_{uuid.uuid4().hex}", base_addresses={"api": emulator_url}
        )
        assert other.v1.customers.list().data == []
        assert raw.delete("/_emulator/faults").status_code == 200
        assert client.v1.customers.list().data == []

    def test_invalid_spec_is_400_in_stripes_envelope(self, raw: httpx.Client) -> None:
        response = _configure(raw, {"requests": [{"path": "/v1/customers", "status": 418}]})
        assert response.status_code == 400
        assert response.json()["error"]["type"] == "invalid_request_error"
        assert raw.get("/_emulator/faults").json()["requests"] == []

    def test_a_rate_of_requests_fails_and_is_counted(
        self, client: stripe.StripeClient, raw: httpx.Client
    ) -> None:
        _configure(raw, {"requests": [{"path": "/v1/customers*", "status": 500, "rate": 0.5}]})
        failed = 0
        for _ in range(40):
            try:
                client.v1.customers.list()
            except stripe.APIError as error:
                assert error.http_status == 500
                failed += 1
        assert 0 < failed < 40
        assert raw.get("/_emulator/faults").json()["injected"] == {"500": failed}


class TestWebhookFaults:
    def test_duplicate_delivers_every_event_twice(
        self, client: stripe.StripeClient, raw: httpx.Client
    ) -> None:
        with WebhookReceiver() as receiver:
            client.v1.webhook_endpoints.create({"url": receiver.url, "enabled_events": ["*"]})
            _configure(raw, {"webhooks": {"duplicate": True}})
            customer = client.v1.customers.create()
            receiver.wait_for(2, timeout=5)
            time.sleep(0.1)
            assert receiver.event_ids() == [receiver.event_ids()[0]] * 2
            assert receiver.events()[0]["data"]["object"]["id"] == customer.id
            log = raw.get("/_emulator/deliveries").json()["data"]
            assert len(log) == 2

    def test_delay_holds_deliveries_back(
        self, client: stripe.StripeClient, raw: httpx.Client
    ) -> None:
        with WebhookReceiver() as receiver:
            client.v1.webhook_endpoints.create({"url": receiver.url, "enabled_events": ["*"]})
            _configure(raw, {"webhooks": {"delay": 0.4}})
            started = time.monotonic()
            client.v1.customers.create()
            receiver.wait_for(1, timeout=5)
            assert time.monotonic() - started >= 0.4

    def test_shuffle_delivers_every_event_of_the_window(
        self, client: stripe.StripeClient, raw: httpx.Client
    ) -> None:
        with WebhookReceiver() as receiver:
            client.v1.webhook_endpoints.create({"url": receiver.url, "enabled_events": ["*"]})
            # a window far longer than six creations take, even on a loaded machine: none of
            # the events may be delivered before it closes
            _configure(raw, {"webhooks": {"shuffle_window": 1.5, "shuffle_seed": 3}})
            created = [client.v1.customers.create().id for _ in range(6)]
            assert receiver.requests == []
            receiver.wait_for(6, timeout=5)
            delivered = [event["data"]["object"]["id"] for event in receiver.events()]
            assert sorted(delivered) == sorted(created)

    def test_duplicate_rate_and_the_delivery_summary(
        self, client: stripe.StripeClient, raw: httpx.Client
    ) -> None:
        with WebhookReceiver() as receiver:
            client.v1.webhook_endpoints.create({"url": receiver.url, "enabled_events": ["*"]})
            _configure(raw, {"webhooks": {"duplicate_rate": 0.5, "shuffle_seed": 11}})
            for _ in range(20):
                client.v1.customers.create()
            deadline = time.monotonic() + 10
            while (summary := raw.get("/_emulator/deliveries/summary").json())["pending"]:
                assert time.monotonic() < deadline, summary
                time.sleep(0.05)
        assert 0 < summary["duplicates"] < 20
        assert summary["attempts"] == summary["succeeded"] == 20 + summary["duplicates"]
        assert (summary["failed"], summary["given_up"], summary["failed_by_cause"]) == (0, 0, {})
        assert len(receiver.event_ids()) == summary["attempts"]
        assert len(set(receiver.event_ids())) == 20

    def test_failed_deliveries_are_retried_and_logged(
        self, client: stripe.StripeClient, raw: httpx.Client
    ) -> None:
        with WebhookReceiver() as receiver:
            receiver.respond_with([500, 503])
            client.v1.webhook_endpoints.create({"url": receiver.url, "enabled_events": ["*"]})
            client.v1.customers.create()
            receiver.wait_for(3, timeout=5)
            deadline = time.monotonic() + 5
            while client.v1.events.list({"delivery_success": True}).data == []:
                assert time.monotonic() < deadline
                time.sleep(0.05)
        assert len(set(receiver.event_ids())) == 1
        assert len(raw.get("/_emulator/deliveries").json()["data"]) == 3
        summary = raw.get("/_emulator/deliveries/summary").json()
        assert summary["failed_by_cause"] == {"500": 1, "503": 1}
        assert (summary["attempts"], summary["succeeded"], summary["failed"]) == (3, 1, 2)
