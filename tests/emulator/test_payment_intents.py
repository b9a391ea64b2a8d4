"""Payment intents through the API: the pm_card_* test cards decide the outcome, manual capture,
cancel, refunds of their charges, SEPA debits and customer cash balance payments."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import stripe

from tests.emulator.test_shapes import shape_problems


def _types(client: stripe.StripeClient) -> list[str]:
    return [event.type for event in reversed(client.v1.events.list({"limit": 100}).data)]


def _card_payment(client: stripe.StripeClient, payment_method: str, **extra: Any) -> Any:
    return client.v1.payment_intents.create(
        {
            "amount": 2000,
            "currency": "usd",
            "payment_method": payment_method,
            "payment_method_types": ["card"],
            "confirm": True,
            **extra,
        }
    )


class TestCreate:
    def test_without_payment_method_waits_for_one(self, client: stripe.StripeClient) -> None:
        intent = client.v1.payment_intents.create({"amount": 2000, "currency": "usd"})

        assert intent.status == "requires_payment_method"
        assert intent.client_secret.startswith(f"{intent.id}_secret_")
        assert _types(client) == ["payment_intent.created"]
        assert shape_problems("payment_intent", intent.to_dict()) == []

    def test_amount_and_currency_are_required(self, client: stripe.StripeClient) -> None:
        with pytest.raises(stripe.InvalidRequestError) as missing:
            client.v1.payment_intents.create({"currency": "usd"})

        assert missing.value.code == "parameter_missing"
        assert missing.value.param == "amount"

    def test_unknown_parameter_is_refused(self, client: stripe.StripeClient) -> None:
        with pytest.raises(stripe.InvalidRequestError) as unknown:
            client.v1.payment_intents.create(
                {"amount": 2000, "currency": "usd", "surprise": "1"}  # type: ignore[typeddict-unknown-key]
            )

        assert unknown.value.code == "parameter_unknown"


class TestConfirmWithTestCards:
    def test_visa_succeeds_with_a_new_payment_method(self, client: stripe.StripeClient) -> None:
        intent = _card_payment(client, "pm_card_visa")

        assert intent.status == "succeeded"
        assert intent.amount_received == 2000
        assert intent.payment_method.startswith("pm_") and intent.payment_method != "pm_card_visa"
        charge = client.v1.charges.retrieve(intent.latest_charge)
        assert (charge.status, charge.captured, charge.amount_captured) == ("succeeded", True, 2000)
        assert charge.payment_method_details.card.last4 == "4242"
        assert _types(client) == [
            "payment_intent.created",
            "charge.succeeded",
            "payment_intent.succeeded",
        ]
        assert shape_problems("charge", charge.to_dict()) == []

    @pytest.mark.parametrize(
        ("payment_method", "decline_code", "message"),
        [
            ("pm_card_chargeDeclined", "generic_decline", "Your card was declined."),
            ("pm_card_visa_chargeDeclined", "generic_decline", "Your card was declined."),
            (
                "pm_card_chargeDeclinedInsufficientFunds",
                "insufficient_funds",
                "Your card has insufficient funds.",
            ),
        ],
    )
    def test_declining_card_answers_402_card_error(
        self, client: stripe.StripeClient, payment_method: str, decline_code: str, message: str
    ) -> None:
        with pytest.raises(stripe.CardError) as declined:
            _card_payment(client, payment_method)

        error = declined.value
        assert error.http_status == 402
        assert (error.code, error.error.decline_code, error.user_message) == (
            "card_declined",
            decline_code,
            message,
        )
        intent = error.error.payment_intent
        assert intent.status == "requires_payment_method"
        assert intent.last_payment_error.decline_code == decline_code
        charge = client.v1.charges.retrieve(error.error.charge)
        assert (charge.status, charge.failure_code) == ("failed", "card_declined")
        assert _types(client) == [
            "payment_intent.created",
            "charge.failed",
            "payment_intent.payment_failed",
        ]

    @pytest.mark.parametrize(
        "payment_method", ["pm_card_authenticationRequired", "pm_card_threeDSecure2Required"]
    )
    def test_authentication_card_requires_action(
        self, client: stripe.StripeClient, payment_method: str
    ) -> None:
        intent = _card_payment(client, payment_method)

        assert intent.status == "requires_action"
        assert intent.next_action.type == "use_stripe_sdk"
        assert intent.latest_charge is None
        assert _types(client) == ["payment_intent.created", "payment_intent.requires_action"]

    def test_authentication_card_off_session_is_declined(self, client: stripe.StripeClient) -> None:
        with pytest.raises(stripe.CardError) as declined:
            _card_payment(client, "pm_card_authenticationRequired", off_session=True)

        assert declined.value.code == "authentication_required"

    def test_return_url_gives_a_redirect(self, client: stripe.StripeClient) -> None:
        intent = _card_payment(
            client, "pm_card_authenticationRequired", return_url="https://example.com/back"
        )

        assert intent.next_action.type == "redirect_to_url"
        assert intent.next_action.redirect_to_url.return_url == "https://example.com/back"

    def test_confirm_later_and_not_twice(self, client: stripe.StripeClient) -> None:
        intent = client.v1.payment_intents.create(
            {"amount": 500, "currency": "usd", "payment_method": "pm_card_visa"}
        )
        assert intent.status == "requires_confirmation"

        confirmed = client.v1.payment_intents.confirm(intent.id)
        assert confirmed.status == "succeeded"
        with pytest.raises(stripe.InvalidRequestError) as again:
            client.v1.payment_intents.confirm(intent.id)
        assert again.value.code == "payment_intent_unexpected_state"

    def test_setup_future_usage_attaches_the_card_to_the_customer(
        self, client: stripe.StripeClient
    ) -> None:
        customer = client.v1.customers.create({})
        intent = _card_payment(
            client, "pm_card_visa", customer=customer.id, setup_future_usage="off_session"
        )

        method = client.v1.payment_methods.retrieve(intent.payment_method)
        assert method.customer == customer.id
        assert "payment_method.attached" in _types(client)


class TestManualCapture:
    def test_authorize_then_capture(self, client: stripe.StripeClient) -> None:
        intent = _card_payment(client, "pm_card_visa", capture_method="manual")
        assert (intent.status, intent.amount_capturable, intent.amount_received) == (
            "requires_capture",
            2000,
            0,
        )
        charge = client.v1.charges.retrieve(intent.latest_charge)
        assert (charge.captured, charge.amount_captured) == (False, 0)

        captured = client.v1.payment_intents.capture(intent.id, {"amount_to_capture": 1500})

        assert (captured.status, captured.amount_received, captured.amount_capturable) == (
            "succeeded",
            1500,
            0,
        )
        charge = client.v1.charges.retrieve(intent.latest_charge)
        assert (charge.captured, charge.amount_captured) == (True, 1500)
        assert _types(client) == [
            "payment_intent.created",
            "charge.succeeded",
            "payment_intent.amount_capturable_updated",
            "charge.captured",
            "payment_intent.succeeded",
        ]

    def test_capture_more_than_authorized_is_refused(self, client: stripe.StripeClient) -> None:
        intent = _card_payment(client, "pm_card_visa", capture_method="manual")

        with pytest.raises(stripe.InvalidRequestError) as refused:
            client.v1.payment_intents.capture(intent.id, {"amount_to_capture": 2001})

        assert refused.value.param == "amount_to_capture"

    def test_capture_of_a_succeeded_payment_is_refused(self, client: stripe.StripeClient) -> None:
        intent = _card_payment(client, "pm_card_visa")

        with pytest.raises(stripe.InvalidRequestError) as refused:
            client.v1.payment_intents.capture(intent.id)

        assert refused.value.code == "payment_intent_unexpected_state"

    def test_cancel_releases_the_authorization(self, client: stripe.StripeClient) -> None:
        intent = _card_payment(client, "pm_card_visa", capture_method="manual")

        canceled = client.v1.payment_intents.cancel(intent.id)

        assert canceled.status == "canceled"
        charge = client.v1.charges.retrieve(intent.latest_charge)
        assert (charge.refunded, charge.amount_refunded) == (True, 2000)
        assert _types(client)[-2:] == ["charge.refunded", "payment_intent.canceled"]


class TestCancel:
    def test_cancel_with_a_reason(self, client: stripe.StripeClient) -> None:
        intent = client.v1.payment_intents.create({"amount": 2000, "currency": "usd"})

        canceled = client.v1.payment_intents.cancel(
            intent.id, {"cancellation_reason": "requested_by_customer"}
        )

        assert canceled.status == "canceled"
        assert canceled.cancellation_reason == "requested_by_customer"
        assert canceled.canceled_at is not None
        assert _types(client) == ["payment_intent.created", "payment_intent.canceled"]

    def test_a_succeeded_payment_cannot_be_canceled(self, client: stripe.StripeClient) -> None:
        intent = _card_payment(client, "pm_card_visa")

        with pytest.raises(stripe.InvalidRequestError) as refused:
            client.v1.payment_intents.cancel(intent.id)

        assert refused.value.code == "payment_intent_unexpected_state"

    def test_unknown_intent_is_missing(self, client: stripe.StripeClient) -> None:
        with pytest.raises(stripe.InvalidRequestError) as missing:
            client.v1.payment_intents.cancel("pi_nope")

        assert missing.value.http_status == 404
        assert missing.value.code == "resource_missing"


class TestRefundOfAPaymentIntent:
    def test_refund_by_payment_intent_emits_charge_refunded(
        self, client: stripe.StripeClient
    ) -> None:
        intent = _card_payment(client, "pm_card_visa")

        refund = client.v1.refunds.create({"payment_intent": intent.id})

        assert (refund.amount, refund.charge) == (2000, intent.latest_charge)
        charge = client.v1.charges.retrieve(intent.latest_charge)
        assert (charge.refunded, charge.amount_refunded) == (True, 2000)
        assert _types(client)[-2:] == ["charge.refunded", "refund.created"]


class TestUpdate:
    def test_update_amount_and_metadata_before_confirming(
        self, client: stripe.StripeClient
    ) -> None:
        intent = client.v1.payment_intents.create({"amount": 2000, "currency": "usd"})

        updated = client.v1.payment_intents.update(
            intent.id, {"amount": 2500, "metadata": {"order": "42"}}
        )

        assert (updated.amount, updated.metadata.to_dict()) == (2500, {"order": "42"})
        assert _types(client) == ["payment_intent.created"]  # Stripe has no .updated event


class TestSepaDebit:
    def _sepa(self, client: stripe.StripeClient, iban: str) -> Any:
        method = client.v1.payment_methods.create(
            {"type": "sepa_debit", "sepa_debit": {"iban": iban}}
        )
        return client.v1.payment_intents.create(
            {
                "amount": 1000,
                "currency": "eur",
                "payment_method": method.id,
                "payment_method_types": ["sepa_debit"],
                "confirm": True,
                "mandate_data": {
                    "customer_acceptance": {"type": "offline", "accepted_at": 1590590577}
                },
            }
        )

    def test_succeeding_iban_goes_processing_then_succeeds(
        self, client: stripe.StripeClient
    ) -> None:
        intent = self._sepa(client, "AT611904300234573201")

        assert intent.status == "succeeded"
        assert _types(client) == [
            "payment_intent.created",
            "payment_intent.processing",
            "charge.succeeded",
            "payment_intent.succeeded",
        ]

    def test_failing_iban_fails_after_processing(self, client: stripe.StripeClient) -> None:
        intent = self._sepa(client, "AT861904300235473202")

        assert intent.status == "requires_payment_method"
        assert _types(client)[-2:] == ["charge.failed", "payment_intent.payment_failed"]

    def test_slow_iban_stays_processing(self, client: stripe.StripeClient) -> None:
        intent = self._sepa(client, "AT321904300235473204")

        assert intent.status == "processing"
        assert _types(client) == ["payment_intent.created", "payment_intent.processing"]


class TestCustomerBalance:
    def test_funding_in_two_parts(self, client: stripe.StripeClient, raw: httpx.Client) -> None:
        customer = client.v1.customers.create({})
        intent = client.v1.payment_intents.create(
            {
                "amount": 20000,
                "currency": "jpy",
                "customer": customer.id,
                "payment_method_types": ["customer_balance"],
                "payment_method_data": {"type": "customer_balance"},
                "payment_method_options": {
                    "customer_balance": {
                        "funding_type": "bank_transfer",
                        "bank_transfer": {"type": "jp_bank_account"},
                    }
                },
                "confirm": True,
            }
        )
        assert intent.status == "requires_action"
        assert intent.next_action.display_bank_transfer_instructions.amount_remaining == 20000

        for _ in range(2):
            funded = raw.post(
                f"/v1/test_helpers/customers/{customer.id}/fund_cash_balance",
                data={"amount": "10000", "currency": "jpy"},
            )
            assert funded.status_code == 200, funded.text
            assert funded.json()["object"] == "customer_cash_balance_transaction"
            if _ == 0:
                partial = client.v1.payment_intents.retrieve(intent.id)
                instructions = partial.next_action.display_bank_transfer_instructions
                assert instructions.amount_remaining == 10000

        paid = client.v1.payment_intents.retrieve(intent.id)
        assert (paid.status, paid.amount_received) == ("succeeded", 20000)
        types = _types(client)
        assert types.index("payment_intent.partially_funded") < types.index(
            "payment_intent.succeeded"
        )
