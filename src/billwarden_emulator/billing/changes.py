"""Item changes on a live subscription (plan change, quantity, add/remove) and their prorations.

`proration_behavior`: `create_prorations` (default) adds credit/debit lines to the next renewal
invoice, `always_invoice` invoices them now, `none` changes the items without money moving.
Changing the billing interval resets the billing cycle to now and always invoices now.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from billwarden_emulator import shapes
from billwarden_emulator.billing import payments
from billwarden_emulator.billing.lifecycle import (
    ItemSpec,
    _item,
    _product_name,
    after_invoice_result,
    check_recurring,
    current_period_end,
    format_day,
)
from billwarden_emulator.clock import next_period_end
from billwarden_emulator.errors import invalid_request
from billwarden_emulator.forms import Params, merge_metadata
from billwarden_emulator.ids import new_id
from billwarden_emulator.state import JSON, Ctx, copy_json

PRORATION_BEHAVIORS = ("create_prorations", "always_invoice", "none")


@dataclass
class PlannedInvoice:
    """Lines to invoice right after `customer.subscription.updated` is emitted."""

    invoice_id: str
    lines: list[JSON] = field(default_factory=list)


def apply_item_changes(
    ctx: Ctx,
    subscription: JSON,
    item_params: list[Params],
    *,
    proration_behavior: str,
    now: int,
) -> PlannedInvoice | None:
    account = ctx.account
    items: list[JSON] = subscription["items"]["data"]
    by_id = {item["id"]: item for item in items}
    old_items = copy_json({"data": items})["data"]
    old_interval = _interval(items[0]) if items else None
    new_items: list[JSON] = list(items)
    for index, params in enumerate(item_params):
        item_id = params.str("id")
        price_id = params.str("price")
        price = None
        if price_id is not None:
            price = account.get("prices", price_id, param=f"items[{index}][price]")
        params.accept("price_data", "discounts", "tax_rates", "billing_thresholds", "clear_usage")
        if item_id is not None:
            item = by_id.get(item_id)
            if item is None:
                raise invalid_request(
                    f"Invalid subscription_item id: {item_id}",
                    param=f"items[{index}][id]",
                    code="resource_missing",
                )
            if params.bool("deleted"):
                new_items = [i for i in new_items if i["id"] != item_id]
                params.finish()
                continue
            if price is not None and price["id"] != item["price"]["id"]:
                check_recurring([ItemSpec(price)], f"items[{index}][price]")
                item["price"] = copy_json(price)
                item["plan"] = shapes.plan_from_price(price)
            quantity = params.int("quantity", minimum=0)
            if quantity is not None:
                item["quantity"] = quantity
            item["metadata"] = merge_metadata(item["metadata"], params.metadata())
            params.finish()
        else:
            if price is None:
                raise invalid_request(
                    "Missing required param: items[0][price].",
                    param=f"items[{index}][price]",
                    code="parameter_missing",
                )
            params.bool("deleted")
            spec = ItemSpec(price, params.int("quantity", minimum=0) or 1, params.metadata() or {})
            params.finish()
            start = min(i["current_period_start"] for i in items)
            new_items.append(
                _item(ctx, subscription["id"], spec, now, start, current_period_end(subscription))
            )
    if not new_items:
        raise invalid_request("A subscription must have at least one active plan.", param="items")
    interval, count, currency = check_recurring([ItemSpec(i["price"]) for i in new_items], "items")
    if currency != subscription["currency"]:
        raise invalid_request("You cannot change the currency of a subscription.", param="items")
    subscription["items"]["data"] = new_items

    interval_changed = old_interval != (interval, count)
    if interval_changed:
        subscription["billing_cycle_anchor"] = now
        end = next_period_end(now, interval, count, now)
        for item in new_items:
            item["current_period_start"] = now
            item["current_period_end"] = end
        proration_behavior = "always_invoice" if proration_behavior != "none" else "none"

    if proration_behavior == "none" or subscription["status"] == "trialing":
        return None
    lines = _proration_lines(ctx, subscription, old_items, new_items, now, full=interval_changed)
    if not lines:
        return None
    if proration_behavior == "create_prorations":
        account.internal["pending_lines"].setdefault(subscription["id"], []).extend(lines)
        return None
    planned = PlannedInvoice(new_id("in"), lines)
    subscription["latest_invoice"] = planned.invoice_id
    return planned


def _interval(item: JSON) -> tuple[str, int]:
    recurring = item["price"]["recurring"]
    return str(recurring["interval"]), int(recurring["interval_count"])


def _proration_lines(
    ctx: Ctx,
    subscription: JSON,
    old_items: list[JSON],
    new_items: list[JSON],
    now: int,
    *,
    full: bool,
) -> list[JSON]:
    old_by_id = {item["id"]: item for item in old_items}
    new_by_id = {item["id"]: item for item in new_items}
    lines: list[JSON] = []
    for item in old_items:
        new = new_by_id.get(item["id"])
        if new is not None and _charge_key(new) == _charge_key(item) and not full:
            continue
        fraction = _remaining(item, now)
        amount = -round((item["price"]["unit_amount"] or 0) * item["quantity"] * fraction)
        if amount:
            lines.append(
                payments.subscription_line(
                    ctx,
                    subscription=subscription,
                    item=item,
                    amount=amount,
                    period_start=now,
                    period_end=item["current_period_end"],
                    description=f"Unused time on {item['quantity']} x "
                    f"{_product_name(ctx, item['price'])} after {format_day(now)}",
                    proration=True,
                )
            )
    for item in new_items:
        old = old_by_id.get(item["id"])
        if old is not None and _charge_key(old) == _charge_key(item) and not full:
            continue
        fraction = 1.0 if full else _remaining(item, now)
        amount = round((item["price"]["unit_amount"] or 0) * item["quantity"] * fraction)
        if amount:
            lines.append(
                payments.subscription_line(
                    ctx,
                    subscription=subscription,
                    item=item,
                    amount=amount,
                    period_start=now,
                    period_end=item["current_period_end"],
                    description=f"Remaining time on {item['quantity']} x "
                    f"{_product_name(ctx, item['price'])} after {format_day(now)}",
                    proration=True,
                )
            )
    return lines


def _charge_key(item: JSON) -> tuple[str, int]:
    return str(item["price"]["id"]), int(item["quantity"])


def _remaining(item: JSON, now: int) -> float:
    start, end = item["current_period_start"], item["current_period_end"]
    if end <= start:
        return 0.0
    return float(max(0.0, min(1.0, (end - now) / (end - start))))


def invoice_now(ctx: Ctx, subscription: JSON, planned: PlannedInvoice, now: int) -> None:
    """Invoice planned proration lines at once and collect them."""
    customer = ctx.account.collection("customers")[subscription["customer"]]
    invoice = payments.create_invoice(
        ctx,
        customer=customer,
        lines=planned.lines,
        billing_reason="subscription_update",
        now=now,
        period_start=now,
        period_end=now,
        currency=subscription["currency"],
        subscription=subscription,
        invoice_id=planned.invoice_id,
    )
    payments.finalize_invoice(ctx, invoice, now)
    paid = payments.attempt_invoice(ctx, invoice, now)
    after_invoice_result(ctx, invoice, paid=bool(paid), now=now)
