"""Payment methods (create, retrieve, update, list, attach, detach) and the test cards and IBANs
that decide payment outcomes, as Stripe documents them (https://docs.stripe.com/testing).

A `pm_card_*` test id (or a `tok_*` test token) used anywhere a payment method is expected becomes
a new `pm_` object that remembers its test card, so `payment_method_outcome` answers for either.
Customers' legacy card sources (`/v1/customers/{id}/sources`) live in `sources.py`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal

from billwarden_emulator.errors import StripeError, invalid_request
from billwarden_emulator.forms import Params, merge_metadata
from billwarden_emulator.ids import new_id
from billwarden_emulator.listing import NewestFirst, newest_first, page
from billwarden_emulator.resources import get, post
from billwarden_emulator.shapes import payments as payment_shapes
from billwarden_emulator.shapes._base import _address
from billwarden_emulator.state import JSON, Ctx, copy_json, previous_attributes

Outcome = Literal["succeeded", "declined", "requires_action"]


@dataclass(frozen=True)
class TestCard:
    brand: str
    last4: str
    funding: str = "credit"
    country: str = "US"
    # what a payment with the card does; `decline` is (error code, decline code)
    payment: Outcome = "succeeded"
    # what attaching or setting the card up does (a $0 check)
    setup: Outcome = "succeeded"
    decline: tuple[str, str] | None = None
    # authentication only on setup and on-session payments (off-session payments go through)
    off_session_ok: bool = False


def _declining(last4: str, code: str, decline_code: str) -> TestCard:
    return TestCard(
        "visa", last4, payment="declined", setup="declined", decline=(code, decline_code)
    )


def _authenticating(last4: str, *, off_session_ok: bool = False) -> TestCard:
    return TestCard(
        "visa",
        last4,
        payment="requires_action",
        setup="requires_action",
        decline=("authentication_required", "authentication_required"),
        off_session_ok=off_session_ok,
    )


# `pm_card_<name>` and `tok_<name>`
TEST_CARDS: dict[str, TestCard] = {
    "visa": TestCard("visa", "4242"),
    "visa_debit": TestCard("visa", "5556", funding="debit"),
    "mastercard": TestCard("mastercard", "4444"),
    "mastercard_debit": TestCard("mastercard", "8210", funding="debit"),
    "amex": TestCard("amex", "8431"),
    "discover": TestCard("discover", "1117"),
    "threeDSecureOptional": TestCard("visa", "3055"),
    "chargeDeclined": _declining("0002", "card_declined", "generic_decline"),
    "visa_chargeDeclined": _declining("0002", "card_declined", "generic_decline"),
    "chargeDeclinedInsufficientFunds": _declining("9995", "card_declined", "insufficient_funds"),
    "visa_chargeDeclinedInsufficientFunds": _declining(
        "9995", "card_declined", "insufficient_funds"
    ),
    "chargeDeclinedLostCard": _declining("9987", "card_declined", "lost_card"),
    "visa_chargeDeclinedLostCard": _declining("9987", "card_declined", "lost_card"),
    "chargeDeclinedStolenCard": _declining("9979", "card_declined", "stolen_card"),
    "visa_chargeDeclinedStolenCard": _declining("9979", "card_declined", "stolen_card"),
    "chargeDeclinedFraudulent": _declining("0019", "card_declined", "fraudulent"),
    "chargeDeclinedExpiredCard": _declining("0069", "expired_card", "expired_card"),
    "chargeDeclinedIncorrectCvc": _declining("0127", "incorrect_cvc", "incorrect_cvc"),
    "chargeDeclinedProcessingError": _declining("0119", "processing_error", "processing_error"),
    # attaches (and sets up) fine; every charge is declined
    "chargeCustomerFail": TestCard(
        "visa", "0341", payment="declined", decline=("card_declined", "generic_decline")
    ),
    "authenticationRequired": _authenticating("3184"),
    "authenticationRequiredOnSetup": _authenticating("3155", off_session_ok=True),
    "threeDSecureRequired": _authenticating("3063"),
    "threeDSecure2Required": _authenticating("3220"),
}

_CARD_NUMBERS = {
    "4242424242424242": "visa",
    "4000056655665556": "visa_debit",
    "5555555555554444": "mastercard",
    "378282246310005": "amex",
    "4000000000000002": "chargeDeclined",
    "4000000000009995": "chargeDeclinedInsufficientFunds",
    "4000000000000341": "chargeCustomerFail",
    "4000002760003184": "authenticationRequired",
    "4000002500003155": "authenticationRequiredOnSetup",
    "4000000000003220": "threeDSecure2Required",
}

# SEPA Direct Debit test IBANs whose payment fails (after `processing`); the brief's CLI fixture
# `checkout.session.async_payment_failed` pays with the Italian one
FAILING_IBANS = ("AT861904300235473202", "IT60X0542811101000000123456")
# "succeeds after three minutes": the emulator has no timer, so it stays `processing`
SLOW_IBANS = ("AT321904300235473204",)

MESSAGES = {
    "generic_decline": "Your card was declined.",
    "insufficient_funds": "Your card has insufficient funds.",
    "lost_card": "Your card was declined.",
    "stolen_card": "Your card was declined.",
    "fraudulent": "Your card was declined.",
    "expired_card": "Your card has expired.",
    "incorrect_cvc": "Your card's security code is incorrect.",
    "processing_error": "An error occurred while processing your card. Try again in a little bit.",
    "authentication_required": "Your card was declined. This transaction requires authentication.",
}

_TYPES = ("card", "sepa_debit", "customer_balance")


def _cards(ctx: Ctx) -> dict[str, str]:
    """Payment method id -> what decides its outcome: a test card name, `iban:<IBAN>`, or a type."""
    cards: dict[str, str] = ctx.account.internal.setdefault("payment_method_cards", {})
    return cards


def _test_card_name(payment_method_id: str) -> str | None:
    for prefix in ("pm_card_", "tok_"):
        if payment_method_id.startswith(prefix):
            name = payment_method_id[len(prefix) :]
            return name if name in TEST_CARDS else None
    return None


def _source_of(ctx: Ctx, payment_method_id: str, param: str) -> str:
    name = _test_card_name(payment_method_id)
    if name is not None:
        return name
    if payment_method_id.startswith("card_"):
        ctx.account.get("cards", payment_method_id, param=param)
        return _cards(ctx).get(payment_method_id, "visa")
    ctx.account.get("payment_methods", payment_method_id, param=param)
    return _cards(ctx).get(payment_method_id, "visa")


def test_card(ctx: Ctx, payment_method_id: str) -> TestCard | None:
    """The test card behind a payment method, None for a bank debit or cash balance."""
    source = _source_of(ctx, payment_method_id, "payment_method")
    return TEST_CARDS.get(source)


def test_iban(ctx: Ctx, payment_method_id: str) -> str | None:
    """The IBAN of a SEPA Direct Debit payment method, None for any other."""
    source = _source_of(ctx, payment_method_id, "payment_method")
    return source[5:] if source.startswith("iban:") else None


def payment_method_outcome(ctx: Ctx, payment_method_id: str) -> str:
    """What charging `payment_method_id` does: "succeeded", "declined" or "requires_action".

    Takes a `pm_card_*` test id or a `pm_` object (made or attached from one); an unknown `pm_`
    id raises Stripe's `resource_missing` (`param: payment_method`).
    """
    source = _source_of(ctx, payment_method_id, "payment_method")
    card = TEST_CARDS.get(source)
    if card is not None:
        return card.payment
    if source.startswith("iban:") and source[5:] in FAILING_IBANS:
        return "declined"
    return "succeeded"


def payment_method_decline(ctx: Ctx, payment_method_id: str) -> tuple[str, str] | None:
    """(error code, decline code) when charging `payment_method_id` fails, else None."""
    source = _source_of(ctx, payment_method_id, "payment_method")
    card = TEST_CARDS.get(source)
    if card is not None:
        return card.decline
    if source.startswith("iban:") and source[5:] in FAILING_IBANS:
        return ("payment_intent_payment_attempt_failed", "generic_decline")
    return None


def card_error(
    code: str, decline_code: str, *, extra: JSON | None = None, param: str | None = None
) -> StripeError:
    """Stripe's 402 `card_error` for a declined card or a required authentication."""
    body: JSON = {
        "decline_code": decline_code,
        "doc_url": f"https://stripe.com/docs/error-codes/{code}",
    }
    body.update(extra or {})
    return StripeError(
        402,
        "card_error",
        MESSAGES.get(decline_code, "Your card was declined."),
        code=code,
        param=param,
        extra=body,
    )


