"""Subscription schedules: creation now or later, phases the test clock moves through, the end
behaviours, cancel and release, and their events."""

from __future__ import annotations

import datetime as dt

import pytest
import stripe

from tests.emulator.test_shapes import shape_problems

JAN_1_2030 = int(dt.datetime(2030, 1, 1, tzinfo=dt.UTC).timestamp())
FEB_1_2030 = int(dt.datetime(2030, 2, 1, tzinfo=dt.UTC).timestamp())
MAR_1_2030 = int(dt.datetime(2030, 3, 1, tzinfo=dt.UTC).timestamp())
DAY = 86_400


def _types(client: stripe.StripeClient) -> list[str]:
    return [event.type for event in reversed(client.v1.events.list({"limit": 100}).data)]


def _on_clock(client: stripe.StripeClient, frozen_time: int) -> tuple[str, str, str]:
    clock = client.v1.test_helpers.test_clocks.create({"frozen_time": frozen_time})
    customer = client.v1.customers.create({"test_clock": clock.id})
    price = client.v1.prices.create(
        {
            "product_data": {"name": "Pro"},
            "unit_amount": 1500,
            "currency": "usd",
            "recurring": {"interval": "month"},
        }
    )
    return clock.id, customer.id, price.id


def _advance(client: stripe.StripeClient, clock: str, to: int) -> None:
    client.v1.test_helpers.test_clocks.advance(clock, {"frozen_time": to})


class TestCreate:
    def test_starting_now_creates_the_subscription_on_the_first_phase(
        self, client: stripe.StripeClient
    ) -> None:
        _, customer, price = _on_clock(client, JAN_1_2030)

        schedule = client.v1.subscription_schedules.create(
            {
                "customer": customer,
                "start_date": "now",
                "phases": [
                    {"items": [{"price": price, "quantity": 1}], "iterations": 1},
                    {"items": [{"price": price, "quantity": 2}], "iterations": 1},
                ],
            }
        )

        assert schedule.id.startswith("sub_sched_")
        assert schedule.status == "active"
        assert schedule.end_behavior == "release"
        assert [(p.start_date, p.end_date) for p in schedule.phases] == [
            (JAN_1_2030, FEB_1_2030),
            (FEB_1_2030, MAR_1_2030),
        ]
        assert schedule.current_phase is not None
        assert schedule.current_phase.end_date == FEB_1_2030
        assert shape_problems("subscription_schedule", schedule.to_dict()) == []
        subscription = client.v1.subscriptions.retrieve(schedule.subscription)  # type: ignore[arg-type]
        assert subscription.schedule == schedule.id
        assert subscription.status == "active"
        assert subscription["items"].data[0].quantity == 1
        created = client.v1.events.list({"type": "subscription_schedule.created"}).data
        assert created[0].data.object["status"] == "active"

    def test_a_future_start_waits_for_the_clock(self, client: stripe.StripeClient) -> None:
        clock, customer, price = _on_clock(client, JAN_1_2030 - 10 * DAY)

        schedule = client.v1.subscription_schedules.create(
            {
                "customer": customer,
                "start_date": JAN_1_2030,
                "phases": [{"items": [{"price": price}]}],
            }
        )
        assert schedule.status == "not_started"
        assert schedule.subscription is None
        assert client.v1.subscriptions.list({"customer": customer}).data == []

        _advance(client, clock, JAN_1_2030 + 60)

        started = client.v1.subscription_schedules.retrieve(schedule.id)
        assert started.status == "active"
        subscription = client.v1.subscriptions.retrieve(started.subscription)  # type: ignore[arg-type]
        assert subscription.start_date == JAN_1_2030
        assert subscription.schedule == schedule.id

    def test_refusals(self, client: stripe.StripeClient) -> None:
        _, customer, price = _on_clock(client, JAN_1_2030)
        with pytest.raises(stripe.InvalidRequestError) as missing:
            client.v1.subscription_schedules.create({"customer": customer})
        assert missing.value.param == "phases"
        with pytest.raises(stripe.InvalidRequestError) as both:
            client.v1.subscription_schedules.create(
                {
                    "customer": customer,
                    "phases": [{"items": [{"price": price}], "iterations": 1, "end_date": 1}],
                }
            )
        assert both.value.param == "phases[0][end_date]"
        with pytest.raises(stripe.InvalidRequestError) as unknown:
            client.v1.subscription_schedules.retrieve("sub_sched_nope")
        assert unknown.value.http_status == 404
        assert unknown.value.code == "resource_missing"


