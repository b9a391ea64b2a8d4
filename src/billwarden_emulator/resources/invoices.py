"""Invoices (retrieve, list, lines, pay, void, mark_uncollectible), invoice payments, payment
intents and charges."""

from __future__ import annotations

from billwarden_emulator.billing import lifecycle, payments
from billwarden_emulator.errors import StripeError, card_declined, invalid_request
from billwarden_emulator.forms import Params, merge_metadata
from billwarden_emulator.ids import new_id
from billwarden_emulator.listing import newest_first, page, range_filter
from billwarden_emulator.resources import coupons, delete, get, payment_methods, post
from billwarden_emulator.shapes import deleted
from billwarden_emulator.state import JSON, Ctx, copy_json, previous_attributes

DAY = 86_400
_COLLECTION_METHODS = ("charge_automatically", "send_invoice")
_ACCEPTED = (
    "account_tax_ids",
    "application_fee_amount",
    "automatic_tax",
    "automatically_finalizes_at",
    "custom_fields",
    "default_source",
    "default_tax_rates",
    "issuer",
    "on_behalf_of",
    "payment_settings",
    "rendering",
    "shipping_cost",
    "shipping_details",
    "transfer_data",
)


def _subscription_of(invoice: JSON) -> str | None:
    parent = invoice["parent"] or {}
    return (parent.get("subscription_details") or {}).get("subscription")


@post("/v1/invoices")
def create_invoice(ctx: Ctx, params: Params) -> JSON:
    """A one-off draft invoice (`auto_advance` false unless asked, as for API-created invoices);
    `pending_invoice_items_behavior=include` bills the customer's pending invoice items."""
    customer_id = params.str("customer", required=True)
    assert customer_id is not None
    customer = ctx.account.get("customers", customer_id, param="customer")
    now = ctx.account.now_for(customer_id)
    include = (
        params.str("pending_invoice_items_behavior", choices=("exclude", "include")) == "include"
    )
    subscription_id = params.str("subscription")
    subscription = (
        None
        if subscription_id is None
        else ctx.account.get("subscriptions", subscription_id, param="subscription")
    )
    collection_method = (
        params.str("collection_method", choices=_COLLECTION_METHODS) or "charge_automatically"
    )
    due_date = _due_date(params, collection_method, now)
    currency = params.str("currency")
    if currency is None:
        pending = payments.pending_invoice_items(ctx, customer_id, subscription) if include else []
        currency = pending[0]["currency"] if pending else customer["currency"] or "usd"
    specs = coupons.read_discount_specs(
        ctx, params, now=now, customer=customer_id, names=("discounts",)
    )
    description = params.str("description")
    metadata = merge_metadata({}, params.metadata())
    auto_advance = bool(params.bool("auto_advance"))
    fields = {
        "footer": params.str("footer"),
        "statement_descriptor": params.str("statement_descriptor"),
        "default_payment_method": params.str("default_payment_method"),
    }
    params.accept(*_ACCEPTED)
    params.finish()
    invoice_id = new_id("in")
    discount_ids = None
    if specs is not None:
        discount_ids = [
            coupons.make_discount(ctx, spec, now=now, customer=customer_id, invoice=invoice_id)[
                "id"
            ]
            for spec in specs
        ]
    invoice = payments.create_invoice(
        ctx,
        customer=customer,
        lines=[],
        billing_reason="manual",
        now=now,
        period_start=now,
        period_end=now,
        currency=currency.lower(),
        subscription=subscription,
        invoice_id=invoice_id,
        discounts=discount_ids,
        include_pending_items=include,
        fields={
            "description": description,
            "metadata": metadata,
            "auto_advance": auto_advance,
            "collection_method": collection_method,
            "due_date": due_date,
            **fields,
        },
    )
    return invoice


def _due_date(params: Params, collection_method: str, now: int) -> int | None:
    days = params.int("days_until_due", minimum=0)
    due_date = params.int("due_date")
    if collection_method != "send_invoice":
        if days is not None or due_date is not None:
            raise invalid_request(
                "Invoices with `collection_method=charge_automatically` cannot have a due date.",
                param="days_until_due" if days is not None else "due_date",
            )
        return None
    if due_date is not None:
        return due_date
    if days is None:
        raise invalid_request(
            "Invoices with `collection_method=send_invoice` must have a `due_date` or "
            "`days_until_due`.",
            param="days_until_due",
        )
    return now + days * DAY


@post("/v1/invoices/{id}")
def update_invoice(ctx: Ctx, params: Params, id: str) -> JSON:
    """A draft can change anything; a finalized invoice only its description, footer,
    metadata and `auto_advance` (Stripe refuses monetary changes once finalized)."""
    invoice = ctx.account.get("invoices", id)
    draft = invoice["status"] == "draft"
    now = ctx.account.now_for(invoice["customer"])
    before = copy_json(invoice)
    for field in ("description", "footer", "statement_descriptor", "default_payment_method"):
        if params.has(field):
            invoice[field] = params.str(field)
    invoice["metadata"] = merge_metadata(invoice["metadata"], params.metadata())
    if params.has("auto_advance"):
        if invoice["status"] not in ("draft", "open"):
            raise invalid_request(
                f"You cannot set auto_advance on an invoice with status {invoice['status']}.",
                param="auto_advance",
            )
        invoice["auto_advance"] = bool(params.bool("auto_advance"))
    money = [name for name in ("collection_method", "days_until_due", "due_date", "discounts")]
    if not draft:
        for name in money:
            if params.has(name):
                raise invalid_request(
                    f"Finalized invoices can't be updated in this way: `{name}` cannot be "
                    "changed once the invoice is finalized.",
                    param=name,
                )
    else:
        if (
            params.has("collection_method")
            or params.has("days_until_due")
            or params.has("due_date")
        ):
            method = (
                params.str("collection_method", choices=_COLLECTION_METHODS)
                or invoice["collection_method"]
            )
            invoice["collection_method"] = method
            invoice["due_date"] = _due_date(params, method, invoice["created"])
        specs = coupons.read_discount_specs(
            ctx, params, now=now, customer=invoice["customer"], names=("discounts",)
        )
        if specs is not None:
            invoice["discounts"] = [
                coupons.make_discount(ctx, spec, now=now, customer=invoice["customer"], invoice=id)[
                    "id"
                ]
                for spec in specs
            ]
            payments.price_invoice(ctx, invoice)
    params.accept(*_ACCEPTED)
    params.finish()
    changes = previous_attributes(before, invoice)
    if changes:
        ctx.emit("invoice.updated", invoice, changes, created=now)
    return invoice


