"""The /v2 meter event stream: sessions, streamed events counted by their meter, problems reported
as thin events at /v2/core/events, and /v2 errors in Stripe's v2 envelope."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
import stripe

HOUR = 3600


def _meter(client: stripe.StripeClient, event_name: str, **extra: Any) -> Any:
    params = {
        "display_name": event_name,
        "event_name": event_name,
        "default_aggregation": {"formula": "sum"},
        **extra,
    }
    return client.v1.billing.meters.create(params)  # type: ignore[arg-type]


def _stream_client(client: stripe.StripeClient, emulator_url: str) -> stripe.StripeClient:
    session = client.v2.billing.meter_event_session.create()
    return stripe.StripeClient(
        session.authentication_token,
        base_addresses={"api": emulator_url, "meter_events": emulator_url},
    )


def _send(stream: stripe.StripeClient, *events: dict[str, Any]) -> None:
    stream.v2.billing.meter_event_stream.create({"events": list(events)})  # type: ignore[typeddict-item]


def _rfc3339(seconds: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


class TestSessions:
    def test_session_gives_a_short_lived_token(self, client: stripe.StripeClient) -> None:
        session = client.v2.billing.meter_event_session.create()
        assert session.object == "v2.billing.meter_event_session"
        assert session.authentication_token.startswith("ek_test_")
        assert session.livemode is False
        created = time.mktime(time.strptime(session.created[:19], "%Y-%m-%dT%H:%M:%S"))
        expires = time.mktime(time.strptime(session.expires_at[:19], "%Y-%m-%dT%H:%M:%S"))
        assert expires - created == pytest.approx(15 * 60, abs=1)

    def test_stream_needs_a_session_token(self, raw: httpx.Client) -> None:
        # the secret key is not a session token
        response = raw.post("/v2/billing/meter_event_stream", json={"events": []})
        assert response.status_code == 401
        assert set(response.json()["error"]) >= {"type", "code", "message"}


class TestStream:
    def test_valid_events_count_on_their_meter(
        self, client: stripe.StripeClient, emulator_url: str
    ) -> None:
        meter = _meter(client, "tokens", value_settings={"event_payload_key": "tokens"})
        customer = client.v1.customers.create().id
        start = (int(time.time()) // HOUR - 1) * HOUR
        stream = _stream_client(client, emulator_url)
        event = {
            "event_name": "tokens",
            "timestamp": _rfc3339(start + 10),
            "identifier": "run-1",
            "payload": {"stripe_customer_id": customer, "tokens": "40"},
        }
        _send(stream, event, {**event, "identifier": "run-2", "payload": {**event["payload"]}})
        _send(stream, event)  # the same identifier again: counted once
        summaries = client.v1.billing.meters.event_summaries.list(
            meter.id, {"customer": customer, "start_time": start, "end_time": start + HOUR}
        )
        assert [s.aggregated_value for s in summaries.data] == [80]
        assert client.v2.core.events.list().data == []  # nothing to report

    def test_unknown_event_name_is_reported_as_no_meter_found(
        self, client: stripe.StripeClient, emulator_url: str
    ) -> None:
        stream = _stream_client(client, emulator_url)
        _send(stream, {"event_name": "nobody", "identifier": "x-1", "payload": {"value": "10"}})
        (event,) = client.v2.core.events.list().data
        assert event.type == "v1.billing.meter.no_meter_found"
        assert event.object == "v2.core.event" and event.id.startswith("evt_test_")
        assert event.related_object is None  # type: ignore[attr-defined]
        fetched = client.v2.core.events.retrieve(event.id)
        assert isinstance(fetched, stripe.events.V1BillingMeterNoMeterFoundEvent)
        (error_type,) = fetched.data.reason.error_types
        assert (error_type.code, error_type.error_count) == ("no_meter", 1)
        assert error_type.sample_errors[0].request.identifier == "x-1"

    def test_bad_payloads_trigger_the_meters_error_report(
        self, client: stripe.StripeClient, emulator_url: str
    ) -> None:
        meter = _meter(client, "calls")
        customer = client.v1.customers.create().id
        stream = _stream_client(client, emulator_url)
        _send(
            stream,
            {"event_name": "calls", "identifier": "a", "payload": {"value": "1"}},
            {"event_name": "calls", "identifier": "b", "payload": {"value": "1"}},
            {
                "event_name": "calls",
                "identifier": "c",
                "payload": {"stripe_customer_id": "cus_nobody", "value": "1"},
            },
            {
                "event_name": "calls",
                "identifier": "d",
                "payload": {"stripe_customer_id": customer, "value": "many"},
            },
        )
        (event,) = client.v2.core.events.list(
            {"types": ["v1.billing.meter.error_report_triggered"]}
        ).data
        assert event.related_object.id == meter.id  # type: ignore[attr-defined]
        fetched = client.v2.core.events.retrieve(event.id)
        assert isinstance(fetched, stripe.events.V1BillingMeterErrorReportTriggeredEvent)
        assert fetched.data.reason.error_count == 4
        counts = {t.code: t.error_count for t in fetched.data.reason.error_types}
        assert counts == {
            "meter_event_no_customer_defined": 2,
            "meter_event_customer_not_found": 1,
            "meter_event_invalid_value": 1,
        }
        assert client.v2.core.events.list({"object_id": meter.id}).data[0].id == event.id
        assert client.v2.core.events.list({"object_id": "mtr_test_other"}).data == []

    def test_thin_events_are_not_sent_as_v1_events(
        self, client: stripe.StripeClient, emulator_url: str
    ) -> None:
        stream = _stream_client(client, emulator_url)
        _send(stream, {"event_name": "nobody", "payload": {"value": "1"}})
        assert client.v1.events.list({"type": "v1.billing.meter.no_meter_found"}).data == []

    def test_event_list_pages(self, client: stripe.StripeClient, emulator_url: str) -> None:
        stream = _stream_client(client, emulator_url)
        for index in range(3):
            _send(stream, {"event_name": f"nobody-{index}", "payload": {"value": "1"}})
        first = client.v2.core.events.list({"limit": 2})
        assert len(first.data) == 2 and first.next_page_url is not None
        every = list(first.auto_paging_iter())
        assert len({event.id for event in every}) == 3


class TestV2Errors:
    def test_unknown_path_answers_the_v2_envelope(self, raw: httpx.Client) -> None:
        response = raw.get("/v2/nothing/here")
        assert response.status_code == 404
        error = response.json()["error"]
        assert error["type"] == "invalid_request_error" and error["message"]

    def test_missing_event_and_refused_parameters(self, client: stripe.StripeClient) -> None:
        with pytest.raises(stripe.InvalidRequestError) as caught:
            client.v2.core.events.retrieve("evt_test_missing")
        assert caught.value.http_status == 404
        with pytest.raises(stripe.InvalidRequestError) as caught:
            client.v2.billing.meter_event_session.create({"unknown": "x"})  # type: ignore[arg-type]
        assert caught.value.http_status == 400

    def test_stream_refuses_malformed_events(
        self, client: stripe.StripeClient, emulator_url: str
    ) -> None:
        stream = _stream_client(client, emulator_url)
        with pytest.raises(stripe.InvalidRequestError):
            _send(stream, {"payload": {"value": "1"}})  # no event_name
        with pytest.raises(stripe.InvalidRequestError):
            _send(stream, {"event_name": "x", "timestamp": "yesterday", "payload": {}})


class TestV1MeterEvents:
    def test_event_for_no_or_inactive_meter_is_refused(self, client: stripe.StripeClient) -> None:
        customer = client.v1.customers.create().id
        params = {"event_name": "gone", "payload": {"stripe_customer_id": customer, "value": "1"}}
        with pytest.raises(stripe.InvalidRequestError) as caught:
            client.v1.billing.meter_events.create(params)  # type: ignore[arg-type]
        assert caught.value.param == "event_name"
        meter = _meter(client, "gone")
        client.v1.billing.meters.deactivate(meter.id)
        with pytest.raises(stripe.InvalidRequestError) as caught:
            client.v1.billing.meter_events.create(params)  # type: ignore[arg-type]
        assert caught.value.param == "event_name"

    def test_payload_keys_follow_the_meter(self, client: stripe.StripeClient) -> None:
        _meter(
            client,
            "seats",
            customer_mapping={"type": "by_id", "event_payload_key": "account"},
            value_settings={"event_payload_key": "seats"},
        )
        customer = client.v1.customers.create().id
        with pytest.raises(stripe.InvalidRequestError) as caught:
            client.v1.billing.meter_events.create(
                {"event_name": "seats", "payload": {"stripe_customer_id": customer, "seats": "2"}}
            )
        assert caught.value.param == "payload[account]"
        event = client.v1.billing.meter_events.create(
            {"event_name": "seats", "payload": {"account": customer, "seats": "2"}}
        )
        assert event.payload.to_dict() == {"account": customer, "seats": "2"}
