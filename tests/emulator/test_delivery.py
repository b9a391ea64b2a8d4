"""Webhook delivery: signatures, retries, filtering, delivery faults and a clean shutdown."""

from __future__ import annotations

import asyncio
import socket
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from typing import Any

import orjson
import pytest
import stripe

from billwarden_emulator.delivery import (
    USER_AGENT,
    EndpointTarget,
    WebhookDispatcher,
    sign_payload,
)
from billwarden_emulator.faults import AccountFaults
from tests.emulator.receiver import WebhookReceiver

ACCOUNT = "sk_test_delivery"
SECRET = "whsec_test_delivery_secret"
FAST_RETRIES = (0.05, 0.1)

Result = tuple[str, str, str, bool]


def make_event(number: int, event_type: str = "customer.created") -> dict[str, Any]:
    return {
        "id": f"evt_{number:04d}",
        "object": "event",
        "api_version": "2026-10-28.endive",
        "created": int(time.time()),
        "type": event_type,
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "data": {"object": {"id": f"cus_{number:04d}", "object": "customer", "name": "Zoë"}},
    }


def endpoint_for(
    receiver: WebhookReceiver,
    *,
    endpoint_id: str = "we_1",
    secrets: tuple[str, ...] = (SECRET,),
    events: tuple[str, ...] = ("*",),
    enabled: bool = True,
) -> EndpointTarget:
    return EndpointTarget(
        id=endpoint_id, url=receiver.url, secrets=secrets, enabled_events=events, enabled=enabled
    )


def closed_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/webhooks"


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as running:
        yield running


@pytest.fixture
def results() -> list[Result]:
    return []


@pytest.fixture
async def dispatcher(results: list[Result]) -> AsyncIterator[WebhookDispatcher]:
    running = WebhookDispatcher(
        retry_schedule=FAST_RETRIES,
        timeout=5.0,  # the receiver is local: only a loaded machine makes an attempt slow
        on_result=lambda *outcome: results.append(outcome),
    )
    await running.start()
    yield running
    await running.stop()


async def settle(dispatcher: WebhookDispatcher, seconds: float = 3.0) -> None:
    async with asyncio.timeout(seconds):
        await dispatcher.wait_idle()


class TestSignature:
    async def test_delivery_verifies_with_the_sdk_and_carries_stripe_headers(
        self, dispatcher: WebhookDispatcher, receiver: WebhookReceiver
    ) -> None:
        event = make_event(1)
        dispatcher.publish(ACCOUNT, event, [endpoint_for(receiver)], AccountFaults())
        [(headers, body)] = await receiver.wait_for_async(1)

        assert body == orjson.dumps(event)
        assert headers["content-type"] == "application/json; charset=utf-8"
        assert (
            headers["user-agent"] == USER_AGENT == "Stripe/1.0 (+https://stripe.com/docs/webhooks)"
        )
        verified = stripe.Webhook.construct_event(body, headers["stripe-signature"], SECRET)
        assert verified.id == "evt_0001"
        assert verified.type == "customer.created"
        assert verified.data.object.name == "Zoë"

    async def test_wrong_secret_fails_verification(
        self, dispatcher: WebhookDispatcher, receiver: WebhookReceiver
    ) -> None:
        dispatcher.publish(ACCOUNT, make_event(1), [endpoint_for(receiver)], AccountFaults())
        [(headers, body)] = await receiver.wait_for_async(1)
        with pytest.raises(stripe.SignatureVerificationError):
            stripe.Webhook.construct_event(body, headers["stripe-signature"], "whsec_other")

    async def test_two_secrets_send_two_signatures_and_either_verifies(
        self, dispatcher: WebhookDispatcher, receiver: WebhookReceiver
    ) -> None:
        secrets = ("whsec_old_secret", "whsec_new_secret")
        dispatcher.publish(
            ACCOUNT, make_event(1), [endpoint_for(receiver, secrets=secrets)], AccountFaults()
        )
        [(headers, body)] = await receiver.wait_for_async(1)
        header = headers["stripe-signature"]
        assert [part.split("=")[0] for part in header.split(",")] == ["t", "v1", "v1"]
        for secret in secrets:
            assert stripe.Webhook.construct_event(body, header, secret).id == "evt_0001"

    def test_sign_payload_matches_the_sdk_signature(self) -> None:
        payload = b'{"id":"evt_1","object":"event","name":"\xc3\xa9"}'
        expected = stripe.WebhookSignature.generate_signature_header(
            payload.decode(), SECRET, timestamp=1_700_000_000
        )
        assert sign_payload(payload, [SECRET], 1_700_000_000) == expected

    def test_sign_payload_needs_a_secret(self) -> None:
        with pytest.raises(ValueError, match="at least one signing secret"):
            sign_payload(b"{}", [], 1_700_000_000)


