"""Subscriptions and subscription items.

`POST /v1/subscriptions` charges the first invoice at once (`payment_behavior`:
`allow_incomplete` default, `error_if_incomplete` answers 402 on decline and creates nothing,
`default_incomplete` leaves it `incomplete` until `POST /v1/invoices/{id}/pay`).
"""

from __future__ import annotations

from billwarden_emulator.billing import changes, lifecycle
from billwarden_emulator.billing.lifecycle import ENDED, ItemSpec
from billwarden_emulator.errors import invalid_request, resource_missing
from billwarden_emulator.forms import Params, merge_metadata
from billwarden_emulator.listing import newest_first, page, range_filter
from billwarden_emulator.resources import coupons, delete, get, post
from billwarden_emulator.state import JSON, Ctx, copy_json, previous_attributes

_STATUSES = (
    "active",
    "all",
    "canceled",
    "ended",
    "incomplete",
    "incomplete_expired",
    "past_due",
    "paused",
    "trialing",
    "unpaid",
)
_ACCEPTED_CREATE = (
    "add_invoice_items",
    "application_fee_percent",
    "automatic_tax",
    "backdate_start_date",
    "billing_cycle_anchor_config",
    "billing_mode",
    "billing_thresholds",
    "currency",
    "discounts",
    "default_source",
    "default_tax_rates",
    "invoice_settings",
    "off_session",
    "on_behalf_of",
    "payment_settings",
    "pending_invoice_item_interval",
    "proration_behavior",
    "transfer_data",
    "trial_from_plan",
)
_MISSING_PAYMENT_METHOD = ("cancel", "create_invoice", "pause")


def missing_payment_method_from(params: Params) -> str | None:
    """`trial_settings[end_behavior][missing_payment_method]`, if sent."""
    settings = params.nested("trial_settings")
    if settings is None:
        return None
    end_behavior = settings.nested("end_behavior", required=True)
    assert end_behavior is not None
    behavior = end_behavior.str(
        "missing_payment_method", required=True, choices=_MISSING_PAYMENT_METHOD
    )
    end_behavior.finish()
    settings.finish()
    return behavior


def _item_specs(ctx: Ctx, params: Params) -> list[ItemSpec]:
    specs = []
    for index, item in enumerate(params.nested_list("items", required=True)):
        price_id = item.str("price", required=True)
        assert price_id is not None
        price = ctx.account.get("prices", price_id, param=f"items[{index}][price]")
        specs.append(ItemSpec(price, item.int("quantity", minimum=0) or 1, item.metadata() or {}))
        item.accept("discounts", "tax_rates", "billing_thresholds", "price_data")
        item.finish()
    return specs


def trial_end_from(
    params: Params, now: int, specs: list[ItemSpec], *, days_param: str = "trial_period_days"
) -> int | None:
    trial_end = params.timestamp_or_now("trial_end")
    if isinstance(trial_end, int):
        if trial_end <= now:
            raise invalid_request(
                "Invalid timestamp: must be an integer Unix timestamp in the future.",
                param="trial_end",
            )
        return trial_end
    days = params.int(days_param, minimum=0)
    if days is None and params.bool("trial_from_plan"):
        days = (specs[0].price["recurring"] or {}).get("trial_period_days")
    return now + days * lifecycle.DAY if days else None


@post("/v1/subscriptions")
def create_subscription(ctx: Ctx, params: Params) -> JSON:
    customer_id = params.str("customer", required=True)
    assert customer_id is not None
    customer = ctx.account.get("customers", customer_id, param="customer")
    specs = _item_specs(ctx, params)
    now = ctx.account.now_for(customer_id)
    payment_behavior = params.str(
        "payment_behavior",
        choices=(
            "allow_incomplete",
            "default_incomplete",
            "error_if_incomplete",
            "pending_if_incomplete",
        ),
    )
    collection_method = (
        params.str("collection_method", choices=("charge_automatically", "send_invoice"))
        or "charge_automatically"
    )
    trial_end = trial_end_from(params, now, specs)
    cancel_at = params.int("cancel_at")
    cancel_at_period_end = bool(params.bool("cancel_at_period_end"))
    metadata = params.metadata()
    description = params.str("description")
    default_payment_method = params.str("default_payment_method")
    days_until_due = params.int("days_until_due", minimum=0)
    missing_payment_method = missing_payment_method_from(params) or "create_invoice"
    discounts = coupons.read_discount_specs(ctx, params, now=now, customer=customer_id)
    params.accept(*_ACCEPTED_CREATE)
    params.finish()
    return lifecycle.start_subscription(
        ctx,
        customer=customer,
        specs=specs,
        now=now,
        metadata=metadata,
        trial_end=trial_end,
        payment="none" if payment_behavior == "default_incomplete" else "charge",
        raise_on_decline=payment_behavior == "error_if_incomplete",
        description=description,
        cancel_at_period_end=cancel_at_period_end,
        cancel_at=cancel_at,
        default_payment_method=default_payment_method,
        collection_method=collection_method,
        days_until_due=days_until_due,
        missing_payment_method=missing_payment_method,
        discounts=discounts or (),
    )


