"""Coupons, promotion codes and the discounts they make on customers, subscriptions and invoices.

A discount is stored once (collection `discounts`) and referenced by id from subscriptions'
and invoices' `discounts`; a customer embeds its discount whole, as Stripe does. Which discounts
an invoice gets and how much they take off is decided in `billing.payments`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from billwarden_emulator.errors import invalid_request, invalid_value, missing_parameter
from billwarden_emulator.forms import Params, merge_metadata
from billwarden_emulator.ids import new_id, random_part
from billwarden_emulator.listing import newest_first, page, range_filter
from billwarden_emulator.resources import delete, get, post
from billwarden_emulator.shapes import deleted
from billwarden_emulator.shapes import invoicing as shapes
from billwarden_emulator.state import JSON, Ctx, copy_json, previous_attributes

MONTH = 30 * 86_400  # a repeating coupon's month, as the emulator counts it


@dataclass(frozen=True)
class DiscountSpec:
    """A coupon chosen by a request, directly or through a promotion code."""

    coupon: JSON
    promotion_code: JSON | None = None


# --- coupons -----------------------------------------------------------------------------------


@post("/v1/coupons")
def create_coupon(ctx: Ctx, params: Params) -> JSON:
    coupon_id = params.str("id") or random_part(8).upper()
    if coupon_id in ctx.account.collection("coupons"):
        raise invalid_request("Coupon already exists.", param="id", code="resource_already_exists")
    percent_off = _percent(params)
    amount_off = params.int("amount_off", minimum=1)
    currency = params.str("currency")
    if percent_off is None and amount_off is None:
        raise invalid_request(
            "You must pass either `amount_off` or `percent_off` to create a coupon.",
            code="parameter_missing",
        )
    if percent_off is not None and amount_off is not None:
        raise invalid_request(
            "You can only pass one of `amount_off` and `percent_off`.", param="amount_off"
        )
    if amount_off is not None and currency is None:
        raise missing_parameter("currency")
    duration = params.str("duration", choices=("forever", "once", "repeating")) or "once"
    months = params.int("duration_in_months", minimum=1)
    if duration == "repeating" and months is None:
        raise missing_parameter("duration_in_months")
    if duration != "repeating" and months is not None:
        raise invalid_value(
            "duration_in_months",
            "You may only specify duration_in_months when duration is `repeating`.",
        )
    now = int(time.time())
    redeem_by = params.int("redeem_by")
    if redeem_by is not None and redeem_by <= now:
        raise invalid_value("redeem_by", "Invalid timestamp: must be in the future.")
    coupon = shapes.coupon(
        id=coupon_id,
        created=now,
        livemode=ctx.account.livemode,
        percent_off=percent_off,
        amount_off=amount_off,
        currency=None if currency is None else currency.lower(),
        duration=duration,
        duration_in_months=months,
        max_redemptions=params.int("max_redemptions", minimum=1),
        redeem_by=redeem_by,
        name=params.str("name"),
        metadata=merge_metadata({}, params.metadata()),
    )
    params.accept("applies_to", "currency_options")
    params.finish()
    ctx.account.put("coupons", coupon)
    ctx.emit("coupon.created", coupon, created=now)
    return coupon


def _percent(params: Params) -> float | int | None:
    text = params.str("percent_off")
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        raise invalid_value("percent_off", f"Invalid decimal: {text}") from None
    if not 0 < value <= 100:
        raise invalid_value("percent_off", "percent_off must be between 0 and 100.")
    return int(value) if value.is_integer() else value


@get("/v1/coupons/{id}")
def retrieve_coupon(ctx: Ctx, params: Params, id: str) -> JSON:
    params.finish()
    return ctx.account.get("coupons", id)


@post("/v1/coupons/{id}")
def update_coupon(ctx: Ctx, params: Params, id: str) -> JSON:
    """Only `name` and `metadata` can change, as on Stripe."""
    coupon = ctx.account.get("coupons", id)
    before = copy_json(coupon)
    if params.has("name"):
        coupon["name"] = params.str("name")
    coupon["metadata"] = merge_metadata(coupon["metadata"], params.metadata())
    params.accept("currency_options")
    params.finish()
    changes = previous_attributes(before, coupon)
    if changes:
        ctx.emit("coupon.updated", coupon, changes)
    return coupon


@delete("/v1/coupons/{id}")
def delete_coupon(ctx: Ctx, params: Params, id: str) -> JSON:
    """Existing discounts keep applying; the coupon can no longer be redeemed."""
    params.finish()
    coupon = ctx.account.get("coupons", id)
    del ctx.account.collection("coupons")[id]
    ctx.emit("coupon.deleted", coupon)
    return deleted("coupon", id)


@get("/v1/coupons")
def list_coupons(ctx: Ctx, params: Params) -> JSON:
    created = range_filter(params, "created")
    result = page(
        params,
        "/v1/coupons",
        newest_first(
            ctx.account.collection("coupons"),
            None if created is None else (lambda coupon: created(coupon["created"])),
        ),
        object_name="coupon",
    )
    params.finish()
    return result


# --- promotion codes ---------------------------------------------------------------------------


@post("/v1/promotion_codes")
def create_promotion_code(ctx: Ctx, params: Params) -> JSON:
    """`promotion[coupon]` (current API) or `coupon` (older versions, as the Stripe CLI sends)."""
    coupon_id = params.str("coupon")
    param = "coupon"
    promotion = params.nested("promotion")
    if promotion is not None:
        promotion.str("type", required=True, choices=("coupon",))
        coupon_id = promotion.str("coupon", required=True)
        param = "promotion[coupon]"
        promotion.finish()
    if coupon_id is None:
        raise missing_parameter("promotion")
    coupon = ctx.account.get("coupons", coupon_id, param=param)
    code = params.str("code") or random_part(8).upper()
    for other in ctx.account.collection("promotion_codes").values():
        if other["active"] and other["code"].lower() == code.lower():
            raise invalid_request(
                "An active promotion code with `code: " + code + "` already exists.",
                param="code",
            )
    customer = params.str("customer")
    if customer is not None:
        ctx.account.get("customers", customer, param="customer")
    restrictions = params.nested("restrictions")
    rules: JSON = {
        "first_time_transaction": False,
        "minimum_amount": None,
        "minimum_amount_currency": None,
    }
    if restrictions is not None:
        rules["first_time_transaction"] = bool(restrictions.bool("first_time_transaction"))
        rules["minimum_amount"] = restrictions.int("minimum_amount", minimum=0)
        currency = restrictions.str("minimum_amount_currency")
        rules["minimum_amount_currency"] = None if currency is None else currency.lower()
        restrictions.accept("currency_options")
        restrictions.finish()
    now = int(time.time())
    active = params.bool("active")
    promotion_code = shapes.promotion_code(
        id=new_id("promo"),
        created=now,
        livemode=ctx.account.livemode,
        code=code,
        active=active is not False,
        customer=customer,
        expires_at=params.int("expires_at"),
        max_redemptions=params.int("max_redemptions", minimum=1),
        metadata=merge_metadata({}, params.metadata()),
        restrictions=rules,
        promotion={"coupon": coupon["id"], "type": "coupon"},
    )
    params.finish()
    ctx.account.put("promotion_codes", promotion_code)
    ctx.emit("promotion_code.created", promotion_code, created=now)
    return promotion_code


@get("/v1/promotion_codes/{id}")
def retrieve_promotion_code(ctx: Ctx, params: Params, id: str) -> JSON:
    params.finish()
    return ctx.account.get("promotion_codes", id)


@post("/v1/promotion_codes/{id}")
def update_promotion_code(ctx: Ctx, params: Params, id: str) -> JSON:
    promotion_code = ctx.account.get("promotion_codes", id)
    before = copy_json(promotion_code)
    if params.has("active"):
        promotion_code["active"] = bool(params.bool("active"))
    promotion_code["metadata"] = merge_metadata(promotion_code["metadata"], params.metadata())
    params.accept("restrictions")
    params.finish()
    changes = previous_attributes(before, promotion_code)
    if changes:
        ctx.emit("promotion_code.updated", promotion_code, changes)
    return promotion_code


@get("/v1/promotion_codes")
def list_promotion_codes(ctx: Ctx, params: Params) -> JSON:
    active = params.bool("active")
    code = params.str("code")
    coupon = params.str("coupon")
    customer = params.str("customer")
    created = range_filter(params, "created")

    def keep(promotion_code: JSON) -> bool:
        return (
            (active is None or promotion_code["active"] == active)
            and (code is None or promotion_code["code"] == code)
            and (coupon is None or promotion_code["promotion"]["coupon"] == coupon)
            and (customer is None or promotion_code["customer"] == customer)
            and (created is None or created(promotion_code["created"]))
        )

    result = page(
        params,
        "/v1/promotion_codes",
        newest_first(ctx.account.collection("promotion_codes"), keep),
        object_name="promotion_code",
    )
    params.finish()
    return result


# --- choosing and making discounts -------------------------------------------------------------


def redeemable_coupon(ctx: Ctx, coupon_id: str, *, param: str, now: int) -> JSON:
    coupon = ctx.account.get("coupons", coupon_id, param=param)
    if not coupon["valid"] or (coupon["redeem_by"] is not None and coupon["redeem_by"] <= now):
        raise invalid_request(f"Coupon expired: {coupon_id}", param=param)
    return coupon


def redeemable_promotion_code(
    ctx: Ctx, promotion_code_id: str, *, param: str, now: int, customer: str | None
) -> DiscountSpec:
    promotion_code = ctx.account.get("promotion_codes", promotion_code_id, param=param)
    expired = promotion_code["expires_at"] is not None and promotion_code["expires_at"] <= now
    used_up = (
        promotion_code["max_redemptions"] is not None
        and promotion_code["times_redeemed"] >= promotion_code["max_redemptions"]
    )
    if not promotion_code["active"] or expired or used_up:
        raise invalid_request(
            f"This promotion code cannot be redeemed: {promotion_code_id}", param=param
        )
    if promotion_code["customer"] not in (None, customer):
        raise invalid_request(
            "This promotion code cannot be redeemed by this customer.", param=param
        )
    coupon_id = promotion_code["promotion"]["coupon"]
    coupon = redeemable_coupon(ctx, coupon_id, param=param, now=now)
    return DiscountSpec(coupon, promotion_code)


def read_discount_specs(
    ctx: Ctx,
    params: Params,
    *,
    now: int,
    customer: str | None,
    names: tuple[str, ...] = ("coupon", "promotion_code", "discounts"),
) -> list[DiscountSpec] | None:
    """`coupon`, `promotion_code` and `discounts[]` of a request; None when none was sent,
    an empty list when they clear the discounts (`coupon=""`, `discounts=""`)."""
    sent = False
    specs: list[DiscountSpec] = []
    if "coupon" in names and params.has("coupon"):
        sent = True
        coupon_id = params.str("coupon")
        if coupon_id is not None:
            specs.append(DiscountSpec(redeemable_coupon(ctx, coupon_id, param="coupon", now=now)))
    if "promotion_code" in names and params.has("promotion_code"):
        sent = True
        promotion_code_id = params.str("promotion_code")
        if promotion_code_id is not None:
            specs.append(
                redeemable_promotion_code(
                    ctx, promotion_code_id, param="promotion_code", now=now, customer=customer
                )
            )
    if "discounts" in names and params.has("discounts"):
        sent = True
        for index, entry in enumerate(params.nested_list("discounts")):
            name = f"discounts[{index}]"
            if entry.has("coupon") and entry.str("coupon") is not None:
                coupon_id = entry.str("coupon")
                assert coupon_id is not None
                specs.append(
                    DiscountSpec(
                        redeemable_coupon(ctx, coupon_id, param=f"{name}[coupon]", now=now)
                    )
                )
            elif entry.str("promotion_code") is not None:
                promotion_code_id = entry.str("promotion_code")
                assert promotion_code_id is not None
                specs.append(
                    redeemable_promotion_code(
                        ctx,
                        promotion_code_id,
                        param=f"{name}[promotion_code]",
                        now=now,
                        customer=customer,
                    )
                )
            elif entry.str("discount") is not None:
                discount_id = entry.str("discount")
                assert discount_id is not None
                existing = ctx.account.get("discounts", discount_id, param=f"{name}[discount]")
                specs.append(DiscountSpec(coupon_of(ctx, existing), None))
            entry.finish()
    if len({spec.coupon["id"] for spec in specs}) != len(specs):
        raise invalid_request("You cannot apply the same coupon more than once.", param="discounts")
    return specs if sent else None


def make_discount(
    ctx: Ctx,
    spec: DiscountSpec,
    *,
    now: int,
    customer: str | None,
    subscription: str | None = None,
    invoice: str | None = None,
    discount_id: str | None = None,
) -> JSON:
    """Redeem `spec`: a stored discount, the coupon's (and promotion code's) redemption counted."""
    coupon = spec.coupon
    months = coupon["duration_in_months"]
    discount = shapes.discount(
        id=discount_id or new_id("di"),
        customer=customer,
        subscription=subscription,
        invoice=invoice,
        start=now,
        end=now + months * MONTH if coupon["duration"] == "repeating" and months else None,
        promotion_code=None if spec.promotion_code is None else spec.promotion_code["id"],
        source={"coupon": coupon["id"], "type": "coupon"},
    )
    _redeem(coupon)
    if spec.promotion_code is not None:
        spec.promotion_code["times_redeemed"] += 1
        limit = spec.promotion_code["max_redemptions"]
        if limit is not None and spec.promotion_code["times_redeemed"] >= limit:
            spec.promotion_code["active"] = False
    ctx.account.put("discounts", discount)
    # the coupon itself is kept with its discounts, so deleting the coupon leaves them working
    ctx.account.internal.setdefault("discount_coupons", {})[discount["id"]] = copy_json(coupon)
    return discount


def _redeem(coupon: JSON) -> None:
    coupon["times_redeemed"] += 1
    if (
        coupon["max_redemptions"] is not None
        and coupon["times_redeemed"] >= coupon["max_redemptions"]
    ):
        coupon["valid"] = False


def coupon_of(ctx: Ctx, discount: JSON) -> JSON:
    """The coupon a discount redeemed, even if the coupon was deleted since."""
    kept: JSON | None = ctx.account.internal.get("discount_coupons", {}).get(discount["id"])
    if kept is not None:
        current = ctx.account.collection("coupons").get(kept["id"])
        return current if current is not None else kept
    return ctx.account.get("coupons", discount["source"]["coupon"])


# --- customers' discounts ----------------------------------------------------------------------


def set_customer_discount(
    ctx: Ctx, customer: JSON, specs: list[DiscountSpec], *, now: int
) -> list[tuple[str, JSON, JSON | None]]:
    """Apply (or with no spec clear) a customer's discount. Returns the
    `customer.discount.created|updated|deleted` event to emit once the customer's own event is
    out (`emit_all`)."""
    current = customer["discount"]
    if not specs:
        if current is None:
            return []
        customer["discount"] = None
        ctx.account.collection("discounts").pop(current["id"], None)
        return [("customer.discount.deleted", current, None)]
    if len(specs) > 1:
        raise invalid_request(
            "A customer can only have one coupon or promotion code.", param="promotion_code"
        )
    spec = specs[0]
    if current is not None and current["source"]["coupon"] == spec.coupon["id"]:
        return []
    discount = make_discount(
        ctx,
        spec,
        now=now,
        customer=customer["id"],
        discount_id=None if current is None else current["id"],
    )
    customer["discount"] = copy_json(discount)
    if current is None:
        return [("customer.discount.created", discount, None)]
    return [("customer.discount.updated", discount, previous_attributes(current, discount))]


def emit_all(ctx: Ctx, events: list[tuple[str, JSON, JSON | None]], *, now: int) -> None:
    for event_type, obj, previous in events:
        ctx.emit(event_type, obj, previous, created=now)


def remove_subscription_discount(ctx: Ctx, subscription: JSON, discount_id: str, now: int) -> None:
    """Drop an ended discount from a subscription (`customer.discount.deleted`)."""
    if discount_id not in subscription["discounts"]:
        return
    subscription["discounts"] = [d for d in subscription["discounts"] if d != discount_id]
    discount = ctx.account.collection("discounts").pop(discount_id, None)
    if discount is not None:
        ctx.emit("customer.discount.deleted", discount, created=now)


def set_subscription_discounts(
    ctx: Ctx, subscription: JSON, specs: list[DiscountSpec], *, now: int
) -> None:
    """Replace a subscription's discounts (its `discounts` ids); events for each change."""
    keep = {}
    for discount_id in subscription["discounts"]:
        discount = ctx.account.collection("discounts").get(discount_id)
        if discount is not None:
            keep[discount["source"]["coupon"]] = discount_id
    wanted = [spec.coupon["id"] for spec in specs]
    for coupon_id, discount_id in keep.items():
        if coupon_id not in wanted:
            remove_subscription_discount(ctx, subscription, discount_id, now)
    ids = []
    for spec in specs:
        if spec.coupon["id"] in keep:
            ids.append(keep[spec.coupon["id"]])
            continue
        discount = make_discount(
            ctx,
            spec,
            now=now,
            customer=subscription["customer"],
            subscription=subscription["id"],
        )
        ids.append(discount["id"])
        ctx.emit("customer.discount.created", discount, created=now)
    subscription["discounts"] = ids