class TestRetries:
    async def test_retries_on_500_until_success_and_logs_each_attempt(
        self, dispatcher: WebhookDispatcher, receiver: WebhookReceiver, results: list[Result]
    ) -> None:
        receiver.respond_with([500, 500, 200])
        dispatcher.publish(ACCOUNT, make_event(1), [endpoint_for(receiver)], AccountFaults())
        await receiver.wait_for_async(3)
        await settle(dispatcher)

        log = dispatcher.delivery_log(ACCOUNT)
        assert [(entry["attempt"], entry["status_code"], entry["success"]) for entry in log] == [
            (1, 500, False),
            (2, 500, False),
            (3, 200, True),
        ]
        assert {entry["event_id"] for entry in log} == {"evt_0001"}
        assert all(entry["endpoint_id"] == "we_1" and entry["url"] == receiver.url for entry in log)
        assert all(entry["event_type"] == "customer.created" for entry in log)
        assert [entry["will_retry"] for entry in log] == [True, True, False]
        assert log[0]["at"] <= log[1]["at"] <= log[2]["at"]
        assert log[1]["at"] - log[0]["at"] >= FAST_RETRIES[0]
        assert all(entry["duration_ms"] >= 0 for entry in log)
        assert len({entry["id"] for entry in log}) == 3
        assert results == [(ACCOUNT, "evt_0001", "we_1", True)]
        # Every attempt is signed afresh and still verifies.
        for headers, body in receiver.requests:
            stripe.Webhook.construct_event(body, headers["stripe-signature"], SECRET)

    async def test_gives_up_after_the_schedule_and_reports_failure(
        self, dispatcher: WebhookDispatcher, receiver: WebhookReceiver, results: list[Result]
    ) -> None:
        receiver.respond_with([500] * 10)
        dispatcher.publish(ACCOUNT, make_event(1), [endpoint_for(receiver)], AccountFaults())
        await settle(dispatcher)
        await asyncio.sleep(0.2)  # longer than any retry step: nothing more may arrive

        assert len(receiver.requests) == 1 + len(FAST_RETRIES)
        log = dispatcher.delivery_log(ACCOUNT)
        assert [entry["success"] for entry in log] == [False, False, False]
        assert log[-1]["will_retry"] is False
        assert results == [(ACCOUNT, "evt_0001", "we_1", False)]

    async def test_redirect_counts_as_failure(
        self, dispatcher: WebhookDispatcher, receiver: WebhookReceiver, results: list[Result]
    ) -> None:
        receiver.respond_with([302, 200])
        dispatcher.publish(ACCOUNT, make_event(1), [endpoint_for(receiver)], AccountFaults())
        await settle(dispatcher)

        log = dispatcher.delivery_log(ACCOUNT)
        assert [(entry["status_code"], entry["success"]) for entry in log] == [
            (302, False),
            (200, True),
        ]
        assert receiver.paths == ["/webhooks", "/webhooks"]  # the redirect was not followed
        assert results == [(ACCOUNT, "evt_0001", "we_1", True)]

    async def test_unreachable_endpoint_fails_with_an_error(
        self, dispatcher: WebhookDispatcher, results: list[Result]
    ) -> None:
        target = EndpointTarget(
            id="we_down", url=closed_port_url(), secrets=(SECRET,), enabled_events=("*",)
        )
        dispatcher.publish(ACCOUNT, make_event(1), [target], AccountFaults())
        await settle(dispatcher)

        log = dispatcher.delivery_log(ACCOUNT)
        assert len(log) == 1 + len(FAST_RETRIES)
        assert all(entry["status_code"] is None and entry["error"] for entry in log)
        assert results == [(ACCOUNT, "evt_0001", "we_down", False)]

    async def test_endpoint_without_a_secret_fails_without_stopping_delivery(
        self, dispatcher: WebhookDispatcher, receiver: WebhookReceiver, results: list[Result]
    ) -> None:
        unsigned = endpoint_for(receiver, endpoint_id="we_nosecret", secrets=())
        dispatcher.publish(ACCOUNT, make_event(1), [unsigned], AccountFaults())
        await settle(dispatcher)
        dispatcher.publish(ACCOUNT, make_event(2), [endpoint_for(receiver)], AccountFaults())
        await receiver.wait_for_async(1)

        assert receiver.event_ids() == ["evt_0002"]  # nothing unsigned was ever sent
        failed = [e for e in dispatcher.delivery_log(ACCOUNT) if e["endpoint_id"] == "we_nosecret"]
        assert len(failed) == 1 + len(FAST_RETRIES)
        assert "signing secret" in failed[0]["error"]
        assert (ACCOUNT, "evt_0001", "we_nosecret", False) in results

    async def test_slow_endpoint_times_out_and_is_retried(
        self, receiver: WebhookReceiver, results: list[Result]
    ) -> None:
        dispatcher = WebhookDispatcher(
            retry_schedule=(0.05,), timeout=0.1, on_result=lambda *outcome: results.append(outcome)
        )
        await dispatcher.start()
        try:
            receiver.respond_slowly(0.3)
            dispatcher.publish(ACCOUNT, make_event(1), [endpoint_for(receiver)], AccountFaults())
            await settle(dispatcher)
        finally:
            await dispatcher.stop()
        log = dispatcher.delivery_log(ACCOUNT)
        assert [entry["error"] for entry in log] == ["timed out after 0.1s"] * 2
        assert results == [(ACCOUNT, "evt_0001", "we_1", False)]

    async def test_later_events_are_not_held_up_by_a_retry(
        self, dispatcher: WebhookDispatcher, receiver: WebhookReceiver
    ) -> None:
        receiver.respond_with([500])
        endpoint = endpoint_for(receiver)
        dispatcher.publish(ACCOUNT, make_event(1), [endpoint], AccountFaults())
        dispatcher.publish(ACCOUNT, make_event(2), [endpoint], AccountFaults())
        await receiver.wait_for_async(3)
        assert receiver.event_ids() == ["evt_0001", "evt_0002", "evt_0001"]


