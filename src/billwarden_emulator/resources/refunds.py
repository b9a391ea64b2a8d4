"""Refunds: create (of a charge or a payment intent's charge), retrieve, update, list; and a
charge's own refunds list."""

from __future__ import annotations

from billwarden_emulator.billing import refunds
from billwarden_emulator.errors import resource_missing
from billwarden_emulator.forms import Params, merge_metadata
from billwarden_emulator.listing import newest_first, page, range_filter
from billwarden_emulator.resources import get, post
from billwarden_emulator.state import JSON, Ctx, copy_json, previous_attributes


@post("/v1/refunds")
def create_refund(ctx: Ctx, params: Params) -> JSON:
    charge = refunds.refundable_charge(
        ctx, charge_id=params.str("charge"), intent_id=params.str("payment_intent")
    )
    amount = params.int("amount", minimum=1)
    reason = params.str("reason", choices=refunds.REASONS)
    metadata = params.metadata() or {}
    # customer-balance refunds (`origin`, `customer`, `currency`) and Connect are not emulated
    params.accept(
        "currency",
        "customer",
        "instructions_email",
        "origin",
        "refund_application_fee",
        "reverse_transfer",
    )
    params.finish()
    return refunds.refund_charge(ctx, charge, amount=amount, reason=reason, metadata=metadata)


@get("/v1/refunds/{id}")
def retrieve_refund(ctx: Ctx, params: Params, id: str) -> JSON:
    params.finish()
    return ctx.account.get("refunds", id)


@post("/v1/refunds/{id}")
def update_refund(ctx: Ctx, params: Params, id: str) -> JSON:
    refund = ctx.account.get("refunds", id)
    metadata = params.metadata()
    params.finish()
    before = copy_json(refund)
    refund["metadata"] = merge_metadata(refund["metadata"], metadata)
    changes = previous_attributes(before, refund)
    if changes:
        charge = ctx.account.collection("charges").get(refund["charge"] or "")
        if charge is not None:
            # the charge's embedded list holds its own copy once restored from a snapshot
            charge["refunds"]["data"] = [
                refund if listed["id"] == refund["id"] else listed
                for listed in charge["refunds"]["data"]
            ]
        now = ctx.account.now_for(None if charge is None else charge["customer"])
        ctx.emit("refund.updated", refund, changes, created=now)
    return refund


@get("/v1/refunds")
def list_refunds(ctx: Ctx, params: Params) -> JSON:
    charge = params.str("charge")
    intent = params.str("payment_intent")
    created = range_filter(params, "created")

    def keep(refund: JSON) -> bool:
        return (
            (charge is None or refund["charge"] == charge)
            and (intent is None or refund["payment_intent"] == intent)
            and (created is None or created(refund["created"]))
        )

    result = page(
        params,
        "/v1/refunds",
        newest_first(ctx.account.collection("refunds"), keep),
        object_name="refund",
    )
    params.finish()
    return result


@get("/v1/charges/{id}/refunds")
def list_charge_refunds(ctx: Ctx, params: Params, id: str) -> JSON:
    ctx.account.get("charges", id, param="charge")
    result = page(
        params,
        f"/v1/charges/{id}/refunds",
        newest_first(ctx.account.collection("refunds"), lambda refund: refund["charge"] == id),
        object_name="refund",
    )
    params.finish()
    return result


@get("/v1/charges/{charge}/refunds/{id}")
def retrieve_charge_refund(ctx: Ctx, params: Params, charge: str, id: str) -> JSON:
    params.finish()
    ctx.account.get("charges", charge, param="charge")
    refund = ctx.account.get("refunds", id)
    if refund["charge"] != charge:
        raise resource_missing("refund", id)
    return refund
