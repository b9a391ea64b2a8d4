"""The subscription lifecycle: start, renew, change items, pause/resume, cancel, and test clocks.

Renewals happen only when a test clock advances past a period end: subscriptions of customers not
on a clock keep their first period. A declined renewal marks the subscription `past_due` and the
invoice is retried 3, 5 and 7 days later; when the last retry fails the subscription is canceled
(Stripe's default "cancel the subscription" setting). An `incomplete` subscription expires
23 hours after creation. Metered prices are invoiced at zero.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from billwarden_emulator import shapes
from billwarden_emulator.billing import payments
from billwarden_emulator.clock import next_period_end
from billwarden_emulator.errors import card_declined, invalid_request
from billwarden_emulator.ids import new_id
from billwarden_emulator.resources import coupons
from billwarden_emulator.resources.customers import card_outcome
from billwarden_emulator.state import JSON, Ctx, copy_json, previous_attributes

DAY = payments.DAY
INCOMPLETE_EXPIRY = 23 * 3600
TRIAL_WILL_END_NOTICE = 3 * DAY
ENDED = ("canceled", "incomplete_expired")


@dataclass
class ItemSpec:
    price: JSON
    quantity: int = 1
    metadata: dict[str, str] = field(default_factory=dict)


def check_recurring(specs: list[ItemSpec], param: str) -> tuple[str, int, str]:
    """The shared (interval, interval_count, currency) of `specs`, as Stripe requires."""
    if not specs:
        raise invalid_request(
            "Missing required param: items.", param=param, code="parameter_missing"
        )
    shapes_seen = set()
    for spec in specs:
        recurring = spec.price["recurring"]
        if recurring is None:
            raise invalid_request(
                f"The price specified ({spec.price['id']}) is set to `type=one_time` but this "
                "field only accepts prices with `type=recurring`.",
                param=param,
            )
        if not spec.price["active"]:
            raise invalid_request(
                f"The price specified ({spec.price['id']}) is inactive. This field only accepts "
                "active prices.",
                param=param,
            )
        shapes_seen.add(
            (recurring["interval"], recurring["interval_count"], spec.price["currency"])
        )
    if len(shapes_seen) > 1:
        raise invalid_request(
            "Currency and interval fields must match across all plans on this subscription.",
            param=param,
        )
    interval, count, currency = shapes_seen.pop()
    return str(interval), int(count), str(currency)


def _item(ctx: Ctx, subscription_id: str, spec: ItemSpec, now: int, start: int, end: int) -> JSON:
    return shapes.subscription_item(
        id=new_id("si"),
        created=now,
        metadata=dict(spec.metadata),
        price=copy_json(spec.price),
        plan=shapes.plan_from_price(spec.price),
        quantity=spec.quantity,
        subscription=subscription_id,
        current_period_start=start,
        current_period_end=end,
    )


def _product_name(ctx: Ctx, price: JSON) -> str:
    product = ctx.account.collection("products").get(price["product"])
    return str(product["name"]) if product else str(price["product"])


def _period_lines(ctx: Ctx, subscription: JSON, *, trial: bool = False) -> list[JSON]:
    lines = []
    for item in subscription["items"]["data"]:
        price = item["price"]
        metered = (price["recurring"] or {}).get("usage_type") == "metered"
        amount = 0 if trial or metered else (price["unit_amount"] or 0) * item["quantity"]
        name = _product_name(ctx, price)
        description = f"Trial period for {name}" if trial else f"{item['quantity']} x {name}"
        lines.append(
            payments.subscription_line(
                ctx,
                subscription=subscription,
                item=item,
                amount=amount,
                period_start=item["current_period_start"],
                period_end=item["current_period_end"],
                description=description,
            )
        )
    return lines


Payment = Literal["charge", "processing", "none"]


def start_subscription(
    ctx: Ctx,
    *,
    customer: JSON,
    specs: list[ItemSpec],
    now: int,
    metadata: dict[str, str] | None = None,
    trial_end: int | None = None,
    payment: Payment = "charge",
    decline_code: str | Literal["customer"] | None = "customer",
    raise_on_decline: bool = False,
    description: str | None = None,
    cancel_at_period_end: bool = False,
    cancel_at: int | None = None,
    default_payment_method: str | None = None,
    collection_method: str = "charge_automatically",
    days_until_due: int | None = None,
    missing_payment_method: str = "create_invoice",
    schedule: str | None = None,
    discounts: Sequence[coupons.DiscountSpec] = (),
) -> JSON:
    """Create a subscription with its first invoice, emitting Stripe's events in order."""
    interval, count, currency = check_recurring(specs, "items")
    code = card_outcome(customer) if decline_code == "customer" else decline_code
    if trial_end is not None:
        payment = "charge"
        code = None
    if raise_on_decline and payment == "charge" and code is not None:
        raise card_declined(code)
    subscription_id = new_id("sub")
    anchor = trial_end if trial_end is not None else now
    period_end = trial_end if trial_end is not None else next_period_end(now, interval, count, now)
    items = [_item(ctx, subscription_id, spec, now, now, period_end) for spec in specs]
    if trial_end is not None:
        status = "trialing"
    elif (
        payment == "charge" and code is None and collection_method == "charge_automatically"
    ) or collection_method == "send_invoice":
        status = "active"
    else:
        status = "incomplete"
    invoice_id = new_id("in")
    subscription = shapes.subscription(
        id=subscription_id,
        livemode=ctx.account.livemode,
        created=now,
        start_date=now,
        billing_cycle_anchor=anchor,
        currency=currency,
        customer=customer["id"],
        description=description,
        metadata=dict(metadata or {}),
        status=status,
        trial_start=now if trial_end is not None else None,
        trial_end=trial_end,
        test_clock=customer["test_clock"],
        latest_invoice=invoice_id,
        default_payment_method=default_payment_method,
        collection_method=collection_method,
        days_until_due=days_until_due,
        items={
            "object": "list",
            "data": items,
            "has_more": False,
            "url": f"/v1/subscription_items?subscription={subscription_id}",
        },
    )
    subscription["trial_settings"] = {
        "end_behavior": {"missing_payment_method": missing_payment_method}
    }
    subscription["schedule"] = schedule
    if cancel_at_period_end or cancel_at is not None:
        _schedule_cancel(subscription, now, period_end if cancel_at is None else cancel_at)
        subscription["cancel_at_period_end"] = cancel_at is None
    if discounts:
        coupons.set_subscription_discounts(ctx, subscription, list(discounts), now=now)
    ctx.account.put("subscriptions", subscription)
    ctx.emit("customer.subscription.created", subscription, created=now)
    notify_trial_ending(ctx, subscription, now)
    invoice = payments.create_invoice(
        ctx,
        customer=customer,
        lines=_period_lines(ctx, subscription, trial=trial_end is not None),
        billing_reason="subscription_create",
        now=now,
        period_start=now,
        period_end=now,
        currency=currency,
        subscription=subscription,
        invoice_id=invoice_id,
    )
    if collection_method == "send_invoice":
        invoice["collection_method"] = "send_invoice"
        invoice["due_date"] = now + (days_until_due or 30) * DAY
    payments.finalize_invoice(ctx, invoice, now)
    if collection_method == "send_invoice" or payment == "none":
        return subscription
    result = payments.attempt_invoice(
        ctx,
        invoice,
        now,
        decline_code=code,
        mode="processing" if payment == "processing" else "charge",
    )
    if result is not None:
        after_invoice_result(ctx, invoice, paid=result, now=now)
    return subscription


