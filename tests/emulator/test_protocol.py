"""Stripe's wire protocol: keys, accounts, errors, idempotency, pagination, expand, filters."""

from __future__ import annotations

import time
import uuid

import httpx
import pytest
import stripe

from tests.emulator.receiver import WebhookReceiver


def _recurring_price(client: stripe.StripeClient, amount: int = 1000) -> stripe.Price:
    return client.v1.prices.create(
        {
            "product_data": {"name": "Plan"},
            "unit_amount": amount,
            "currency": "usd",
            "recurring": {"interval": "month"},
        }
    )


class TestAuthentication:
    def test_missing_key_is_401_in_stripes_envelope(self, emulator_url: str) -> None:
        response = httpx.get(f"{emulator_url}/v1/customers")
        assert response.status_code == 401
        error = response.json()["error"]
        assert set(error) >= {"type", "code", "message", "param"}
        assert error["type"] == "invalid_request_error"

    @pytest.mark.parametrize("key", ["pk_test_abc", "sk_test_", "nonsense", "sk_prod_abc"])
    def test_malformed_key_raises_authentication_error(self, emulator_url: str, key: str) -> None:
        client = stripe.StripeClient(key, base_addresses={"api": emulator_url})
        with pytest.raises(stripe.AuthenticationError) as caught:
            client.v1.customers.list()
        assert caught.value.http_status == 401

    def test_revoked_key_is_refused_afterwards(
        self, client: stripe.StripeClient, raw: httpx.Client
    ) -> None:
        client.v1.customers.create()
        assert raw.post("/_emulator/keys/revoke").status_code == 200
        with pytest.raises(stripe.AuthenticationError):
            client.v1.customers.list()

    def test_live_key_gives_livemode_objects(self, emulator_url: str) -> None:
        client = stripe.StripeClient(
            f"sk_live_{uuid.uuid4().hex}", base_addresses={"api": emulator_url}
        )
        assert client.v1.customers.create().livemode is True
        session = client.v1.checkout.sessions.create(
            {
                "mode": "subscription",
                "line_items": [{"price": _recurring_price(client).id, "quantity": 1}],
                "success_url": "https://example.com",
            }
        )
        assert session.id.startswith("cs_live_")


class TestAccountIsolation:
    def test_objects_are_invisible_to_another_key(
        self, client: stripe.StripeClient, emulator_url: str
    ) -> None:
        mine = client.v1.customers.create({"email": "mine@example.com"})
        other = stripe.StripeClient(
            f"sk_test_{uuid.uuid4().hex}", base_addresses={"api": emulator_url}
        )
        with pytest.raises(stripe.InvalidRequestError) as caught:
            other.v1.customers.retrieve(mine.id)
        assert caught.value.http_status == 404
        assert caught.value.code == "resource_missing"
        assert other.v1.customers.list().data == []
        assert [c.id for c in client.v1.customers.list().data] == [mine.id]


class TestErrors:
    def test_unknown_parameter_is_rejected(self, client: stripe.StripeClient) -> None:
        with pytest.raises(stripe.InvalidRequestError) as caught:
            client.v1.customers.create({"emial": "typo@example.com"})  # type: ignore[typeddict-unknown-key]
        assert caught.value.http_status == 400
        assert caught.value.code == "parameter_unknown"
        assert caught.value.param == "emial"

    def test_unknown_nested_parameter_names_its_path(self, raw: httpx.Client) -> None:
        product = raw.post("/v1/products", data={"name": "P"}).json()
        response = raw.post(
            "/v1/prices",
            data={
                "product": product["id"],
                "currency": "usd",
                "unit_amount": "100",
                "recurring[interval]": "month",
                "recurring[colour]": "blue",
            },
        )
        assert response.status_code == 400
        assert response.json()["error"]["param"] == "recurring[colour]"

    def test_missing_object_is_404_resource_missing(self, raw: httpx.Client) -> None:
        response = raw.get("/v1/subscriptions/sub_doesnotexist")
        assert response.status_code == 404
        assert response.json() == {
            "error": {
                "type": "invalid_request_error",
                "code": "resource_missing",
                "message": "No such subscription: 'sub_doesnotexist'",
                "param": "id",
            }
        }

    def test_unrecognized_url_is_404(self, raw: httpx.Client) -> None:
        response = raw.get("/v1/nothing_here")
        assert response.status_code == 404
        assert "Unrecognized request URL" in response.json()["error"]["message"]

    def test_declined_first_payment_with_error_if_incomplete_is_402(
        self, client: stripe.StripeClient
    ) -> None:
        customer = client.v1.customers.create({"metadata": {"emulator_card": "declined"}})
        with pytest.raises(stripe.CardError) as caught:
            client.v1.subscriptions.create(
                {
                    "customer": customer.id,
                    "items": [{"price": _recurring_price(client).id}],
                    "payment_behavior": "error_if_incomplete",
                }
            )
        assert caught.value.http_status == 402
        assert caught.value.code == "card_declined"
        assert client.v1.subscriptions.list({"status": "all"}).data == []

    def test_invalid_limit_is_400(self, raw: httpx.Client) -> None:
        response = raw.get("/v1/customers", params={"limit": "101"})
        assert response.status_code == 400
        assert response.json()["error"]["param"] == "limit"


