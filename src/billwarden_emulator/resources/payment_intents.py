"""Payment intents made through the API: create, update, confirm, capture, cancel; and the cash
balance test helper that funds `customer_balance` payments.

The payment method decides the outcome (`payment_methods.TEST_CARDS`, the test IBANs): a card
succeeds (`charge.succeeded`, `payment_intent.succeeded`, or with `capture_method=manual`
`payment_intent.amount_capturable_updated` and status `requires_capture`), is declined (`402
card_error`, `charge.failed`, `payment_intent.payment_failed`) or needs authentication (status
`requires_action`, `payment_intent.requires_action`); a SEPA debit goes `processing` and settles at
once (except the slow test IBAN); a cash balance payment waits for funds.
Retrieve and list are served with the invoices (`resources/invoices.py`).
"""

from __future__ import annotations

from billwarden_emulator import shapes
from billwarden_emulator.errors import StripeError, invalid_request
from billwarden_emulator.forms import Params, merge_metadata
from billwarden_emulator.ids import new_id, random_part
from billwarden_emulator.resources import payment_methods as methods
from billwarden_emulator.resources import post
from billwarden_emulator.state import JSON, Ctx, copy_json, previous_attributes

_CAPTURE_METHODS = ("automatic", "automatic_async", "manual")
_CANCELABLE = (
    "requires_payment_method",
    "requires_capture",
    "requires_confirmation",
    "requires_action",
    "processing",
)
_CONFIRMABLE = ("requires_payment_method", "requires_confirmation", "requires_action")
_CANCELLATION_REASONS = ("abandoned", "duplicate", "fraudulent", "requested_by_customer")
_ACCEPTED = (
    "amount_details",
    "application_fee_amount",
    "automatic_payment_methods",
    "confirmation_token",
    "excluded_payment_method_types",
    "hooks",
    "mandate",
    "on_behalf_of",
    "payment_details",
    "payment_method_configuration",
    "payment_method_options",
    "radar_options",
    "transfer_data",
    "transfer_group",
    "use_stripe_sdk",
)


def _unexpected_state(action: str, intent: JSON, allowed: tuple[str, ...]) -> StripeError:
    return invalid_request(
        f"You cannot {action} this PaymentIntent because it has a status of {intent['status']}. "
        f"Only a PaymentIntent with one of the following statuses may be {action}ed: "
        f"{', '.join(allowed)}.",
        code="payment_intent_unexpected_state",
    )


def _shipping(params: Params) -> JSON | None:
    shipping = params.nested("shipping")
    if shipping is None:
        return None
    address = shipping.nested("address", required=True)
    assert address is not None
    fields = ("city", "country", "line1", "line2", "postal_code", "state")
    result: JSON = {
        "address": {field: address.str(field) for field in fields},
        "carrier": shipping.str("carrier"),
        "name": shipping.str("name", required=True),
        "phone": shipping.str("phone"),
        "tracking_number": shipping.str("tracking_number"),
    }
    address.finish()
    shipping.finish()
    return result


def _apply_fields(ctx: Ctx, intent: JSON, params: Params) -> None:
    """Fields create, update and confirm share."""
    for field in ("description", "receipt_email", "statement_descriptor"):
        if params.has(field):
            intent[field] = params.str(field)
    if params.has("statement_descriptor_suffix"):
        intent["statement_descriptor_suffix"] = params.str("statement_descriptor_suffix")
    if params.has("setup_future_usage"):
        intent["setup_future_usage"] = params.str(
            "setup_future_usage", choices=("off_session", "on_session")
        )
    if params.has("shipping"):
        intent["shipping"] = _shipping(params)
    if params.has("capture_method"):
        intent["capture_method"] = params.str("capture_method", choices=_CAPTURE_METHODS)
    types = params.strings("payment_method_types")
    if types:
        intent["payment_method_types"] = types
    data = params.nested("payment_method_data")
    if data is not None:
        method = methods.payment_method_from_data(ctx, data, param="payment_method_data")
        intent["payment_method"] = method["id"]
        if not types:
            intent["payment_method_types"] = [method["type"]]
    method_id = params.str("payment_method")
    if method_id is not None:
        method = methods.resolve_payment_method(ctx, method_id, param="payment_method")
        intent["payment_method"] = method["id"]
        if method["type"] not in intent["payment_method_types"] and not types:
            intent["payment_method_types"] = [method["type"]]
    options = params.nested("payment_method_options")
    if options is not None:
        intent["payment_method_options"] = _options(options)


