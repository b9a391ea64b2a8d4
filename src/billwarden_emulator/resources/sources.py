"""Customers' legacy card sources: `POST /v1/customers/{id}/sources` with a `tok_*` test token,
retrieve, update, list and delete (`customer.source.created|updated|deleted`). The first source
becomes the customer's `default_source` (`customer.updated`). A `card_` id also works as a
payment method, with its test card's outcome."""

from __future__ import annotations

from billwarden_emulator.errors import invalid_request, resource_missing
from billwarden_emulator.forms import Params, merge_metadata
from billwarden_emulator.ids import new_id
from billwarden_emulator.listing import newest_first, page
from billwarden_emulator.resources import delete, get, post
from billwarden_emulator.resources import payment_methods as methods
from billwarden_emulator.shapes import payments as payment_shapes
from billwarden_emulator.state import JSON, Ctx, copy_json, previous_attributes

_BRANDS = {"visa": "Visa", "mastercard": "MasterCard", "amex": "American Express"}
_FIELDS = (
    "address_city",
    "address_country",
    "address_line1",
    "address_line2",
    "address_state",
    "address_zip",
    "name",
)


def _source(ctx: Ctx, customer: str, id: str) -> JSON:
    card = ctx.account.collection("cards").get(id)
    if card is None or card["customer"] != customer:
        raise resource_missing("source", id)
    return card


@post("/v1/customers/{id}/sources")
def create_source(ctx: Ctx, params: Params, id: str) -> JSON:
    customer = ctx.account.get("customers", id, param="customer")
    token = params.str("source", required=True)
    assert token is not None
    metadata = params.metadata() or {}
    params.accept("validate")
    params.finish()
    name = token.removeprefix("tok_") if token.startswith("tok_") else None
    test_card = methods.TEST_CARDS.get(name or "")
    if name is None or test_card is None:
        raise invalid_request(f"No such token: '{token}'", param="source", code="resource_missing")
    if test_card.setup == "declined" and test_card.decline is not None:
        raise methods.card_error(*test_card.decline)
    details = methods.card_details(name)
    now = ctx.account.now_for(id)
    card = payment_shapes.card_source(
        id=new_id("card"),
        brand=_BRANDS.get(test_card.brand, test_card.brand.title()),
        country=test_card.country,
        customer=id,
        fingerprint=details["fingerprint"],
        funding=test_card.funding,
        last4=test_card.last4,
        metadata=metadata,
    )
    ctx.account.put("cards", card)
    ctx.account.internal.setdefault("payment_method_cards", {})[card["id"]] = name
    ctx.emit("customer.source.created", card, created=now)
    if customer["default_source"] is None:
        before = copy_json(customer)
        customer["default_source"] = card["id"]
        ctx.emit("customer.updated", customer, previous_attributes(before, customer), created=now)
    return card


@get("/v1/customers/{customer}/sources/{id}")
def retrieve_source(ctx: Ctx, params: Params, customer: str, id: str) -> JSON:
    params.finish()
    ctx.account.get("customers", customer, param="customer")
    return _source(ctx, customer, id)


@post("/v1/customers/{customer}/sources/{id}")
def update_source(ctx: Ctx, params: Params, customer: str, id: str) -> JSON:
    ctx.account.get("customers", customer, param="customer")
    card = _source(ctx, customer, id)
    before = copy_json(card)
    for field in _FIELDS:
        if params.has(field):
            card[field] = params.str(field)
    for field in ("exp_month", "exp_year"):
        value = params.int(field, minimum=1)
        if value is not None:
            card[field] = value
    card["metadata"] = merge_metadata(card["metadata"], params.metadata())
    params.accept("account_holder_name", "account_holder_type", "owner")
    params.finish()
    changes = previous_attributes(before, card)
    if changes:
        ctx.emit("customer.source.updated", card, changes, created=ctx.account.now_for(customer))
    return card


@delete("/v1/customers/{customer}/sources/{id}")
def delete_source(ctx: Ctx, params: Params, customer: str, id: str) -> JSON:
    params.finish()
    owner = ctx.account.get("customers", customer, param="customer")
    card = _source(ctx, customer, id)
    now = ctx.account.now_for(customer)
    del ctx.account.collection("cards")[id]
    ctx.emit("customer.source.deleted", card, created=now)
    if owner["default_source"] == id:
        before = copy_json(owner)
        remaining = [
            c["id"] for c in ctx.account.collection("cards").values() if c["customer"] == customer
        ]
        owner["default_source"] = remaining[-1] if remaining else None
        ctx.emit("customer.updated", owner, previous_attributes(before, owner), created=now)
    return {**card, "customer": None, "deleted": True}


@get("/v1/customers/{id}/sources")
def list_sources(ctx: Ctx, params: Params, id: str) -> JSON:
    ctx.account.get("customers", id, param="customer")
    object_name = params.str("object")
    result = page(
        params,
        f"/v1/customers/{id}/sources",
        newest_first(
            ctx.account.collection("cards"),
            lambda card: (
                card["customer"] == id and (object_name is None or card["object"] == object_name)
            ),
        ),
        object_name="source",
    )
    params.finish()
    return result