class TestIdempotency:
    def test_same_key_same_params_replays_the_first_response(self, raw: httpx.Client) -> None:
        headers = {"Idempotency-Key": "create-ada"}
        first = raw.post("/v1/customers", data={"email": "ada@example.com"}, headers=headers)
        second = raw.post("/v1/customers", data={"email": "ada@example.com"}, headers=headers)
        assert first.status_code == second.status_code == 200
        assert second.json()["id"] == first.json()["id"]
        assert second.headers["Idempotent-Replayed"] == "true"
        assert len(raw.get("/v1/customers").json()["data"]) == 1

    def test_replay_keeps_the_first_error_status(self, raw: httpx.Client) -> None:
        customer = raw.post("/v1/customers", data={"metadata[emulator_card]": "declined"}).json()
        price = raw.post(
            "/v1/prices",
            data={
                "product_data[name]": "P",
                "currency": "usd",
                "unit_amount": "100",
                "recurring[interval]": "month",
            },
        ).json()
        body = {
            "customer": customer["id"],
            "items[0][price]": price["id"],
            "payment_behavior": "error_if_incomplete",
        }
        headers = {"Idempotency-Key": "declined-once"}
        first = raw.post("/v1/subscriptions", data=body, headers=headers)
        raw.post(f"/_emulator/customers/{customer['id']}/card", data={"outcome": "succeeds"})
        second = raw.post("/v1/subscriptions", data=body, headers=headers)
        assert first.status_code == second.status_code == 402
        assert second.json() == first.json()

    def test_same_key_different_params_is_an_idempotency_error(
        self, client: stripe.StripeClient
    ) -> None:
        client.v1.customers.create({"email": "a@example.com"}, {"idempotency_key": "k1"})
        with pytest.raises(stripe.IdempotencyError) as caught:
            client.v1.customers.create({"email": "b@example.com"}, {"idempotency_key": "k1"})
        assert caught.value.http_status == 400


class TestPagination:
    def test_auto_paging_returns_each_of_1000_subscriptions_once(
        self, client: stripe.StripeClient, raw: httpx.Client
    ) -> None:
        customer = client.v1.customers.create()
        price = _recurring_price(client)
        created = {
            raw.post(
                "/v1/subscriptions", data={"customer": customer.id, "items[0][price]": price.id}
            ).json()["id"]
            for _ in range(1000)
        }
        seen = [s.id for s in client.v1.subscriptions.list({"limit": 100}).auto_paging_iter()]
        assert len(seen) == 1000
        assert set(seen) == created

    def test_lists_are_newest_first_with_both_cursors(self, client: stripe.StripeClient) -> None:
        ids = [client.v1.customers.create().id for _ in range(5)]
        first = client.v1.customers.list({"limit": 2})
        assert [c.id for c in first.data] == [ids[4], ids[3]]
        assert first.has_more is True
        assert first.url == "/v1/customers"
        after = client.v1.customers.list({"limit": 2, "starting_after": ids[3]})
        assert [c.id for c in after.data] == [ids[2], ids[1]]
        before = client.v1.customers.list({"limit": 2, "ending_before": ids[1]})
        assert [c.id for c in before.data] == [ids[3], ids[2]]
        assert before.has_more is True


