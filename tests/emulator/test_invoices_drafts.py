"""Invoice items, draft invoices (create, update, delete, finalize, send, pay with a payment
method) and credit notes, through the official SDK, with the events Stripe emits."""

from __future__ import annotations

import decimal
from typing import Any

import pytest
import stripe

from tests.emulator.test_shapes import shape_problems


def _shape(resource: str, obj: Any, sdk_class: type[Any]) -> list[str]:
    """The shape contract, a null allowed where the SDK declares the field Optional."""
    optional = {
        name
        for base in sdk_class.__mro__
        for name, hint in getattr(base, "__annotations__", {}).items()
        if "Optional" in repr(hint)
    }
    # the SDK turns decimal strings into Decimal; on the wire they are strings
    served = {
        key: str(value) if isinstance(value, decimal.Decimal) else value
        for key, value in obj.to_dict().items()
    }
    return [
        problem
        for problem in shape_problems(resource, served)
        if not (" is null but must be " in problem and problem.split(" ")[0] in optional)
    ]


def _types(client: stripe.StripeClient) -> list[str]:
    return [event.type for event in reversed(client.v1.events.list({"limit": 100}).data)]


@pytest.fixture
def customer(client: stripe.StripeClient) -> stripe.Customer:
    return client.v1.customers.create({"email": "drafts@example.com"})


def _item(client: stripe.StripeClient, customer: stripe.Customer, amount: int) -> Any:
    return client.v1.invoice_items.create(
        {"customer": customer.id, "amount": amount, "currency": "usd", "description": "Setup"}
    )


class TestInvoiceItems:
    def test_a_pending_item_lands_on_an_invoice_that_includes_pending_items(
        self, client: stripe.StripeClient, customer: stripe.Customer
    ) -> None:
        item = _item(client, customer, 2000)
        assert item.invoice is None
        assert _shape("invoiceitem", item, stripe.InvoiceItem) == []
        invoice = client.v1.invoices.create(
            {"customer": customer.id, "pending_invoice_items_behavior": "include"}
        )
        assert invoice.status == "draft"
        assert invoice.auto_advance is False
        assert (invoice.subtotal, invoice.total, invoice.amount_due) == (2000, 2000, 2000)
        line = invoice.lines.data[0]
        assert line.parent is not None and line.parent.invoice_item_details is not None
        assert line.parent.invoice_item_details.invoice_item == item.id
        assert client.v1.invoice_items.retrieve(item.id).invoice == invoice.id
        assert "invoiceitem.created" in _types(client)

    def test_an_invoice_excludes_pending_items_by_default(
        self, client: stripe.StripeClient, customer: stripe.Customer
    ) -> None:
        item = _item(client, customer, 500)
        invoice = client.v1.invoices.create({"customer": customer.id})
        assert invoice.lines.data == [] and invoice.amount_due == 0
        assert client.v1.invoice_items.retrieve(item.id).invoice is None

    def test_deleting_an_item_on_a_draft_reprices_it_and_one_on_an_open_invoice_is_refused(
        self, client: stripe.StripeClient, customer: stripe.Customer
    ) -> None:
        first, second = _item(client, customer, 700), _item(client, customer, 300)
        invoice = client.v1.invoices.create(
            {"customer": customer.id, "pending_invoice_items_behavior": "include"}
        )
        deleted = client.v1.invoice_items.delete(first.id)
        assert deleted.deleted is True
        assert client.v1.invoices.retrieve(invoice.id).amount_due == 300
        assert "invoiceitem.deleted" in _types(client)
        client.v1.invoices.finalize_invoice(invoice.id)
        with pytest.raises(stripe.InvalidRequestError):
            client.v1.invoice_items.delete(second.id)

    def test_a_pending_item_goes_on_the_next_subscription_invoice(
        self, client: stripe.StripeClient, customer: stripe.Customer
    ) -> None:
        _item(client, customer, 1500)
        price = client.v1.prices.create(
            {
                "currency": "usd",
                "unit_amount": 1000,
                "recurring": {"interval": "month"},
                "product_data": {"name": "Pro"},
            }
        )
        subscription = client.v1.subscriptions.create(
            {"customer": customer.id, "items": [{"price": price.id}]}
        )
        invoice = client.v1.invoices.retrieve(str(subscription.latest_invoice))
        assert invoice.amount_paid == 2500
        assert len(invoice.lines.data) == 2

    def test_an_item_needs_a_customer(self, client: stripe.StripeClient) -> None:
        with pytest.raises(stripe.InvalidRequestError) as caught:
            client.v1.invoice_items.create({"amount": 100, "currency": "usd"})  # type: ignore[typeddict-item]
        assert caught.value.error is not None and caught.value.error.param == "customer"


