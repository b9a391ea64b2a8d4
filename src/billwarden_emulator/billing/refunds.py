"""Refunds of succeeded charges, whole or in part, with Stripe's refusals and events.

A card refund succeeds at once, as in Stripe's test mode: the charge's `amount_refunded`,
`refunded` and `refunds` change, then `charge.refunded` (with `previous_attributes`) and
`refund.created` are emitted. The payment intent and any invoice the charge paid are left as they
are, as Stripe leaves them.
"""

from __future__ import annotations

from billwarden_emulator import shapes
from billwarden_emulator.billing.money import format_amount
from billwarden_emulator.errors import invalid_request
from billwarden_emulator.ids import new_id
from billwarden_emulator.state import JSON, Ctx, copy_json, previous_attributes

REASONS = ("duplicate", "fraudulent", "requested_by_customer")


def refundable_charge(ctx: Ctx, *, charge_id: str | None, intent_id: str | None) -> JSON:
    """The charge a refund request names, directly or through its payment intent."""
    account = ctx.account
    if charge_id is not None and intent_id is not None:
        raise invalid_request(
            "You may only specify one of these parameters: charge, payment_intent.",
            param="payment_intent",
        )
    if charge_id is not None:
        charge = account.get("charges", charge_id, param="charge")
        intent_id = charge["payment_intent"]
        if charge["status"] == "succeeded":
            return charge
    elif intent_id is not None:
        intent = account.get("payment_intents", intent_id, param="payment_intent")
        latest = account.collection("charges").get(intent["latest_charge"] or "")
        if latest is not None and latest["status"] == "succeeded":
            return latest
    else:
        raise invalid_request(
            "One of the following params should be provided for this request: payment_intent "
            "or charge."
        )
    raise invalid_request(
        f"This PaymentIntent ({intent_id}) does not have a successful charge to refund."
    )


def refund_charge(
    ctx: Ctx,
    charge: JSON,
    *,
    amount: int | None,
    reason: str | None,
    metadata: dict[str, str],
) -> JSON:
    """Refund `amount` (default: all that is left) of a succeeded charge."""
    remaining = charge["amount_captured"] - charge["amount_refunded"]
    if remaining <= 0:
        raise invalid_request(
            f"Charge {charge['id']} has already been refunded.", code="charge_already_refunded"
        )
    if amount is None:
        amount = remaining
    if amount > remaining:
        # Stripe answers this one with no error code
        raise invalid_request(
            f"Refund amount ({format_amount(amount, charge['currency'])}) is greater than "
            f"unrefunded amount on charge ({format_amount(remaining, charge['currency'])})",
            param="amount",
        )
    now = ctx.account.now_for(charge["customer"])
    refund = shapes.refund(
        id=new_id("re"),
        amount=amount,
        balance_transaction=new_id("txn"),
        charge=charge["id"],
        created=now,
        currency=charge["currency"],
        destination_details={
            "card": {
                "reference": None,
                "reference_status": "pending",
                "reference_type": "acquirer_reference_number",
                "type": "refund",
            },
            "type": "card",
        },
        metadata=dict(metadata),
        payment_intent=charge["payment_intent"],
        payment_method=charge["payment_method"],
        reason=reason,
    )
    ctx.account.put("refunds", refund)
    before = copy_json(charge)
    charge["amount_refunded"] += amount
    charge["refunded"] = charge["amount_refunded"] >= charge["amount_captured"]
    charge["refunds"] = {
        **charge["refunds"],
        "data": [refund, *charge["refunds"]["data"]],  # newest first, as Stripe lists them
    }
    ctx.emit("charge.refunded", charge, previous_attributes(before, charge), created=now)
    ctx.emit("refund.created", refund, created=now)
    return refund
