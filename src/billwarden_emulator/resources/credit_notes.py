"""Credit notes: lower what an open invoice asks for, or credit a paid one to the customer.

On an open invoice the credit is `pre_payment` (the invoice's `amount_due` drops; brought to
zero, the invoice is paid). On a paid invoice it is `post_payment` and, unless `refund_amount` or
`out_of_band_amount` say otherwise, goes to the customer's balance. Voiding undoes either.
"""

from __future__ import annotations

from billwarden_emulator.billing import payments
from billwarden_emulator.billing.money import format_amount
from billwarden_emulator.errors import invalid_request, missing_parameter
from billwarden_emulator.forms import Params, merge_metadata
from billwarden_emulator.ids import new_id
from billwarden_emulator.listing import newest_first, page, range_filter
from billwarden_emulator.resources import get, post
from billwarden_emulator.shapes import invoicing as shapes
from billwarden_emulator.state import JSON, Ctx, copy_json, previous_attributes

_REASONS = ("duplicate", "fraudulent", "order_change", "product_unsatisfactory")


def _line(ctx: Ctx, invoice: JSON, entry: Params, index: int) -> JSON:
    kind = entry.str("type", required=True, choices=("custom_line_item", "invoice_line_item"))
    quantity = entry.int("quantity", minimum=0)
    description = entry.str("description")
    amount = entry.int("amount", minimum=0)
    unit_amount = entry.int("unit_amount", minimum=0)
    line_id = entry.str("invoice_line_item")
    entry.accept("tax_rates", "tax_amounts", "unit_amount_decimal", "metadata")
    entry.finish()
    if kind == "custom_line_item":
        if unit_amount is None:
            raise missing_parameter(f"lines[{index}][unit_amount]")
        return shapes.credit_note_line_item(
            id=new_id("cnli"),
            livemode=ctx.account.livemode,
            type=kind,
            amount=unit_amount * (quantity or 1),
            quantity=quantity or 1,
            unit_amount=unit_amount,
            unit_amount_decimal=str(unit_amount),
            description=description,
        )
    if line_id is None:
        raise missing_parameter(f"lines[{index}][invoice_line_item]")
    line = next((item for item in invoice["lines"]["data"] if item["id"] == line_id), None)
    if line is None:
        raise invalid_request(
            f"No such invoice line item: '{line_id}'",
            param=f"lines[{index}][invoice_line_item]",
            code="resource_missing",
        )
    if amount is None:
        per_unit = line["amount"] // max(line["quantity"] or 1, 1)
        amount = per_unit * (quantity if quantity is not None else line["quantity"] or 1)
    return shapes.credit_note_line_item(
        id=new_id("cnli"),
        livemode=ctx.account.livemode,
        type=kind,
        amount=amount,
        quantity=quantity if quantity is not None else line["quantity"],
        invoice_line_item=line_id,
        description=description or line["description"],
    )


@post("/v1/credit_notes")
def create_credit_note(ctx: Ctx, params: Params) -> JSON:
    invoice_id = params.str("invoice", required=True)
    assert invoice_id is not None
    invoice = ctx.account.get("invoices", invoice_id, param="invoice")
    if invoice["status"] not in ("open", "paid"):
        raise invalid_request(
            f"You can only create a credit note on an open or paid invoice; {invoice_id} is "
            f"{invoice['status']}.",
            param="invoice",
        )
    lines = [_line(ctx, invoice, entry, i) for i, entry in enumerate(params.nested_list("lines"))]
    amount = params.int("amount", minimum=1)
    if not lines:
        if amount is None:
            raise missing_parameter("lines")
        lines = [
            shapes.credit_note_line_item(
                id=new_id("cnli"),
                livemode=ctx.account.livemode,
                amount=amount,
                unit_amount=amount,
                unit_amount_decimal=str(amount),
                description="Credit",
            )
        ]
    total = sum(line["amount"] for line in lines)
    if amount is not None and amount != total:
        raise invalid_request(
            "The credit note amount must equal the sum of its lines.", param="amount"
        )
    pre_payment = invoice["status"] == "open"
    limit = invoice["amount_remaining"] if pre_payment else invoice["amount_paid"]
    limit -= 0 if pre_payment else invoice["post_payment_credit_notes_amount"]
    if total > limit:
        raise invalid_request(
            f"The credit note amount ({format_amount(total, invoice['currency'])}) cannot "
            f"exceed what the invoice can still be credited "
            f"({format_amount(max(limit, 0), invoice['currency'])}).",
            param="lines" if params.has("lines") else "amount",
        )
    refund_amount = params.int("refund_amount", minimum=0) or 0
    out_of_band = params.int("out_of_band_amount", minimum=0)
    credit_amount = params.int("credit_amount", minimum=0)
    if pre_payment and (refund_amount or out_of_band or credit_amount):
        raise invalid_request(
            "Credit notes on open invoices reduce the amount due; refund_amount, "
            "credit_amount and out_of_band_amount apply to paid invoices only.",
            param="refund_amount" if refund_amount else "credit_amount",
        )
    if credit_amount is None and not pre_payment:
        credit_amount = total - refund_amount - (out_of_band or 0)
    if not pre_payment and refund_amount + (out_of_band or 0) + (credit_amount or 0) != total:
        raise invalid_request(
            "The sum of credit amount, refund amount and out of band amount must equal the "
            "credit note amount.",
            param="credit_amount",
        )
    reason = params.str("reason", choices=_REASONS)
    memo = params.str("memo")
    metadata = merge_metadata({}, params.metadata())
    params.accept("email_type", "effective_at", "refunds", "shipping_cost")
    params.finish()
    now = ctx.account.now_for(invoice["customer"])
    credit_note_id = new_id("cn")
    count = 1 + sum(
        1
        for note in ctx.account.collection("credit_notes").values()
        if note["invoice"] == invoice_id
    )
    credit_note = shapes.credit_note(
        id=credit_note_id,
        livemode=ctx.account.livemode,
        created=now,
        effective_at=now,
        currency=invoice["currency"],
        customer=invoice["customer"],
        invoice=invoice_id,
        amount=total,
        subtotal=total,
        subtotal_excluding_tax=total,
        total=total,
        total_excluding_tax=total,
        lines={
            "data": lines,
            "has_more": False,
            "object": "list",
            "url": f"/v1/credit_notes/{credit_note_id}/lines",
        },
        memo=memo,
        metadata=metadata,
        number=f"{invoice['number']}-CN-{count:02d}",
        pdf=f"{ctx.base_url}/_emulator/credit_notes/{credit_note_id}/pdf",
        reason=reason,
        type="pre_payment" if pre_payment else "post_payment",
        pre_payment_amount=total if pre_payment else 0,
        post_payment_amount=0 if pre_payment else total,
        out_of_band_amount=out_of_band,
    )
    ctx.account.put("credit_notes", credit_note)
    ctx.account.internal.setdefault("credit_note_balance", {})[credit_note_id] = credit_amount or 0
    before = copy_json(invoice)
    _apply(ctx, credit_note, invoice, sign=1)
    ctx.emit("credit_note.created", credit_note, created=now)
    ctx.emit("invoice.updated", invoice, previous_attributes(before, invoice), created=now)
    if pre_payment and invoice["amount_remaining"] == 0:
        payments.mark_paid(ctx, invoice, now, attempted=False, out_of_band=True)
    return credit_note


