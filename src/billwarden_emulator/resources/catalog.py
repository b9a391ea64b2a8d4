"""Products and prices (prices list with `lookup_keys`, `product`, `active`, `type` filters)."""

from __future__ import annotations

import time

from billwarden_emulator import shapes
from billwarden_emulator.errors import invalid_request, invalid_value, missing_parameter
from billwarden_emulator.forms import Params, merge_metadata
from billwarden_emulator.ids import new_id
from billwarden_emulator.listing import newest_first, page, range_filter
from billwarden_emulator.resources import delete, get, post
from billwarden_emulator.state import JSON, Account, Ctx, copy_json, previous_attributes

_INTERVALS = ("day", "week", "month", "year")

# the ISO 4217 codes Stripe accepts for prices (its "supported currencies" page)
SUPPORTED_CURRENCIES = frozenset(
    """aed afn all amd ang aoa ars aud awg azn bam bbd bdt bgn bhd bif bmd bnd bob brl bsd bwp byn
    bzd cad cdf chf clp cny cop crc cve czk djf dkk dop dzd egp etb eur fjd fkp gbp gel gip gmd
    gnf gtq gyd hkd hnl htg huf idr ils inr isk jmd jod jpy kes kgs khr kmf krw kwd kyd kzt lak
    lbp lkr lrd lsl mad mdl mga mkd mmk mnt mop mur mvr mwk mxn myr mzn nad ngn nio nok npr nzd
    omr pab pen pgk php pkr pln pyg qar ron rsd rub rwf sar sbd scr sek sgd shp sle sos srd std
    szl thb tjs tnd top try ttd twd tzs uah ugx usd uyu uzs vnd vuv wst xaf xcd xof xpf yer zar
    zmw""".split()  # noqa: SIM905 (a list of codes, not a sentence)
)


def _apply_product(product: JSON, params: Params) -> None:
    for field in ("description", "statement_descriptor", "tax_code", "unit_label", "url"):
        if params.has(field):
            product[field] = params.str(field)
    if params.has("name"):
        product["name"] = params.str("name", required=True)
    if params.has("active"):
        product["active"] = params.bool("active")
    if params.has("shippable"):
        product["shippable"] = params.bool("shippable")
    if params.has("images"):
        product["images"] = params.strings("images") or []
    if params.has("marketing_features"):
        features = []
        for feature in params.nested_list("marketing_features"):
            features.append({"name": feature.str("name", required=True)})
            feature.finish()
        product["marketing_features"] = features
    product["metadata"] = merge_metadata(product["metadata"], params.metadata())
    params.accept("package_dimensions", "tax_details")


@post("/v1/products")
def create_product(ctx: Ctx, params: Params) -> JSON:
    now = int(time.time())
    product_id = params.str("id") or new_id("prod")
    if product_id in ctx.account.collection("products"):
        raise invalid_request(
            f"Product already exists: {product_id}", param="id", code="resource_already_exists"
        )
    product = shapes.product(
        id=product_id,
        created=now,
        updated=now,
        livemode=ctx.account.livemode,
        name=params.str("name", required=True),
        type=params.str("type", choices=("good", "service")) or "service",
    )
    _apply_product(product, params)
    default_price_data = params.nested("default_price_data")
    params.finish()
    ctx.account.put("products", product)
    ctx.emit("product.created", product, created=now)
    if default_price_data is not None:
        price = _build_price(ctx.account, default_price_data, product_id=product_id)
        default_price_data.finish()
        ctx.account.put("prices", price)
        ctx.emit("price.created", price, created=now)
        product["default_price"] = price["id"]
    return product


@get("/v1/products/{id}")
def retrieve_product(ctx: Ctx, params: Params, id: str) -> JSON:
    params.finish()
    return ctx.account.get("products", id)


@post("/v1/products/{id}")
def update_product(ctx: Ctx, params: Params, id: str) -> JSON:
    product = ctx.account.get("products", id)
    before = copy_json(product)
    _apply_product(product, params)
    if params.has("default_price"):
        default_price = params.str("default_price")
        if default_price is not None:
            ctx.account.get("prices", default_price, param="default_price")
        product["default_price"] = default_price
    params.finish()
    product["updated"] = int(time.time())
    changes = previous_attributes(before, product)
    if changes:
        ctx.emit("product.updated", product, changes)
    return product