def _fingerprint(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def card_details(name: str) -> JSON:
    card = TEST_CARDS[name]
    return payment_shapes.card_details(
        brand=card.brand,
        last4=card.last4,
        funding=card.funding,
        country=card.country,
        fingerprint=_fingerprint(card.brand + card.last4),
    )


def _store(ctx: Ctx, method: JSON, source: str) -> JSON:
    _cards(ctx)[method["id"]] = source
    return ctx.account.put("payment_methods", method)


def card_payment_method(
    ctx: Ctx, name: str, *, billing_details: JSON | None = None, created: int | None = None
) -> JSON:
    """Store a new card payment method for the test card `name` (no event: Stripe sends none)."""
    method = payment_shapes.payment_method(
        type="card",
        details=card_details(name),
        id=new_id("pm"),
        livemode=ctx.account.livemode,
        created=created if created is not None else ctx.account.now_for(None),
        billing_details=billing_details or payment_shapes.billing_details(),
    )
    return _store(ctx, method, name)


def resolve_payment_method(ctx: Ctx, payment_method_id: str, *, param: str) -> JSON:
    """The stored `pm_` object for `payment_method_id`; a `pm_card_*` test id makes a new one."""
    name = _test_card_name(payment_method_id)
    if name is not None:
        return card_payment_method(ctx, name)
    if payment_method_id.startswith("pm_card_"):
        raise invalid_request(
            f"No such PaymentMethod: '{payment_method_id}'", param=param, code="resource_missing"
        )
    return ctx.account.get("payment_methods", payment_method_id, param=param)


def payment_method_from_data(ctx: Ctx, data: Params, *, param: str) -> JSON:
    """A payment method from `payment_method_data[...]` or `POST /v1/payment_methods`' params."""
    type_ = data.str("type", required=True, choices=_TYPES)
    assert type_ is not None
    details: JSON
    if type_ == "card":
        card = data.nested("card", required=True)
        assert card is not None
        name = _card_name(card, f"{param}[card]" if param else "card")
        details = card_details(name)
        source = name
    elif type_ == "sepa_debit":
        sepa = data.nested("sepa_debit", required=True)
        assert sepa is not None
        iban_param = f"{param}[sepa_debit][iban]" if param else "sepa_debit[iban]"
        iban = (sepa.str("iban", required=True) or "").replace(" ", "").upper()
        sepa.finish()
        if not _valid_iban(iban):
            raise invalid_request(
                "The IBAN you provided appears to be invalid.",
                param=iban_param,
                code="invalid_bank_account_iban",
            )
        details = {
            "bank_code": iban[4:9],
            "branch_code": "",
            "country": iban[:2],
            "fingerprint": _fingerprint(iban),
            "generated_from": {"charge": None, "setup_attempt": None},
            "last4": iban[-4:],
        }
        source = f"iban:{iban}"
    else:
        data.nested("customer_balance")
        details = {}
        source = "customer_balance"
    method = payment_shapes.payment_method(
        type=type_,
        details=details,
        id=new_id("pm"),
        livemode=ctx.account.livemode,
        created=ctx.account.now_for(None),
        billing_details=_billing_details(data),
        metadata=data.metadata() or {},
        allow_redisplay=data.str("allow_redisplay", choices=("always", "limited", "unspecified"))
        or "unspecified",
    )
    data.accept("radar_options")
    data.finish()
    return _store(ctx, method, source)


def _card_name(card: Params, param: str) -> str:
    token = card.str("token")
    number = card.str("number")
    card.int("exp_month", minimum=1, maximum=12)
    card.int("exp_year")
    card.accept("cvc", "networks")
    card.finish()
    if token is not None:
        name = _test_card_name(token)
        if name is None:
            raise invalid_request(f"No such token: '{token}'", param=f"{param}[token]")
        return name
    if number is not None:
        found = _CARD_NUMBERS.get(number.replace(" ", ""))
        if found is None:
            raise StripeError(
                402,
                "card_error",
                "Your card number is incorrect.",
                code="incorrect_number",
                param="number",
            )
        return found
    raise invalid_request("You must provide a card token or card number.", param=f"{param}[token]")


def _valid_iban(iban: str) -> bool:
    if len(iban) < 15 or not iban.isalnum() or not iban[:2].isalpha():
        return False
    digits = "".join(str(int(char, 36)) for char in iban[4:] + iban[:4])
    return int(digits) % 97 == 1


def _billing_details(params: Params, current: JSON | None = None) -> JSON:
    details = copy_json(current) if current is not None else payment_shapes.billing_details()
    given = params.nested("billing_details")
    if given is None:
        return details
    for field in ("email", "name", "phone"):
        if given.has(field):
            details[field] = given.str(field)
    address = given.nested("address")
    if address is not None:
        merged = details["address"] or _address()
        for field in ("city", "country", "line1", "line2", "postal_code", "state"):
            if address.has(field):
                merged[field] = address.str(field)
        address.finish()
        details["address"] = merged
    given.accept("tax_id")
    given.finish()
    return details


# --- routes ----------------------------------------------------------------------------------


@post("/v1/payment_methods")
def create_payment_method(ctx: Ctx, params: Params) -> JSON:
    # cloning a customer's payment method for a connected account is not emulated
    params.accept("customer", "payment_method")
    return payment_method_from_data(ctx, params, param="")


@get("/v1/payment_methods/{id}")
def retrieve_payment_method(ctx: Ctx, params: Params, id: str) -> JSON:
    params.finish()
    return ctx.account.get("payment_methods", id, param="payment_method")


@post("/v1/payment_methods/{id}")
def update_payment_method(ctx: Ctx, params: Params, id: str) -> JSON:
    method = ctx.account.get("payment_methods", id, param="payment_method")
    before = copy_json(method)
    method["billing_details"] = _billing_details(params, method["billing_details"])
    method["metadata"] = merge_metadata(method["metadata"], params.metadata())
    if params.has("allow_redisplay"):
        method["allow_redisplay"] = params.str(
            "allow_redisplay", choices=("always", "limited", "unspecified")
        )
    card = params.nested("card")
    if card is not None:
        if method["type"] != "card":
            raise invalid_request(
                f"You cannot update a {method['type']} PaymentMethod with card details.",
                param="card",
            )
        for field in ("exp_month", "exp_year"):
            value = card.int(field, minimum=1)
            if value is not None:
                method["card"][field] = value
        card.accept("networks")
        card.finish()
    params.accept("link", "us_bank_account")
    params.finish()
    if method["customer"] is None:
        raise invalid_request(
            "You must save this PaymentMethod to a customer before you can update it.",
        )
    changes = previous_attributes(before, method)
    if changes:
        ctx.emit(
            "payment_method.updated",
            method,
            changes,
            created=ctx.account.now_for(method["customer"]),
        )
    return method


@get("/v1/payment_methods")
def list_payment_methods(ctx: Ctx, params: Params) -> JSON:
    customer = params.str("customer")
    type_ = params.str("type")
    params.accept("allow_redisplay", "customer_account")
    result = page(
        params,
        "/v1/payment_methods",
        _methods(ctx, customer, type_),
        object_name="payment_method",
    )
    params.finish()
    return result


@get("/v1/customers/{id}/payment_methods")
def list_customer_payment_methods(ctx: Ctx, params: Params, id: str) -> JSON:
    ctx.account.get("customers", id, param="customer")
    type_ = params.str("type")
    params.accept("allow_redisplay")
    result = page(
        params,
        f"/v1/customers/{id}/payment_methods",
        _methods(ctx, id, type_),
        object_name="payment_method",
    )
    params.finish()
    return result


@get("/v1/customers/{customer}/payment_methods/{id}")
def retrieve_customer_payment_method(ctx: Ctx, params: Params, customer: str, id: str) -> JSON:
    params.finish()
    ctx.account.get("customers", customer, param="customer")
    method = ctx.account.get("payment_methods", id, param="payment_method")
    if method["customer"] != customer:
        raise invalid_request(
            f"No such PaymentMethod: '{id}'", param="payment_method", code="resource_missing"
        )
    return method


def _methods(ctx: Ctx, customer: str | None, type_: str | None) -> NewestFirst:
    def keep(method: JSON) -> bool:
        return (customer is None or method["customer"] == customer) and (
            type_ is None or method["type"] == type_
        )

    return newest_first(ctx.account.collection("payment_methods"), keep)


@post("/v1/payment_methods/{id}/attach")
def attach_payment_method(ctx: Ctx, params: Params, id: str) -> JSON:
    customer_id = params.str("customer", required=True)
    assert customer_id is not None
    params.accept("customer_account")
    params.finish()
    customer = ctx.account.get("customers", customer_id, param="customer")
    card = TEST_CARDS.get(_test_card_name(id) or "")
    if card is not None and card.setup == "declined" and card.decline is not None:
        raise card_error(*card.decline)
    method = resolve_payment_method(ctx, id, param="payment_method")
    attach(ctx, method, customer)
    return method


def attach(ctx: Ctx, method: JSON, customer: JSON) -> None:
    """Attach `method` to `customer` (`payment_method.attached`); a no-op when already there."""
    if method["customer"] == customer["id"]:
        return
    if method["customer"] is not None:
        raise invalid_request(
            "The payment method you provided has already been attached to a customer.",
            param="payment_method",
        )
    if method["type"] == "card":
        card = TEST_CARDS.get(_cards(ctx).get(method["id"], "visa"))
        if card is not None and card.setup == "declined" and card.decline is not None:
            raise card_error(*card.decline)
    method["customer"] = customer["id"]
    ctx.emit("payment_method.attached", method, created=ctx.account.now_for(customer["id"]))


@post("/v1/payment_methods/{id}/detach")
def detach_payment_method(ctx: Ctx, params: Params, id: str) -> JSON:
    params.finish()
    method = ctx.account.get("payment_methods", id, param="payment_method")
    customer_id = method["customer"]
    if customer_id is None:
        raise invalid_request(
            "The payment method you provided is not attached to a customer so detachment is "
            "impossible.",
            param="payment_method",
        )
    now = ctx.account.now_for(customer_id)
    method["customer"] = None
    ctx.emit("payment_method.detached", method, {"customer": customer_id}, created=now)
    customer = ctx.account.collection("customers").get(customer_id)
    if customer is not None and customer["invoice_settings"]["default_payment_method"] == id:
        before = copy_json(customer)
        customer["invoice_settings"] = {
            **customer["invoice_settings"],
            "default_payment_method": None,
        }
        ctx.emit("customer.updated", customer, previous_attributes(before, customer), created=now)
    return method


__all__ = [
    "TEST_CARDS",
    "attach",
    "card_error",
    "card_payment_method",
    "payment_method_decline",
    "payment_method_from_data",
    "payment_method_outcome",
    "resolve_payment_method",
    "test_card",
]
