"""Invoices and the payment intents and charges that pay them.

Every invoice is finalized as soon as it is created (Stripe waits about an hour before finalizing
renewal invoices); a charge succeeds or fails at once according to the customer's test card
(see `billwarden_emulator.resources.customers`).
"""

from __future__ import annotations

import math
from typing import Literal

from billwarden_emulator import shapes
from billwarden_emulator.ids import new_id, random_part
from billwarden_emulator.resources import coupons
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
    discounts: list[str] | None = None,
    include_pending_items: bool | None = None,
    fields: JSON | None = None,
) -> JSON:
    """Store a draft invoice over `lines` and emit `invoice.created`.

    A subscription's invoice (and any invoice with `include_pending_items`) also bills the
    customer's pending invoice items; `discounts` (discount ids) default to the subscription's,
    else the customer's, that still apply.
    """
    invoice_id = invoice_id or new_id("in")
    for line in lines:
        line["invoice"] = invoice_id
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
        **(fields or {}),
    )
    if include_pending_items if include_pending_items is not None else subscription is not None:
        for item in pending_invoice_items(ctx, customer["id"], subscription):
            add_invoice_item(ctx, invoice, item)
    invoice["discounts"] = (
        discounts
        if discounts is not None
        else applicable_discounts(ctx, customer, subscription, now)
    )
    price_invoice(ctx, invoice)
    total = invoice["total"]
    if total < 0:
        # a credit goes to the customer's balance, as Stripe does
        customer["balance"] += total
        invoice["ending_balance"] = customer["balance"]
    ctx.account.put("invoices", invoice)
    ctx.emit("invoice.created", invoice, created=now)
    return invoice


# --- invoice items and discounts on invoices ---------------------------------------------------


def pending_invoice_items(ctx: Ctx, customer_id: str, subscription: JSON | None) -> list[JSON]:
    """The customer's invoice items not yet on an invoice (those of another subscription wait
    for that subscription's invoice), oldest first."""
    subscription_id = None if subscription is None else subscription["id"]
    found = []
    for item in ctx.account.collection("invoiceitems").values():
        if item["customer"] != customer_id or item["invoice"] is not None:
            continue
        owner = ((item["parent"] or {}).get("subscription_details") or {}).get("subscription")
        if owner is None or owner == subscription_id:
            found.append(item)
    return found


def add_invoice_item(ctx: Ctx, invoice: JSON, item: JSON) -> JSON:
    """Put a pending invoice item on a draft invoice as one of its lines."""
    item["invoice"] = invoice["id"]
    owner = ((item["parent"] or {}).get("subscription_details") or {}).get("subscription")
    line = shapes.invoice_line(
        id=new_id("il"),
        livemode=ctx.account.livemode,
        amount=item["amount"],
        subtotal=item["amount"],
        currency=item["currency"],
        description=item["description"],
        discountable=item["discountable"],
        invoice=invoice["id"],
        period=dict(item["period"]),
        quantity=item["quantity"],
        quantity_decimal=item["quantity_decimal"],
        metadata=dict(item["metadata"]),
        subscription=owner,
        parent={
            "invoice_item_details": {
                "invoice_item": item["id"],
                "proration": item["proration"],
                "proration_details": {"credited_items": None},
                "subscription": owner,
            },
            "subscription_item_details": None,
            "type": "invoice_item_details",
        },
        pricing=copy_json(item["pricing"]) if item["pricing"] is not None else None,
    )
    invoice["lines"]["data"].append(line)
    return line


def remove_invoice_item(invoice: JSON, item_id: str) -> None:
    invoice["lines"]["data"] = [
        line
        for line in invoice["lines"]["data"]
        if ((line["parent"] or {}).get("invoice_item_details") or {}).get("invoice_item") != item_id
    ]


def applicable_discounts(
    ctx: Ctx, customer: JSON, subscription: JSON | None, now: int
) -> list[str]:
    """The subscription's discounts, else the customer's, dropping those that have ended (a
    `once` coupon already used, a `repeating` one past its end) with `customer.discount.deleted`."""
    used: list[str] = ctx.account.internal.setdefault("discounts_used", [])
    if subscription is not None and subscription["discounts"]:
        kept = []
        for discount_id in list(subscription["discounts"]):
            discount = ctx.account.collection("discounts").get(discount_id)
            if discount is None or _discount_ended(ctx, discount, used, now):
                coupons.remove_subscription_discount(ctx, subscription, discount_id, now)
            else:
                kept.append(discount_id)
        if kept:
            used.extend(d for d in kept if d not in used)
            return kept
    discount = customer["discount"]
    if discount is None:
        return []
    if _discount_ended(ctx, discount, used, now):
        before = copy_json(customer)
        events = coupons.set_customer_discount(ctx, customer, [], now=now)
        ctx.emit("customer.updated", customer, previous_attributes(before, customer), created=now)
        coupons.emit_all(ctx, events, now=now)
        return []
    if discount["id"] not in used:
        used.append(discount["id"])
    return [discount["id"]]