class TestDraftInvoices:
    def test_update_emits_invoice_updated_with_previous_attributes(
        self, client: stripe.StripeClient, customer: stripe.Customer
    ) -> None:
        invoice = client.v1.invoices.create({"customer": customer.id})
        updated = client.v1.invoices.update(invoice.id, {"metadata": {"foo": "bar"}})
        assert updated.metadata.to_dict() == {"foo": "bar"}
        event = client.v1.events.list({"type": "invoice.updated"}).data[0]
        assert event.data.previous_attributes is not None
        assert event.data.previous_attributes.to_dict() == {"metadata": {"foo": None}}

    def test_delete_a_draft_and_its_items_become_pending_again(
        self, client: stripe.StripeClient, customer: stripe.Customer
    ) -> None:
        item = _item(client, customer, 900)
        invoice = client.v1.invoices.create(
            {"customer": customer.id, "pending_invoice_items_behavior": "include"}
        )
        assert client.v1.invoices.delete(invoice.id).deleted is True
        assert client.v1.invoice_items.retrieve(item.id).invoice is None
        assert "invoice.deleted" in _types(client)
        with pytest.raises(stripe.InvalidRequestError) as caught:
            client.v1.invoices.retrieve(invoice.id)
        assert caught.value.http_status == 404

    def test_finalize_opens_it_once_and_a_finalized_invoice_cannot_be_deleted(
        self, client: stripe.StripeClient, customer: stripe.Customer
    ) -> None:
        _item(client, customer, 2000)
        invoice = client.v1.invoices.create(
            {"customer": customer.id, "pending_invoice_items_behavior": "include"}
        )
        opened = client.v1.invoices.finalize_invoice(invoice.id)
        assert opened.status == "open" and opened.number is not None
        assert opened.amount_remaining == 2000
        with pytest.raises(stripe.InvalidRequestError, match="already finalized"):
            client.v1.invoices.finalize_invoice(invoice.id)
        with pytest.raises(stripe.InvalidRequestError, match="only delete draft"):
            client.v1.invoices.delete(invoice.id)
        with pytest.raises(stripe.InvalidRequestError) as caught:
            client.v1.invoices.update(invoice.id, {"collection_method": "send_invoice"})
        assert caught.value.error is not None
        assert caught.value.error.param == "collection_method"

    def test_an_invoice_with_nothing_due_is_paid_when_finalized(
        self, client: stripe.StripeClient, customer: stripe.Customer
    ) -> None:
        invoice = client.v1.invoices.create({"customer": customer.id})
        assert client.v1.invoices.finalize_invoice(invoice.id).status == "paid"

    def test_send_finalizes_a_send_invoice_draft_and_emits_invoice_sent(
        self, client: stripe.StripeClient, customer: stripe.Customer
    ) -> None:
        _item(client, customer, 2000)
        invoice = client.v1.invoices.create(
            {
                "customer": customer.id,
                "pending_invoice_items_behavior": "include",
                "collection_method": "send_invoice",
                "days_until_due": 7,
            }
        )
        assert invoice.due_date == invoice.created + 7 * 86_400
        sent = client.v1.invoices.send_invoice(invoice.id)
        assert sent.status == "open"
        assert _types(client)[-2:] == ["invoice.finalized", "invoice.sent"]

    def test_send_refuses_a_charge_automatically_invoice(
        self, client: stripe.StripeClient, customer: stripe.Customer
    ) -> None:
        invoice = client.v1.invoices.create({"customer": customer.id})
        with pytest.raises(stripe.InvalidRequestError, match="send_invoice"):
            client.v1.invoices.send_invoice(invoice.id)

    def test_send_invoice_needs_a_due_date(
        self, client: stripe.StripeClient, customer: stripe.Customer
    ) -> None:
        with pytest.raises(stripe.InvalidRequestError) as caught:
            client.v1.invoices.create(
                {"customer": customer.id, "collection_method": "send_invoice"}
            )
        assert caught.value.error is not None
        assert caught.value.error.param == "days_until_due"