def _options(options: Params) -> JSON:
    """`payment_method_options` as sent (the emulator acts on `customer_balance` only)."""
    return dict(options.data)


@post("/v1/payment_intents")
def create_payment_intent(ctx: Ctx, params: Params) -> JSON:
    account = ctx.account
    amount = params.int("amount", required=True, minimum=1)
    currency = (params.str("currency", required=True) or "").lower()
    customer_id = params.str("customer")
    if customer_id is not None:
        account.get("customers", customer_id, param="customer")
    now = account.now_for(customer_id)
    intent_id = new_id("pi")
    automatic = params.nested("automatic_payment_methods")
    intent = shapes.payment_intent(
        id=intent_id,
        livemode=account.livemode,
        created=now,
        amount=amount,
        currency=currency,
        customer=customer_id,
        client_secret=f"{intent_id}_secret_{random_part(25)}",
        metadata=params.metadata() or {},
        confirmation_method=params.str("confirmation_method", choices=("automatic", "manual"))
        or "automatic",
        automatic_payment_methods=None
        if automatic is None
        else {
            "allow_redirects": automatic.str("allow_redirects", choices=("always", "never"))
            or "always",
            "enabled": bool(automatic.bool("enabled", required=True)),
        },
    )
    if automatic is not None:
        automatic.finish()
    _apply_fields(ctx, intent, params)
    confirm = params.bool("confirm")
    off_session = _off_session(params)
    return_url = params.str("return_url")
    error_on_action = params.bool("error_on_requires_action")
    params.accept(*_ACCEPTED, "mandate_data")
    params.finish()
    if intent["payment_method"] is not None:
        intent["status"] = "requires_confirmation"
    account.put("payment_intents", intent)
    ctx.emit("payment_intent.created", intent, created=now)
    if confirm:
        confirm_intent(
            ctx,
            intent,
            off_session=off_session,
            return_url=return_url,
            error_on_action=bool(error_on_action),
        )
    return intent


def _off_session(params: Params) -> bool:
    value = params.raw("off_session")
    if value in ("one_off", "recurring", "true"):
        return True
    if value in (None, "", "false"):
        return False
    raise invalid_request(
        f"Invalid boolean: {value}", param="off_session", code="parameter_invalid"
    )


@post("/v1/payment_intents/{id}")
def update_payment_intent(ctx: Ctx, params: Params, id: str) -> JSON:
    intent = ctx.account.get("payment_intents", id, param="intent")
    if intent["status"] not in _CONFIRMABLE and any(
        params.has(name) for name in ("amount", "currency", "payment_method", "customer")
    ):
        raise _unexpected_state("update", intent, _CONFIRMABLE)
    if params.has("amount"):
        intent["amount"] = params.int("amount", minimum=1)
    if params.has("currency"):
        intent["currency"] = (params.str("currency") or "").lower()
    customer_id = params.str("customer")
    if customer_id is not None:
        ctx.account.get("customers", customer_id, param="customer")
        intent["customer"] = customer_id
    intent["metadata"] = merge_metadata(intent["metadata"], params.metadata())
    _apply_fields(ctx, intent, params)
    params.accept(*_ACCEPTED)
    params.finish()
    if intent["status"] == "requires_payment_method" and intent["payment_method"] is not None:
        intent["status"] = "requires_confirmation"
    # Stripe has no payment_intent.updated event
    return intent


@post("/v1/payment_intents/{id}/confirm")
def confirm_payment_intent(ctx: Ctx, params: Params, id: str) -> JSON:
    intent = ctx.account.get("payment_intents", id, param="intent")
    if intent["status"] not in _CONFIRMABLE:
        raise _unexpected_state("confirm", intent, _CONFIRMABLE)
    _apply_fields(ctx, intent, params)
    off_session = _off_session(params)
    return_url = params.str("return_url")
    error_on_action = params.bool("error_on_requires_action")
    params.accept(*_ACCEPTED, "mandate_data", "client_secret")
    params.finish()
    confirm_intent(
        ctx,
        intent,
        off_session=off_session,
        return_url=return_url,
        error_on_action=bool(error_on_action),
    )
    return intent


