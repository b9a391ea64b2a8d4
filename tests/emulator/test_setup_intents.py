"""Setup intents and payment methods: the pm_card_* test cards on setup, attach and detach, card
sources (customer.source.*), and payment_method_outcome for the payment flows."""

from __future__ import annotations

import pytest
import stripe

from tests.emulator.test_shapes import SDK_CLASSES, shape_problems

# the shape contract reads which fields may be null from the SDK's classes
SDK_CLASSES.setdefault("setup_intent", stripe.SetupIntent)
SDK_CLASSES.setdefault("payment_method", stripe.PaymentMethod)
SDK_CLASSES.setdefault("card", stripe.Card)


def _types(client: stripe.StripeClient) -> list[str]:
    return [event.type for event in reversed(client.v1.events.list({"limit": 100}).data)]


class TestSetupIntents:
    def test_create_without_confirming(self, client: stripe.StripeClient) -> None:
        intent = client.v1.setup_intents.create({"payment_method_types": ["card"]})

        assert (intent.status, intent.usage) == ("requires_payment_method", "off_session")
        assert intent.client_secret.startswith(f"{intent.id}_secret_")
        assert _types(client) == ["setup_intent.created"]
        assert shape_problems("setup_intent", intent.to_dict()) == []

    def test_visa_succeeds_and_is_attached_to_the_customer(
        self, client: stripe.StripeClient
    ) -> None:
        customer = client.v1.customers.create({})

        intent = client.v1.setup_intents.create(
            {"customer": customer.id, "payment_method": "pm_card_visa", "confirm": True}
        )

        assert intent.status == "succeeded"
        method = client.v1.payment_methods.retrieve(intent.payment_method)
        assert (method.customer, method.card.last4) == (customer.id, "4242")
        assert _types(client) == [
            "customer.created",
            "setup_intent.created",
            "payment_method.attached",
            "setup_intent.succeeded",
        ]

    def test_declined_card_fails_with_card_error(self, client: stripe.StripeClient) -> None:
        with pytest.raises(stripe.CardError) as declined:
            client.v1.setup_intents.create(
                {"payment_method": "pm_card_chargeDeclined", "confirm": True}
            )

        assert (declined.value.http_status, declined.value.code) == (402, "card_declined")
        assert declined.value.error.decline_code == "generic_decline"
        failed = declined.value.error.setup_intent
        assert failed.status == "requires_payment_method"
        assert failed.last_setup_error.code == "card_declined"
        assert _types(client) == ["setup_intent.created", "setup_intent.setup_failed"]

    def test_authentication_card_requires_action(self, client: stripe.StripeClient) -> None:
        intent = client.v1.setup_intents.create(
            {"payment_method": "pm_card_authenticationRequired", "confirm": True}
        )

        assert intent.status == "requires_action"
        assert intent.next_action.type == "use_stripe_sdk"
        assert _types(client) == ["setup_intent.created", "setup_intent.requires_action"]

    def test_customer_fail_card_sets_up_fine(self, client: stripe.StripeClient) -> None:
        intent = client.v1.setup_intents.create(
            {"payment_method": "pm_card_chargeCustomerFail", "confirm": True}
        )

        assert intent.status == "succeeded"

    def test_cancel_then_not_again(self, client: stripe.StripeClient) -> None:
        intent = client.v1.setup_intents.create({})

        canceled = client.v1.setup_intents.cancel(
            intent.id, {"cancellation_reason": "requested_by_customer"}
        )

        assert (canceled.status, canceled.cancellation_reason) == (
            "canceled",
            "requested_by_customer",
        )
        assert _types(client)[-1] == "setup_intent.canceled"
        with pytest.raises(stripe.InvalidRequestError) as again:
            client.v1.setup_intents.cancel(intent.id)
        assert again.value.code == "setup_intent_unexpected_state"

    def test_confirm_later_and_list_by_customer(self, client: stripe.StripeClient) -> None:
        customer = client.v1.customers.create({})
        intent = client.v1.setup_intents.create({"customer": customer.id})

        confirmed = client.v1.setup_intents.confirm(intent.id, {"payment_method": "pm_card_visa"})

        assert confirmed.status == "succeeded"
        listed = client.v1.setup_intents.list({"customer": customer.id})
        assert [found.id for found in listed.data] == [intent.id]