def _schedule_cancel(subscription: JSON, now: int, cancel_at: int) -> None:
    subscription["cancel_at"] = cancel_at
    subscription["canceled_at"] = now
    subscription["cancellation_details"] = {
        "comment": subscription["cancellation_details"]["comment"],
        "feedback": subscription["cancellation_details"]["feedback"],
        "reason": "cancellation_requested",
    }


def set_cancel_at_period_end(subscription: JSON, flag: bool, now: int) -> None:
    if flag:
        _schedule_cancel(subscription, now, current_period_end(subscription))
        subscription["cancel_at_period_end"] = True
    else:
        clear_scheduled_cancel(subscription)


def set_cancel_at(subscription: JSON, cancel_at: int | None, now: int) -> None:
    if cancel_at is None:
        clear_scheduled_cancel(subscription)
    else:
        _schedule_cancel(subscription, now, cancel_at)
        subscription["cancel_at_period_end"] = False


def clear_scheduled_cancel(subscription: JSON) -> None:
    subscription["cancel_at"] = None
    subscription["canceled_at"] = None
    subscription["cancel_at_period_end"] = False
    subscription["cancellation_details"] = {
        "comment": subscription["cancellation_details"]["comment"],
        "feedback": subscription["cancellation_details"]["feedback"],
        "reason": None,
    }