class TestRouting:
    async def test_each_endpoint_gets_only_the_events_it_enabled(
        self, dispatcher: WebhookDispatcher
    ) -> None:
        with WebhookReceiver() as everything, WebhookReceiver() as invoices:
            endpoints = [
                endpoint_for(everything, endpoint_id="we_all"),
                endpoint_for(invoices, endpoint_id="we_invoices", events=("invoice.paid",)),
            ]
            dispatcher.publish(ACCOUNT, make_event(1), endpoints, AccountFaults())
            dispatcher.publish(ACCOUNT, make_event(2, "invoice.paid"), endpoints, AccountFaults())
            await settle(dispatcher)

            assert everything.event_ids() == ["evt_0001", "evt_0002"]
            assert invoices.event_ids() == ["evt_0002"]

    async def test_disabled_endpoint_gets_nothing(
        self, dispatcher: WebhookDispatcher, receiver: WebhookReceiver
    ) -> None:
        dispatcher.publish(
            ACCOUNT, make_event(1), [endpoint_for(receiver, enabled=False)], AccountFaults()
        )
        await settle(dispatcher)
        await asyncio.sleep(0.05)
        assert receiver.requests == []
        assert dispatcher.delivery_log(ACCOUNT) == []

    async def test_events_arrive_in_publish_order_by_default(
        self, dispatcher: WebhookDispatcher, receiver: WebhookReceiver
    ) -> None:
        endpoint = endpoint_for(receiver)
        for number in range(10):
            dispatcher.publish(ACCOUNT, make_event(number), [endpoint], AccountFaults())
        await receiver.wait_for_async(10)
        assert receiver.event_ids() == [f"evt_{number:04d}" for number in range(10)]

    async def test_body_is_the_event_as_published(
        self, dispatcher: WebhookDispatcher, receiver: WebhookReceiver
    ) -> None:
        event = make_event(1)
        dispatcher.publish(ACCOUNT, event, [endpoint_for(receiver)], AccountFaults())
        event["data"]["object"]["name"] = "changed after publish"
        await receiver.wait_for_async(1)
        assert receiver.events()[0]["data"]["object"]["name"] == "Zoë"

    async def test_accounts_have_separate_logs_and_reset(
        self, dispatcher: WebhookDispatcher, receiver: WebhookReceiver
    ) -> None:
        endpoint = endpoint_for(receiver)
        dispatcher.publish(ACCOUNT, make_event(1), [endpoint], AccountFaults())
        dispatcher.publish("sk_test_other", make_event(2), [endpoint], AccountFaults())
        await settle(dispatcher)
        # each account's log holds its own event only (a slow attempt retried logs it twice)
        assert {entry["event_id"] for entry in dispatcher.delivery_log(ACCOUNT)} == {"evt_0001"}
        dispatcher.reset(ACCOUNT)
        assert dispatcher.delivery_log(ACCOUNT) == []
        other = dispatcher.delivery_log("sk_test_other")
        assert {entry["event_id"] for entry in other} == {"evt_0002"}

    async def test_reset_drops_pending_retries(
        self, dispatcher: WebhookDispatcher, receiver: WebhookReceiver, results: list[Result]
    ) -> None:
        receiver.respond_with([500] * 10)
        dispatcher.publish(ACCOUNT, make_event(1), [endpoint_for(receiver)], AccountFaults())
        await receiver.wait_for_async(1)
        dispatcher.reset(ACCOUNT)
        await settle(dispatcher)
        await asyncio.sleep(0.2)
        assert len(receiver.requests) == 1
        assert dispatcher.delivery_log(ACCOUNT) == []
        assert results == []


