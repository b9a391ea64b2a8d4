"""Invoices (retrieve, list, lines, pay, void, mark_uncollectible), invoice payments, payment
intents and charges."""

from __future__ import annotations

from billwarden_emulator.billing import lifecycle, payments
from billwarden_emulator.errors import card_declined, invalid_request
from billwarden_emulator.forms import Params
from billwarden_emulator.listing import newest_first, page, range_filter
from billwarden_emulator.resources import get, post
from billwarden_emulator.state import JSON, Ctx


def _subscription_of(invoice: JSON) -> str | None:
    parent = invoice["parent"] or {}
    return (parent.get("subscription_details") or {}).get("subscription")


@get("/v1/invoices/{id}")
def retrieve_invoice(ctx: Ctx, params: Params, id: str) -> JSON:
    params.finish()
    return ctx.account.get("invoices", id)


@get("/v1/invoices")
def list_invoices(ctx: Ctx, params: Params) -> JSON:
    customer = params.str("customer")
    subscription = params.str("subscription")
    status = params.str("status", choices=("draft", "open", "paid", "uncollectible", "void"))
    collection_method = params.str("collection_method")
    created = range_filter(params, "created")
    due_date = range_filter(params, "due_date")

    def keep(invoice: JSON) -> bool:
        return (
            (customer is None or invoice["customer"] == customer)
            and (subscription is None or _subscription_of(invoice) == subscription)
            and (status is None or invoice["status"] == status)
            and (collection_method is None or invoice["collection_method"] == collection_method)
            and (created is None or created(invoice["created"]))
            and (
                due_date is None
                or (invoice["due_date"] is not None and due_date(invoice["due_date"]))
            )
        )

    result = page(
        params,
        "/v1/invoices",
        newest_first(ctx.account.collection("invoices"), keep),
        object_name="invoice",
    )
    params.finish()
    return result


@get("/v1/invoices/{id}/lines")
def list_invoice_lines(ctx: Ctx, params: Params, id: str) -> JSON:
    invoice = ctx.account.get("invoices", id)
    result = page(
        params, f"/v1/invoices/{id}/lines", invoice["lines"]["data"], object_name="line_item"
    )
    params.finish()
    return result


@post("/v1/invoices/{id}/pay")
def pay_invoice(ctx: Ctx, params: Params, id: str) -> JSON:
    """Pay an open invoice with the customer's test card; a decline answers 402 like Stripe."""
    invoice = ctx.account.get("invoices", id)
    paid_out_of_band = bool(params.bool("paid_out_of_band"))
    params.accept("forgive", "mandate", "off_session", "payment_method", "source")
    params.finish()
    now = ctx.account.now_for(invoice["customer"])
    if invoice["status"] == "draft":
        payments.finalize_invoice(ctx, invoice, now)
    if invoice["status"] not in ("open", "uncollectible"):
        raise invalid_request(
            "Invoice is already paid."
            if invoice["status"] == "paid"
            else f"You cannot pay an invoice with status {invoice['status']}."
        )
    if paid_out_of_band:
        payments.mark_paid(ctx, invoice, now, attempted=False, out_of_band=True)
        lifecycle.after_invoice_result(ctx, invoice, paid=True, now=now)
        return invoice
    paid = payments.attempt_invoice(ctx, invoice, now)
    lifecycle.after_invoice_result(ctx, invoice, paid=bool(paid), now=now)
    if not paid:
        intent_id = _latest_intent(ctx, invoice)
        intent = ctx.account.collection("payment_intents").get(intent_id or "")
        raise card_declined(
            (intent or {}).get("last_payment_error", {}).get("decline_code") or "generic_decline",
            charge=(intent or {}).get("latest_charge"),
        )
    return invoice


def _latest_intent(ctx: Ctx, invoice: JSON) -> str | None:
    found = None
    for payment in ctx.account.collection("invoice_payments").values():
        if payment["invoice"] == invoice["id"]:
            found = payment["payment"].get("payment_intent")
    return found


@post("/v1/invoices/{id}/void")
def void_invoice(ctx: Ctx, params: Params, id: str) -> JSON:
    """Void an open or uncollectible invoice (`invoice.voided`); a paid or void one is refused."""
    invoice = ctx.account.get("invoices", id)
    params.finish()
    if invoice["status"] not in ("open", "uncollectible"):
        raise invalid_request("You can only void open invoices.")
    payments.void_invoice(ctx, invoice, ctx.account.now_for(invoice["customer"]))
    return invoice


@post("/v1/invoices/{id}/mark_uncollectible")
def mark_invoice_uncollectible(ctx: Ctx, params: Params, id: str) -> JSON:
    """Stop collecting an open invoice (`invoice.marked_uncollectible`); it can still be paid."""
    invoice = ctx.account.get("invoices", id)
    params.finish()
    if invoice["status"] != "open":
        raise invalid_request("You can only mark open invoices as uncollectible.")
    payments.mark_uncollectible(ctx, invoice, ctx.account.now_for(invoice["customer"]))
    return invoice


@get("/v1/invoice_payments/{id}")
def retrieve_invoice_payment(ctx: Ctx, params: Params, id: str) -> JSON:
    params.finish()
    return ctx.account.get("invoice_payments", id)


@get("/v1/invoice_payments")
def list_invoice_payments(ctx: Ctx, params: Params) -> JSON:
    invoice = params.str("invoice")
    status = params.str("status")
    payment = params.nested("payment")
    intent = None
    if payment is not None:
        payment.str("type")
        intent = payment.str("payment_intent")
        payment.finish()

    def keep(obj: JSON) -> bool:
        return (
            (invoice is None or obj["invoice"] == invoice)
            and (status is None or obj["status"] == status)
            and (intent is None or obj["payment"].get("payment_intent") == intent)
        )

    result = page(
        params,
        "/v1/invoice_payments",
        newest_first(ctx.account.collection("invoice_payments"), keep),
        object_name="invoice_payment",
    )
    params.finish()
    return result


@get("/v1/payment_intents/{id}")
def retrieve_payment_intent(ctx: Ctx, params: Params, id: str) -> JSON:
    params.str("client_secret")
    params.finish()
    return ctx.account.get("payment_intents", id)


@get("/v1/payment_intents")
def list_payment_intents(ctx: Ctx, params: Params) -> JSON:
    customer = params.str("customer")
    created = range_filter(params, "created")

    def keep(intent: JSON) -> bool:
        return (customer is None or intent["customer"] == customer) and (
            created is None or created(intent["created"])
        )

    result = page(
        params,
        "/v1/payment_intents",
        newest_first(ctx.account.collection("payment_intents"), keep),
        object_name="payment_intent",
    )
    params.finish()
    return result


@get("/v1/charges/{id}")
def retrieve_charge(ctx: Ctx, params: Params, id: str) -> JSON:
    params.finish()
    return ctx.account.get("charges", id)


@get("/v1/charges")
def list_charges(ctx: Ctx, params: Params) -> JSON:
    customer = params.str("customer")
    intent = params.str("payment_intent")
    created = range_filter(params, "created")
    params.accept("transfer_group")

    def keep(charge: JSON) -> bool:
        return (
            (customer is None or charge["customer"] == customer)
            and (intent is None or charge["payment_intent"] == intent)
            and (created is None or created(charge["created"]))
        )

    result = page(
        params,
        "/v1/charges",
        newest_first(ctx.account.collection("charges"), keep),
        object_name="charge",
    )
    params.finish()
    return result