def current_period_end(subscription: JSON) -> int:
    return int(min(item["current_period_end"] for item in subscription["items"]["data"]))


def invoice_subscription(ctx: Ctx, invoice: JSON) -> JSON | None:
    parent = invoice["parent"] or {}
    details = parent.get("subscription_details") or {}
    subscription_id = details.get("subscription")
    if subscription_id is None:
        return None
    return ctx.account.collection("subscriptions").get(subscription_id)


def after_invoice_result(ctx: Ctx, invoice: JSON, *, paid: bool, now: int) -> None:
    """Move the invoice's subscription between active, incomplete and past_due."""
    subscription = invoice_subscription(ctx, invoice)
    if subscription is None or subscription["status"] in ENDED:
        return
    before = copy_json(subscription)
    if paid:
        if subscription["status"] in ("incomplete", "past_due", "unpaid"):
            subscription["status"] = "active"
    elif invoice["billing_reason"] != "subscription_create":
        if subscription["status"] in ("active", "trialing"):
            subscription["status"] = "past_due"
        elif (
            subscription["status"] == "past_due"
            and invoice["next_payment_attempt"] is None
            and invoice["attempt_count"] > len(payments.RETRY_DAYS)
        ):
            end_subscription(ctx, subscription, now, reason="payment_failed")
            return
    changes = previous_attributes(before, subscription)
    if changes:
        ctx.emit("customer.subscription.updated", subscription, changes, created=now)


def end_subscription(ctx: Ctx, subscription: JSON, at: int, *, reason: str) -> None:
    """Cancel now: status `canceled`, `ended_at`, then `customer.subscription.deleted`."""
    subscription["status"] = "canceled"
    subscription["ended_at"] = at
    if subscription["canceled_at"] is None:
        subscription["canceled_at"] = at
    subscription["cancellation_details"] = {
        **subscription["cancellation_details"],
        "reason": reason,
    }
    ctx.account.internal["pending_lines"].pop(subscription["id"], None)
    ctx.emit("customer.subscription.deleted", subscription, created=at)
    if subscription["schedule"] is not None:
        from billwarden_emulator.billing import schedules  # imports this module

        schedules.subscription_ended(ctx, subscription, at, reason=reason)


def notify_trial_ending(ctx: Ctx, subscription: JSON, now: int) -> None:
    """`customer.subscription.trial_will_end` at once when the trial has under 3 days left (Stripe
    sends it then, not only 3 days ahead), once per trial end."""
    trial_end = subscription["trial_end"]
    sent: list[str] = ctx.account.internal["trial_will_end_sent"]
    if (
        subscription["status"] != "trialing"
        or trial_end is None
        or trial_end - now >= TRIAL_WILL_END_NOTICE
        or subscription["id"] in sent
    ):
        return
    sent.append(subscription["id"])
    ctx.emit("customer.subscription.trial_will_end", subscription, created=now)


