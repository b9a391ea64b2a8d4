"""Invoices and the payment intents and charges that pay them.

Every invoice is finalized as soon as it is created (Stripe waits about an hour before finalizing
renewal invoices); a charge succeeds or fails at once according to the customer's test card
(see `billwarden_emulator.resources.customers`).
"""

from __future__ import annotations

from typing import Literal

from billwarden_emulator import shapes
from billwarden_emulator.ids import new_id, random_part
from billwarden_emulator.resources.customers import card_outcome
from billwarden_emulator.state import JSON, Ctx, copy_json, previous_attributes

DAY = 86_400
# Days after the first failed attempt at which a renewal invoice is retried (Stripe's default
# custom schedule); after the last retry fails the subscription is canceled.
RETRY_DAYS = (3, 5, 7)

_DECLINE_MESSAGES = {
    "generic_decline": "Your card was declined.",
    "insufficient_funds": "Your card has insufficient funds.",
}


def subscription_line(
    ctx: Ctx,
    *,
    subscription: JSON,
    item: JSON,
    amount: int,
    period_start: int,
    period_end: int,
    description: str,
    proration: bool = False,
) -> JSON:
    price = item["price"]
    return shapes.invoice_line(
        id=new_id("il"),
        livemode=ctx.account.livemode,
        amount=amount,
        subtotal=amount,
        currency=price["currency"],
        description=description,
        period={"end": period_end, "start": period_start},
        quantity=item["quantity"],
        quantity_decimal=str(item["quantity"]),
        metadata=dict(item["metadata"]),
        subscription=subscription["id"],
        parent={
            "invoice_item_details": None,
            "subscription_item_details": {
                "invoice_item": None,
                "proration": proration,
                "proration_details": {"credited_items": None},
                "subscription": subscription["id"],
                "subscription_item": item["id"],
            },
            "type": "subscription_item_details",
        },
        pricing={
            "price_details": {"price": price["id"], "product": price["product"]},
            "type": "price_details",
            "unit_amount_decimal": price["unit_amount_decimal"],
        },
    )


def create_invoice(
    ctx: Ctx,
    *,
    customer: JSON,
    lines: list[JSON],
    billing_reason: str,
    now: int,
    period_start: int,
    period_end: int,
    currency: str,
    subscription: JSON | None = None,
    invoice_id: str | None = None,
) -> JSON:
    """Store a draft invoice over `lines` and emit `invoice.created`."""
    invoice_id = invoice_id or new_id("in")
    total = sum(line["amount"] for line in lines)
    for line in lines:
        line["invoice"] = invoice_id
    amount_due = max(total, 0)
    invoice = shapes.invoice(
        id=invoice_id,
        livemode=ctx.account.livemode,
        created=now,
        currency=currency,
        customer=customer["id"],
        customer_email=customer["email"],
        customer_name=customer["name"],
        customer_phone=customer["phone"],
        customer_address=customer["address"],
        customer_shipping=customer["shipping"],
        billing_reason=billing_reason,
        period_start=period_start,
        period_end=period_end,
        subtotal=total,
        subtotal_excluding_tax=total,
        total=total,
        total_excluding_tax=total,
        amount_due=amount_due,
        amount_remaining=amount_due,
        starting_balance=0,
        test_clock=customer["test_clock"],
        lines={
            "object": "list",
            "data": lines,
            "has_more": False,
            "url": f"/v1/invoices/{invoice_id}/lines",
        },
        parent=None
        if subscription is None
        else {
            "quote_details": None,
            "subscription_details": {
                "metadata": dict(subscription["metadata"]),
                "subscription": subscription["id"],
            },
            "type": "subscription_details",
        },
    )
    if total < 0:
        # a credit goes to the customer's balance, as Stripe does
        customer["balance"] += total
        invoice["ending_balance"] = customer["balance"]
    ctx.account.put("invoices", invoice)
    ctx.emit("invoice.created", invoice, created=now)
    return invoice


def finalize_invoice(ctx: Ctx, invoice: JSON, now: int) -> None:
    customer_prefix = ctx.account.collection("customers").get(invoice["customer"], {})
    prefix = customer_prefix.get("invoice_prefix") or "EMU"
    invoice["status"] = "open"
    invoice["number"] = f"{prefix}-{ctx.account.next_invoice_number():04d}"
    invoice["effective_at"] = now
    invoice["status_transitions"] = {**invoice["status_transitions"], "finalized_at": now}
    invoice["hosted_invoice_url"] = f"{ctx.base_url}/_emulator/invoices/{invoice['id']}"
    invoice["invoice_pdf"] = f"{ctx.base_url}/_emulator/invoices/{invoice['id']}/pdf"
    if invoice["ending_balance"] is None:
        invoice["ending_balance"] = 0
    ctx.emit("invoice.finalized", invoice, created=now)