def confirm_intent(
    ctx: Ctx,
    intent: JSON,
    *,
    off_session: bool = False,
    return_url: str | None = None,
    error_on_action: bool = False,
) -> None:
    """Pay `intent` with its payment method now; raises `card_error` on a decline."""
    method_id = intent["payment_method"]
    if method_id is None:
        raise invalid_request(
            "You cannot confirm this PaymentIntent because it's missing a payment method. "
            "Update the PaymentIntent with a payment method and then confirm it again.",
            param="payment_method",
            code="payment_intent_unexpected_state",
        )
    account = ctx.account
    method = account.get("payment_methods", method_id, param="payment_method")
    now = account.now_for(intent["customer"])
    intent["last_payment_error"] = None
    intent["next_action"] = None
    if intent["customer"] is not None and intent["setup_future_usage"] is not None:
        customer = account.get("customers", intent["customer"], param="customer")
        methods.attach(ctx, method, customer)
    if method["type"] == "customer_balance":
        _await_cash_balance(ctx, intent, now)
        return
    if method["type"] == "sepa_debit":
        intent["status"] = "processing"
        intent["processing"] = None
        ctx.emit("payment_intent.processing", intent, created=now)
        if methods.test_iban(ctx, method_id) in methods.SLOW_IBANS:
            return
    card = methods.test_card(ctx, method_id)
    outcome = methods.payment_method_outcome(ctx, method_id)
    if outcome == "requires_action" and card is not None:
        if off_session and card.off_session_ok:
            outcome = "succeeded"
        elif off_session or error_on_action:
            outcome = "declined"
        else:
            _require_action(ctx, intent, now, return_url)
            return
    decline = None if outcome == "succeeded" else methods.payment_method_decline(ctx, method_id)
    charge = charge_intent(ctx, intent, method, now, decline=decline)
    if decline is not None and method["type"] == "card":
        raise methods.card_error(
            *decline,
            extra={
                "charge": charge["id"],
                "payment_intent": copy_json(intent),
                "payment_method": copy_json(method),
            },
        )


def _require_action(ctx: Ctx, intent: JSON, now: int, return_url: str | None) -> None:
    intent["status"] = "requires_action"
    if return_url is not None:
        intent["next_action"] = {
            "type": "redirect_to_url",
            "redirect_to_url": {
                "return_url": return_url,
                "url": f"{ctx.base_url}/_emulator/authenticate/{intent['id']}",
            },
        }
    else:
        intent["next_action"] = {
            "type": "use_stripe_sdk",
            "use_stripe_sdk": {"type": "three_d_secure_redirect", "source": None},
        }
    ctx.emit("payment_intent.requires_action", intent, created=now)


def _decline_message(decline_code: str) -> str:
    return methods.MESSAGES.get(decline_code, "Your card was declined.")


def charge_intent(
    ctx: Ctx, intent: JSON, method: JSON, now: int, *, decline: tuple[str, str] | None
) -> JSON:
    """Create the charge of `intent` (succeeded, authorized only, or failed) and emit the
    `charge.*` and `payment_intent.*` events that follow."""
    succeeded = decline is None
    manual = intent["capture_method"] == "manual" and succeeded
    captured = succeeded and not manual
    charge = shapes.charge(
        id=new_id("ch"),
        livemode=ctx.account.livemode,
        created=now,
        amount=intent["amount"],
        amount_captured=intent["amount"] if captured else 0,
        currency=intent["currency"],
        customer=intent["customer"],
        description=intent["description"],
        metadata=dict(intent["metadata"]),
        receipt_email=intent["receipt_email"],
        shipping=intent["shipping"],
        statement_descriptor=intent["statement_descriptor"],
        statement_descriptor_suffix=intent["statement_descriptor_suffix"],
        payment_intent=intent["id"],
        payment_method=method["id"],
        billing_details=copy_json(method["billing_details"]),
        paid=succeeded,
        captured=captured,
        status="succeeded" if succeeded else "failed",
        balance_transaction=new_id("txn") if captured else None,
        failure_code=None if decline is None else decline[0],
        failure_message=None if decline is None else _decline_message(decline[1]),
        outcome={
            "advice_code": None,
            "network_advice_code": None,
            "network_decline_code": None,
            "network_status": "approved_by_network" if succeeded else "declined_by_network",
            "reason": None if decline is None else decline[1],
            "risk_level": "normal",
            "seller_message": "Payment complete."
            if succeeded
            else "The bank declined the payment.",
            "type": "authorized" if succeeded else "issuer_declined",
        },
        payment_method_details={
            "type": method["type"],
            method["type"]: _charge_method_details(method),
        },
        receipt_url=f"{ctx.base_url}/_emulator/receipts/{intent['id']}" if succeeded else None,
        refunds={"object": "list", "data": [], "has_more": False, "url": ""},
    )
    charge["refunds"]["url"] = f"/v1/charges/{charge['id']}/refunds"
    ctx.account.put("charges", charge)
    intent["latest_charge"] = charge["id"]
    intent["processing"] = None
    if decline is not None:
        intent["status"] = "requires_payment_method"
        intent["last_payment_error"] = {
            "charge": charge["id"],
            "code": decline[0],
            "decline_code": decline[1],
            "doc_url": f"https://stripe.com/docs/error-codes/{decline[0]}",
            "message": _decline_message(decline[1]),
            "payment_method": copy_json(method),
            "type": "card_error",
        }
        ctx.emit("charge.failed", charge, created=now)
        ctx.emit("payment_intent.payment_failed", intent, created=now)
    elif manual:
        intent["status"] = "requires_capture"
        intent["amount_capturable"] = intent["amount"]
        ctx.emit("charge.succeeded", charge, created=now)
        ctx.emit("payment_intent.amount_capturable_updated", intent, created=now)
    else:
        intent["status"] = "succeeded"
        intent["amount_received"] = intent["amount"]
        ctx.emit("charge.succeeded", charge, created=now)
        ctx.emit("payment_intent.succeeded", intent, created=now)
    return charge