@delete("/v1/customers/{id}/discount")
def delete_customer_discount(ctx: Ctx, params: Params, id: str) -> JSON:
    params.finish()
    customer = ctx.account.get("customers", id)
    current = customer["discount"]
    if current is None:
        raise invalid_request(f"No active discount for customer: {id}", code="resource_missing")
    now = ctx.account.now_for(id)
    before = copy_json(customer)
    events = set_customer_discount(ctx, customer, [], now=now)
    ctx.emit("customer.updated", customer, previous_attributes(before, customer), created=now)
    emit_all(ctx, events, now=now)
    return {**current, "deleted": True}


@delete("/v1/subscriptions/{id}/discount")
def delete_subscription_discount(ctx: Ctx, params: Params, id: str) -> JSON:
    params.finish()
    subscription = ctx.account.get("subscriptions", id)
    if not subscription["discounts"]:
        raise invalid_request(f"No active discount for subscription: {id}", code="resource_missing")
    now = ctx.account.now_for(subscription["customer"])
    before = copy_json(subscription)
    first = ctx.account.collection("discounts").get(subscription["discounts"][0])
    for discount_id in list(subscription["discounts"]):
        remove_subscription_discount(ctx, subscription, discount_id, now)
    ctx.emit(
        "customer.subscription.updated",
        subscription,
        previous_attributes(before, subscription),
        created=now,
    )
    return {**(first or {"id": before["discounts"][0], "object": "discount"}), "deleted": True}