def trial_end_moved(ctx: Ctx, subscription: JSON, now: int) -> None:
    """A new trial end: the notice is due again, at once if it is under 3 days away."""
    sent: list[str] = ctx.account.internal["trial_will_end_sent"]
    if subscription["id"] in sent:
        sent.remove(subscription["id"])
    notify_trial_ending(ctx, subscription, now)


def has_payment_method(ctx: Ctx, subscription: JSON) -> bool:
    """A default payment method or source on the subscription or its customer, or a test card
    chosen through `/_emulator/customers/{id}/card`."""
    if subscription["default_payment_method"] or subscription["default_source"]:
        return True
    customer = ctx.account.collection("customers").get(subscription["customer"]) or {}
    settings = customer.get("invoice_settings") or {}
    return bool(
        settings.get("default_payment_method")
        or customer.get("default_source")
        or (customer.get("metadata") or {}).get("emulator_card")
    )


def _end_trial_without_payment_method(ctx: Ctx, subscription: JSON, at: int) -> bool:
    """`trial_settings[end_behavior][missing_payment_method]`: `pause` or `cancel` instead of
    invoicing when the trial ends with no payment method. True when it applied."""
    behavior = subscription["trial_settings"]["end_behavior"]["missing_payment_method"]
    if behavior not in ("pause", "cancel") or has_payment_method(ctx, subscription):
        return False
    if behavior == "cancel":
        end_subscription(ctx, subscription, at, reason="cancellation_requested")
        return True
    before = copy_json(subscription)
    subscription["status"] = "paused"
    ctx.emit(
        "customer.subscription.updated",
        subscription,
        previous_attributes(before, subscription),
        created=at,
    )
    ctx.emit("customer.subscription.paused", subscription, created=at)
    return True


def renew(ctx: Ctx, subscription: JSON, at: int) -> None:
    """Roll every item into its next period and invoice it (paid or declined per the card)."""
    account = ctx.account
    if subscription["status"] == "trialing" and _end_trial_without_payment_method(
        ctx, subscription, at
    ):
        return
    customer = account.collection("customers")[subscription["customer"]]
    before = copy_json(subscription)
    previous_start = min(item["current_period_start"] for item in subscription["items"]["data"])
    for item in subscription["items"]["data"]:
        recurring = item["price"]["recurring"]
        item["current_period_start"] = item["current_period_end"]
        item["current_period_end"] = next_period_end(
            subscription["billing_cycle_anchor"],
            recurring["interval"],
            recurring["interval_count"],
            item["current_period_end"],
        )
    if subscription["status"] == "trialing":
        subscription["status"] = "active"
    invoice_id = new_id("in")
    subscription["latest_invoice"] = invoice_id
    ctx.emit(
        "customer.subscription.updated",
        subscription,
        previous_attributes(before, subscription),
        created=at,
    )
    lines = account.internal["pending_lines"].pop(subscription["id"], []) + _period_lines(
        ctx, subscription
    )
    invoice = payments.create_invoice(
        ctx,
        customer=customer,
        lines=lines,
        billing_reason="subscription_cycle",
        now=at,
        period_start=previous_start,
        period_end=at,
        currency=subscription["currency"],
        subscription=subscription,
        invoice_id=invoice_id,
    )
    pause = subscription["pause_collection"]
    if pause is not None:
        if pause["behavior"] == "void":
            payments.finalize_invoice(ctx, invoice, at)
            payments.void_invoice(ctx, invoice, at)
        elif pause["behavior"] == "mark_uncollectible":
            payments.finalize_invoice(ctx, invoice, at)
            payments.mark_uncollectible(ctx, invoice, at)
        return
    payments.finalize_invoice(ctx, invoice, at)
    if subscription["collection_method"] == "send_invoice":
        return
    paid = payments.attempt_invoice(ctx, invoice, at)
    after_invoice_result(ctx, invoice, paid=bool(paid), now=at)


# --- test clocks -------------------------------------------------------------------------------

