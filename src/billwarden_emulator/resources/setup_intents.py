"""Setup intents: create, retrieve, update, list, confirm, cancel.

Confirming checks the payment method as Stripe's test cards document: a good card succeeds
(`setup_intent.succeeded`, attached to the intent's customer), a declining one fails (`402
card_error`, `setup_intent.setup_failed`), an authentication card waits (`requires_action`,
`setup_intent.requires_action`). `pm_card_chargeCustomerFail` sets up fine and fails when charged.
"""

from __future__ import annotations

from billwarden_emulator.errors import StripeError, invalid_request
from billwarden_emulator.forms import Params, merge_metadata
from billwarden_emulator.ids import new_id, random_part
from billwarden_emulator.listing import newest_first, page, range_filter
from billwarden_emulator.resources import get, post
from billwarden_emulator.resources import payment_methods as methods
from billwarden_emulator.shapes import payments as payment_shapes
from billwarden_emulator.state import JSON, Ctx, copy_json

_CONFIRMABLE = ("requires_payment_method", "requires_confirmation", "requires_action")
_REASONS = ("abandoned", "duplicate", "requested_by_customer")
_ACCEPTED = (
    "attach_to_self",
    "confirmation_token",
    "excluded_payment_method_types",
    "flow_directions",
    "mandate_data",
    "on_behalf_of",
    "payment_method_configuration",
    "single_use",
    "use_stripe_sdk",
)


def _unexpected_state(action: str, intent: JSON) -> StripeError:
    return invalid_request(
        f"You cannot {action} this SetupIntent because it has a status of {intent['status']}.",
        code="setup_intent_unexpected_state",
    )


def _apply_fields(ctx: Ctx, intent: JSON, params: Params) -> None:
    if params.has("description"):
        intent["description"] = params.str("description")
    intent["metadata"] = merge_metadata(intent["metadata"], params.metadata())
    customer_id = params.str("customer")
    if customer_id is not None:
        ctx.account.get("customers", customer_id, param="customer")
        intent["customer"] = customer_id
    types = params.strings("payment_method_types")
    if types:
        intent["payment_method_types"] = types
    data = params.nested("payment_method_data")
    if data is not None:
        method = methods.payment_method_from_data(ctx, data, param="payment_method_data")
        intent["payment_method"] = method["id"]
    method_id = params.str("payment_method")
    if method_id is not None:
        method = methods.resolve_payment_method(ctx, method_id, param="payment_method")
        intent["payment_method"] = method["id"]
    options = params.nested("payment_method_options")
    if options is not None:
        intent["payment_method_options"] = dict(options.data)