@get("/v1/subscriptions/{id}")
def retrieve_subscription(ctx: Ctx, params: Params, id: str) -> JSON:
    params.finish()
    return ctx.account.get("subscriptions", id)


def _emit_update(ctx: Ctx, subscription: JSON, before: JSON, now: int) -> None:
    changed = previous_attributes(before, subscription)
    if not changed:
        return
    ctx.emit("customer.subscription.updated", subscription, changed, created=now)
    if subscription["status"] == "paused" and before["status"] != "paused":
        ctx.emit("customer.subscription.paused", subscription, created=now)
    elif before["status"] == "paused" and subscription["status"] != "paused":
        ctx.emit("customer.subscription.resumed", subscription, created=now)


@post("/v1/subscriptions/{id}")
def update_subscription(ctx: Ctx, params: Params, id: str) -> JSON:
    account = ctx.account
    subscription = account.get("subscriptions", id)
    if subscription["status"] in ENDED and set(params.data) - {
        "metadata",
        "cancellation_details",
        "expand",
    }:
        raise invalid_request(
            "A canceled subscription can only update its cancellation_details and metadata."
        )
    now = account.now_for(subscription["customer"])
    before = copy_json(subscription)
    proration_behavior = (
        params.str("proration_behavior", choices=changes.PRORATION_BEHAVIORS) or "create_prorations"
    )
    planned = None
    if params.has("items"):
        planned = changes.apply_item_changes(
            ctx,
            subscription,
            params.nested_list("items"),
            proration_behavior=proration_behavior,
            now=now,
        )
    subscription["metadata"] = merge_metadata(subscription["metadata"], params.metadata())
    for field in ("description", "default_payment_method"):
        if params.has(field):
            subscription[field] = params.str(field)
    if params.has("cancel_at_period_end"):
        lifecycle.set_cancel_at_period_end(
            subscription, bool(params.bool("cancel_at_period_end")), now
        )
    if params.has("cancel_at"):
        lifecycle.set_cancel_at(subscription, params.int("cancel_at"), now)
    details = params.nested("cancellation_details")
    if details is not None:
        subscription["cancellation_details"] = {
            **subscription["cancellation_details"],
            "comment": details.str("comment"),
            "feedback": details.str("feedback"),
        }
        details.finish()
    if params.has("pause_collection"):
        pause = params.nested("pause_collection")
        if pause is None:
            subscription["pause_collection"] = None
        else:
            subscription["pause_collection"] = {
                "behavior": pause.str(
                    "behavior",
                    required=True,
                    choices=("keep_as_draft", "mark_uncollectible", "void"),
                ),
                "resumes_at": pause.int("resumes_at"),
            }
            pause.finish()
    end_trial_now = trial_moved = False
    missing_payment_method = missing_payment_method_from(params)
    if missing_payment_method is not None:
        subscription["trial_settings"] = {
            "end_behavior": {"missing_payment_method": missing_payment_method}
        }
    if params.has("trial_end"):
        trial_end = params.timestamp_or_now("trial_end")
        if trial_end == "now" or (isinstance(trial_end, int) and trial_end <= now):
            end_trial_now = subscription["status"] == "trialing"
        elif isinstance(trial_end, int) and subscription["status"] == "trialing":
            trial_moved = trial_end != subscription["trial_end"]
            subscription["trial_end"] = trial_end
            for item in subscription["items"]["data"]:
                item["current_period_end"] = trial_end
            subscription["billing_cycle_anchor"] = trial_end
    if params.has("collection_method"):
        subscription["collection_method"] = params.str(
            "collection_method", choices=("charge_automatically", "send_invoice")
        )
    if params.has("days_until_due"):
        subscription["days_until_due"] = params.int("days_until_due", minimum=0)
    params.str("payment_behavior")
    discounts = coupons.read_discount_specs(ctx, params, now=now, customer=subscription["customer"])
    params.accept(*_ACCEPTED_CREATE, "proration_date", "billing_cycle_anchor", "trial_from_plan")
    params.finish()
    if discounts is not None:
        coupons.set_subscription_discounts(ctx, subscription, discounts, now=now)
    _emit_update(ctx, subscription, before, now)
    if trial_moved:
        lifecycle.trial_end_moved(ctx, subscription, now)
    if planned is not None:
        changes.invoice_now(ctx, subscription, planned, now)
    if end_trial_now:
        subscription["trial_end"] = now
        lifecycle.notify_trial_ending(ctx, subscription, now)
        for item in subscription["items"]["data"]:
            item["current_period_end"] = now
        subscription["billing_cycle_anchor"] = now
        lifecycle.renew(ctx, subscription, now)
    return subscription


