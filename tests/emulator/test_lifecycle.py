"""The official SDK, sync and async, through a whole subscription lifecycle with real webhooks."""

from __future__ import annotations

import time

import httpx
import stripe

from tests.emulator.receiver import WebhookReceiver

EXPECTED_TYPES = {
    "customer.created",
    "customer.subscription.created",
    "invoice.created",
    "invoice.finalized",
    "invoice.paid",
    "invoice.payment_succeeded",
    "payment_intent.succeeded",
    "checkout.session.completed",
    "customer.subscription.updated",
    "customer.subscription.deleted",
}


def _verified_events(receiver: WebhookReceiver, secret: str) -> list[stripe.Event]:
    return [
        stripe.Webhook.construct_event(body, headers["stripe-signature"], secret)
        for headers, body in receiver.requests
    ]


class TestSyncLifecycle:
    def test_checkout_to_deletion_with_signed_webhooks(
        self, client: stripe.StripeClient, raw: httpx.Client
    ) -> None:
        with WebhookReceiver() as receiver:
            endpoint = client.v1.webhook_endpoints.create(
                {"url": receiver.url, "enabled_events": ["*"]}
            )
            assert endpoint.secret is not None and endpoint.secret.startswith("whsec_")
            assert "secret" not in client.v1.webhook_endpoints.retrieve(endpoint.id).to_dict()

            start = int(time.time())
            clock = client.v1.test_helpers.test_clocks.create({"frozen_time": start})
            customer = client.v1.customers.create(
                {"email": "ada@example.com", "test_clock": clock.id}
            )
            assert isinstance(customer, stripe.Customer)
            product = client.v1.products.create({"name": "Pro"})
            assert isinstance(product, stripe.Product)
            monthly = client.v1.prices.create(
                {
                    "product": product.id,
                    "unit_amount": 1000,
                    "currency": "usd",
                    "recurring": {"interval": "month"},
                    "lookup_key": "pro_monthly",
                }
            )
            bigger = client.v1.prices.create(
                {
                    "product": product.id,
                    "unit_amount": 3000,
                    "currency": "usd",
                    "recurring": {"interval": "month"},
                }
            )
            assert isinstance(monthly, stripe.Price)

            session = client.v1.checkout.sessions.create(
                {
                    "mode": "subscription",
                    "customer": customer.id,
                    "line_items": [{"price": monthly.id, "quantity": 1}],
                    "success_url": "https://example.com/ok",
                    "client_reference_id": "user-42",
                    "subscription_data": {"metadata": {"plan": "pro"}},
                }
            )
            assert isinstance(session, stripe.checkout.Session)
            assert session.url is not None and session.status == "open"
            completed = raw.post(
                f"/_emulator/checkout/sessions/{session.id}/complete", data={"outcome": "paid"}
            )
            assert completed.status_code == 200

            session = client.v1.checkout.sessions.retrieve(session.id)
            assert session.status == "complete" and session.payment_status == "paid"
            assert session.client_reference_id == "user-42"
            subscription = client.v1.subscriptions.retrieve(
                str(session.subscription), {"expand": ["latest_invoice"]}
            )
            assert isinstance(subscription, stripe.Subscription)
            assert subscription.status == "active"
            assert subscription.metadata["plan"] == "pro"
            item = subscription["items"].data[0]
            assert isinstance(item, stripe.SubscriptionItem)
            assert item.price.id == monthly.id
            assert item.current_period_end > start
            assert isinstance(subscription.latest_invoice, stripe.Invoice)
            assert subscription.latest_invoice.status == "paid"
            assert subscription.latest_invoice.amount_paid == 1000

            changed = client.v1.subscriptions.update(
                subscription.id,
                {
                    "items": [{"id": item.id, "price": bigger.id}],
                    "proration_behavior": "always_invoice",
                },
            )
            assert changed["items"].data[0].price.id == bigger.id
            proration = client.v1.invoices.retrieve(str(changed.latest_invoice))
            assert proration.billing_reason == "subscription_update"
            assert proration.status == "paid" and 0 < proration.amount_paid <= 2000
            assert proration.parent is not None
            assert proration.parent.subscription_details is not None
            assert proration.parent.subscription_details.subscription == subscription.id

            ending = client.v1.subscriptions.update(subscription.id, {"cancel_at_period_end": True})
            assert ending.cancel_at_period_end is True
            assert ending.cancel_at == item.current_period_end

            client.v1.test_helpers.test_clocks.advance(
                clock.id, {"frozen_time": item.current_period_end + 3600}
            )
            ended = client.v1.subscriptions.retrieve(subscription.id)
            assert ended.status == "canceled"
            assert ended.ended_at == item.current_period_end

            events = list(client.v1.events.list({"limit": 100}).auto_paging_iter())
            assert all(isinstance(event, stripe.Event) for event in events)
            receiver.wait_for(len(events), timeout=10)
            verified = _verified_events(receiver, endpoint.secret)

        assert sorted(event.id for event in verified) == sorted(event.id for event in events)
        assert {event.type for event in verified} >= EXPECTED_TYPES
        created_order = [e.type for e in reversed(events) if e.type.startswith("customer.sub")]
        assert created_order[0] == "customer.subscription.created"
        assert created_order[-1] == "customer.subscription.deleted"
        cancel_update = next(
            e
            for e in events
            if e.type == "customer.subscription.updated"
            and "cancel_at_period_end" in (e.data.previous_attributes or {})
        )
        assert cancel_update.data.previous_attributes["cancel_at_period_end"] is False