@delete("/v1/invoices/{id}")
def delete_invoice(ctx: Ctx, params: Params, id: str) -> JSON:
    """Only a one-off draft can be deleted; its invoice items become pending again."""
    params.finish()
    invoice = ctx.account.get("invoices", id)
    if invoice["status"] != "draft":
        raise invalid_request(
            "You can only delete draft invoices. Once an invoice has been finalized, "
            "it must be voided."
        )
    if _subscription_of(invoice) is not None:
        raise invalid_request(
            "You cannot delete a draft invoice that was created by a subscription."
        )
    for item in ctx.account.collection("invoiceitems").values():
        if item["invoice"] == id:
            item["invoice"] = None
    del ctx.account.collection("invoices")[id]
    tombstone = deleted("invoice", id)
    ctx.account.deleted[id] = tombstone
    ctx.emit("invoice.deleted", invoice, created=ctx.account.now_for(invoice["customer"]))
    return tombstone


@post("/v1/invoices/{id}/finalize")
def finalize_invoice(ctx: Ctx, params: Params, id: str) -> JSON:
    """Draft to open (`invoice.finalized`); an invoice with nothing due is paid at once."""
    invoice = ctx.account.get("invoices", id)
    auto_advance = params.bool("auto_advance")
    params.finish()
    if invoice["status"] != "draft":
        raise invalid_request(
            "This invoice is already finalized, you can't re-finalize a non-draft invoice."
        )
    if auto_advance is not None:
        invoice["auto_advance"] = auto_advance
    now = ctx.account.now_for(invoice["customer"])
    _finalize(ctx, invoice, now)
    return invoice


def _finalize(ctx: Ctx, invoice: JSON, now: int) -> None:
    payments.finalize_invoice(ctx, invoice, now)
    if invoice["amount_due"] == 0:
        payments.mark_paid(ctx, invoice, now, attempted=False)


@post("/v1/invoices/{id}/send")
def send_invoice(ctx: Ctx, params: Params, id: str) -> JSON:
    """Email the invoice (`invoice.sent`; the emulator sends no email, like test mode); a draft
    is finalized first. Only `collection_method=send_invoice` invoices can be sent."""
    invoice = ctx.account.get("invoices", id)
    params.finish()
    if invoice["collection_method"] != "send_invoice":
        raise invalid_request(
            "You can only manually send an invoice if its collection method is 'send_invoice'."
        )
    if invoice["status"] in ("void", "uncollectible"):
        raise invalid_request(f"You can't send an invoice with status {invoice['status']}.")
    now = ctx.account.now_for(invoice["customer"])
    if invoice["status"] == "draft":
        _finalize(ctx, invoice, now)
    ctx.emit("invoice.sent", invoice, created=now)
    return invoice


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
    payment_method = params.str("payment_method")
    params.accept("forgive", "mandate", "off_session", "source")
    params.finish()
    now = ctx.account.now_for(invoice["customer"])
    if invoice["status"] == "draft":
        _finalize(ctx, invoice, now)
        if invoice["status"] == "paid":
            lifecycle.after_invoice_result(ctx, invoice, paid=True, now=now)
            return invoice
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
    if payment_method is not None:
        paid = _pay_with(ctx, invoice, payment_method, now)
    else:
        paid = payments.attempt_invoice(ctx, invoice, now)
    if paid is None:
        raise _action_required(ctx, invoice)
    lifecycle.after_invoice_result(ctx, invoice, paid=paid, now=now)
    if not paid:
        intent_id = _latest_intent(ctx, invoice)
        intent = ctx.account.collection("payment_intents").get(intent_id or "")
        raise card_declined(
            (intent or {}).get("last_payment_error", {}).get("decline_code") or "generic_decline",
            charge=(intent or {}).get("latest_charge"),
        )
    return invoice


def _pay_with(ctx: Ctx, invoice: JSON, payment_method: str, now: int) -> bool | None:
    """Charge `payment_method` as its test card says: paid, declined or 3D Secure needed."""
    if payment_methods.payment_method_outcome(ctx, payment_method) == "requires_action":
        return payments.attempt_invoice(
            ctx, invoice, now, decline_code=None, mode="action", payment_method=payment_method
        )
    decline = payment_methods.payment_method_decline(ctx, payment_method)
    return payments.attempt_invoice(
        ctx,
        invoice,
        now,
        decline_code=None if decline is None else decline[1],
        payment_method=payment_method,
    )


def _action_required(ctx: Ctx, invoice: JSON) -> StripeError:
    intent_id = _latest_intent(ctx, invoice)
    return StripeError(
        402,
        "card_error",
        "This payment requires additional user action before it can be completed "
        "successfully. Payment can be completed using the PaymentIntent associated with the "
        "invoice.",
        code="invoice_payment_intent_requires_action",
        extra={"payment_intent": ctx.account.collection("payment_intents").get(intent_id or "")},
    )


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
