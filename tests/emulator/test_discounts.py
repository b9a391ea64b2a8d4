"""Coupons, promotion codes, customers' and subscriptions' discounts, the amounts they take off
invoices, and legacy plans, through the official SDK."""

from __future__ import annotations

from typing import Any

import pytest
import stripe

from tests.emulator.test_invoices_drafts import _shape, _types

DAY = 86_400


def _price(client: stripe.StripeClient, amount: int = 2000) -> stripe.Price:
    return client.v1.prices.create(
        {
            "currency": "usd",
            "unit_amount": amount,
            "recurring": {"interval": "month"},
            "product_data": {"name": "Pro"},
        }
    )


class TestCoupons:
    def test_create_update_delete_with_their_events(self, client: stripe.StripeClient) -> None:
        coupon = client.v1.coupons.create({"percent_off": 20})
        assert (coupon.percent_off, coupon.duration, coupon.valid) == (20, "once", True)
        assert _shape("coupon", coupon, stripe.Coupon) == []
        updated = client.v1.coupons.update(coupon.id, {"metadata": {"foo": "bar"}})
        assert updated.metadata.to_dict() == {"foo": "bar"}
        assert client.v1.coupons.delete(coupon.id).deleted is True
        assert _types(client) == ["coupon.created", "coupon.updated", "coupon.deleted"]

    def test_an_amount_off_coupon_needs_a_currency(self, client: stripe.StripeClient) -> None:
        with pytest.raises(stripe.InvalidRequestError) as caught:
            client.v1.coupons.create({"amount_off": 500})
        assert caught.value.error is not None and caught.value.error.param == "currency"

    def test_a_repeating_coupon_needs_its_months(self, client: stripe.StripeClient) -> None:
        with pytest.raises(stripe.InvalidRequestError) as caught:
            client.v1.coupons.create({"percent_off": 10, "duration": "repeating"})
        assert caught.value.error is not None
        assert caught.value.error.param == "duration_in_months"

    def test_a_coupon_needs_an_amount_or_a_percentage(self, client: stripe.StripeClient) -> None:
        with pytest.raises(stripe.InvalidRequestError):
            client.v1.coupons.create({"duration": "forever"})


class TestPromotionCodes:
    def test_create_and_update(self, client: stripe.StripeClient) -> None:
        coupon = client.v1.coupons.create({"percent_off": 20})
        code = client.v1.promotion_codes.create(
            {"promotion": {"type": "coupon", "coupon": coupon.id}, "code": "FALL20"}
        )
        assert code.code == "FALL20" and code.active is True
        assert code.promotion.coupon == coupon.id
        assert _shape("promotion_code", code, stripe.PromotionCode) == []
        inactive = client.v1.promotion_codes.update(code.id, {"active": False})
        assert inactive.active is False
        assert _types(client)[-2:] == ["promotion_code.created", "promotion_code.updated"]

    def test_an_unknown_coupon_is_missing(self, client: stripe.StripeClient) -> None:
        with pytest.raises(stripe.InvalidRequestError) as caught:
            client.v1.promotion_codes.create({"promotion": {"type": "coupon", "coupon": "NOPE"}})
        assert caught.value.http_status == 404


class TestCustomerDiscount:
    def test_set_change_and_clear_emit_the_discount_events(
        self, client: stripe.StripeClient, raw: Any
    ) -> None:
        first = client.v1.coupons.create({"percent_off": 20})
        second = client.v1.coupons.create({"percent_off": 30})
        response = raw.post("/v1/customers", data={"coupon": first.id})
        customer = response.json()
        assert customer["discount"]["source"] == {"coupon": first.id, "type": "coupon"}
        raw.post(f"/v1/customers/{customer['id']}", data={"coupon": second.id})
        raw.post(f"/v1/customers/{customer['id']}", data={"coupon": ""})
        assert client.v1.customers.retrieve(customer["id"]).discount is None
        types = [t for t in _types(client) if t.startswith("customer.discount")]
        assert types == [
            "customer.discount.created",
            "customer.discount.updated",
            "customer.discount.deleted",
        ]
        updated = client.v1.events.list({"type": "customer.discount.updated"}).data[0]
        assert updated.data.previous_attributes is not None
        assert updated.data.previous_attributes["source"]["coupon"] == first.id

    def test_a_customer_discount_takes_its_share_off_a_one_off_invoice(
        self, client: stripe.StripeClient, raw: Any
    ) -> None:
        coupon = client.v1.coupons.create({"percent_off": 25, "duration": "forever"})
        customer = raw.post("/v1/customers", data={"coupon": coupon.id}).json()
        client.v1.invoice_items.create(
            {"customer": customer["id"], "amount": 2000, "currency": "usd"}
        )
        invoice = client.v1.invoices.create(
            {"customer": customer["id"], "pending_invoice_items_behavior": "include"}
        )
        assert (invoice.subtotal, invoice.total, invoice.amount_due) == (2000, 1500, 1500)
        assert invoice.total_discount_amounts is not None
        assert invoice.total_discount_amounts[0].amount == 500