@delete("/v1/subscriptions/{id}")
def cancel_subscription(ctx: Ctx, params: Params, id: str) -> JSON:
    subscription = ctx.account.get("subscriptions", id)
    details = params.nested("cancellation_details")
    if details is not None:
        subscription["cancellation_details"] = {
            **subscription["cancellation_details"],
            "comment": details.str("comment"),
            "feedback": details.str("feedback"),
        }
        details.finish()
    params.bool("invoice_now")
    params.bool("prorate")
    params.finish()
    if subscription["status"] in ENDED:
        raise resource_missing("subscription", id)
    now = ctx.account.now_for(subscription["customer"])
    subscription["canceled_at"] = now
    lifecycle.end_subscription(ctx, subscription, now, reason="cancellation_requested")
    return subscription


@post("/v1/subscriptions/{id}/pause")
def pause_subscription(ctx: Ctx, params: Params, id: str) -> JSON:
    subscription = ctx.account.get("subscriptions", id)
    params.str("type", choices=("subscription",))
    params.str("invoicing_behavior", choices=("invoice", "pending_invoice_item"))
    params.accept("bill_for")
    params.finish()
    if subscription["status"] not in ("active", "trialing", "past_due"):
        raise invalid_request(
            f"Subscriptions with status `{subscription['status']}` cannot be paused."
        )
    now = ctx.account.now_for(subscription["customer"])
    before = copy_json(subscription)
    subscription["status"] = "paused"
    _emit_update(ctx, subscription, before, now)
    return subscription


@post("/v1/subscriptions/{id}/resume")
def resume_subscription(ctx: Ctx, params: Params, id: str) -> JSON:
    subscription = ctx.account.get("subscriptions", id)
    anchor = params.str("billing_cycle_anchor", choices=("now", "unchanged")) or "now"
    params.str("proration_behavior", choices=changes.PRORATION_BEHAVIORS)
    params.str("payment_behavior")
    params.int("proration_date")
    params.finish()
    if subscription["status"] != "paused":
        raise invalid_request(
            "Only subscriptions with `status=paused` can be resumed.", param="subscription"
        )
    now = ctx.account.now_for(subscription["customer"])
    before = copy_json(subscription)
    subscription["status"] = "active"
    if anchor == "now":
        subscription["billing_cycle_anchor"] = now
        for item in subscription["items"]["data"]:
            item["current_period_end"] = now
    _emit_update(ctx, subscription, before, now)
    if anchor == "now":
        # the resumption invoice starts a fresh period from now
        lifecycle.renew(ctx, subscription, now)
    return subscription


@get("/v1/subscriptions")
def list_subscriptions(ctx: Ctx, params: Params) -> JSON:
    customer = params.str("customer")
    price = params.str("price")
    status = params.str("status", choices=_STATUSES)
    clock = params.str("test_clock")
    collection_method = params.str("collection_method")
    created = range_filter(params, "created")
    period_end = range_filter(params, "current_period_end")
    period_start = range_filter(params, "current_period_start")
    params.accept("automatic_tax")

    def keep(subscription: JSON) -> bool:
        state = subscription["status"]
        if status is None and state in ENDED:
            return False
        if status == "ended" and state not in ENDED:
            return False
        if status not in (None, "all", "ended") and state != status:
            return False
        items = subscription["items"]["data"]
        return (
            (customer is None or subscription["customer"] == customer)
            and (price is None or any(item["price"]["id"] == price for item in items))
            and (clock is None or subscription["test_clock"] == clock)
            and (
                collection_method is None or subscription["collection_method"] == collection_method
            )
            and (created is None or created(subscription["created"]))
            and (period_end is None or any(period_end(i["current_period_end"]) for i in items))
            and (
                period_start is None or any(period_start(i["current_period_start"]) for i in items)
            )
        )

    result = page(
        params,
        "/v1/subscriptions",
        newest_first(ctx.account.collection("subscriptions"), keep),
        object_name="subscription",
    )
    params.finish()
    return result


def _find_item(ctx: Ctx, item_id: str) -> JSON:
    for subscription in ctx.account.collection("subscriptions").values():
        for item in subscription["items"]["data"]:
            if item["id"] == item_id:
                return dict(item)
    raise resource_missing("subscription_item", item_id)


@get("/v1/subscription_items/{id}")
def retrieve_subscription_item(ctx: Ctx, params: Params, id: str) -> JSON:
    params.finish()
    return _find_item(ctx, id)


@get("/v1/subscription_items")
def list_subscription_items(ctx: Ctx, params: Params) -> JSON:
    subscription_id = params.str("subscription", required=True)
    assert subscription_id is not None
    subscription = ctx.account.get("subscriptions", subscription_id, param="subscription")
    items = list(reversed(subscription["items"]["data"]))
    result = page(
        params,
        f"/v1/subscription_items?subscription={subscription_id}",
        items,
        object_name="subscription_item",
    )
    params.finish()
    return result