Action = tuple[int, int, str, str]  # (time, order, kind, object id)


def _subscription_actions(ctx: Ctx, subscription: JSON) -> list[Action]:
    status = subscription["status"]
    sid = subscription["id"]
    if status in ENDED:
        return []
    actions: list[Action] = []
    if status == "incomplete":
        return [(subscription["created"] + INCOMPLETE_EXPIRY, 0, "expire", sid)]
    if subscription["cancel_at"] is not None:
        actions.append((subscription["cancel_at"], 0, "cancel", sid))
    if status == "paused":
        return actions
    pause = subscription["pause_collection"]
    if pause is not None and pause.get("resumes_at"):
        actions.append((pause["resumes_at"], 1, "resume_collection", sid))
    if status == "trialing" and subscription["trial_end"] is not None:
        notice = subscription["trial_end"] - TRIAL_WILL_END_NOTICE
        if (
            sid not in ctx.account.internal["trial_will_end_sent"]
            and notice > subscription["created"]
        ):
            actions.append((notice, 2, "trial_will_end", sid))
    actions.append((current_period_end(subscription), 3, "renew", sid))
    return actions


def advance_clock(ctx: Ctx, clock: JSON, target: int) -> None:
    """Run every renewal, retry, expiry and cancellation due up to `target`, in time order."""
    from billwarden_emulator.billing import schedules  # imports this module

    account = ctx.account
    customers = {
        cid
        for cid, customer in account.collection("customers").items()
        if customer["test_clock"] == clock["id"]
    }
    while True:
        candidates: list[Action] = []
        for subscription in account.collection("subscriptions").values():
            if subscription["customer"] in customers:
                candidates.extend(_subscription_actions(ctx, subscription))
        for invoice in account.collection("invoices").values():
            if (
                invoice["customer"] in customers
                and invoice["status"] == "open"
                and invoice["next_payment_attempt"] is not None
            ):
                candidates.append((invoice["next_payment_attempt"], 4, "retry", invoice["id"]))
        candidates.extend(schedules.actions(ctx, customers))
        due = [action for action in candidates if action[0] <= target]
        if not due:
            break
        at, _, kind, object_id = min(due)
        clock["frozen_time"] = max(clock["frozen_time"], at)
        if kind.startswith("schedule_"):
            schedules.run(ctx, kind, object_id, at)
        else:
            _run_action(ctx, kind, object_id, at)
    clock["frozen_time"] = target


def _run_action(ctx: Ctx, kind: str, object_id: str, at: int) -> None:
    account = ctx.account
    if kind == "retry":
        invoice = account.collection("invoices")[object_id]
        paid = payments.attempt_invoice(ctx, invoice, at)
        after_invoice_result(ctx, invoice, paid=bool(paid), now=at)
        return
    subscription = account.collection("subscriptions")[object_id]
    before = copy_json(subscription)
    if kind == "expire":
        subscription["status"] = "incomplete_expired"
        subscription["ended_at"] = at
        ctx.emit(
            "customer.subscription.updated",
            subscription,
            previous_attributes(before, subscription),
            created=at,
        )
        latest = account.collection("invoices").get(subscription["latest_invoice"] or "")
        if latest is not None and latest["status"] == "open":
            payments.void_invoice(ctx, latest, at)
    elif kind == "cancel":
        end_subscription(ctx, subscription, at, reason="cancellation_requested")
    elif kind == "resume_collection":
        subscription["pause_collection"] = None
        ctx.emit(
            "customer.subscription.updated",
            subscription,
            previous_attributes(before, subscription),
            created=at,
        )
    elif kind == "trial_will_end":
        account.internal["trial_will_end_sent"].append(subscription["id"])
        ctx.emit("customer.subscription.trial_will_end", subscription, created=at)
    elif kind == "renew":
        renew(ctx, subscription, at)


def format_day(timestamp: int) -> str:
    return dt.datetime.fromtimestamp(timestamp, tz=dt.UTC).strftime("%d %b %Y")