def _charge_method_details(method: JSON) -> JSON:
    details = copy_json(method.get(method["type"]) or {})
    if method["type"] == "card":
        for field in ("display_brand", "generated_from", "wallet"):
            details.pop(field, None)
        details["network"] = details["brand"]
    return details


@post("/v1/payment_intents/{id}/capture")
def capture_payment_intent(ctx: Ctx, params: Params, id: str) -> JSON:
    intent = ctx.account.get("payment_intents", id, param="intent")
    amount = params.int("amount_to_capture", minimum=1)
    intent["metadata"] = merge_metadata(intent["metadata"], params.metadata())
    params.accept(
        "application_fee_amount",
        "final_capture",
        "statement_descriptor",
        "statement_descriptor_suffix",
        "transfer_data",
        "hooks",
        "amount_details",
        "payment_details",
    )
    params.finish()
    if intent["status"] != "requires_capture":
        raise invalid_request(
            "This PaymentIntent could not be captured because it has a status of "
            f"{intent['status']}. Only a PaymentIntent with one of the following statuses may "
            "be captured: requires_capture.",
            code="payment_intent_unexpected_state",
        )
    if amount is None:
        amount = intent["amount_capturable"]
    if amount > intent["amount_capturable"]:
        raise invalid_request(
            "The amount to capture must be less than or equal to the amount capturable "
            f"({intent['amount_capturable']}).",
            param="amount_to_capture",
            code="amount_too_large",
        )
    now = ctx.account.now_for(intent["customer"])
    charge = ctx.account.get("charges", intent["latest_charge"], param="charge")
    before = copy_json(charge)
    charge["captured"] = True
    charge["amount_captured"] = amount
    charge["balance_transaction"] = new_id("txn")
    intent["status"] = "succeeded"
    intent["amount_capturable"] = 0
    intent["amount_received"] = amount
    ctx.emit("charge.captured", charge, previous_attributes(before, charge), created=now)
    ctx.emit("payment_intent.succeeded", intent, created=now)
    return intent


@post("/v1/payment_intents/{id}/cancel")
def cancel_payment_intent(ctx: Ctx, params: Params, id: str) -> JSON:
    intent = ctx.account.get("payment_intents", id, param="intent")
    reason = params.str("cancellation_reason", choices=_CANCELLATION_REASONS)
    params.finish()
    if intent["status"] not in _CANCELABLE:
        raise _unexpected_state("cancel", intent, _CANCELABLE)
    now = ctx.account.now_for(intent["customer"])
    if intent["status"] == "requires_capture":
        # the authorization is released: the uncaptured charge is refunded in full
        charge = ctx.account.get("charges", intent["latest_charge"], param="charge")
        before = copy_json(charge)
        charge["amount_refunded"] = charge["amount"]
        charge["refunded"] = True
        ctx.emit("charge.refunded", charge, previous_attributes(before, charge), created=now)
        intent["amount_capturable"] = 0
    intent["status"] = "canceled"
    intent["canceled_at"] = now
    intent["cancellation_reason"] = reason
    intent["next_action"] = None
    ctx.emit("payment_intent.canceled", intent, created=now)
    return intent


