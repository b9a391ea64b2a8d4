"""Invoice items: charges (or credits) waiting for a customer's next invoice.

A pending item lands on the customer's next subscription invoice (its first or a renewal) or on
an invoice created with `pending_invoice_items_behavior=include`; `invoice=` puts it on a draft
at once. Stripe emits `invoiceitem.created` and `invoiceitem.deleted` only (no `.updated`).
"""

from __future__ import annotations

from billwarden_emulator.billing import payments
from billwarden_emulator.errors import invalid_request, missing_parameter
from billwarden_emulator.forms import Params, merge_metadata
from billwarden_emulator.ids import new_id
from billwarden_emulator.listing import newest_first, page, range_filter
from billwarden_emulator.resources import delete, get, post
from billwarden_emulator.resources.catalog import SUPPORTED_CURRENCIES
from billwarden_emulator.shapes import deleted
from billwarden_emulator.shapes import invoicing as shapes
from billwarden_emulator.state import JSON, Ctx


def _period(params: Params, now: int) -> JSON:
    period = params.nested("period")
    if period is None:
        return {"end": now, "start": now}
    start = period.int("start", required=True)
    end = period.int("end", required=True)
    period.finish()
    if start is not None and end is not None and end < start:
        raise invalid_request("The period end must be after its start.", param="period[end]")
    return {"end": end, "start": start}


def _price_id(params: Params) -> str | None:
    """`pricing[price]` (current API) or `price` (older versions)."""
    pricing = params.nested("pricing")
    if pricing is not None:
        price_id = pricing.str("price")
        pricing.finish()
        return price_id
    return params.str("price")


def _draft_invoice(ctx: Ctx, invoice_id: str, customer_id: str) -> JSON:
    invoice = ctx.account.get("invoices", invoice_id, param="invoice")
    if invoice["status"] != "draft":
        raise invalid_request(
            f"You can only add invoice items to draft invoices. The invoice {invoice_id} "
            f"is {invoice['status']}.",
            param="invoice",
        )
    if invoice["customer"] != customer_id:
        raise invalid_request(
            "The invoice and the invoice item must belong to the same customer.",
            param="invoice",
        )
    return invoice


@post("/v1/invoiceitems")
def create_invoiceitem(ctx: Ctx, params: Params) -> JSON:
    customer_id = params.str("customer", required=True)
    assert customer_id is not None
    customer = ctx.account.get("customers", customer_id, param="customer")
    now = ctx.account.now_for(customer_id)
    quantity = params.int("quantity", minimum=0)
    price_id = _price_id(params)
    price = None if price_id is None else ctx.account.get("prices", price_id, param="price")
    unit_amount = params.int("unit_amount")
    decimal = params.str("unit_amount_decimal")
    if unit_amount is None and decimal is not None:
        try:
            unit_amount = round(float(decimal))
        except ValueError:
            raise invalid_request(
                f"Invalid decimal: {decimal}", param="unit_amount_decimal"
            ) from None
    amount = params.int("amount")
    if price is not None:
        unit_amount = price["unit_amount"] or 0
    if amount is None and unit_amount is None:
        raise missing_parameter("amount")
    if amount is None:
        amount = (unit_amount or 0) * (quantity or 1)
    currency = params.str("currency")
    if price is not None:
        currency = price["currency"]
    currency = (currency or customer["currency"] or "").lower()
    if not currency:
        raise missing_parameter("currency")
    if currency not in SUPPORTED_CURRENCIES:
        raise invalid_request(f"Invalid currency: {currency}.", param="currency")
    subscription_id = params.str("subscription")
    if subscription_id is not None:
        ctx.account.get("subscriptions", subscription_id, param="subscription")
    invoice_id = params.str("invoice")
    invoice = None if invoice_id is None else _draft_invoice(ctx, invoice_id, customer_id)
    item = shapes.invoiceitem(
        id=new_id("ii"),
        livemode=ctx.account.livemode,
        amount=amount,
        net_amount=amount,
        currency=currency,
        customer=customer_id,
        date=now,
        description=params.str("description"),
        discountable=params.bool("discountable") is not False,
        metadata=merge_metadata({}, params.metadata()),
        period=_period(params, now),
        quantity=quantity or 1,
        quantity_decimal=str(quantity or 1),
        test_clock=customer["test_clock"],
        parent=None
        if subscription_id is None
        else {
            "subscription_details": {"subscription": subscription_id},
            "type": "subscription_details",
        },
        pricing={
            "price_details": None
            if price is None
            else {"price": price["id"], "product": price["product"]},
            "type": "price_details",
            "unit_amount_decimal": str(unit_amount if unit_amount is not None else amount),
        },
    )
    params.accept(
        "discounts", "tax_rates", "tax_behavior", "tax_code", "price_data", "customer_account"
    )
    params.finish()
    ctx.account.put("invoiceitems", item)
    if invoice is not None:
        payments.add_invoice_item(ctx, invoice, item)
        payments.price_invoice(ctx, invoice)
    ctx.emit("invoiceitem.created", item, created=now)
    return item