@delete("/v1/products/{id}")
def delete_product(ctx: Ctx, params: Params, id: str) -> JSON:
    params.finish()
    product = ctx.account.get("products", id)
    if any(price["product"] == id for price in ctx.account.collection("prices").values()):
        raise invalid_request(
            "This product cannot be deleted because it has one or more user-created prices."
        )
    del ctx.account.collection("products")[id]
    ctx.emit("product.deleted", product)
    return shapes.deleted("product", id)


@get("/v1/products")
def list_products(ctx: Ctx, params: Params) -> JSON:
    active = params.bool("active")
    ids = params.strings("ids")
    shippable = params.bool("shippable")
    url = params.str("url")
    created = range_filter(params, "created")

    def keep(product: JSON) -> bool:
        return (
            (active is None or product["active"] == active)
            and (ids is None or product["id"] in ids)
            and (shippable is None or product["shippable"] == shippable)
            and (url is None or product["url"] == url)
            and (created is None or created(product["created"]))
        )

    result = page(
        params,
        "/v1/products",
        newest_first(ctx.account.collection("products"), keep),
        object_name="product",
    )
    params.finish()
    return result


def _build_price(account: Account, params: Params, *, product_id: str) -> JSON:
    currency = params.str("currency", required=True)
    assert currency is not None
    if currency.lower() not in SUPPORTED_CURRENCIES:
        raise invalid_value("currency", f"Invalid currency: {currency.lower()}.")
    unit_amount = params.int("unit_amount", minimum=0)
    decimal = params.str("unit_amount_decimal")
    if unit_amount is None and decimal is not None:
        try:
            unit_amount = int(float(decimal))
        except ValueError:
            raise invalid_value("unit_amount_decimal", f"Invalid decimal: {decimal}") from None
    if unit_amount is None and params.raw("custom_unit_amount") is None:
        raise missing_parameter("unit_amount")
    recurring: JSON | None = None
    recurring_params = params.nested("recurring")
    if recurring_params is not None:
        recurring = {
            "interval": recurring_params.str("interval", required=True, choices=_INTERVALS),
            "interval_count": recurring_params.int("interval_count", minimum=1) or 1,
            "meter": recurring_params.str("meter"),
            "usage_type": recurring_params.str("usage_type", choices=("licensed", "metered"))
            or "licensed",
            "trial_period_days": recurring_params.int("trial_period_days", minimum=1),
        }
        recurring_params.accept("aggregate_usage")
        recurring_params.finish()
    params.accept("custom_unit_amount", "currency_options", "tiers", "transform_quantity")
    return shapes.price(
        id=new_id("price"),
        created=int(time.time()),
        livemode=account.livemode,
        currency=currency.lower(),
        product=product_id,
        unit_amount=unit_amount,
        unit_amount_decimal=None if unit_amount is None else str(unit_amount),
        recurring=recurring,
        type="recurring" if recurring is not None else "one_time",
        nickname=params.str("nickname"),
        lookup_key=params.str("lookup_key"),
        metadata=merge_metadata({}, params.metadata()),
        active=params.bool("active") is not False,
        billing_scheme=params.str("billing_scheme", choices=("per_unit", "tiered")) or "per_unit",
        tax_behavior=params.str("tax_behavior", choices=("exclusive", "inclusive", "unspecified"))
        or "unspecified",
        tiers_mode=params.str("tiers_mode", choices=("graduated", "volume")),
    )


def _release_lookup_key(ctx: Ctx, lookup_key: str | None, params: Params) -> None:
    """Stripe refuses a taken lookup key unless `transfer_lookup_key=true` moves it."""
    if lookup_key is None:
        return
    transfer = params.bool("transfer_lookup_key")
    for other in ctx.account.collection("prices").values():
        if other["lookup_key"] == lookup_key:
            if not transfer:
                raise invalid_request(
                    f"A price (`{other['id']}`) already uses that lookup key.",
                    param="lookup_key",
                )
            before = copy_json(other)
            other["lookup_key"] = None
            ctx.emit("price.updated", other, previous_attributes(before, other))


