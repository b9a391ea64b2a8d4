"""Customers: create, retrieve, update, delete, list (`email`, `created`, `test_clock` filters).

Test card outcomes: a customer pays with a card that succeeds unless
`metadata[emulator_card]` is `declined` (decline code `generic_decline`) or `insufficient_funds`,
or its `invoice_settings[default_payment_method]` is one of Stripe's declining test methods
(`pm_card_chargeDeclined`, `pm_card_chargeDeclinedInsufficientFunds`). Checkout completion,
subscription creation and test-clock renewals all charge through this rule; changing the metadata
later changes the outcome of the next renewal.
"""

from __future__ import annotations

from billwarden_emulator import shapes
from billwarden_emulator.errors import invalid_value
from billwarden_emulator.forms import Params, merge_metadata
from billwarden_emulator.ids import new_id, random_part
from billwarden_emulator.listing import newest_first, page, range_filter
from billwarden_emulator.resources import coupons, delete, get, post
from billwarden_emulator.state import JSON, Ctx, copy_json, previous_attributes

_DISCOUNT_PARAMS = ("coupon", "promotion_code")
_ADDRESS_FIELDS = ("city", "country", "line1", "line2", "postal_code", "state")
_ACCEPTED = (
    "cash_balance",
    "source",
    "tax",
    "tax_id_data",
    "validate",
    "business_name",
    "individual_name",
)


def _address(params: Params, name: str) -> JSON | None:
    nested = params.nested(name)
    if nested is None:
        return None
    address = {field: nested.str(field) for field in _ADDRESS_FIELDS}
    nested.finish()
    return address


def _apply_common(ctx: Ctx, customer: JSON, params: Params) -> None:
    for field in ("description", "email", "name", "phone"):
        if params.has(field):
            customer[field] = params.str(field)
    if params.has("address"):
        customer["address"] = _address(params, "address")
    if params.has("shipping"):
        shipping = params.nested("shipping")
        if shipping is None:
            customer["shipping"] = None
        else:
            customer["shipping"] = {
                "address": _address(shipping, "address"),
                "name": shipping.str("name", required=True),
                "phone": shipping.str("phone"),
            }
            shipping.finish()
    customer["metadata"] = merge_metadata(customer["metadata"], params.metadata())
    if params.has("balance"):
        customer["balance"] = params.int("balance") or 0
    if params.has("preferred_locales"):
        customer["preferred_locales"] = params.strings("preferred_locales") or []
    if params.has("tax_exempt"):
        customer["tax_exempt"] = params.str("tax_exempt", choices=("none", "exempt", "reverse"))
    if params.has("invoice_prefix"):
        customer["invoice_prefix"] = params.str("invoice_prefix")
    if params.has("next_invoice_sequence"):
        customer["next_invoice_sequence"] = params.int("next_invoice_sequence", minimum=1)
    payment_method = params.str("payment_method")
    settings = params.nested("invoice_settings")
    if settings is not None:
        if settings.has("default_payment_method"):
            payment_method = settings.str("default_payment_method")
        settings.accept("custom_fields", "footer", "rendering_options")
        settings.finish()
    if payment_method is not None:
        customer["invoice_settings"] = {
            **customer["invoice_settings"],
            "default_payment_method": payment_method,
        }


@post("/v1/customers")
def create_customer(ctx: Ctx, params: Params) -> JSON:
    account = ctx.account
    clock_id = params.str("test_clock")
    if clock_id is not None:
        account.get("test_clocks", clock_id, param="test_clock")
    customer = shapes.customer(
        id=new_id("cus"),
        livemode=account.livemode,
        invoice_prefix=random_part(8).upper(),
        test_clock=clock_id,
    )
    customer["created"] = account.now_for(None)
    if clock_id is not None:
        customer["created"] = account.collection("test_clocks")[clock_id]["frozen_time"]
    _apply_common(ctx, customer, params)
    specs = coupons.read_discount_specs(
        ctx, params, now=customer["created"], customer=customer["id"], names=_DISCOUNT_PARAMS
    )
    params.accept(*_ACCEPTED)
    params.finish()
    account.put("customers", customer)
    discount_events = coupons.set_customer_discount(
        ctx, customer, specs or [], now=customer["created"]
    )
    ctx.emit("customer.created", customer, created=customer["created"])
    coupons.emit_all(ctx, discount_events, now=customer["created"])
    return customer


@get("/v1/customers/{id}")
def retrieve_customer(ctx: Ctx, params: Params, id: str) -> JSON:
    params.finish()
    tombstone = ctx.account.deleted.get(id)
    if tombstone is not None:
        return tombstone
    return ctx.account.get("customers", id)


@post("/v1/customers/{id}")
def update_customer(ctx: Ctx, params: Params, id: str) -> JSON:
    customer = ctx.account.get("customers", id)
    before = copy_json(customer)
    _apply_common(ctx, customer, params)
    now = ctx.account.now_for(id)
    specs = coupons.read_discount_specs(ctx, params, now=now, customer=id, names=_DISCOUNT_PARAMS)
    params.accept(*_ACCEPTED, "default_source")
    params.finish()
    discount_events = (
        [] if specs is None else coupons.set_customer_discount(ctx, customer, specs, now=now)
    )
    changes = previous_attributes(before, customer)
    if changes:
        ctx.emit("customer.updated", customer, changes, created=now)
    coupons.emit_all(ctx, discount_events, now=now)
    return customer


@delete("/v1/customers/{id}")
def delete_customer(ctx: Ctx, params: Params, id: str) -> JSON:
    from billwarden_emulator.billing.lifecycle import end_subscription

    params.finish()
    account = ctx.account
    customer = account.get("customers", id)
    now = account.now_for(id)
    for subscription in list(account.collection("subscriptions").values()):
        if subscription["customer"] == id and subscription["status"] not in (
            "canceled",
            "incomplete_expired",
        ):
            end_subscription(ctx, subscription, now, reason="cancellation_requested")
    del account.collection("customers")[id]
    tombstone = shapes.deleted("customer", id)
    account.deleted[id] = tombstone
    ctx.emit("customer.deleted", customer, created=now)
    return tombstone


@get("/v1/customers")
def list_customers(ctx: Ctx, params: Params) -> JSON:
    email = params.str("email")
    clock = params.str("test_clock")
    created = range_filter(params, "created")
    if email is not None and len(email) > 512:
        raise invalid_value("email", "Invalid email: too long")

    def keep(customer: JSON) -> bool:
        return (
            (email is None or customer["email"] == email)
            and (clock is None or customer["test_clock"] == clock)
            and (created is None or created(customer["created"]))
        )

    result = page(
        params,
        "/v1/customers",
        newest_first(ctx.account.collection("customers"), keep),
        object_name="customer",
    )
    params.finish()
    return result


def card_outcome(customer: JSON | None) -> str | None:
    """None when the customer's test card pays, else Stripe's decline code."""
    if customer is None:
        return None
    chosen = customer["metadata"].get("emulator_card", "")
    if chosen in ("declined", "card_declined", "generic_decline"):
        return "generic_decline"
    if chosen == "insufficient_funds":
        return "insufficient_funds"
    method = (customer.get("invoice_settings") or {}).get("default_payment_method") or ""
    if method == "pm_card_chargeDeclinedInsufficientFunds":
        return "insufficient_funds"
    if method in ("pm_card_chargeDeclined", "pm_card_visa_chargeDeclined"):
        return "generic_decline"
    return None