class TestSubscriptionDiscounts:
    def test_a_percent_off_coupon_discounts_the_first_invoice(
        self, client: stripe.StripeClient
    ) -> None:
        customer = client.v1.customers.create({})
        coupon = client.v1.coupons.create({"percent_off": 20, "duration": "forever"})
        subscription = client.v1.subscriptions.create(
            {
                "customer": customer.id,
                "items": [{"price": _price(client).id}],
                "discounts": [{"coupon": coupon.id}],
            }
        )
        assert len(subscription.discounts) == 1
        invoice = client.v1.invoices.retrieve(str(subscription.latest_invoice))
        assert (invoice.subtotal, invoice.total, invoice.amount_paid) == (2000, 1600, 1600)
        assert invoice.discounts == subscription.discounts
        assert invoice.lines.data[0].discount_amounts[0].amount == 400
        assert client.v1.coupons.retrieve(coupon.id).times_redeemed == 1

    def test_an_amount_off_promotion_code_discounts_the_invoice(
        self, client: stripe.StripeClient
    ) -> None:
        customer = client.v1.customers.create({})
        coupon = client.v1.coupons.create(
            {"amount_off": 500, "currency": "usd", "duration": "forever"}
        )
        code = client.v1.promotion_codes.create(
            {"promotion": {"type": "coupon", "coupon": coupon.id}}
        )
        subscription = client.v1.subscriptions.create(
            {
                "customer": customer.id,
                "items": [{"price": _price(client).id}],
                "discounts": [{"promotion_code": code.id}],
            }
        )
        invoice = client.v1.invoices.retrieve(str(subscription.latest_invoice))
        assert invoice.amount_paid == 1500
        assert client.v1.promotion_codes.retrieve(code.id).times_redeemed == 1

    def test_a_once_coupon_stops_at_the_renewal_and_forever_keeps_going(
        self, client: stripe.StripeClient
    ) -> None:
        start = 1_700_000_000
        clock = client.v1.test_helpers.test_clocks.create({"frozen_time": start})
        price = _price(client)
        totals = {}
        for duration in ("once", "forever"):
            customer = client.v1.customers.create({"test_clock": clock.id})
            coupon = client.v1.coupons.create({"percent_off": 50, "duration": duration})
            subscription = client.v1.subscriptions.create(
                {
                    "customer": customer.id,
                    "items": [{"price": price.id}],
                    "discounts": [{"coupon": coupon.id}],
                }
            )
            totals[duration] = subscription.id
        client.v1.test_helpers.test_clocks.advance(clock.id, {"frozen_time": start + 32 * DAY})
        for duration, expected in (("once", 2000), ("forever", 1000)):
            subscription = client.v1.subscriptions.retrieve(totals[duration])
            renewal = client.v1.invoices.retrieve(str(subscription.latest_invoice))
            assert renewal.billing_reason == "subscription_cycle"
            assert renewal.total == expected, duration
        assert client.v1.subscriptions.retrieve(totals["once"]).discounts == []

    def test_updating_with_a_coupon_then_clearing_it(self, client: stripe.StripeClient) -> None:
        customer = client.v1.customers.create({})
        coupon = client.v1.coupons.create({"percent_off": 10})
        subscription = client.v1.subscriptions.create(
            {"customer": customer.id, "items": [{"price": _price(client).id}]}
        )
        updated = client.v1.subscriptions.update(
            subscription.id, {"discounts": [{"coupon": coupon.id}]}
        )
        assert len(updated.discounts) == 1
        event = client.v1.events.list({"type": "customer.subscription.updated"}).data[0]
        assert event.data.previous_attributes is not None
        assert event.data.previous_attributes.to_dict() == {"discounts": []}
        cleared = client.v1.subscriptions.update(subscription.id, {"discounts": ""})  # type: ignore[typeddict-item]
        assert cleared.discounts == []
        assert "customer.discount.deleted" in _types(client)


class TestPlans:
    def test_create_update_delete_with_their_events(self, client: stripe.StripeClient) -> None:
        plan = client.v1.plans.create(
            {"currency": "usd", "interval": "month", "amount": 2000, "product": {"name": "Legacy"}}
        )
        assert (plan.object, plan.amount, plan.interval) == ("plan", 2000, "month")
        assert _shape("plan", plan, stripe.Plan) == []
        updated = client.v1.plans.update(plan.id, {"metadata": {"foo": "bar"}})
        assert updated.metadata.to_dict() == {"foo": "bar"}
        assert client.v1.plans.delete(plan.id).deleted is True
        assert [t for t in _types(client) if t.startswith("plan.")] == [
            "plan.created",
            "plan.updated",
            "plan.deleted",
        ]

    def test_a_plan_can_be_subscribed_to_as_a_price(self, client: stripe.StripeClient) -> None:
        plan = client.v1.plans.create(
            {"currency": "usd", "interval": "month", "amount": 1200, "product": {"name": "Old"}}
        )
        customer = client.v1.customers.create({})
        subscription = client.v1.subscriptions.create(
            {"customer": customer.id, "items": [{"price": plan.id}]}
        )
        assert subscription.items.data[0].plan.id == plan.id
        assert client.v1.invoices.retrieve(str(subscription.latest_invoice)).amount_paid == 1200

    def test_a_plan_needs_an_interval(self, client: stripe.StripeClient) -> None:
        with pytest.raises(stripe.InvalidRequestError) as caught:
            client.v1.plans.create({"currency": "usd", "amount": 100, "product": {"name": "x"}})  # type: ignore[typeddict-item]
        assert caught.value.error is not None and caught.value.error.param == "interval"