@post("/v1/setup_intents")
def create_setup_intent(ctx: Ctx, params: Params) -> JSON:
    account = ctx.account
    intent_id = new_id("seti")
    automatic = params.nested("automatic_payment_methods")
    intent = payment_shapes.setup_intent(
        id=intent_id,
        livemode=account.livemode,
        client_secret=f"{intent_id}_secret_{random_part(32)}",
        usage=params.str("usage", choices=("off_session", "on_session")) or "off_session",
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
    intent["created"] = account.now_for(intent["customer"])
    confirm = params.bool("confirm")
    return_url = params.str("return_url")
    params.accept(*_ACCEPTED)
    params.finish()
    if intent["payment_method"] is not None:
        intent["status"] = "requires_confirmation"
    account.put("setup_intents", intent)
    ctx.emit("setup_intent.created", intent, created=intent["created"])
    if confirm:
        confirm_setup(ctx, intent, return_url=return_url)
    return intent


@get("/v1/setup_intents/{id}")
def retrieve_setup_intent(ctx: Ctx, params: Params, id: str) -> JSON:
    params.str("client_secret")
    params.finish()
    return ctx.account.get("setup_intents", id, param="intent")


@post("/v1/setup_intents/{id}")
def update_setup_intent(ctx: Ctx, params: Params, id: str) -> JSON:
    intent = ctx.account.get("setup_intents", id, param="intent")
    if intent["status"] not in _CONFIRMABLE and (
        params.has("payment_method") or params.has("customer")
    ):
        raise _unexpected_state("update", intent)
    _apply_fields(ctx, intent, params)
    params.accept("attach_to_self", "excluded_payment_method_types", "flow_directions")
    params.finish()
    if intent["status"] == "requires_payment_method" and intent["payment_method"] is not None:
        intent["status"] = "requires_confirmation"
    # Stripe has no setup_intent.updated event
    return intent


@get("/v1/setup_intents")
def list_setup_intents(ctx: Ctx, params: Params) -> JSON:
    customer = params.str("customer")
    method = params.str("payment_method")
    created = range_filter(params, "created")
    params.accept("attach_to_self")

    def keep(intent: JSON) -> bool:
        return (
            (customer is None or intent["customer"] == customer)
            and (method is None or intent["payment_method"] == method)
            and (created is None or created(intent["created"]))
        )

    result = page(
        params,
        "/v1/setup_intents",
        newest_first(ctx.account.collection("setup_intents"), keep),
        object_name="setup_intent",
    )
    params.finish()
    return result


@post("/v1/setup_intents/{id}/confirm")
def confirm_setup_intent(ctx: Ctx, params: Params, id: str) -> JSON:
    intent = ctx.account.get("setup_intents", id, param="intent")
    if intent["status"] not in _CONFIRMABLE:
        raise _unexpected_state("confirm", intent)
    _apply_fields(ctx, intent, params)
    return_url = params.str("return_url")
    params.accept(*_ACCEPTED, "client_secret")
    params.finish()
    confirm_setup(ctx, intent, return_url=return_url)
    return intent


def confirm_setup(ctx: Ctx, intent: JSON, *, return_url: str | None = None) -> None:
    """Check the intent's payment method now; raises `card_error` when the card is declined."""
    method_id = intent["payment_method"]
    if method_id is None:
        raise invalid_request(
            "You cannot confirm this SetupIntent because it's missing a payment method. Update "
            "the SetupIntent with a payment method and then confirm it again.",
            param="payment_method",
            code="setup_intent_unexpected_state",
        )
    account = ctx.account
    method = account.get("payment_methods", method_id, param="payment_method")
    now = account.now_for(intent["customer"])
    card = methods.test_card(ctx, method_id)
    outcome = "succeeded" if card is None else card.setup
    intent["last_setup_error"] = None
    intent["next_action"] = None
    intent["latest_attempt"] = new_id("setatt")
    if outcome == "requires_action":
        intent["status"] = "requires_action"
        intent["next_action"] = (
            {
                "type": "redirect_to_url",
                "redirect_to_url": {
                    "return_url": return_url,
                    "url": f"{ctx.base_url}/_emulator/authenticate/{intent['id']}",
                },
            }
            if return_url is not None
            else {
                "type": "use_stripe_sdk",
                "use_stripe_sdk": {"type": "three_d_secure_redirect", "source": None},
            }
        )
        ctx.emit("setup_intent.requires_action", intent, created=now)
        return
    if outcome == "declined" and card is not None and card.decline is not None:
        code, decline_code = card.decline
        intent["status"] = "requires_payment_method"
        intent["last_setup_error"] = {
            "code": code,
            "decline_code": decline_code,
            "doc_url": f"https://stripe.com/docs/error-codes/{code}",
            "message": methods.MESSAGES.get(decline_code, "Your card was declined."),
            "payment_method": copy_json(method),
            "type": "card_error",
        }
        ctx.emit("setup_intent.setup_failed", intent, created=now)
        raise methods.card_error(
            code,
            decline_code,
            extra={"setup_intent": copy_json(intent), "payment_method": copy_json(method)},
        )
    if intent["customer"] is not None:
        customer = account.get("customers", intent["customer"], param="customer")
        methods.attach(ctx, method, customer)
    if method["type"] == "sepa_debit":
        intent["mandate"] = new_id("mandate")
    intent["status"] = "succeeded"
    ctx.emit("setup_intent.succeeded", intent, created=now)


@post("/v1/setup_intents/{id}/cancel")
def cancel_setup_intent(ctx: Ctx, params: Params, id: str) -> JSON:
    intent = ctx.account.get("setup_intents", id, param="intent")
    reason = params.str("cancellation_reason", choices=_REASONS)
    params.finish()
    if intent["status"] not in _CONFIRMABLE:
        raise invalid_request(
            f"You cannot cancel this SetupIntent because it has a status of {intent['status']}. "
            "Only a SetupIntent with one of the following statuses may be canceled: "
            f"{', '.join(_CONFIRMABLE)}.",
            code="setup_intent_unexpected_state",
        )
    intent["status"] = "canceled"
    intent["cancellation_reason"] = reason
    intent["next_action"] = None
    ctx.emit("setup_intent.canceled", intent, created=ctx.account.now_for(intent["customer"]))
    return intent


__all__ = ["confirm_setup"]