def mark_paid(
    ctx: Ctx, invoice: JSON, now: int, *, attempted: bool, out_of_band: bool = False
) -> None:
    """Record full payment and emit `invoice.paid` then `invoice.payment_succeeded` (not for a
    payment made outside Stripe: no payment succeeded)."""
    invoice["status"] = "paid"
    invoice["amount_paid"] = invoice["amount_due"]
    invoice["amount_remaining"] = 0
    invoice["next_payment_attempt"] = None
    if attempted:
        invoice["attempted"] = True
    invoice["status_transitions"] = {**invoice["status_transitions"], "paid_at": now}
    ctx.emit("invoice.paid", invoice, created=now)
    if not out_of_band:
        ctx.emit("invoice.payment_succeeded", invoice, created=now)


PaymentMode = Literal["charge", "processing"]


def charge_customer(
    ctx: Ctx,
    *,
    customer: JSON | None,
    amount: int,
    currency: str,
    now: int,
    decline_code: str | None,
    description: str | None = None,
    mode: PaymentMode = "charge",
    intent_fields: JSON | None = None,
) -> JSON:
    """Create a payment intent and its charge; succeeds unless `decline_code` is given.

    `mode="processing"` leaves the payment intent `processing` (a delayed payment method) with no
    charge yet; `settle_intent` finishes it later. `intent_fields` sets more of the intent's
    fields (a checkout session's `payment_intent_data`: `metadata`, `receipt_email`...).
    """
    account = ctx.account
    intent_id = new_id("pi")
    fields: JSON = {"description": description}
    fields.update((key, value) for key, value in (intent_fields or {}).items() if value is not None)
    intent = shapes.payment_intent(
        id=intent_id,
        livemode=account.livemode,
        created=now,
        amount=amount,
        currency=currency,
        customer=None if customer is None else customer["id"],
        client_secret=f"{intent_id}_secret_{random_part(25)}",
        payment_method=_payment_method_id(customer),
        status="processing" if mode == "processing" else "requires_payment_method",
        automatic_payment_methods={"allow_redirects": "always", "enabled": True},
        processing={"type": "card", "card": None} if mode == "processing" else None,
        **fields,
    )
    account.put("payment_intents", intent)
    ctx.emit("payment_intent.created", intent, created=now)
    if mode == "processing":
        ctx.emit("payment_intent.processing", intent, created=now)
        return intent
    settle_intent(ctx, intent, now, decline_code=decline_code)
    return intent


def settle_intent(ctx: Ctx, intent: JSON, now: int, *, decline_code: str | None) -> JSON:
    """Charge `intent` now: `charge.*` then `payment_intent.succeeded|payment_failed`."""
    account = ctx.account
    succeeded = decline_code is None
    charge = shapes.charge(
        id=new_id("ch"),
        livemode=account.livemode,
        created=now,
        amount=intent["amount"],
        amount_captured=intent["amount"] if succeeded else 0,
        currency=intent["currency"],
        customer=intent["customer"],
        description=intent["description"],
        metadata=dict(intent["metadata"]),
        receipt_email=intent["receipt_email"],
        statement_descriptor=intent["statement_descriptor"],
        statement_descriptor_suffix=intent["statement_descriptor_suffix"],
        payment_intent=intent["id"],
        payment_method=intent["payment_method"],
        paid=succeeded,
        captured=succeeded,
        status="succeeded" if succeeded else "failed",
        balance_transaction=new_id("txn") if succeeded else None,
        failure_code=None if succeeded else "card_declined",
        failure_message=None if succeeded else _DECLINE_MESSAGES.get(str(decline_code)),
        outcome={
            "advice_code": None,
            "network_advice_code": None,
            "network_decline_code": None,
            "network_status": "approved_by_network" if succeeded else "declined_by_network",
            "reason": None if succeeded else decline_code,
            "risk_level": "normal",
            "seller_message": "Payment complete."
            if succeeded
            else "The bank declined the payment.",
            "type": "authorized" if succeeded else "issuer_declined",
        },
        payment_method_details={
            "card": {
                "brand": "visa",
                "country": "US",
                "exp_month": 12,
                "exp_year": 2034,
                "funding": "credit",
                "last4": "0002" if decline_code else "4242",
                "network": "visa",
            },
            "type": "card",
        },
        receipt_url=f"{ctx.base_url}/_emulator/receipts/{intent['id']}" if succeeded else None,
        refunds={"object": "list", "data": [], "has_more": False, "url": ""},
    )
    charge["refunds"]["url"] = f"/v1/charges/{charge['id']}/refunds"
    account.put("charges", charge)
    intent["latest_charge"] = charge["id"]
    if succeeded:
        intent["status"] = "succeeded"
        intent["amount_received"] = intent["amount"]
        intent["processing"] = None
        ctx.emit("charge.succeeded", charge, created=now)
        ctx.emit("payment_intent.succeeded", intent, created=now)
    else:
        intent["status"] = "requires_payment_method"
        intent["processing"] = None
        intent["last_payment_error"] = {
            "charge": charge["id"],
            "code": "card_declined",
            "decline_code": decline_code,
            "message": _DECLINE_MESSAGES.get(str(decline_code)),
            "type": "card_error",
        }
        ctx.emit("charge.failed", charge, created=now)
        ctx.emit("payment_intent.payment_failed", intent, created=now)
    return charge