class TestFiltersAndExpand:
    def test_customer_email_and_price_lookup_key_filters(self, client: stripe.StripeClient) -> None:
        client.v1.customers.create({"email": "x@example.com"})
        wanted = client.v1.customers.create({"email": "y@example.com"})
        assert [c.id for c in client.v1.customers.list({"email": "y@example.com"}).data] == [
            wanted.id
        ]
        product = client.v1.products.create({"name": "P"})
        keyed = client.v1.prices.create(
            {"product": product.id, "currency": "usd", "unit_amount": 5, "lookup_key": "basic"}
        )
        client.v1.prices.create({"product": product.id, "currency": "usd", "unit_amount": 9})
        found = client.v1.prices.list({"lookup_keys": ["basic", "absent"]})
        assert [p.id for p in found.data] == [keyed.id]

    def test_subscription_filters_by_status_price_and_customer(
        self, client: stripe.StripeClient
    ) -> None:
        price = _recurring_price(client)
        other_price = _recurring_price(client, 2000)
        alice = client.v1.customers.create()
        bob = client.v1.customers.create()
        kept = client.v1.subscriptions.create(
            {"customer": alice.id, "items": [{"price": price.id}]}
        )
        gone = client.v1.subscriptions.create(
            {"customer": bob.id, "items": [{"price": other_price.id}]}
        )
        client.v1.subscriptions.cancel(gone.id)
        assert [s.id for s in client.v1.subscriptions.list().data] == [kept.id]
        assert [s.id for s in client.v1.subscriptions.list({"status": "canceled"}).data] == [
            gone.id
        ]
        assert len(client.v1.subscriptions.list({"status": "all"}).data) == 2
        assert client.v1.subscriptions.list({"price": other_price.id}).data == []
        assert [s.id for s in client.v1.subscriptions.list({"customer": alice.id}).data] == [
            kept.id
        ]

    def test_expand_on_objects_and_list_data(self, client: stripe.StripeClient) -> None:
        customer = client.v1.customers.create({"email": "e@example.com"})
        client.v1.subscriptions.create(
            {"customer": customer.id, "items": [{"price": _recurring_price(client).id}]}
        )
        listed = client.v1.subscriptions.list({"expand": ["data.customer", "data.latest_invoice"]})
        subscription = listed.data[0]
        assert isinstance(subscription.customer, stripe.Customer)
        assert subscription.customer.email == "e@example.com"
        assert isinstance(subscription.latest_invoice, stripe.Invoice)
        with pytest.raises(stripe.InvalidRequestError):
            client.v1.subscriptions.retrieve(subscription.id, {"expand": ["no_such_field"]})

    def test_expand_through_a_list_of_ids_to_a_coupon(self, client: stripe.StripeClient) -> None:
        customer = client.v1.customers.create({"payment_method": "pm_card_visa"})
        coupon = client.v1.coupons.create({"id": "SPRING20", "percent_off": 20})
        subscription = client.v1.subscriptions.create(
            {
                "customer": customer.id,
                "items": [{"price": _recurring_price(client).id}],
                "discounts": [{"coupon": coupon.id}],
            }
        )
        assert [d for d in subscription.discounts if isinstance(d, str)]  # ids unless expanded
        expanded = client.v1.subscriptions.retrieve(
            subscription.id, {"expand": ["discounts.source.coupon"]}
        )
        (discount,) = expanded.discounts
        assert isinstance(discount, stripe.Discount)
        coupon_object = discount.source.coupon  # a coupon id of the user's choosing, expanded
        assert isinstance(coupon_object, stripe.Coupon)
        assert coupon_object.percent_off == 20

    def test_events_filter_by_type_created_and_delivery_success(
        self, client: stripe.StripeClient
    ) -> None:
        with WebhookReceiver(default_status=500) as failing:
            client.v1.webhook_endpoints.create(
                {"url": failing.url, "enabled_events": ["customer.created"]}
            )
            started = int(time.time())
            customer = client.v1.customers.create()
            client.v1.customers.update(customer.id, {"name": "Renamed"})
            created_events = client.v1.events.list({"type": "customer.created"}).data
            assert [e.data.object["id"] for e in created_events] == [customer.id]
            assert created_events[0].pending_webhooks == 1
            updated = client.v1.events.list({"type": "customer.updated"}).data[0]
            assert updated.data.previous_attributes["name"] is None
            assert client.v1.events.list({"created": {"gte": started + 3600}}).data == []
            undelivered = client.v1.events.list({"delivery_success": False}).data
            assert [e.type for e in undelivered] == ["customer.created"]


class TestHelpers:
    def test_reset_forgets_the_accounts_objects_only(
        self, client: stripe.StripeClient, raw: httpx.Client, emulator_url: str
    ) -> None:
        other = stripe.StripeClient(
            f"sk_test_{uuid.uuid4().hex}", base_addresses={"api": emulator_url}
        )
        kept = other.v1.customers.create()
        client.v1.customers.create()
        assert raw.post("/_emulator/reset").status_code == 200
        assert client.v1.customers.list().data == []
        assert client.v1.events.list().data == []
        assert other.v1.customers.retrieve(kept.id).id == kept.id

    def test_hosted_checkout_page_pays_and_redirects(
        self, client: stripe.StripeClient, emulator_url: str
    ) -> None:
        session = client.v1.checkout.sessions.create(
            {
                "mode": "subscription",
                "customer_email": "page@example.com",
                "line_items": [{"price": _recurring_price(client).id, "quantity": 1}],
                "success_url": "https://example.com/done?session={CHECKOUT_SESSION_ID}",
            }
        )
        assert session.url is not None
        page = httpx.get(session.url)
        assert page.status_code == 200 and "Checkout" in page.text
        paid = httpx.post(f"{session.url}/pay", data={"outcome": "paid"})
        assert paid.status_code == 303
        assert paid.headers["location"] == f"https://example.com/done?session={session.id}"
        completed = client.v1.checkout.sessions.retrieve(session.id)
        assert completed.status == "complete"
        assert completed.customer_details is not None
        assert completed.customer_details.email == "page@example.com"

    def test_helpers_are_not_under_v1(self, raw: httpx.Client) -> None:
        assert raw.post("/v1/_emulator/reset").status_code == 404