@get("/v1/invoiceitems/{id}")
def retrieve_invoiceitem(ctx: Ctx, params: Params, id: str) -> JSON:
    params.finish()
    return ctx.account.get("invoiceitems", id)


def _editable(ctx: Ctx, item: JSON) -> JSON | None:
    """The draft invoice the item is on (None when pending); a finalized one is refused."""
    if item["invoice"] is None:
        return None
    invoice = ctx.account.get("invoices", item["invoice"])
    if invoice["status"] != "draft":
        raise invalid_request(
            f"You can only modify invoice items on draft invoices. The invoice "
            f"{invoice['id']} is {invoice['status']}."
        )
    return invoice


@post("/v1/invoiceitems/{id}")
def update_invoiceitem(ctx: Ctx, params: Params, id: str) -> JSON:
    item = ctx.account.get("invoiceitems", id)
    invoice = _editable(ctx, item)
    if params.has("amount"):
        item["amount"] = item["net_amount"] = params.int("amount", required=True)
    if params.has("quantity"):
        quantity = params.int("quantity", minimum=0) or 1
        item["quantity"] = quantity
        item["quantity_decimal"] = str(quantity)
    if params.has("description"):
        item["description"] = params.str("description")
    if params.has("discountable"):
        item["discountable"] = params.bool("discountable") is not False
    if params.has("period"):
        item["period"] = _period(params, item["date"])
    item["metadata"] = merge_metadata(item["metadata"], params.metadata())
    params.accept("discounts", "tax_rates", "tax_behavior", "tax_code", "pricing", "price_data")
    params.finish()
    if invoice is not None:
        payments.remove_invoice_item(invoice, id)
        item["invoice"] = None
        payments.add_invoice_item(ctx, invoice, item)
        payments.price_invoice(ctx, invoice)
    return item


@delete("/v1/invoiceitems/{id}")
def delete_invoiceitem(ctx: Ctx, params: Params, id: str) -> JSON:
    """Only a pending item or one on a draft invoice can be deleted (`invoiceitem.deleted`)."""
    params.finish()
    item = ctx.account.get("invoiceitems", id)
    invoice = _editable(ctx, item)
    if invoice is not None:
        payments.remove_invoice_item(invoice, id)
        payments.price_invoice(ctx, invoice)
    del ctx.account.collection("invoiceitems")[id]
    ctx.emit("invoiceitem.deleted", item, created=ctx.account.now_for(item["customer"]))
    return deleted("invoiceitem", id)


@get("/v1/invoiceitems")
def list_invoiceitems(ctx: Ctx, params: Params) -> JSON:
    customer = params.str("customer")
    invoice = params.str("invoice")
    pending = params.bool("pending")
    created = range_filter(params, "created")

    def keep(item: JSON) -> bool:
        return (
            (customer is None or item["customer"] == customer)
            and (invoice is None or item["invoice"] == invoice)
            and (pending is None or (item["invoice"] is None) == pending)
            and (created is None or created(item["date"]))
        )

    result = page(
        params,
        "/v1/invoiceitems",
        newest_first(ctx.account.collection("invoiceitems"), keep),
        object_name="invoiceitem",
    )
    params.finish()
    return result