# --- customer cash balance (`customer_balance` payments) --------------------------------------


def _cash(ctx: Ctx, customer_id: str) -> dict[str, int]:
    balances: dict[str, dict[str, int]] = ctx.account.internal.setdefault("cash_balances", {})
    return balances.setdefault(customer_id, {})


def _await_cash_balance(ctx: Ctx, intent: JSON, now: int) -> None:
    if intent["customer"] is None:
        raise invalid_request(
            "A customer is required to use the customer_balance payment method.",
            param="customer",
        )
    intent["status"] = "requires_action"
    intent["next_action"] = {
        "type": "display_bank_transfer_instructions",
        "display_bank_transfer_instructions": {
            "amount_remaining": intent["amount"],
            "currency": intent["currency"],
            "financial_addresses": [],
            "hosted_instructions_url": f"{ctx.base_url}/_emulator/payment_intents/{intent['id']}",
            "reference": random_part(8).upper(),
            "type": _transfer_type(intent),
        },
    }
    _apply_cash(ctx, intent, now)
    if intent["status"] == "requires_action":
        ctx.emit("payment_intent.requires_action", intent, created=now)


def _transfer_type(intent: JSON) -> str:
    options = intent["payment_method_options"].get("customer_balance") or {}
    transfer = options.get("bank_transfer") or {}
    requested = transfer.get("type") if isinstance(transfer, dict) else None
    return {
        "jp_bank_account": "jp_bank_transfer",
        "eu_bank_account": "eu_bank_transfer",
        "gb_bank_account": "gb_bank_transfer",
        "mx_bank_account": "mx_bank_transfer",
        "us_bank_account": "us_bank_transfer",
    }.get(str(requested), "us_bank_transfer")


def _apply_cash(ctx: Ctx, intent: JSON, now: int) -> bool:
    """Move what the customer's cash balance holds onto `intent`; True when it changed."""
    cash = _cash(ctx, intent["customer"])
    instructions = intent["next_action"]["display_bank_transfer_instructions"]
    available = cash.get(intent["currency"], 0)
    applied = min(available, instructions["amount_remaining"])
    if applied == 0:
        return False
    cash[intent["currency"]] = available - applied
    instructions["amount_remaining"] -= applied
    intent["amount_received"] += applied
    if instructions["amount_remaining"] > 0:
        ctx.emit("payment_intent.partially_funded", intent, created=now)
        return True
    method = ctx.account.get("payment_methods", intent["payment_method"], param="payment_method")
    intent["next_action"] = None
    intent["amount_received"] = 0
    charge_intent(ctx, intent, method, now, decline=None)
    return True


@post("/v1/test_helpers/customers/{id}/fund_cash_balance")
def fund_cash_balance(ctx: Ctx, params: Params, id: str) -> JSON:
    customer = ctx.account.get("customers", id, param="customer")
    amount = params.int("amount", required=True, minimum=1)
    currency = (params.str("currency", required=True) or "").lower()
    reference = params.str("reference")
    params.finish()
    assert amount is not None
    now = ctx.account.now_for(id)
    cash = _cash(ctx, id)
    cash[currency] = cash.get(currency, 0) + amount
    transaction: JSON = {
        "created": now,
        "currency": currency,
        "customer": customer["id"],
        "ending_balance": cash[currency],
        "funded": {
            "bank_transfer": {
                "reference": reference or random_part(8).upper(),
                "type": "jp_bank_transfer" if currency == "jpy" else "us_bank_transfer",
            }
        },
        "id": new_id("ccsbtxn"),
        "livemode": ctx.account.livemode,
        "net_amount": amount,
        "object": "customer_cash_balance_transaction",
        "type": "funded",
        "customer_account": None,
    }
    ctx.emit("customer_cash_balance_transaction.created", transaction, created=now)
    for intent in list(ctx.account.collection("payment_intents").values()):
        if (
            intent["customer"] == id
            and intent["currency"] == currency
            and intent["status"] == "requires_action"
            and (intent["next_action"] or {}).get("type") == "display_bank_transfer_instructions"
        ):
            _apply_cash(ctx, intent, now)
    return transaction