def _apply(ctx: Ctx, credit_note: JSON, invoice: JSON, *, sign: int) -> None:
    """Add (`sign=1`) or take back (`-1`) a credit note's effect on its invoice and customer."""
    amount = credit_note["amount"] * sign
    if credit_note["type"] == "pre_payment":
        invoice["pre_payment_credit_notes_amount"] += amount
        payments.price_invoice(ctx, invoice)
        return
    invoice["post_payment_credit_notes_amount"] += amount
    credit = ctx.account.internal.get("credit_note_balance", {}).get(credit_note["id"], 0)
    customer = ctx.account.collection("customers").get(credit_note["customer"])
    if customer is not None and credit:
        customer["balance"] -= credit * sign


@get("/v1/credit_notes/{id}")
def retrieve_credit_note(ctx: Ctx, params: Params, id: str) -> JSON:
    params.finish()
    return ctx.account.get("credit_notes", id)


@post("/v1/credit_notes/{id}")
def update_credit_note(ctx: Ctx, params: Params, id: str) -> JSON:
    credit_note = ctx.account.get("credit_notes", id)
    before = copy_json(credit_note)
    if params.has("memo"):
        credit_note["memo"] = params.str("memo")
    credit_note["metadata"] = merge_metadata(credit_note["metadata"], params.metadata())
    params.finish()
    changes = previous_attributes(before, credit_note)
    if changes:
        ctx.emit(
            "credit_note.updated",
            credit_note,
            changes,
            created=ctx.account.now_for(credit_note["customer"]),
        )
    return credit_note


@post("/v1/credit_notes/{id}/void")
def void_credit_note(ctx: Ctx, params: Params, id: str) -> JSON:
    credit_note = ctx.account.get("credit_notes", id)
    params.finish()
    if credit_note["status"] != "issued":
        raise invalid_request("This credit note has already been voided.")
    invoice = ctx.account.get("invoices", credit_note["invoice"])
    if credit_note["type"] == "pre_payment" and invoice["status"] != "open":
        raise invalid_request(
            f"You can't void a pre-payment credit note once its invoice is {invoice['status']}."
        )
    now = ctx.account.now_for(credit_note["customer"])
    before = copy_json(invoice)
    credit_note["status"] = "void"
    credit_note["voided_at"] = now
    _apply(ctx, credit_note, invoice, sign=-1)
    ctx.emit("credit_note.voided", credit_note, created=now)
    ctx.emit("invoice.updated", invoice, previous_attributes(before, invoice), created=now)
    return credit_note


@get("/v1/credit_notes/{id}/lines")
def list_credit_note_lines(ctx: Ctx, params: Params, id: str) -> JSON:
    credit_note = ctx.account.get("credit_notes", id)
    result = page(
        params,
        f"/v1/credit_notes/{id}/lines",
        credit_note["lines"]["data"],
        object_name="credit_note_line_item",
    )
    params.finish()
    return result


@get("/v1/credit_notes")
def list_credit_notes(ctx: Ctx, params: Params) -> JSON:
    customer = params.str("customer")
    invoice = params.str("invoice")
    created = range_filter(params, "created")

    def keep(credit_note: JSON) -> bool:
        return (
            (customer is None or credit_note["customer"] == customer)
            and (invoice is None or credit_note["invoice"] == invoice)
            and (created is None or created(credit_note["created"]))
        )

    result = page(
        params,
        "/v1/credit_notes",
        newest_first(ctx.account.collection("credit_notes"), keep),
        object_name="credit_note",
    )
    params.finish()
    return result