@post("/v1/prices")
def create_price(ctx: Ctx, params: Params) -> JSON:
    product_id = params.str("product")
    product_data = params.nested("product_data")
    if product_id is None and product_data is None:
        raise missing_parameter("product")
    if product_id is not None:
        ctx.account.get("products", product_id, param="product")
    _release_lookup_key(ctx, params.str("lookup_key"), params)
    price = _build_price(ctx.account, params, product_id=product_id or "")
    params.finish()
    if product_data is not None:
        now = int(time.time())
        product = shapes.product(
            id=product_data.str("id") or new_id("prod"),
            created=now,
            updated=now,
            livemode=ctx.account.livemode,
            name=product_data.str("name", required=True),
        )
        _apply_product(product, product_data)
        product_data.finish()
        ctx.account.put("products", product)
        ctx.emit("product.created", product, created=now)
        price["product"] = product["id"]
    ctx.account.put("prices", price)
    ctx.emit("price.created", price, created=price["created"])
    return price


@get("/v1/prices/{id}")
def retrieve_price(ctx: Ctx, params: Params, id: str) -> JSON:
    params.finish()
    return ctx.account.get("prices", id)


@post("/v1/prices/{id}")
def update_price(ctx: Ctx, params: Params, id: str) -> JSON:
    price = ctx.account.get("prices", id)
    before = copy_json(price)
    if params.has("lookup_key"):
        lookup_key = params.str("lookup_key")
        if lookup_key != price["lookup_key"]:
            _release_lookup_key(ctx, lookup_key, params)
        price["lookup_key"] = lookup_key
    if params.has("active"):
        price["active"] = params.bool("active")
    if params.has("nickname"):
        price["nickname"] = params.str("nickname")
    if params.has("tax_behavior"):
        price["tax_behavior"] = params.str(
            "tax_behavior", choices=("exclusive", "inclusive", "unspecified")
        )
    price["metadata"] = merge_metadata(price["metadata"], params.metadata())
    params.accept("transfer_lookup_key", "currency_options")
    params.finish()
    changes = previous_attributes(before, price)
    if changes:
        _refresh_embedded_price(ctx.account, price)
        ctx.emit("price.updated", price, changes)
    return price


def _refresh_embedded_price(account: Account, price: JSON) -> None:
    """Subscription items embed their price; keep those copies current."""
    for subscription in account.collection("subscriptions").values():
        for item in subscription["items"]["data"]:
            if item["price"]["id"] == price["id"]:
                item["price"] = copy_json(price)
                item["plan"] = shapes.plan_from_price(price)


@get("/v1/prices")
def list_prices(ctx: Ctx, params: Params) -> JSON:
    active = params.bool("active")
    currency = params.str("currency")
    product = params.str("product")
    price_type = params.str("type", choices=("one_time", "recurring"))
    lookup_keys = params.strings("lookup_keys")
    created = range_filter(params, "created")
    recurring = params.nested("recurring")
    interval = usage_type = None
    if recurring is not None:
        interval = recurring.str("interval", choices=_INTERVALS)
        usage_type = recurring.str("usage_type", choices=("licensed", "metered"))
        recurring.accept("meter")
        recurring.finish()
    if lookup_keys is not None and len(lookup_keys) > 10:
        raise invalid_value("lookup_keys", "You can pass at most 10 lookup keys.")

    def keep(price: JSON) -> bool:
        rec = price["recurring"] or {}
        return (
            (active is None or price["active"] == active)
            and (currency is None or price["currency"] == currency.lower())
            and (product is None or price["product"] == product)
            and (price_type is None or price["type"] == price_type)
            and (lookup_keys is None or price["lookup_key"] in lookup_keys)
            and (created is None or created(price["created"]))
            and (interval is None or rec.get("interval") == interval)
            and (usage_type is None or rec.get("usage_type") == usage_type)
        )

    result = page(
        params,
        "/v1/prices",
        newest_first(ctx.account.collection("prices"), keep),
        object_name="price",
    )
    params.finish()
    return result