def _payment_method_id(customer: JSON | None) -> str:
    if customer is not None:
        method = (customer.get("invoice_settings") or {}).get("default_payment_method")
        if method:
            return str(method)
    return "pm_card_visa"


def record_invoice_payment(ctx: Ctx, invoice: JSON, intent: JSON, now: int) -> JSON:
    payment = shapes.invoice_payment(
        id=new_id("inpay"),
        livemode=ctx.account.livemode,
        created=now,
        amount_requested=invoice["amount_due"],
        amount_paid=intent["amount_received"] if intent["status"] == "succeeded" else None,
        currency=invoice["currency"],
        invoice=invoice["id"],
        payment={"type": "payment_intent", "payment_intent": intent["id"]},
        status="paid" if intent["status"] == "succeeded" else "open",
        status_transitions={
            "canceled_at": None,
            "paid_at": now if intent["status"] == "succeeded" else None,
        },
    )
    return ctx.account.put("invoice_payments", payment)


def attempt_invoice(
    ctx: Ctx,
    invoice: JSON,
    now: int,
    *,
    decline_code: str | Literal["customer"] | None = "customer",
    mode: PaymentMode = "charge",
) -> bool | None:
    """Try to collect an open invoice. True paid, False declined, None still processing."""
    customer = ctx.account.collection("customers").get(invoice["customer"])
    if invoice["amount_due"] == 0:
        mark_paid(ctx, invoice, now, attempted=False)
        return True
    code = card_outcome(customer) if decline_code == "customer" else decline_code
    intent = charge_customer(
        ctx,
        customer=customer,
        amount=invoice["amount_due"],
        currency=invoice["currency"],
        description=_intent_description(invoice["billing_reason"]),
        now=now,
        decline_code=code,
        mode=mode,
    )
    record_invoice_payment(ctx, invoice, intent, now)
    if mode == "processing":
        return None
    return apply_intent_result(ctx, invoice, intent, now)


def apply_intent_result(ctx: Ctx, invoice: JSON, intent: JSON, now: int) -> bool:
    """Reflect a settled payment intent on its invoice and emit the invoice events."""
    for payment in ctx.account.collection("invoice_payments").values():
        if payment["payment"].get("payment_intent") == intent["id"]:
            succeeded = intent["status"] == "succeeded"
            payment["status"] = "paid" if succeeded else "open"
            payment["amount_paid"] = intent["amount_received"] if succeeded else None
            payment["status_transitions"] = {
                "canceled_at": None,
                "paid_at": now if succeeded else None,
            }
    invoice["attempt_count"] += 1
    invoice["attempted"] = True
    if intent["status"] == "succeeded":
        mark_paid(ctx, invoice, now, attempted=True)
        return True
    if invoice["billing_reason"] == "subscription_create" or invoice["status"] != "open":
        invoice["next_payment_attempt"] = None
    elif invoice["attempt_count"] <= len(RETRY_DAYS):
        invoice["next_payment_attempt"] = now + RETRY_DAYS[invoice["attempt_count"] - 1] * DAY
    else:
        invoice["next_payment_attempt"] = None
    ctx.emit("invoice.payment_failed", invoice, created=now)
    return False


def _intent_description(billing_reason: str) -> str:
    return {
        "subscription_create": "Subscription creation",
        "subscription_cycle": "Subscription update",
        "subscription_update": "Subscription update",
    }.get(billing_reason, "Payment for Invoice")


def void_invoice(ctx: Ctx, invoice: JSON, now: int) -> None:
    """Void an invoice and cancel the payment intents still waiting to collect it."""
    invoice["status"] = "void"
    invoice["amount_remaining"] = 0
    invoice["next_payment_attempt"] = None
    invoice["status_transitions"] = {**invoice["status_transitions"], "voided_at": now}
    ctx.emit("invoice.voided", invoice, created=now)
    for payment in ctx.account.collection("invoice_payments").values():
        if payment["invoice"] != invoice["id"] or payment["status"] != "open":
            continue
        intent = ctx.account.collection("payment_intents").get(
            payment["payment"].get("payment_intent") or ""
        )
        if intent is None or intent["status"] not in _CANCELABLE:
            continue
        intent["status"] = "canceled"
        intent["canceled_at"] = now
        intent["cancellation_reason"] = "void_invoice"
        payment["status"] = "canceled"
        payment["status_transitions"] = {**payment["status_transitions"], "canceled_at": now}
        ctx.emit("payment_intent.canceled", intent, created=now)


# a processing payment can no longer be canceled
_CANCELABLE = ("requires_payment_method", "requires_confirmation", "requires_action")


def mark_uncollectible(ctx: Ctx, invoice: JSON, now: int) -> None:
    before = copy_json(invoice)
    invoice["status"] = "uncollectible"
    invoice["next_payment_attempt"] = None
    invoice["status_transitions"] = {
        **invoice["status_transitions"],
        "marked_uncollectible_at": now,
    }
    ctx.emit("invoice.marked_uncollectible", invoice, created=now)
    ctx.emit("invoice.updated", invoice, previous_attributes(before, invoice), created=now)
