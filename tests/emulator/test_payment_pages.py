"""The hosted checkout page's routes the Stripe CLI pays a checkout session through:
GET /v1/payment_pages/{session} and POST /v1/payment_pages/{session}/confirm."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import stripe


def _types(client: stripe.StripeClient) -> list[str]:
    return [event.type for event in reversed(client.v1.events.list({"limit": 100}).data)]


def _session(client: stripe.StripeClient, currency: str = "usd") -> Any:
    product = client.v1.products.create({"name": "Page"})
    price = client.v1.prices.create(
        {"product": product.id, "unit_amount": 1500, "currency": currency}
    )
    return client.v1.checkout.sessions.create(
        {
            "mode": "payment",
            "line_items": [{"price": price.id, "quantity": 2}],
            "success_url": "https://example.com/ok",
        }
    )


def _confirm(raw: httpx.Client, session_id: str, payment_method: str, **extra: str) -> Any:
    return raw.post(
        f"/v1/payment_pages/{session_id}/confirm",
        data={"payment_method": payment_method, "expected_amount": "3000", **extra},
    )


class TestPaymentPages:
    def test_page_shows_the_session(self, client: stripe.StripeClient, raw: httpx.Client) -> None:
        session = _session(client)

        page = raw.get(f"/v1/payment_pages/{session.id}")

        assert page.status_code == 200
        assert (page.json()["id"], page.json()["amount_total"]) == (session.id, 3000)

    def test_unknown_session_is_missing(self, raw: httpx.Client) -> None:
        page = raw.get("/v1/payment_pages/cs_test_nope")

        assert page.status_code == 404
        assert page.json()["error"]["code"] == "resource_missing"

    def test_card_pays_the_session(self, client: stripe.StripeClient, raw: httpx.Client) -> None:
        session = _session(client)
        method = client.v1.payment_methods.create(
            {
                "type": "card",
                "card": {"token": "tok_visa"},
                "billing_details": {"email": "jenny@example.com"},
            }
        )

        confirmed = _confirm(raw, session.id, method.id)

        assert confirmed.status_code == 200, confirmed.text
        paid = client.v1.checkout.sessions.retrieve(session.id)
        assert (paid.status, paid.payment_status) == ("complete", "paid")
        assert paid.customer_details.email == "jenny@example.com"
        intent = client.v1.payment_intents.retrieve(paid.payment_intent)
        assert (intent.status, intent.amount_received) == ("succeeded", 3000)
        assert _types(client)[-1] == "checkout.session.completed"

    def test_declined_card_leaves_the_session_open(
        self, client: stripe.StripeClient, raw: httpx.Client
    ) -> None:
        session = _session(client)

        declined = _confirm(raw, session.id, "pm_card_chargeDeclined")

        assert declined.status_code == 402
        assert declined.json()["error"]["type"] == "card_error"
        assert client.v1.checkout.sessions.retrieve(session.id).status == "open"

    def test_wrong_expected_amount_is_refused(
        self, client: stripe.StripeClient, raw: httpx.Client
    ) -> None:
        session = _session(client)

        refused = _confirm(raw, session.id, "pm_card_visa", expected_amount="2999")

        assert refused.status_code == 400
        assert refused.json()["error"]["param"] == "expected_amount"

    @pytest.mark.parametrize(
        ("iban", "event_type", "payment_status"),
        [
            ("AT611904300234573201", "checkout.session.async_payment_succeeded", "paid"),
            ("IT60X0542811101000000123456", "checkout.session.async_payment_failed", "unpaid"),
        ],
    )
    def test_sepa_debit_completes_unpaid_then_settles(
        self,
        client: stripe.StripeClient,
        raw: httpx.Client,
        iban: str,
        event_type: str,
        payment_status: str,
    ) -> None:
        session = _session(client, currency="eur")
        method = client.v1.payment_methods.create(
            {"type": "sepa_debit", "sepa_debit": {"iban": iban}}
        )

        confirmed = _confirm(raw, session.id, method.id)

        assert confirmed.status_code == 200, confirmed.text
        types = _types(client)
        assert types.index("checkout.session.completed") < types.index(event_type)
        settled = client.v1.checkout.sessions.retrieve(session.id)
        assert (settled.status, settled.payment_status) == ("complete", payment_status)