class TestPhases:
    def test_the_clock_moves_to_the_next_phase_then_releases(
        self, client: stripe.StripeClient
    ) -> None:
        clock, customer, price = _on_clock(client, JAN_1_2030)
        schedule = client.v1.subscription_schedules.create(
            {
                "customer": customer,
                "start_date": "now",
                "phases": [
                    {"items": [{"price": price, "quantity": 1}], "iterations": 1},
                    {"items": [{"price": price, "quantity": 3}], "iterations": 1},
                ],
            }
        )

        _advance(client, clock, FEB_1_2030 + 60)

        moved = client.v1.subscription_schedules.retrieve(schedule.id)
        assert moved.current_phase is not None
        assert moved.current_phase.start_date == FEB_1_2030
        subscription = client.v1.subscriptions.retrieve(moved.subscription)  # type: ignore[arg-type]
        assert subscription["items"].data[0].quantity == 3
        renewal = client.v1.invoices.retrieve(subscription.latest_invoice)  # type: ignore[arg-type]
        assert renewal.amount_due == 4500

        _advance(client, clock, MAR_1_2030 + 60)

        done = client.v1.subscription_schedules.retrieve(schedule.id)
        assert done.status == "completed"
        assert done.completed_at == MAR_1_2030
        assert done.subscription is None
        assert done.released_subscription == subscription.id
        released = client.v1.subscriptions.retrieve(subscription.id)
        assert released.status == "active"
        assert released.schedule is None
        types = _types(client)
        assert "subscription_schedule.expiring" in types
        assert types.index("subscription_schedule.expiring") < types.index(
            "subscription_schedule.completed"
        )

    def test_end_behavior_cancel_cancels_the_subscription(
        self, client: stripe.StripeClient
    ) -> None:
        clock, customer, price = _on_clock(client, JAN_1_2030)
        schedule = client.v1.subscription_schedules.create(
            {
                "customer": customer,
                "start_date": JAN_1_2030,
                "end_behavior": "cancel",
                "phases": [{"items": [{"price": price}], "end_date": JAN_1_2030 + 20 * DAY}],
            }
        )

        _advance(client, clock, JAN_1_2030 + 14 * DAY)
        assert "subscription_schedule.expiring" in _types(client)
        _advance(client, clock, JAN_1_2030 + 21 * DAY)

        done = client.v1.subscription_schedules.retrieve(schedule.id)
        assert done.status == "completed"
        subscription = client.v1.subscriptions.retrieve(schedule.subscription)  # type: ignore[arg-type]
        assert subscription.status == "canceled"
        assert subscription.ended_at == JAN_1_2030 + 20 * DAY


class TestCancelReleaseUpdate:
    def test_cancel_an_active_schedule_cancels_its_subscription(
        self, client: stripe.StripeClient
    ) -> None:
        _, customer, price = _on_clock(client, JAN_1_2030)
        schedule = client.v1.subscription_schedules.create(
            {"customer": customer, "phases": [{"items": [{"price": price}]}]}
        )

        canceled = client.v1.subscription_schedules.cancel(schedule.id)

        assert canceled.status == "canceled"
        assert canceled.canceled_at == JAN_1_2030
        subscription = client.v1.subscriptions.retrieve(schedule.subscription)  # type: ignore[arg-type]
        assert subscription.status == "canceled"
        types = _types(client)
        assert "subscription_schedule.canceled" in types
        assert "customer.subscription.deleted" in types
        with pytest.raises(stripe.InvalidRequestError):
            client.v1.subscription_schedules.cancel(schedule.id)

    def test_cancel_before_the_start_aborts(self, client: stripe.StripeClient) -> None:
        _, customer, price = _on_clock(client, JAN_1_2030)
        schedule = client.v1.subscription_schedules.create(
            {
                "customer": customer,
                "start_date": MAR_1_2030,
                "phases": [{"items": [{"price": price}]}],
            }
        )

        canceled = client.v1.subscription_schedules.cancel(
            schedule.id, {"prorate": False, "invoice_now": False}
        )

        assert canceled.status == "canceled"
        assert "subscription_schedule.aborted" in _types(client)

    def test_release_leaves_the_subscription_alone(self, client: stripe.StripeClient) -> None:
        _, customer, price = _on_clock(client, JAN_1_2030)
        schedule = client.v1.subscription_schedules.create(
            {"customer": customer, "phases": [{"items": [{"price": price}]}]}
        )

        released = client.v1.subscription_schedules.release(schedule.id)

        assert released.status == "released"
        assert released.released_at == JAN_1_2030
        assert released.released_subscription == schedule.subscription
        assert released.subscription is None
        subscription = client.v1.subscriptions.retrieve(schedule.subscription)  # type: ignore[arg-type]
        assert subscription.status == "active"
        assert subscription.schedule is None
        assert "subscription_schedule.released" in _types(client)

    def test_update_metadata_emits_updated(self, client: stripe.StripeClient) -> None:
        _, customer, price = _on_clock(client, JAN_1_2030)
        schedule = client.v1.subscription_schedules.create(
            {"customer": customer, "phases": [{"items": [{"price": price}]}]}
        )

        updated = client.v1.subscription_schedules.update(
            schedule.id, {"metadata": {"foo": "bar"}, "end_behavior": "cancel"}
        )

        assert updated.metadata.to_dict() == {"foo": "bar"}
        assert updated.end_behavior == "cancel"
        event = client.v1.events.list({"type": "subscription_schedule.updated"}).data[0]
        assert event.data.previous_attributes["end_behavior"] == "release"
        listed = client.v1.subscription_schedules.list({"customer": customer}).data
        assert [s.id for s in listed] == [schedule.id]

    def test_from_subscription_takes_over_its_period(self, client: stripe.StripeClient) -> None:
        _, customer, price = _on_clock(client, JAN_1_2030)
        subscription = client.v1.subscriptions.create(
            {"customer": customer, "items": [{"price": price}]}
        )

        schedule = client.v1.subscription_schedules.create({"from_subscription": subscription.id})

        assert schedule.status == "active"
        assert schedule.subscription == subscription.id
        assert [(p.start_date, p.end_date) for p in schedule.phases] == [(JAN_1_2030, FEB_1_2030)]
        assert client.v1.subscriptions.retrieve(subscription.id).schedule == schedule.id
