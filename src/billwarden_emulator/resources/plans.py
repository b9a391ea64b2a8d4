"""Legacy plans (`/v1/plans`): each plan is stored as the recurring price with the same id, as on
Stripe, so a plan id works wherever a price id does (`items[0][price]`, `GET /v1/prices/{id}`)."""

from __future__ import annotations

import time

from billwarden_emulator import shapes
from billwarden_emulator.errors import (
    invalid_request,
    invalid_value,
    missing_parameter,
    resource_missing,
)
from billwarden_emulator.forms import Params, merge_metadata
from billwarden_emulator.ids import new_id
from billwarden_emulator.listing import newest_first, page, range_filter
from billwarden_emulator.resources import delete, get, post
from billwarden_emulator.resources.catalog import SUPPORTED_CURRENCIES
from billwarden_emulator.state import JSON, Ctx, copy_json, previous_attributes

_INTERVALS = ("day", "week", "month", "year")


def _plan(ctx: Ctx, plan_id: str) -> JSON:
    price = ctx.account.collection("prices").get(plan_id)
    if price is None or price["recurring"] is None:
        raise resource_missing("plan", plan_id)
    return price


def _product_for(ctx: Ctx, params: Params, now: int) -> str:
    """`product` is a product id or, as on Stripe's plans, `product[name]=...` to create one."""
    value = params.raw("product")
    if value is None or value == "":
        raise missing_parameter("product")
    if isinstance(value, str):
        ctx.account.get("products", value, param="product")
        return value
    data = params.nested("product")
    assert data is not None
    product = shapes.product(
        id=data.str("id") or new_id("prod"),
        created=now,
        updated=now,
        livemode=ctx.account.livemode,
        name=data.str("name", required=True),
        statement_descriptor=data.str("statement_descriptor"),
        unit_label=data.str("unit_label"),
        tax_code=data.str("tax_code"),
        metadata=merge_metadata({}, data.metadata()),
        active=data.bool("active") is not False,
    )
    data.finish()
    ctx.account.put("products", product)
    ctx.emit("product.created", product, created=now)
    return str(product["id"])


@post("/v1/plans")
def create_plan(ctx: Ctx, params: Params) -> JSON:
    now = int(time.time())
    plan_id = params.str("id") or new_id("price")
    if plan_id in ctx.account.collection("prices"):
        raise invalid_request("Plan already exists.", param="id", code="resource_already_exists")
    currency = params.str("currency", required=True)
    assert currency is not None
    if currency.lower() not in SUPPORTED_CURRENCIES:
        raise invalid_value("currency", f"Invalid currency: {currency.lower()}.")
    interval = params.str("interval", required=True, choices=_INTERVALS)
    billing_scheme = params.str("billing_scheme", choices=("per_unit", "tiered")) or "per_unit"
    amount = params.int("amount", minimum=0)
    decimal = params.str("amount_decimal")
    if amount is None and decimal is not None:
        try:
            amount = int(float(decimal))
        except ValueError:
            raise invalid_value("amount_decimal", f"Invalid decimal: {decimal}") from None
    if amount is None and billing_scheme == "per_unit":
        raise missing_parameter("amount")
    recurring = {
        "interval": interval,
        "interval_count": params.int("interval_count", minimum=1) or 1,
        "meter": params.str("meter"),
        "usage_type": params.str("usage_type", choices=("licensed", "metered")) or "licensed",
        "trial_period_days": params.int("trial_period_days", minimum=1),
    }
    product_id = _product_for(ctx, params, now)
    price = shapes.price(
        id=plan_id,
        created=now,
        livemode=ctx.account.livemode,
        currency=currency.lower(),
        product=product_id,
        unit_amount=amount,
        unit_amount_decimal=None if amount is None else str(amount),
        recurring=recurring,
        type="recurring",
        nickname=params.str("nickname"),
        metadata=merge_metadata({}, params.metadata()),
        active=params.bool("active") is not False,
        billing_scheme=billing_scheme,
        tiers_mode=params.str("tiers_mode", choices=("graduated", "volume")),
    )
    params.accept("aggregate_usage", "tiers", "transform_usage")
    params.finish()
    ctx.account.put("prices", price)
    plan = shapes.plan_from_price(price)
    ctx.emit("plan.created", plan, created=now)
    return plan


@get("/v1/plans/{id}")
def retrieve_plan(ctx: Ctx, params: Params, id: str) -> JSON:
    params.finish()
    return shapes.plan_from_price(_plan(ctx, id))


@post("/v1/plans/{id}")
def update_plan(ctx: Ctx, params: Params, id: str) -> JSON:
    """`active`, `nickname`, `metadata`, `product` and `trial_period_days` can change."""
    price = _plan(ctx, id)
    before = shapes.plan_from_price(copy_json(price))
    if params.has("active"):
        price["active"] = bool(params.bool("active"))
    if params.has("nickname"):
        price["nickname"] = params.str("nickname")
    if params.has("product"):
        product_id = params.str("product", required=True)
        assert product_id is not None
        ctx.account.get("products", product_id, param="product")
        price["product"] = product_id
    if params.has("trial_period_days"):
        price["recurring"] = {
            **price["recurring"],
            "trial_period_days": params.int("trial_period_days", minimum=0),
        }
    price["metadata"] = merge_metadata(price["metadata"], params.metadata())
    params.finish()
    plan = shapes.plan_from_price(price)
    changes = previous_attributes(before, plan)
    if changes:
        ctx.emit("plan.updated", plan, changes)
    return plan


@delete("/v1/plans/{id}")
def delete_plan(ctx: Ctx, params: Params, id: str) -> JSON:
    """Existing subscriptions keep their copy of the plan; new ones cannot use it."""
    params.finish()
    price = _plan(ctx, id)
    del ctx.account.collection("prices")[id]
    ctx.emit("plan.deleted", shapes.plan_from_price(price))
    return shapes.deleted("plan", id)


@get("/v1/plans")
def list_plans(ctx: Ctx, params: Params) -> JSON:
    active = params.bool("active")
    product = params.str("product")
    created = range_filter(params, "created")

    def keep(price: JSON) -> bool:
        return (
            price["recurring"] is not None
            and (active is None or price["active"] == active)
            and (product is None or price["product"] == product)
            and (created is None or created(price["created"]))
        )

    result = page(
        params,
        "/v1/plans",
        newest_first(ctx.account.collection("prices"), keep),
        object_name="plan",
    )
    params.finish()
    result["data"] = [shapes.plan_from_price(price) for price in result["data"]]
    return result
