"""Payments as billwarden mirrors them: one-time checkouts and the payment intents and charges they
make, refunds (whole, partial, refused), and the invoice lifecycle (paid, failed, voided, marked
uncollectible), each with the events Stripe emits and Stripe's shapes."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
import stripe

from tests.emulator.receiver import WebhookReceiver
from tests.emulator.test_shapes import shape_problems

DAY = 86_400
BW_METADATA = {"bw_project": "7", "bw_mode": "test", "bw_subject_id": "user-42"}


def _ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    return error


def _latest_event_id(raw: httpx.Client) -> str | None:
    events = _ok(raw.get("/v1/events", params={"limit": 1}))["data"]
    return events[0]["id"] if events else None


def _events_since(raw: httpx.Client, mark: str | None) -> list[dict[str, Any]]:
    """Events emitted after `mark`, oldest first."""
    params: dict[str, Any] = {"limit": 100}
    if mark is not None:
        params["ending_before"] = mark
    return list(reversed(_ok(raw.get("/v1/events", params=params))["data"]))


def _types_since(raw: httpx.Client, mark: str | None) -> list[str]:
    return [event["type"] for event in _events_since(raw, mark)]


def _one_time_price(raw: httpx.Client, amount: int = 2000) -> str:
    price = _ok(
        raw.post(
            "/v1/prices",
            data={
                "product_data[name]": "Lifetime",
                "unit_amount": str(amount),
                "currency": "usd",
            },
        )
    )
    return str(price["id"])


def _payment_session(raw: httpx.Client, customer: str, amount: int = 2000) -> dict[str, Any]:
    """A `payment` checkout session as billwarden creates one: its customer and `bw_*` metadata
    on the session and in `payment_intent_data`."""
    data = {
        "mode": "payment",
        "customer": customer,
        "line_items[0][price]": _one_time_price(raw, amount),
        "line_items[0][quantity]": "1",
        "success_url": "https://example.com/ok",
        "cancel_url": "https://example.com/cancel",
    }
    for key, value in BW_METADATA.items():
        data[f"metadata[{key}]"] = value
        data[f"payment_intent_data[metadata][{key}]"] = value
    return _ok(raw.post("/v1/checkout/sessions", data=data))


def _customer(raw: httpx.Client, **data: str) -> str:
    return str(_ok(raw.post("/v1/customers", data={"email": "pay@example.com", **data}))["id"])


def _paid_charge(raw: httpx.Client, amount: int = 2000) -> dict[str, Any]:
    """The succeeded charge of a completed one-time checkout."""
    session = _payment_session(raw, _customer(raw), amount)
    completed = _ok(raw.post(f"/_emulator/checkout/sessions/{session['id']}/complete"))
    intent = _ok(raw.get(f"/v1/payment_intents/{completed['payment_intent']}"))
    return _ok(raw.get(f"/v1/charges/{intent['latest_charge']}"))


def _monthly_price(raw: httpx.Client) -> str:
    price = _ok(
        raw.post(
            "/v1/prices",
            data={
                "product_data[name]": "Pro",
                "unit_amount": "1500",
                "currency": "usd",
                "recurring[interval]": "month",
            },
        )
    )
    return str(price["id"])


def _subscription(raw: httpx.Client, *, card: str | None = None) -> dict[str, Any]:
    """A monthly subscription of a customer on a test clock; `card` declines its payments."""
    clock = _ok(raw.post("/v1/test_helpers/test_clocks", data={"frozen_time": int(time.time())}))
    data = {"test_clock": clock["id"]}
    if card is not None:
        data["metadata[emulator_card]"] = card
    customer = _customer(raw, **data)
    return _ok(
        raw.post(
            "/v1/subscriptions",
            data={"customer": customer, "items[0][price]": _monthly_price(raw)},
        )
    )


class TestOneTimeCheckout:
    def test_completed_payment_checkout_yields_a_linked_intent_and_charge_with_its_metadata(
        self, client: stripe.StripeClient, raw: httpx.Client
    ) -> None:
        customer = _customer(raw)
        session = _payment_session(raw, customer)
        assert session["payment_intent"] is None
        mark = _latest_event_id(raw)
        completed = _ok(raw.post(f"/_emulator/checkout/sessions/{session['id']}/complete"))
        assert completed["payment_status"] == "paid" and completed["customer"] == customer

        intent = client.v1.payment_intents.retrieve(str(completed["payment_intent"]))
        assert intent.status == "succeeded"
        assert intent.amount == intent.amount_received == 2000
        assert intent.customer == customer
        assert intent.metadata is not None and intent.metadata.to_dict() == BW_METADATA
        charge = client.v1.charges.retrieve(str(intent.latest_charge))
        assert charge.status == "succeeded" and charge.paid and charge.captured
        assert charge.customer == customer and charge.payment_intent == intent.id
        assert charge.metadata.to_dict() == BW_METADATA
        assert charge.amount_refunded == 0 and charge.refunded is False

        events = _events_since(raw, mark)
        assert [event["type"] for event in events] == [
            "payment_intent.created",
            "charge.succeeded",
            "payment_intent.succeeded",
            "checkout.session.completed",
        ]
        succeeded = events[2]["data"]["object"]
        assert succeeded["id"] == intent.id and succeeded["metadata"] == BW_METADATA
        assert events[1]["data"]["object"]["metadata"] == BW_METADATA
        assert events[3]["data"]["object"]["payment_intent"] == intent.id

    def test_the_intent_and_charge_have_stripes_shapes(self, raw: httpx.Client) -> None:
        charge = _paid_charge(raw)
        intent = _ok(raw.get(f"/v1/payment_intents/{charge['payment_intent']}"))
        assert shape_problems("payment_intent", intent) == []
        assert shape_problems("charge", charge) == []

    def test_payment_intent_data_is_refused_outside_payment_mode(self, raw: httpx.Client) -> None:
        response = raw.post(
            "/v1/checkout/sessions",
            data={
                "mode": "subscription",
                "line_items[0][price]": _monthly_price(raw),
                "success_url": "https://example.com/ok",
                "payment_intent_data[metadata][bw_project]": "7",
            },
        )
        error = _error(response, 400)
        assert error["type"] == "invalid_request_error"
        assert error["param"] == "payment_intent_data"

    def test_unknown_payment_intent_data_field_is_refused(self, raw: httpx.Client) -> None:
        response = raw.post(
            "/v1/checkout/sessions",
            data={
                "mode": "payment",
                "line_items[0][price]": _one_time_price(raw),
                "success_url": "https://example.com/ok",
                "payment_intent_data[surprise]": "1",
            },
        )
        error = _error(response, 400)
        assert error["code"] == "parameter_unknown"
        assert error["param"] == "payment_intent_data[surprise]"

    def test_declined_checkout_fails_the_intent_and_leaves_the_session_open(
        self, raw: httpx.Client
    ) -> None:
        session = _payment_session(raw, _customer(raw))
        mark = _latest_event_id(raw)
        response = raw.post(
            f"/_emulator/checkout/sessions/{session['id']}/complete",
            data={"outcome": "card_declined"},
        )
        error = _error(response, 402)
        assert (error["type"], error["code"]) == ("card_error", "card_declined")
        events = _events_since(raw, mark)
        assert [event["type"] for event in events] == [
            "payment_intent.created",
            "charge.failed",
            "payment_intent.payment_failed",
        ]
        failed = events[2]["data"]["object"]
        assert failed["status"] == "requires_payment_method"
        assert failed["metadata"] == BW_METADATA
        assert failed["last_payment_error"]["code"] == "card_declined"
        assert error["charge"] == failed["latest_charge"]
        assert _ok(raw.get(f"/v1/checkout/sessions/{session['id']}"))["status"] == "open"

    @pytest.mark.parametrize(
        ("outcome", "after"),
        [
            (
                "succeeded",
                [
                    "charge.succeeded",
                    "payment_intent.succeeded",
                    "checkout.session.async_payment_succeeded",
                ],
            ),
            (
                "failed",
                [
                    "charge.failed",
                    "payment_intent.payment_failed",
                    "checkout.session.async_payment_failed",
                ],
            ),
        ],
    )
    def test_a_delayed_payment_settles_with_the_payment_intent_events(
        self, raw: httpx.Client, outcome: str, after: list[str]
    ) -> None:
        session = _payment_session(raw, _customer(raw))
        mark = _latest_event_id(raw)
        raw.post(
            f"/_emulator/checkout/sessions/{session['id']}/complete",
            data={"outcome": "async_pending"},
        )
        assert _types_since(raw, mark) == [
            "payment_intent.created",
            "payment_intent.processing",
            "checkout.session.completed",
        ]
        mark = _latest_event_id(raw)
        _ok(
            raw.post(
                f"/_emulator/checkout/sessions/{session['id']}/async_payment",
                data={"outcome": outcome},
            )
        )
        assert _types_since(raw, mark) == after
        intent_id = _ok(raw.get(f"/v1/checkout/sessions/{session['id']}"))["payment_intent"]
        intent = _ok(raw.get(f"/v1/payment_intents/{intent_id}"))
        assert intent["metadata"] == BW_METADATA
        assert intent["status"] == (
            "succeeded" if outcome == "succeeded" else "requires_payment_method"
        )


class TestRefunds:
    def test_partial_then_full_refund_updates_the_charge_and_emits_events(
        self, client: stripe.StripeClient, raw: httpx.Client
    ) -> None:
        charge = _paid_charge(raw)
        mark = _latest_event_id(raw)
        first = client.v1.refunds.create(
            {
                "charge": charge["id"],
                "amount": 500,
                "reason": "requested_by_customer",
                "metadata": {"bw_refund": "r1"},
            }
        )
        assert first.object == "refund" and first.status == "succeeded"
        assert (first.amount, first.currency, first.charge) == (500, "usd", charge["id"])
        assert first.payment_intent == charge["payment_intent"]
        assert first.reason == "requested_by_customer"
        assert first.metadata is not None and first.metadata.to_dict() == {"bw_refund": "r1"}
        partly = client.v1.charges.retrieve(charge["id"])
        assert partly.amount_refunded == 500 and partly.refunded is False
        assert partly.refunds is not None and [r.id for r in partly.refunds.data] == [first.id]

        # the rest, named by the payment intent, with no amount
        second = client.v1.refunds.create({"payment_intent": charge["payment_intent"]})
        assert second.amount == 1500 and second.charge == charge["id"]
        whole = client.v1.charges.retrieve(charge["id"])
        assert whole.amount_refunded == 2000 and whole.refunded is True
        assert whole.refunds is not None
        assert [r.id for r in whole.refunds.data] == [second.id, first.id]
        # the payment intent keeps what it received, as on Stripe
        intent = client.v1.payment_intents.retrieve(charge["payment_intent"])
        assert intent.status == "succeeded" and intent.amount_received == 2000

        events = _events_since(raw, mark)
        assert [event["type"] for event in events] == [
            "charge.refunded",
            "refund.created",
            "charge.refunded",
            "refund.created",
        ]
        partial, full = events[0]["data"], events[2]["data"]
        assert partial["object"]["id"] == charge["id"]
        assert partial["object"]["amount_refunded"] == 500
        assert partial["object"]["refunded"] is False
        assert partial["previous_attributes"]["amount_refunded"] == 0
        assert partial["previous_attributes"]["refunds"]["data"] == []
        assert "refunded" not in partial["previous_attributes"]
        assert full["object"]["refunded"] is True
        assert full["previous_attributes"]["amount_refunded"] == 500
        assert full["previous_attributes"]["refunded"] is False
        assert events[1]["data"]["object"]["id"] == first.id
        assert events[3]["data"]["object"]["amount"] == 1500

    def test_refund_events_are_delivered_to_webhook_endpoints(
        self, client: stripe.StripeClient, raw: httpx.Client
    ) -> None:
        charge = _paid_charge(raw)
        with WebhookReceiver() as receiver:
            client.v1.webhook_endpoints.create(
                {"url": receiver.url, "enabled_events": ["charge.refunded", "refund.created"]}
            )
            refund = client.v1.refunds.create({"charge": charge["id"]})
            receiver.wait_for(2, timeout=5)
            deadline = time.monotonic() + 5
            while len(log := _ok(raw.get("/_emulator/deliveries"))["data"]) < 2:
                assert time.monotonic() < deadline, log
                time.sleep(0.02)
        delivered = [(entry["event_type"], entry["success"]) for entry in log]
        assert delivered == [("charge.refunded", True), ("refund.created", True)]
        created = client.v1.events.list({"type": "refund.created"}).data[0]
        assert created.data.object["id"] == refund.id
        # delivered, so no longer pending (the count drops right after the log entry)
        deadline = time.monotonic() + 5
        while client.v1.events.retrieve(created.id).pending_webhooks != 0:
            assert time.monotonic() < deadline
            time.sleep(0.02)

    def test_refund_is_retrieved_listed_and_updated(
        self, client: stripe.StripeClient, raw: httpx.Client
    ) -> None:
        charge = _paid_charge(raw)
        other = _paid_charge(raw, 900)
        first = client.v1.refunds.create({"charge": charge["id"], "amount": 300})
        second = client.v1.refunds.create({"charge": charge["id"], "amount": 200})
        elsewhere = client.v1.refunds.create({"payment_intent": other["payment_intent"]})

        assert client.v1.refunds.retrieve(first.id).amount == 300
        everything = client.v1.refunds.list()
        assert [r.id for r in everything.data] == [elsewhere.id, second.id, first.id]
        by_charge = client.v1.refunds.list({"charge": charge["id"]})
        assert [r.id for r in by_charge.data] == [second.id, first.id]
        by_intent = client.v1.refunds.list({"payment_intent": other["payment_intent"]})
        assert [r.id for r in by_intent.data] == [elsewhere.id]
        page = client.v1.refunds.list({"charge": charge["id"], "limit": 1})
        assert page.has_more is True and [r.id for r in page.data] == [second.id]
        of_charge = _ok(raw.get(f"/v1/charges/{charge['id']}/refunds"))
        assert [r["id"] for r in of_charge["data"]] == [second.id, first.id]
        assert _ok(raw.get(f"/v1/charges/{charge['id']}/refunds/{first.id}"))["amount"] == 300
        assert (
            _ok(raw.get(f"/v1/refunds/{first.id}", params={"expand[]": "charge"}))["charge"][
                "amount_refunded"
            ]
            == 500
        )

        mark = _latest_event_id(raw)
        updated = client.v1.refunds.update(first.id, {"metadata": {"note": "goodwill"}})
        assert updated.metadata is not None and updated.metadata.to_dict() == {"note": "goodwill"}
        events = _events_since(raw, mark)
        assert [event["type"] for event in events] == ["refund.updated"]
        assert events[0]["data"]["previous_attributes"] == {"metadata": {"note": None}}
        listed = client.v1.charges.retrieve(charge["id"]).refunds
        assert listed is not None and listed.data[1].metadata.to_dict() == {"note": "goodwill"}

    def test_refund_and_charge_have_stripes_shapes(
        self, client: stripe.StripeClient, raw: httpx.Client
    ) -> None:
        charge = _paid_charge(raw)
        refund = _ok(raw.post("/v1/refunds", data={"charge": charge["id"], "amount": "100"}))
        assert shape_problems("refund", refund) == []
        assert shape_problems("refund", _ok(raw.get(f"/v1/refunds/{refund['id']}"))) == []
        assert shape_problems("charge", _ok(raw.get(f"/v1/charges/{charge['id']}"))) == []

    def test_an_idempotent_retry_refunds_once(self, raw: httpx.Client) -> None:
        charge = _paid_charge(raw)
        headers = {"Idempotency-Key": "refund-order-1"}
        data = {"charge": charge["id"], "amount": "700"}
        first = _ok(raw.post("/v1/refunds", data=data, headers=headers))
        again = raw.post("/v1/refunds", data=data, headers=headers)
        assert again.headers["Idempotent-Replayed"] == "true"
        assert _ok(again)["id"] == first["id"]
        assert _ok(raw.get(f"/v1/charges/{charge['id']}"))["amount_refunded"] == 700
        assert len(_ok(raw.get("/v1/refunds"))["data"]) == 1

    def test_a_fully_refunded_charge_refuses_another_refund(self, raw: httpx.Client) -> None:
        charge = _paid_charge(raw)
        _ok(raw.post("/v1/refunds", data={"charge": charge["id"]}))
        mark = _latest_event_id(raw)
        for data in ({"charge": charge["id"]}, {"payment_intent": charge["payment_intent"]}):
            error = _error(raw.post("/v1/refunds", data=data), 400)
            assert error["type"] == "invalid_request_error"
            assert error["code"] == "charge_already_refunded"
            assert error["message"] == f"Charge {charge['id']} has already been refunded."
        assert _types_since(raw, mark) == []

    def test_more_than_is_left_is_refused_with_stripes_message(
        self, client: stripe.StripeClient, raw: httpx.Client
    ) -> None:
        charge = _paid_charge(raw)
        error = _error(
            raw.post("/v1/refunds", data={"charge": charge["id"], "amount": "2001"}), 400
        )
        assert error["type"] == "invalid_request_error" and error["param"] == "amount"
        assert error["message"] == (
            "Refund amount ($20.01) is greater than unrefunded amount on charge ($20.00)"
        )
        _ok(raw.post("/v1/refunds", data={"charge": charge["id"], "amount": "1500"}))
        mark = _latest_event_id(raw)
        with pytest.raises(stripe.InvalidRequestError) as caught:
            client.v1.refunds.create({"charge": charge["id"], "amount": 600})
        assert caught.value.http_status == 400
        assert str(caught.value.user_message) == (
            "Refund amount ($6.00) is greater than unrefunded amount on charge ($5.00)"
        )
        assert _ok(raw.get(f"/v1/charges/{charge['id']}"))["amount_refunded"] == 1500
        assert _types_since(raw, mark) == []

    def test_a_failed_payment_has_nothing_to_refund(self, raw: httpx.Client) -> None:
        subscription = _subscription(raw, card="declined")
        invoice = _ok(raw.get(f"/v1/invoices/{subscription['latest_invoice']}"))
        payment = _ok(raw.get("/v1/invoice_payments", params={"invoice": invoice["id"]}))["data"][0]
        intent = _ok(raw.get(f"/v1/payment_intents/{payment['payment']['payment_intent']}"))
        message = (
            f"This PaymentIntent ({intent['id']}) does not have a successful charge to refund."
        )
        for data in ({"payment_intent": intent["id"]}, {"charge": intent["latest_charge"]}):
            error = _error(raw.post("/v1/refunds", data=data), 400)
            assert error["type"] == "invalid_request_error"
            assert error["message"] == message

    @pytest.mark.parametrize(
        ("data", "status", "code", "param"),
        [
            ({}, 400, None, None),
            ({"charge": "CHARGE", "payment_intent": "INTENT"}, 400, None, "payment_intent"),
            ({"charge": "ch_missing"}, 404, "resource_missing", "charge"),
            ({"payment_intent": "pi_missing"}, 404, "resource_missing", "payment_intent"),
            ({"charge": "CHARGE", "amount": "0"}, 400, "parameter_invalid", "amount"),
            ({"charge": "CHARGE", "amount": "ten"}, 400, "parameter_invalid", "amount"),
            ({"charge": "CHARGE", "reason": "changed_mind"}, 400, "parameter_invalid", "reason"),
            ({"charge": "CHARGE", "surprise": "1"}, 400, "parameter_unknown", "surprise"),
        ],
    )
    def test_malformed_requests_are_refused(
        self,
        raw: httpx.Client,
        data: dict[str, str],
        status: int,
        code: str | None,
        param: str | None,
    ) -> None:
        charge = _paid_charge(raw)
        names = {"CHARGE": charge["id"], "INTENT": charge["payment_intent"]}
        sent = {key: names.get(value, value) for key, value in data.items()}
        error = _error(raw.post("/v1/refunds", data=sent), status)
        assert (error["type"], error["code"], error["param"]) == (
            "invalid_request_error",
            code,
            param,
        )
        assert _ok(raw.get(f"/v1/charges/{charge['id']}"))["amount_refunded"] == 0

    def test_unknown_refunds_are_404(self, raw: httpx.Client) -> None:
        charge = _paid_charge(raw)
        error = _error(raw.get("/v1/refunds/re_missing"), 404)
        assert error["code"] == "resource_missing"
        assert error["message"] == "No such refund: 're_missing'"
        other = _paid_charge(raw)
        refund = _ok(raw.post("/v1/refunds", data={"charge": other["id"]}))
        wrong_charge = raw.get(f"/v1/charges/{charge['id']}/refunds/{refund['id']}")
        assert _error(wrong_charge, 404)["code"] == "resource_missing"

    def test_a_subscription_invoice_charge_can_be_refunded(self, raw: httpx.Client) -> None:
        subscription = _subscription(raw)
        invoice = _ok(raw.get(f"/v1/invoices/{subscription['latest_invoice']}"))
        payment = _ok(raw.get("/v1/invoice_payments", params={"invoice": invoice["id"]}))["data"][0]
        refund = _ok(
            raw.post("/v1/refunds", data={"payment_intent": payment["payment"]["payment_intent"]})
        )
        assert refund["amount"] == 1500
        assert _ok(raw.get(f"/v1/charges/{refund['charge']}"))["refunded"] is True
        # Stripe leaves the invoice paid: a refund is not a credit note
        assert _ok(raw.get(f"/v1/invoices/{invoice['id']}"))["status"] == "paid"

    def test_refund_amounts_in_other_currencies_use_their_units(self, raw: httpx.Client) -> None:
        price = _ok(
            raw.post(
                "/v1/prices",
                data={"product_data[name]": "Ticket", "unit_amount": "500", "currency": "jpy"},
            )
        )
        session = _ok(
            raw.post(
                "/v1/checkout/sessions",
                data={
                    "mode": "payment",
                    "customer": _customer(raw),
                    "line_items[0][price]": price["id"],
                    "success_url": "https://example.com/ok",
                },
            )
        )
        completed = _ok(raw.post(f"/_emulator/checkout/sessions/{session['id']}/complete"))
        refused = raw.post(
            "/v1/refunds", data={"payment_intent": completed["payment_intent"], "amount": "501"}
        )
        assert _error(refused, 400)["message"] == (
            "Refund amount (¥501) is greater than unrefunded amount on charge (¥500)"
        )


class TestInvoices:
    def test_a_paid_subscription_invoice_carries_what_billwarden_mirrors(
        self, raw: httpx.Client
    ) -> None:
        mark = _latest_event_id(raw)
        subscription = _subscription(raw)
        invoice = _ok(raw.get(f"/v1/invoices/{subscription['latest_invoice']}"))
        assert invoice["parent"]["subscription_details"]["subscription"] == subscription["id"]
        assert invoice["status"] == "paid" and invoice["currency"] == "usd"
        assert invoice["amount_due"] == invoice["amount_paid"] == 1500
        assert invoice["status_transitions"]["paid_at"] == invoice["created"]
        assert shape_problems("invoice", invoice) == []
        types = [
            t for t in _types_since(raw, mark) if t.startswith(("invoice.", "payment_", "charge."))
        ]
        assert types == [
            "invoice.created",
            "invoice.finalized",
            "payment_intent.created",
            "charge.succeeded",
            "payment_intent.succeeded",
            "invoice.paid",
            "invoice.payment_succeeded",
        ]

    def test_hosted_invoice_page_and_pdf_are_served(self, raw: httpx.Client) -> None:
        subscription = _subscription(raw)
        invoice = _ok(raw.get(f"/v1/invoices/{subscription['latest_invoice']}"))
        page = httpx.get(invoice["hosted_invoice_url"])
        assert page.status_code == 200 and invoice["number"] in page.text
        assert "Amount paid: $15.00" in page.text
        pdf = httpx.get(invoice["invoice_pdf"])
        assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
        assert pdf.content.startswith(b"%PDF-") and pdf.content.rstrip().endswith(b"%%EOF")
        payment = _ok(raw.get("/v1/invoice_payments", params={"invoice": invoice["id"]}))["data"][0]
        intent = _ok(raw.get(f"/v1/payment_intents/{payment['payment']['payment_intent']}"))
        receipt = _ok(raw.get(f"/v1/charges/{intent['latest_charge']}"))["receipt_url"]
        assert "$15.00" in httpx.get(receipt).text
        missing = invoice["hosted_invoice_url"].rsplit("/", 1)[0] + "/in_missing"
        assert httpx.get(missing).status_code == 404

    def test_a_declined_invoice_emits_payment_failed(self, raw: httpx.Client) -> None:
        mark = _latest_event_id(raw)
        subscription = _subscription(raw, card="insufficient_funds")
        assert subscription["status"] == "incomplete"
        invoice = _ok(raw.get(f"/v1/invoices/{subscription['latest_invoice']}"))
        assert invoice["status"] == "open" and invoice["amount_paid"] == 0
        assert invoice["attempt_count"] == 1
        types = [
            t for t in _types_since(raw, mark) if t.startswith(("invoice.", "payment_", "charge."))
        ]
        assert types == [
            "invoice.created",
            "invoice.finalized",
            "payment_intent.created",
            "charge.failed",
            "payment_intent.payment_failed",
            "invoice.payment_failed",
        ]

    def test_voiding_an_open_invoice_cancels_its_payment_intent(
        self, client: stripe.StripeClient, raw: httpx.Client
    ) -> None:
        subscription = _subscription(raw, card="declined")
        invoice_id = str(subscription["latest_invoice"])
        mark = _latest_event_id(raw)
        voided = client.v1.invoices.void_invoice(invoice_id)
        assert voided.status == "void" and voided.amount_remaining == 0
        assert voided.status_transitions.voided_at is not None
        events = _events_since(raw, mark)
        assert [event["type"] for event in events] == ["invoice.voided", "payment_intent.canceled"]
        intent = events[1]["data"]["object"]
        assert intent["status"] == "canceled"
        assert intent["cancellation_reason"] == "void_invoice"
        payment = client.v1.invoice_payments.list({"invoice": invoice_id}).data[0]
        assert payment.status == "canceled"

    def test_only_open_or_uncollectible_invoices_can_be_voided(
        self, client: stripe.StripeClient, raw: httpx.Client
    ) -> None:
        paid = _subscription(raw)["latest_invoice"]
        error = _error(raw.post(f"/v1/invoices/{paid}/void"), 400)
        assert error["type"] == "invalid_request_error"
        assert error["message"] == "You can only void open invoices."
        open_invoice = str(_subscription(raw, card="declined")["latest_invoice"])
        client.v1.invoices.mark_uncollectible(open_invoice)
        assert client.v1.invoices.void_invoice(open_invoice).status == "void"
        with pytest.raises(stripe.InvalidRequestError):
            client.v1.invoices.void_invoice(open_invoice)
        assert _error(raw.post("/v1/invoices/in_missing/void"), 404)["code"] == "resource_missing"

    def test_marking_uncollectible_then_paying_later(
        self, client: stripe.StripeClient, raw: httpx.Client
    ) -> None:
        subscription = _subscription(raw, card="declined")
        invoice_id = str(subscription["latest_invoice"])
        mark = _latest_event_id(raw)
        marked = client.v1.invoices.mark_uncollectible(invoice_id)
        assert marked.status == "uncollectible"
        assert marked.status_transitions.marked_uncollectible_at is not None
        events = _events_since(raw, mark)
        assert [event["type"] for event in events] == [
            "invoice.marked_uncollectible",
            "invoice.updated",
        ]
        assert events[1]["data"]["previous_attributes"]["status"] == "open"

        raw.post(
            f"/_emulator/customers/{subscription['customer']}/card", data={"outcome": "succeeds"}
        )
        mark = _latest_event_id(raw)
        paid = client.v1.invoices.pay(invoice_id)
        assert paid.status == "paid" and paid.amount_paid == 1500
        assert "invoice.paid" in _types_since(raw, mark)
        assert client.v1.subscriptions.retrieve(subscription["id"]).status == "active"

    def test_only_open_invoices_can_be_marked_uncollectible(self, raw: httpx.Client) -> None:
        paid = _subscription(raw)["latest_invoice"]
        error = _error(raw.post(f"/v1/invoices/{paid}/mark_uncollectible"), 400)
        assert error["type"] == "invalid_request_error"
        assert error["message"] == "You can only mark open invoices as uncollectible."
        voided = _subscription(raw, card="declined")["latest_invoice"]
        _ok(raw.post(f"/v1/invoices/{voided}/void"))
        assert _error(raw.post(f"/v1/invoices/{voided}/mark_uncollectible"), 400)["message"] == (
            "You can only mark open invoices as uncollectible."
        )
        missing = raw.post("/v1/invoices/in_missing/mark_uncollectible")
        assert _error(missing, 404)["code"] == "resource_missing"

    def test_paid_out_of_band_is_paid_without_a_payment_succeeding(
        self, client: stripe.StripeClient, raw: httpx.Client
    ) -> None:
        invoice_id = str(_subscription(raw, card="declined")["latest_invoice"])
        mark = _latest_event_id(raw)
        paid = client.v1.invoices.pay(invoice_id, {"paid_out_of_band": True})
        assert paid.status == "paid"
        types = _types_since(raw, mark)
        assert "invoice.paid" in types and "invoice.payment_succeeded" not in types
        assert not any(t.startswith(("charge.", "payment_intent.")) for t in types)

    def test_a_declined_renewal_retried_and_voided_stops_retrying(
        self, client: stripe.StripeClient, raw: httpx.Client
    ) -> None:
        subscription = _subscription(raw)
        customer = client.v1.customers.retrieve(str(subscription["customer"]))
        raw.post(f"/_emulator/customers/{customer.id}/card", data={"outcome": "declined"})
        clock = str(customer.test_clock)
        frozen = client.v1.test_helpers.test_clocks.retrieve(clock).frozen_time
        client.v1.test_helpers.test_clocks.advance(clock, {"frozen_time": frozen + 31 * DAY})
        renewal = client.v1.invoices.retrieve(
            str(client.v1.subscriptions.retrieve(subscription["id"]).latest_invoice)
        )
        assert renewal.status == "open" and renewal.next_payment_attempt is not None
        voided = client.v1.invoices.void_invoice(renewal.id)
        assert voided.next_payment_attempt is None
        client.v1.test_helpers.test_clocks.advance(clock, {"frozen_time": frozen + 40 * DAY})
        assert client.v1.invoices.retrieve(renewal.id).attempt_count == 1