class TestDeliveryFaults:
    async def test_duplicate_sends_every_delivery_twice_and_reports_once(
        self, dispatcher: WebhookDispatcher, receiver: WebhookReceiver, results: list[Result]
    ) -> None:
        faults = AccountFaults()
        faults.configure({"webhooks": {"duplicate": True}})
        endpoint = endpoint_for(receiver)
        dispatcher.publish(ACCOUNT, make_event(1), [endpoint], faults)
        dispatcher.publish(ACCOUNT, make_event(2), [endpoint], faults)
        await settle(dispatcher)

        assert Counter(receiver.event_ids()) == {"evt_0001": 2, "evt_0002": 2}
        for headers, body in receiver.requests:
            stripe.Webhook.construct_event(body, headers["stripe-signature"], SECRET)
        log = dispatcher.delivery_log(ACCOUNT)
        assert sorted(entry["duplicate"] for entry in log) == [False, False, True, True]
        assert sorted(results) == [
            (ACCOUNT, "evt_0001", "we_1", True),
            (ACCOUNT, "evt_0002", "we_1", True),
        ]

    async def shuffled_order(self, dispatcher: WebhookDispatcher, seed: int) -> list[str]:
        faults = AccountFaults()
        faults.configure({"webhooks": {"shuffle_window": 0.1, "shuffle_seed": seed}})
        with WebhookReceiver() as receiver:
            endpoint = endpoint_for(receiver)
            for number in range(12):
                dispatcher.publish(ACCOUNT, make_event(number), [endpoint], faults)
            await receiver.wait_for_async(12)
            return receiver.event_ids()

    async def test_shuffle_reorders_within_the_window_and_keeps_every_event(
        self, dispatcher: WebhookDispatcher
    ) -> None:
        published = [f"evt_{number:04d}" for number in range(12)]
        first = await self.shuffled_order(dispatcher, seed=7)
        second = await self.shuffled_order(dispatcher, seed=7)
        other_seed = await self.shuffled_order(dispatcher, seed=8)

        assert sorted(first) == published
        assert first != published
        assert second == first  # the seed makes the order repeatable
        assert sorted(other_seed) == published
        assert other_seed != first

    async def test_events_outside_the_window_keep_their_order(
        self, dispatcher: WebhookDispatcher, receiver: WebhookReceiver
    ) -> None:
        faults = AccountFaults()
        faults.configure({"webhooks": {"shuffle_window": 0.05, "shuffle_seed": 1}})
        endpoint = endpoint_for(receiver)
        dispatcher.publish(ACCOUNT, make_event(1), [endpoint], faults)
        await receiver.wait_for_async(1)
        dispatcher.publish(ACCOUNT, make_event(2), [endpoint], faults)
        await receiver.wait_for_async(2)
        assert receiver.event_ids() == ["evt_0001", "evt_0002"]

    async def test_delay_holds_deliveries_back(
        self, dispatcher: WebhookDispatcher, receiver: WebhookReceiver
    ) -> None:
        faults = AccountFaults()
        faults.configure({"webhooks": {"delay": 0.3}})
        published_at = time.monotonic()
        dispatcher.publish(ACCOUNT, make_event(1), [endpoint_for(receiver)], faults)
        await asyncio.sleep(0.15)
        assert receiver.requests == []
        await receiver.wait_for_async(1)
        assert time.monotonic() - published_at >= 0.3
        assert receiver.event_ids() == ["evt_0001"]