def _discount_ended(ctx: Ctx, discount: JSON, used: list[str], now: int) -> bool:
    if discount["end"] is not None and now >= discount["end"]:
        return True
    return coupons.coupon_of(ctx, discount)["duration"] == "once" and discount["id"] in used


def _round_half_up(value: float) -> int:
    return math.floor(value + 0.5)


def price_invoice(ctx: Ctx, invoice: JSON) -> None:
    """Recompute an invoice's amounts from its lines, its discounts and its credit notes."""
    lines = invoice["lines"]["data"]
    subtotal = sum(line["amount"] for line in lines)
    remaining = {line["id"]: line["amount"] for line in lines}
    for line in lines:
        line["discount_amounts"] = []
    totals = []
    for discount_id in invoice["discounts"]:
        discount = ctx.account.collection("discounts").get(discount_id)
        if discount is None:
            continue
        coupon = coupons.coupon_of(ctx, discount)
        shares = _discount_shares(coupon, invoice["currency"], lines, remaining)
        for line in lines:
            share = shares.get(line["id"], 0)
            remaining[line["id"]] -= share
            line["discount_amounts"].append({"amount": share, "discount": discount_id})
        totals.append({"amount": sum(shares.values()), "discount": discount_id})
    invoice["total_discount_amounts"] = totals
    total = subtotal - sum(entry["amount"] for entry in totals)
    invoice["subtotal"] = invoice["subtotal_excluding_tax"] = subtotal
    invoice["total"] = invoice["total_excluding_tax"] = total
    credited = invoice["pre_payment_credit_notes_amount"]
    invoice["amount_due"] = max(total - credited, 0)
    invoice["amount_remaining"] = max(invoice["amount_due"] - invoice["amount_paid"], 0)


def _discount_shares(
    coupon: JSON, currency: str, lines: list[JSON], remaining: dict[str, int]
) -> dict[str, int]:
    """What one coupon takes off each discountable line (after earlier discounts)."""
    eligible = [line for line in lines if line["discountable"] and remaining[line["id"]] > 0]
    if coupon["percent_off"] is not None:
        return {
            line["id"]: _round_half_up(remaining[line["id"]] * coupon["percent_off"] / 100)
            for line in eligible
        }
    if coupon["amount_off"] is None or coupon["currency"] != currency:
        return {}
    base = sum(remaining[line["id"]] for line in eligible)
    off = min(coupon["amount_off"], base)
    shares: dict[str, int] = {}
    given = 0
    for index, line in enumerate(eligible):
        if index == len(eligible) - 1:
            share = off - given
        else:
            share = _round_half_up(off * remaining[line["id"]] / base)
        shares[line["id"]] = share
        given += share
    return shares


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


PaymentMode = Literal["charge", "processing", "action"]


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
    payment_method: str | None = None,
) -> JSON:
    """Create a payment intent and its charge; succeeds unless `decline_code` is given.

    `mode="action"` leaves it `requires_action` (3D Secure asked for) with no charge.

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
        payment_method=payment_method or _payment_method_id(customer),
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
    if mode == "action":
        intent["status"] = "requires_action"
        intent["next_action"] = {
            "type": "use_stripe_sdk",
            "use_stripe_sdk": {"type": "three_d_secure_redirect", "stripe_js": ""},
        }
        ctx.emit("payment_intent.requires_action", intent, created=now)
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
    payment_method: str | None = None,
) -> bool | None:
    """Try to collect an open invoice. True paid, False declined, None still processing or
    waiting for the customer's action (`invoice.payment_action_required`)."""
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
        payment_method=payment_method,
    )
    record_invoice_payment(ctx, invoice, intent, now)
    if mode == "processing":
        return None
    if mode == "action":
        invoice["attempt_count"] += 1
        invoice["attempted"] = True
        ctx.emit("invoice.payment_action_required", invoice, created=now)
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
