"""Billing meters through the official SDK: the meter's lifecycle, its events aggregated into
event summaries (sum, count, last; per customer; hour and day windows), and Stripe's refusals."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import stripe

from billwarden_emulator.config import EmulatorConfig
from billwarden_emulator.testing import running_emulator

HOUR = 3_600
DAY = 86_400


def _meter(client: stripe.StripeClient, event_name: str, formula: str = "sum") -> Any:
    return client.v1.billing.meters.create(
        {
            "display_name": f"{event_name} meter",
            "event_name": event_name,
            "default_aggregation": {"formula": formula},
        }
    )


def _event(
    client: stripe.StripeClient,
    event_name: str,
    customer: str,
    value: str,
    timestamp: int,
    identifier: str | None = None,
) -> Any:
    params: dict[str, Any] = {
        "event_name": event_name,
        "payload": {"stripe_customer_id": customer, "value": value},
        "timestamp": timestamp,
    }
    if identifier is not None:
        params["identifier"] = identifier
    return client.v1.billing.meter_events.create(params)  # type: ignore[arg-type]


def _summaries(
    client: stripe.StripeClient, meter_id: str, customer: str, start: int, end: int, **extra: Any
) -> list[tuple[int, int, float]]:
    params = {"customer": customer, "start_time": start, "end_time": end, **extra}
    listed = client.v1.billing.meters.event_summaries.list(meter_id, params)  # type: ignore[arg-type]
    return [(s.start_time, s.end_time, s.aggregated_value) for s in listed.auto_paging_iter()]


def _hours_ago(hours: int) -> int:
    return (int(time.time()) // HOUR - hours) * HOUR


class TestMeters:
    def test_create_retrieve_update_list(self, client: stripe.StripeClient) -> None:
        meter = client.v1.billing.meters.create(
            {
                "display_name": "API calls",
                "event_name": "api_calls",
                "default_aggregation": {"formula": "sum"},
            }
        )
        assert isinstance(meter, stripe.billing.Meter)
        assert meter.id.startswith("mtr_test_") and meter.status == "active"
        assert meter.customer_mapping.event_payload_key == "stripe_customer_id"
        assert meter.customer_mapping.type == "by_id"
        assert meter.value_settings.event_payload_key == "value"
        assert meter.event_time_window is None and meter.livemode is False
        assert meter.status_transitions.deactivated_at is None
        assert client.v1.billing.meters.retrieve(meter.id).to_dict() == meter.to_dict()

        custom = client.v1.billing.meters.create(
            {
                "display_name": "Tokens",
                "event_name": "tokens",
                "default_aggregation": {"formula": "count"},
                "customer_mapping": {"event_payload_key": "customer", "type": "by_id"},
                "value_settings": {"event_payload_key": "tokens"},
                "event_time_window": "hour",
            }
        )
        assert custom.customer_mapping.event_payload_key == "customer"
        assert custom.value_settings.event_payload_key == "tokens"
        assert custom.event_time_window == "hour"

        renamed = client.v1.billing.meters.update(meter.id, {"display_name": "Requests"})
        assert renamed.display_name == "Requests" and renamed.event_name == "api_calls"

        listed = client.v1.billing.meters.list()
        assert [m.id for m in listed.data] == [custom.id, meter.id]
        first = client.v1.billing.meters.list({"limit": 1})
        assert [m.id for m in first.data] == [custom.id] and first.has_more
        rest = client.v1.billing.meters.list({"starting_after": custom.id})
        assert [m.id for m in rest.data] == [meter.id] and not rest.has_more

    def test_deactivate_and_reactivate(self, client: stripe.StripeClient) -> None:
        meter = _meter(client, "searches")
        inactive = client.v1.billing.meters.deactivate(meter.id)
        assert inactive.status == "inactive"
        assert inactive.status_transitions.deactivated_at is not None
        assert [m.id for m in client.v1.billing.meters.list({"status": "inactive"}).data] == [
            meter.id
        ]
        assert client.v1.billing.meters.list({"status": "active"}).data == []
        active = client.v1.billing.meters.reactivate(meter.id)
        assert active.status == "active" and active.status_transitions.deactivated_at is None

    def test_event_name_is_unique_among_active_meters(self, client: stripe.StripeClient) -> None:
        first = _meter(client, "uploads")
        with pytest.raises(stripe.InvalidRequestError) as caught:
            _meter(client, "uploads")
        assert caught.value.http_status == 400 and caught.value.param == "event_name"
        client.v1.billing.meters.deactivate(first.id)
        second = _meter(client, "uploads")  # free again once the first is inactive
        with pytest.raises(stripe.InvalidRequestError) as caught:
            client.v1.billing.meters.reactivate(first.id)
        assert caught.value.http_status == 400
        assert second.status == "active"

    def test_meter_changes_are_events(self, client: stripe.StripeClient) -> None:
        meter = _meter(client, "exports")
        client.v1.billing.meters.update(meter.id, {"display_name": "Exports"})
        client.v1.billing.meters.deactivate(meter.id)
        client.v1.billing.meters.reactivate(meter.id)
        types = [event.type for event in client.v1.events.list({"limit": 4}).data]
        assert types == [
            "billing.meter.reactivated",
            "billing.meter.deactivated",
            "billing.meter.updated",
            "billing.meter.created",
        ]
        updated = client.v1.events.list({"type": "billing.meter.updated"}).data[0]
        previous = updated.data.to_dict()["previous_attributes"]
        assert previous["display_name"] == "exports meter"


class TestEventSummaries:
    def test_sum_per_customer(self, client: stripe.StripeClient) -> None:
        meter = _meter(client, "api_calls")
        _meter(client, "other_event")  # events refer to a meter by its event_name
        alice = client.v1.customers.create().id
        bob = client.v1.customers.create().id
        start = _hours_ago(3)
        _event(client, "api_calls", alice, "5", start + 10)
        _event(client, "api_calls", alice, "7", start + HOUR + 10)
        _event(client, "api_calls", bob, "100", start + 20)
        _event(client, "other_event", alice, "1000", start + 30)
        end = start + 3 * HOUR
        summaries = _summaries(client, meter.id, alice, start, end)
        assert summaries == [(start, end, 12)]
        assert _summaries(client, meter.id, bob, start, end) == [(start, end, 100)]
        # an event at end_time falls outside: end is exclusive
        assert _summaries(client, meter.id, alice, start, start + HOUR) == [
            (start, start + HOUR, 5)
        ]
        listed = client.v1.billing.meters.event_summaries.list(
            meter.id, {"customer": alice, "start_time": start, "end_time": end}
        )
        summary = listed.data[0]
        assert isinstance(summary, stripe.billing.MeterEventSummary)
        assert summary.id.startswith("mtrusg_test_") and summary.meter == meter.id
        assert listed.url == f"/v1/billing/meters/{meter.id}/event_summaries"

    def test_count_and_last(self, client: stripe.StripeClient) -> None:
        count = _meter(client, "logins", "count")
        last = _meter(client, "seats", "last")
        customer = client.v1.customers.create().id
        start = _hours_ago(2)
        for offset, value in ((10, "9"), (20, "2"), (30, "4")):
            _event(client, "logins", customer, value, start + offset)
        for offset, value in ((30, "3"), (10, "8"), (20, "6")):
            _event(client, "seats", customer, value, start + offset)
        end = start + 2 * HOUR
        assert _summaries(client, count.id, customer, start, end) == [(start, end, 3)]
        # the latest timestamp wins, not the latest arrival
        assert _summaries(client, last.id, customer, start, end) == [(start, end, 3)]

    def test_hour_and_day_windows(self, client: stripe.StripeClient) -> None:
        meter = _meter(client, "messages")
        customer = client.v1.customers.create().id
        start = _hours_ago(3)
        _event(client, "messages", customer, "1", start + 5)
        _event(client, "messages", customer, "2", start + 2 * HOUR + 5)
        _event(client, "messages", customer, "3", start + 2 * HOUR + 50)
        hourly = _summaries(
            client, meter.id, customer, start, start + 3 * HOUR, value_grouping_window="hour"
        )
        assert hourly == [
            (start + 2 * HOUR, start + 3 * HOUR, 5),
            (start + HOUR, start + 2 * HOUR, 0),
            (start, start + HOUR, 1),
        ]
        today = int(time.time()) // DAY * DAY
        daily = _summaries(
            client, meter.id, customer, today - DAY, today + DAY, value_grouping_window="day"
        )
        by_day = {window: value for window, _, value in daily}
        assert [window for window, _, _ in daily] == [today, today - DAY]
        assert by_day[today] + by_day[today - DAY] == 6

    def test_summaries_page_with_cursors(self, client: stripe.StripeClient) -> None:
        meter = _meter(client, "pages")
        customer = client.v1.customers.create().id
        start = _hours_ago(5)
        params = {
            "customer": customer,
            "start_time": start,
            "end_time": start + 5 * HOUR,
            "value_grouping_window": "hour",
            "limit": 2,
        }
        first = client.v1.billing.meters.event_summaries.list(meter.id, params)  # type: ignore[arg-type]
        assert len(first.data) == 2 and first.has_more
        second = client.v1.billing.meters.event_summaries.list(
            meter.id,
            {**params, "starting_after": first.data[-1].id},  # type: ignore[arg-type]
        )
        assert [s.start_time for s in second.data] == [start + 2 * HOUR, start + HOUR]

    def test_identifier_counts_once(self, client: stripe.StripeClient) -> None:
        meter = _meter(client, "jobs")
        customer = client.v1.customers.create().id
        start = _hours_ago(1)
        first = _event(client, "jobs", customer, "4", start + 1, identifier="job-1")
        assert first.identifier == "job-1"
        # Stripe refuses an identifier it has seen within 24 hours
        with pytest.raises(stripe.InvalidRequestError) as caught:
            _event(client, "jobs", customer, "4", start + 1, identifier="job-1")
        assert caught.value.http_status == 400 and caught.value.param == "identifier"
        _event(client, "jobs", customer, "4", start + 2, identifier="job-2")
        assert _summaries(client, meter.id, customer, start, start + HOUR) == [
            (start, start + HOUR, 8)
        ]

    def test_events_follow_the_meters_payload_keys(self, client: stripe.StripeClient) -> None:
        meter = client.v1.billing.meters.create(
            {
                "display_name": "Tokens",
                "event_name": "tokens",
                "default_aggregation": {"formula": "sum"},
                "value_settings": {"event_payload_key": "tokens"},
            }
        )
        customer = client.v1.customers.create().id
        start = _hours_ago(1)
        client.v1.billing.meter_events.create(
            {
                "event_name": "tokens",
                "payload": {"stripe_customer_id": customer, "value": "1", "tokens": "250"},
                "timestamp": start + 1,
            }
        )
        assert _summaries(client, meter.id, customer, start, start + HOUR) == [
            (start, start + HOUR, 250)
        ]


class TestRefusals:
    def test_meter_parameters(self, client: stripe.StripeClient) -> None:
        cases: list[tuple[dict[str, Any], str, str]] = [
            (
                {"event_name": "a", "default_aggregation": {"formula": "sum"}},
                "display_name",
                "parameter_missing",
            ),
            (
                {"display_name": "A", "default_aggregation": {"formula": "sum"}},
                "event_name",
                "parameter_missing",
            ),
            ({"display_name": "A", "event_name": "a"}, "default_aggregation", "parameter_missing"),
            (
                {
                    "display_name": "A",
                    "event_name": "a",
                    "default_aggregation": {"formula": "max"},
                },
                "default_aggregation[formula]",
                "parameter_invalid",
            ),
            (
                {
                    "display_name": "A",
                    "event_name": "a",
                    "default_aggregation": {"formula": "sum"},
                    "customer_mapping": {"event_payload_key": "c", "type": "by_email"},
                },
                "customer_mapping[type]",
                "parameter_invalid",
            ),
            (
                {
                    "display_name": "A",
                    "event_name": "a",
                    "default_aggregation": {"formula": "sum"},
                    "event_time_window": "week",
                },
                "event_time_window",
                "parameter_invalid",
            ),
        ]
        for params, param, code in cases:
            with pytest.raises(stripe.InvalidRequestError) as caught:
                client.v1.billing.meters.create(params)  # type: ignore[arg-type]
            assert caught.value.http_status == 400, params
            assert (caught.value.param, caught.value.code) == (param, code)

    def test_unknown_meter(self, client: stripe.StripeClient) -> None:
        with pytest.raises(stripe.InvalidRequestError) as caught:
            client.v1.billing.meters.retrieve("mtr_test_missing")
        assert caught.value.http_status == 404 and caught.value.code == "resource_missing"
        with pytest.raises(stripe.InvalidRequestError) as caught:
            client.v1.billing.meters.deactivate("mtr_test_missing")
        assert caught.value.http_status == 404

    def test_summary_parameters(self, client: stripe.StripeClient) -> None:
        meter = _meter(client, "summaries")
        customer = client.v1.customers.create().id
        start = _hours_ago(2)
        base = {"customer": customer, "start_time": start, "end_time": start + HOUR}
        cases: list[tuple[dict[str, Any], int, str, str]] = [
            ({"start_time": start, "end_time": start + HOUR}, 400, "customer", "parameter_missing"),
            ({**base, "customer": "cus_missing"}, 404, "customer", "resource_missing"),
            ({"customer": customer, "end_time": start}, 400, "start_time", "parameter_missing"),
            ({**base, "start_time": start + 1}, 400, "start_time", "parameter_invalid"),
            ({**base, "end_time": start}, 400, "end_time", "parameter_invalid"),
            (
                {**base, "start_time": start + 60, "value_grouping_window": "hour"},
                400,
                "start_time",
                "parameter_invalid",
            ),
            (
                {**base, "value_grouping_window": "week"},
                400,
                "value_grouping_window",
                "parameter_invalid",
            ),
        ]
        for params, status, param, code in cases:
            with pytest.raises(stripe.InvalidRequestError) as caught:
                client.v1.billing.meters.event_summaries.list(meter.id, params)  # type: ignore[arg-type]
            assert caught.value.http_status == status, params
            assert (caught.value.param, caught.value.code) == (param, code), params

    def test_meter_event_out_of_range_timestamp(self, client: stripe.StripeClient) -> None:
        _meter(client, "late")
        customer = client.v1.customers.create().id
        for timestamp in (int(time.time()) - 36 * DAY, int(time.time()) + 10 * 60):
            with pytest.raises(stripe.InvalidRequestError) as caught:
                _event(client, "late", customer, "1", timestamp)
            assert caught.value.http_status == 400 and caught.value.param == "timestamp"


def test_meters_and_usage_survive_a_restart(tmp_path: Path) -> None:
    config = EmulatorConfig(snapshot_path=tmp_path / "emulator.json")
    key = f"sk_test_{uuid.uuid4().hex}"
    start = _hours_ago(1)
    with running_emulator(config) as url:
        client = stripe.StripeClient(key, base_addresses={"api": url})
        meter = _meter(client, "kept")
        customer = client.v1.customers.create().id
        _event(client, "kept", customer, "3", start + 1)
    with running_emulator(config) as url:
        client = stripe.StripeClient(key, base_addresses={"api": url})
        assert client.v1.billing.meters.retrieve(meter.id).event_name == "kept"
        assert _summaries(client, meter.id, customer, start, start + HOUR) == [
            (start, start + HOUR, 3)
        ]
        with pytest.raises(stripe.InvalidRequestError):
            _meter(client, "kept")  # still active, still holds its event_name