class TestLifecycle:
    async def test_publish_before_start_is_delivered_once_started(
        self, receiver: WebhookReceiver, results: list[Result]
    ) -> None:
        dispatcher = WebhookDispatcher(
            retry_schedule=FAST_RETRIES, on_result=lambda *outcome: results.append(outcome)
        )
        dispatcher.publish(ACCOUNT, make_event(1), [endpoint_for(receiver)], AccountFaults())
        await asyncio.sleep(0.05)
        assert receiver.requests == []
        await dispatcher.start()
        try:
            await receiver.wait_for_async(1)
            await settle(dispatcher)
        finally:
            await dispatcher.stop()
        assert results == [(ACCOUNT, "evt_0001", "we_1", True)]

    async def test_stop_cancels_in_flight_and_scheduled_work_without_leaking_tasks(
        self, receiver: WebhookReceiver
    ) -> None:
        before = asyncio.all_tasks()
        dispatcher = WebhookDispatcher(retry_schedule=(5.0,), timeout=2.0)
        await dispatcher.start()
        with WebhookReceiver() as slow:
            slow.respond_slowly(1.0)
            receiver.respond_with([500])
            dispatcher.publish(ACCOUNT, make_event(1), [endpoint_for(receiver)], AccountFaults())
            dispatcher.publish(
                ACCOUNT, make_event(2), [endpoint_for(slow, endpoint_id="we_slow")], AccountFaults()
            )
            await receiver.wait_for_async(1)
            await slow.wait_for_async(1)

            started = time.monotonic()
            await dispatcher.stop()
            assert time.monotonic() - started < 0.5
            assert asyncio.all_tasks() == before
            assert dispatcher.pending(ACCOUNT) == 2  # kept for a later start: at least once
            await dispatcher.stop()  # stopping twice is harmless
