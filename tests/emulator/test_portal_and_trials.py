"""Billing portal configurations and sessions' events; trials that end soon (trial_will_end at
once) and trials that end with no payment method (`trial_settings` pause and cancel)."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
import stripe

from tests.emulator.test_shapes import shape_problems

DAY = 86_400


def _events(client: stripe.StripeClient) -> list[Any]:
    """Every event of the account, oldest first."""
    return list(reversed(client.v1.events.list({"limit": 100}).data))


def _types(client: stripe.StripeClient) -> list[str]:
    return [event.type for event in _events(client)]


def _price(client: stripe.StripeClient) -> str:
    return client.v1.prices.create(
        {
            "product_data": {"name": "Pro"},
            "unit_amount": 1500,
            "currency": "usd",
            "recurring": {"interval": "month"},
        }
    ).id


class TestPortalConfigurations:
    def test_create_answers_stripes_shape_and_emits_created(
        self, client: stripe.StripeClient
    ) -> None:
        configuration = client.v1.billing_portal.configurations.create(
            {
                "business_profile": {
                    "headline": "Manage your plan",
                    "privacy_policy_url": "https://example.com/privacy",
                },
                "features": {
                    "subscription_cancel": {"enabled": True, "mode": "immediately"},
                    "invoice_history": {"enabled": True},
                },
            }
        )

        assert configuration.id.startswith("bpc_")
        assert configuration.active is True
        assert configuration.is_default is False
        assert configuration.business_profile.headline == "Manage your plan"
        assert configuration.business_profile.terms_of_service_url is None
        assert configuration.features.subscription_cancel.enabled is True
        assert configuration.features.subscription_cancel.mode == "immediately"
        assert configuration.features.invoice_history.enabled is True
        assert configuration.features.customer_update.enabled is False
        assert shape_problems("billing_portal.configuration", configuration.to_dict()) == []
        created = client.v1.events.list({"type": "billing_portal.configuration.created"}).data
        assert [event.data.object["id"] for event in created] == [configuration.id]

    def test_update_emits_updated_with_previous_attributes(
        self, client: stripe.StripeClient
    ) -> None:
        configuration = client.v1.billing_portal.configurations.create(
            {"features": {"invoice_history": {"enabled": True}}}
        )

        updated = client.v1.billing_portal.configurations.update(
            configuration.id, {"metadata": {"foo": "bar"}, "active": False}
        )

        assert updated.metadata.to_dict() == {"foo": "bar"}
        assert updated.active is False
        event = client.v1.events.list({"type": "billing_portal.configuration.updated"}).data[0]
        assert event.data.previous_attributes["metadata"].to_dict() == {"foo": None}
        assert event.data.previous_attributes["active"] is True
        listed = client.v1.billing_portal.configurations.list({"active": False}).data
        assert [c.id for c in listed] == [configuration.id]
        assert client.v1.billing_portal.configurations.list({"active": True}).data == []

    def test_features_are_required_and_an_unknown_id_is_missing(
        self, client: stripe.StripeClient
    ) -> None:
        with pytest.raises(stripe.InvalidRequestError) as missing:
            client.v1.billing_portal.configurations.create({"default_return_url": "https://x.io"})
        assert missing.value.code == "parameter_missing"
        assert missing.value.param == "features"
        with pytest.raises(stripe.InvalidRequestError) as bad:
            client.v1.billing_portal.configurations.create(
                {"features": {"subscription_cancel": {"enabled": True, "mode": "someday"}}}
            )
        assert bad.value.param == "features[subscription_cancel][mode]"
        with pytest.raises(stripe.InvalidRequestError) as unknown:
            client.v1.billing_portal.configurations.retrieve("bpc_nope")
        assert unknown.value.http_status == 404
        assert unknown.value.code == "resource_missing"

    def test_portal_session_emits_session_created(self, client: stripe.StripeClient) -> None:
        customer = client.v1.customers.create({"email": "portal@example.com"})

        session = client.v1.billing_portal.sessions.create(
            {"customer": customer.id, "return_url": "https://example.com/account"}
        )

        created = client.v1.events.list({"type": "billing_portal.session.created"}).data
        assert [event.data.object["id"] for event in created] == [session.id]
        assert created[0].data.object["customer"] == customer.id


class TestTrialWillEnd:
    def test_a_trial_under_three_days_warns_at_once(self, client: stripe.StripeClient) -> None:
        customer = client.v1.customers.create({"email": "trial@example.com"})

        subscription = client.v1.subscriptions.create(
            {"customer": customer.id, "items": [{"price": _price(client)}], "trial_period_days": 1}
        )

        assert subscription.status == "trialing"
        types = _types(client)
        assert types.index("customer.subscription.created") < types.index(
            "customer.subscription.trial_will_end"
        )
        assert types.count("customer.subscription.trial_will_end") == 1

    def test_a_long_trial_warns_only_three_days_ahead(self, client: stripe.StripeClient) -> None:
        clock = client.v1.test_helpers.test_clocks.create({"frozen_time": int(time.time())})
        customer = client.v1.customers.create({"test_clock": clock.id})
        client.v1.subscriptions.create(
            {"customer": customer.id, "items": [{"price": _price(client)}], "trial_period_days": 14}
        )
        assert "customer.subscription.trial_will_end" not in _types(client)

        client.v1.test_helpers.test_clocks.advance(
            clock.id, {"frozen_time": clock.frozen_time + 11 * DAY + 60}
        )

        assert _types(client).count("customer.subscription.trial_will_end") == 1

    def test_moving_the_trial_end_close_warns_at_once(self, client: stripe.StripeClient) -> None:
        customer = client.v1.customers.create({})
        subscription = client.v1.subscriptions.create(
            {"customer": customer.id, "items": [{"price": _price(client)}], "trial_period_days": 30}
        )

        client.v1.subscriptions.update(subscription.id, {"trial_end": int(time.time()) + DAY})

        assert _types(client).count("customer.subscription.trial_will_end") == 1

    def test_ending_the_trial_now_warns_then_charges(self, client: stripe.StripeClient) -> None:
        customer = client.v1.customers.create({})
        subscription = client.v1.subscriptions.create(
            {"customer": customer.id, "items": [{"price": _price(client)}], "trial_period_days": 30}
        )

        updated = client.v1.subscriptions.update(subscription.id, {"trial_end": "now"})

        assert updated.status == "active"
        types = _types(client)
        # the trial's $0 invoice was paid at creation; the first charge comes after the notice
        assert types.index("customer.subscription.trial_will_end") < types.index(
            "payment_intent.created"
        )


class TestTrialEndsWithoutPaymentMethod:
    def _trialing(self, client: stripe.StripeClient, behavior: str, **customer: Any) -> str:
        created = client.v1.customers.create(customer)  # type: ignore[arg-type]
        subscription = client.v1.subscriptions.create(
            {
                "customer": created.id,
                "items": [{"price": _price(client)}],
                "trial_period_days": 7,
                "trial_settings": {"end_behavior": {"missing_payment_method": behavior}},  # type: ignore[typeddict-item]
            }
        )
        assert subscription.trial_settings.end_behavior.missing_payment_method == behavior
        return subscription.id

    def test_pause_pauses_with_no_charge_and_resume_charges(
        self, client: stripe.StripeClient
    ) -> None:
        subscription_id = self._trialing(client, "pause")
        invoices_before = len(client.v1.invoices.list({"subscription": subscription_id}).data)

        paused = client.v1.subscriptions.update(subscription_id, {"trial_end": "now"})

        assert paused.status == "paused"
        assert len(client.v1.invoices.list({"subscription": subscription_id}).data) == (
            invoices_before
        )
        types = _types(client)
        assert "customer.subscription.paused" in types
        assert "payment_intent.created" not in types
        updated = client.v1.events.list({"type": "customer.subscription.updated"}).data[0]
        assert updated.data.previous_attributes["status"] == "trialing"

        resumed = client.v1.subscriptions.resume(subscription_id)

        assert resumed.status == "active"
        assert "customer.subscription.resumed" in _types(client)
        assert client.v1.invoices.retrieve(resumed.latest_invoice).status == "paid"  # type: ignore[arg-type]

    def test_cancel_cancels_when_the_trial_ends(self, client: stripe.StripeClient) -> None:
        subscription_id = self._trialing(client, "cancel")

        canceled = client.v1.subscriptions.update(subscription_id, {"trial_end": "now"})

        assert canceled.status == "canceled"
        assert "customer.subscription.deleted" in _types(client)

    def test_a_customer_with_a_payment_method_is_charged(self, client: stripe.StripeClient) -> None:
        subscription_id = self._trialing(
            client, "pause", invoice_settings={"default_payment_method": "pm_card_visa"}
        )

        active = client.v1.subscriptions.update(subscription_id, {"trial_end": "now"})

        assert active.status == "active"
        assert "customer.subscription.paused" not in _types(client)

    def test_an_unknown_behavior_is_refused(self, raw: httpx.Client) -> None:
        customer = raw.post("/v1/customers").json()["id"]
        price = raw.post(
            "/v1/prices",
            data={
                "product_data[name]": "Pro",
                "unit_amount": "100",
                "currency": "usd",
                "recurring[interval]": "month",
            },
        ).json()["id"]

        response = raw.post(
            "/v1/subscriptions",
            data={
                "customer": customer,
                "items[0][price]": price,
                "trial_settings[end_behavior][missing_payment_method]": "shrug",
            },
        )

        assert response.status_code == 400
        error = response.json()["error"]
        assert error["param"] == "trial_settings[end_behavior][missing_payment_method]"
        assert error["code"] == "parameter_invalid"