class TestPayWithPaymentMethod:
    def _open_invoice(self, client: stripe.StripeClient, customer: stripe.Customer) -> Any:
        _item(client, customer, 2000)
        invoice = client.v1.invoices.create(
            {"customer": customer.id, "pending_invoice_items_behavior": "include"}
        )
        return client.v1.invoices.finalize_invoice(invoice.id)

    def test_a_good_card_pays(self, client: stripe.StripeClient, customer: stripe.Customer) -> None:
        invoice = self._open_invoice(client, customer)
        paid = client.v1.invoices.pay(invoice.id, {"payment_method": "pm_card_visa"})
        assert (paid.status, paid.amount_paid, paid.amount_remaining) == ("paid", 2000, 0)
        assert {"invoice.paid", "invoice.payment_succeeded"} <= set(_types(client))

    def test_a_declining_card_answers_402_and_the_invoice_stays_open(
        self, client: stripe.StripeClient, customer: stripe.Customer
    ) -> None:
        invoice = self._open_invoice(client, customer)
        with pytest.raises(stripe.CardError) as caught:
            client.v1.invoices.pay(invoice.id, {"payment_method": "pm_card_chargeDeclined"})
        assert caught.value.http_status == 402
        assert client.v1.invoices.retrieve(invoice.id).status == "open"
        assert "invoice.payment_failed" in _types(client)

    def test_a_card_needing_3d_secure_asks_for_action(
        self, client: stripe.StripeClient, customer: stripe.Customer
    ) -> None:
        invoice = self._open_invoice(client, customer)
        with pytest.raises(stripe.CardError) as caught:
            client.v1.invoices.pay(invoice.id, {"payment_method": "pm_card_threeDSecure2Required"})
        assert caught.value.code == "invoice_payment_intent_requires_action"
        assert client.v1.invoices.retrieve(invoice.id).status == "open"
        assert "invoice.payment_action_required" in _types(client)


class TestCreditNotes:
    def _open_invoice(self, client: stripe.StripeClient, customer: stripe.Customer) -> Any:
        _item(client, customer, 2000)
        invoice = client.v1.invoices.create(
            {"customer": customer.id, "pending_invoice_items_behavior": "include"}
        )
        return client.v1.invoices.finalize_invoice(invoice.id)

    def test_a_credit_note_lowers_what_an_open_invoice_asks_and_voiding_restores_it(
        self, client: stripe.StripeClient, customer: stripe.Customer
    ) -> None:
        invoice = self._open_invoice(client, customer)
        note = client.v1.credit_notes.create(
            {
                "invoice": invoice.id,
                "lines": [
                    {
                        "type": "custom_line_item",
                        "unit_amount": 1000,
                        "quantity": 1,
                        "description": "Goodwill",
                    }
                ],
            }
        )
        assert (note.type, note.total, note.status) == ("pre_payment", 1000, "issued")
        assert note.number == f"{invoice.number}-CN-01"
        assert _shape("credit_note", note, stripe.CreditNote) == []
        after = client.v1.invoices.retrieve(invoice.id)
        assert (after.amount_due, after.pre_payment_credit_notes_amount) == (1000, 1000)
        updated = client.v1.credit_notes.update(note.id, {"metadata": {"foo": "bar"}})
        assert updated.metadata.to_dict() == {"foo": "bar"}
        voided = client.v1.credit_notes.void_credit_note(note.id)
        assert voided.status == "void" and voided.voided_at is not None
        assert client.v1.invoices.retrieve(invoice.id).amount_due == 2000
        assert {"credit_note.created", "credit_note.updated", "credit_note.voided"} <= set(
            _types(client)
        )

    def test_a_credit_note_on_a_paid_invoice_credits_the_customer_balance(
        self, client: stripe.StripeClient, customer: stripe.Customer
    ) -> None:
        invoice = self._open_invoice(client, customer)
        client.v1.invoices.pay(invoice.id, {"payment_method": "pm_card_visa"})
        note = client.v1.credit_notes.create({"invoice": invoice.id, "amount": 500})
        assert note.type == "post_payment"
        assert client.v1.customers.retrieve(customer.id).balance == -500

    def test_a_credit_note_cannot_exceed_the_amount_due(
        self, client: stripe.StripeClient, customer: stripe.Customer
    ) -> None:
        invoice = self._open_invoice(client, customer)
        with pytest.raises(stripe.InvalidRequestError, match="cannot exceed"):
            client.v1.credit_notes.create({"invoice": invoice.id, "amount": 2500})

    def test_a_draft_invoice_cannot_be_credited(
        self, client: stripe.StripeClient, customer: stripe.Customer
    ) -> None:
        invoice = client.v1.invoices.create({"customer": customer.id})
        with pytest.raises(stripe.InvalidRequestError) as caught:
            client.v1.credit_notes.create({"invoice": invoice.id, "amount": 100})
        assert caught.value.error is not None and caught.value.error.param == "invoice"