class TestAsyncLifecycle:
    async def test_checkout_to_deletion_with_async_client(
        self, async_client: stripe.StripeClient, emulator_url: str, api_key: str
    ) -> None:
        client = async_client
        with WebhookReceiver() as receiver:
            endpoint = await client.v1.webhook_endpoints.create_async(
                {"url": receiver.url, "enabled_events": ["*"]}
            )
            clock = await client.v1.test_helpers.test_clocks.create_async(
                {"frozen_time": int(time.time())}
            )
            customer = await client.v1.customers.create_async(
                {"email": "grace@example.com", "test_clock": clock.id}
            )
            product = await client.v1.products.create_async({"name": "Team"})
            price = await client.v1.prices.create_async(
                {
                    "product": product.id,
                    "unit_amount": 5000,
                    "currency": "usd",
                    "recurring": {"interval": "month"},
                }
            )
            upgrade = await client.v1.prices.create_async(
                {
                    "product": product.id,
                    "unit_amount": 9000,
                    "currency": "usd",
                    "recurring": {"interval": "month"},
                }
            )
            session = await client.v1.checkout.sessions.create_async(
                {
                    "mode": "subscription",
                    "customer": customer.id,
                    "line_items": [{"price": price.id, "quantity": 2}],
                    "ui_mode": "embedded_page",
                    "return_url": "https://example.com/return",
                }
            )
            assert session.client_secret is not None and session.url is None
            async with httpx.AsyncClient(
                base_url=emulator_url, headers={"Authorization": f"Bearer {api_key}"}
            ) as http:
                completed = await http.post(
                    f"/_emulator/checkout/sessions/{session.id}/complete",
                    json={"outcome": "paid"},
                )
            assert completed.status_code == 200
            subscription = await client.v1.subscriptions.retrieve_async(
                completed.json()["subscription"]
            )
            assert subscription.status == "active"
            assert subscription["items"].data[0].quantity == 2
            item = subscription["items"].data[0]
            changed = await client.v1.subscriptions.update_async(
                subscription.id,
                {"items": [{"id": item.id, "price": upgrade.id}], "proration_behavior": "none"},
            )
            assert changed["items"].data[0].price.id == upgrade.id
            await client.v1.subscriptions.update_async(
                subscription.id, {"cancel_at_period_end": True}
            )
            await client.v1.test_helpers.test_clocks.advance_async(
                clock.id, {"frozen_time": item.current_period_end + 60}
            )
            ended = await client.v1.subscriptions.retrieve_async(subscription.id)
            assert ended.status == "canceled"
            first_page = await client.v1.events.list_async({"limit": 100})
            listed = [event async for event in first_page.auto_paging_iter()]
            await receiver.wait_for_async(len(listed), timeout=10)
            verified = _verified_events(receiver, str(endpoint.secret))
        assert {event.id for event in verified} == {event.id for event in listed}
        assert "customer.subscription.deleted" in {event.type for event in verified}