class TestPaymentMethods:
    def test_attach_a_test_card_makes_a_payment_method(self, client: stripe.StripeClient) -> None:
        customer = client.v1.customers.create({})

        method = client.v1.payment_methods.attach("pm_card_visa", {"customer": customer.id})

        assert method.id.startswith("pm_") and method.id != "pm_card_visa"
        assert (method.customer, method.type, method.card.brand) == (customer.id, "card", "visa")
        assert shape_problems("payment_method", method.to_dict()) == []
        listed = client.v1.customers.payment_methods.list(customer.id)
        assert [found.id for found in listed.data] == [method.id]

    def test_attach_a_declining_card_is_refused(self, client: stripe.StripeClient) -> None:
        customer = client.v1.customers.create({})

        with pytest.raises(stripe.CardError) as declined:
            client.v1.payment_methods.attach("pm_card_chargeDeclined", {"customer": customer.id})

        assert declined.value.code == "card_declined"
        assert "payment_method.attached" not in _types(client)

    def test_detach_emits_the_old_customer(self, client: stripe.StripeClient) -> None:
        customer = client.v1.customers.create({})
        method = client.v1.payment_methods.attach("pm_card_visa", {"customer": customer.id})

        detached = client.v1.payment_methods.detach(method.id)

        assert detached.customer is None
        event = client.v1.events.list({"type": "payment_method.detached"}).data[0]
        assert event.data.previous_attributes["customer"] == customer.id
        with pytest.raises(stripe.InvalidRequestError):
            client.v1.payment_methods.detach(method.id)

    def test_attached_to_another_customer_is_refused(self, client: stripe.StripeClient) -> None:
        first = client.v1.customers.create({})
        second = client.v1.customers.create({})
        method = client.v1.payment_methods.attach("pm_card_visa", {"customer": first.id})

        with pytest.raises(stripe.InvalidRequestError) as refused:
            client.v1.payment_methods.attach(method.id, {"customer": second.id})

        assert refused.value.param == "payment_method"

    def test_update_an_attached_method(self, client: stripe.StripeClient) -> None:
        customer = client.v1.customers.create({})
        method = client.v1.payment_methods.attach("pm_card_visa", {"customer": customer.id})

        updated = client.v1.payment_methods.update(
            method.id, {"metadata": {"foo": "bar"}, "billing_details": {"name": "Ada"}}
        )

        assert (updated.metadata.to_dict(), updated.billing_details.name) == ({"foo": "bar"}, "Ada")
        event = client.v1.events.list({"type": "payment_method.updated"}).data[0]
        assert event.data.previous_attributes["metadata"].to_dict() == {"foo": None}

    def test_update_of_a_detached_method_is_refused(self, client: stripe.StripeClient) -> None:
        method = client.v1.payment_methods.create({"type": "card", "card": {"token": "tok_visa"}})

        with pytest.raises(stripe.InvalidRequestError):
            client.v1.payment_methods.update(method.id, {"metadata": {"foo": "bar"}})

    def test_sepa_debit_with_a_bad_iban_is_refused(self, client: stripe.StripeClient) -> None:
        with pytest.raises(stripe.InvalidRequestError) as refused:
            client.v1.payment_methods.create(
                {"type": "sepa_debit", "sepa_debit": {"iban": "AT611904300234573209"}}
            )

        assert (refused.value.code, refused.value.param) == (
            "invalid_bank_account_iban",
            "sepa_debit[iban]",
        )

    def test_unknown_payment_method_is_missing(self, client: stripe.StripeClient) -> None:
        with pytest.raises(stripe.InvalidRequestError) as missing:
            client.v1.payment_methods.retrieve("pm_nope")

        assert (missing.value.http_status, missing.value.code) == (404, "resource_missing")


class TestPaymentMethodOutcome:
    @pytest.mark.parametrize(
        ("test_id", "outcome"),
        [
            ("pm_card_visa", "succeeded"),
            ("pm_card_chargeDeclined", "declined"),
            ("pm_card_chargeCustomerFail", "declined"),
            ("pm_card_threeDSecure2Required", "requires_action"),
        ],
    )
    def test_outcome_of_test_ids_and_their_payment_methods(
        self, client: stripe.StripeClient, emulator_url: str, test_id: str, outcome: str
    ) -> None:
        from billwarden_emulator.resources.payment_methods import (
            card_payment_method,
            payment_method_outcome,
        )
        from billwarden_emulator.state import Account, Ctx, Store

        store = Store(
            faults_factory=lambda: None,  # type: ignore[arg-type,return-value]
            dispatcher=None,  # type: ignore[arg-type]
            make_target=lambda *args: None,
            api_version="2026-10-28.endive",
        )
        account = Account("sk_test_outcome", None)  # type: ignore[arg-type]
        ctx = Ctx(store, account, None, None, emulator_url)
        made = card_payment_method(ctx, test_id.removeprefix("pm_card_"))

        assert payment_method_outcome(ctx, test_id) == outcome
        assert payment_method_outcome(ctx, made["id"]) == outcome


class TestCardSources:
    def test_token_becomes_the_default_source(self, client: stripe.StripeClient) -> None:
        customer = client.v1.customers.create({})

        card = client.v1.customers.payment_sources.create(customer.id, {"source": "tok_visa"})

        assert (card.object, card.last4, card.customer) == ("card", "4242", customer.id)
        assert shape_problems("card", card.to_dict()) == []
        assert client.v1.customers.retrieve(customer.id).default_source == card.id
        assert _types(client)[-2:] == ["customer.source.created", "customer.updated"]

    def test_update_emits_previous_attributes(self, client: stripe.StripeClient) -> None:
        customer = client.v1.customers.create({})
        card = client.v1.customers.payment_sources.create(customer.id, {"source": "tok_visa"})

        client.v1.customers.payment_sources.update(
            customer.id, card.id, {"metadata": {"foo": "bar"}}
        )

        event = client.v1.events.list({"type": "customer.source.updated"}).data[0]
        assert event.data.object.metadata.to_dict() == {"foo": "bar"}
        assert event.data.previous_attributes["metadata"].to_dict() == {"foo": None}

    def test_declining_token_is_refused(self, client: stripe.StripeClient) -> None:
        customer = client.v1.customers.create({})

        with pytest.raises(stripe.CardError) as declined:
            client.v1.customers.payment_sources.create(
                customer.id, {"source": "tok_chargeDeclined"}
            )

        assert declined.value.code == "card_declined"

    def test_delete_clears_the_default(self, client: stripe.StripeClient) -> None:
        customer = client.v1.customers.create({})
        card = client.v1.customers.payment_sources.create(customer.id, {"source": "tok_visa"})

        client.v1.customers.payment_sources.delete(customer.id, card.id)

        assert client.v1.customers.retrieve(customer.id).default_source is None
        assert "customer.source.deleted" in _types(client)
