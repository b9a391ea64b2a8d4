"""Subscription schedules over time: start the subscription, move through the phases, end.

A schedule whose `start_date` has come creates its subscription (charged like
`POST /v1/subscriptions`). When a phase ends the subscription takes the next phase's items
(no proration lines); when the last one ends the schedule is `completed` and, by
`end_behavior`, releases the subscription (`release`) or cancels it (`cancel`).
`subscription_schedule.expiring` is sent 7 days before the last phase ends. The test clock runs
these (`lifecycle.advance_clock`) before a renewal due at the same moment, so a renewal at a
phase boundary invoices the new phase's items.
"""

from __future__ import annotations

from billwarden_emulator import shapes
from billwarden_emulator.billing import lifecycle
from billwarden_emulator.billing.lifecycle import ENDED, ItemSpec
from billwarden_emulator.clock import add_interval
from billwarden_emulator.ids import new_id
from billwarden_emulator.state import JSON, Account, Ctx, copy_json, previous_attributes

DAY = lifecycle.DAY
EXPIRING_NOTICE = 7 * DAY
OPEN = ("not_started", "active")
_EXPIRING_SENT = "subscription_schedules_expiring_sent"


def schedules(account: Account) -> dict[str, JSON]:
    found: dict[str, JSON] = account.internal.setdefault("subscription_schedules", {})
    return found


def phase_end(phase_start: int, specs: list[ItemSpec], iterations: int) -> int:
    """The end of a phase of `iterations` billing periods of its first item's price."""
    recurring = specs[0].price["recurring"] or {"interval": "month", "interval_count": 1}
    return add_interval(
        phase_start, recurring["interval"], recurring["interval_count"] * iterations
    )


def phase_item(price: JSON, quantity: int, metadata: dict[str, str]) -> JSON:
    return {
        "discounts": [],
        "metadata": dict(metadata),
        "price": price["id"],
        "quantity": quantity,
        "tax_rates": [],
        "plan": price["id"],
        "billing_thresholds": None,
    }


def current_phase(schedule: JSON, at: int) -> JSON | None:
    phases: list[JSON] = schedule["phases"]
    for phase in phases:
        if phase["start_date"] <= at < phase["end_date"]:
            return phase
    return None


def _set_current_phase(schedule: JSON, at: int) -> None:
    phase = current_phase(schedule, at) if schedule["status"] == "active" else None
    schedule["current_phase"] = (
        None
        if phase is None
        else {"start_date": phase["start_date"], "end_date": phase["end_date"]}
    )


def _specs(ctx: Ctx, phase: JSON) -> list[ItemSpec]:
    prices = ctx.account.collection("prices")
    return [
        ItemSpec(prices[item["price"]], item["quantity"], dict(item["metadata"]))
        for item in phase["items"]
        if item["price"] in prices
    ]


def start(ctx: Ctx, schedule: JSON, at: int, *, announce: bool = True) -> None:
    """The schedule's start has come: create its subscription on the first phase
    (`subscription_schedule.updated` unless `announce` is false: a schedule just created)."""
    customer = ctx.account.collection("customers").get(schedule["customer"])
    if customer is None:
        finish(ctx, schedule, at, status="canceled", event="subscription_schedule.canceled")
        return
    before = copy_json(schedule)
    phase = schedule["phases"][0]
    schedule["status"] = "active"
    subscription = lifecycle.start_subscription(
        ctx,
        customer=customer,
        specs=_specs(ctx, phase),
        now=at,
        metadata=phase["metadata"],
        trial_end=phase["trial_end"] if (phase["trial_end"] or 0) > at else None,
        description=phase["description"],
        default_payment_method=phase["default_payment_method"],
        collection_method=phase["collection_method"] or "charge_automatically",
        schedule=schedule["id"],
    )
    schedule["subscription"] = subscription["id"]
    _set_current_phase(schedule, at)
    if not announce:
        return
    ctx.emit(
        "subscription_schedule.updated",
        schedule,
        previous_attributes(before, schedule),
        created=at,
    )


def switch_items(ctx: Ctx, subscription: JSON, phase: JSON) -> None:
    """The subscription takes the phase's items; items of a price it keeps keep their ids."""
    existing = {item["price"]["id"]: item for item in subscription["items"]["data"]}
    period_start = min(item["current_period_start"] for item in subscription["items"]["data"])
    period_end = lifecycle.current_period_end(subscription)
    items = []
    for spec in _specs(ctx, phase):
        item = existing.get(spec.price["id"])
        if item is None:
            item = shapes.subscription_item(
                id=new_id("si"),
                created=phase["start_date"],
                metadata=dict(spec.metadata),
                price=copy_json(spec.price),
                plan=shapes.plan_from_price(spec.price),
                quantity=spec.quantity,
                subscription=subscription["id"],
                current_period_start=period_start,
                current_period_end=period_end,
            )
        else:
            item["quantity"] = spec.quantity
        items.append(item)
    if items:
        subscription["items"]["data"] = items
    if phase["metadata"]:
        subscription["metadata"] = dict(phase["metadata"])


def end_phase(ctx: Ctx, schedule: JSON, at: int) -> None:
    """The current phase ended: move to the next one, or complete the schedule."""
    account = ctx.account
    subscription = account.collection("subscriptions").get(schedule["subscription"] or "")
    following = [phase for phase in schedule["phases"] if phase["start_date"] >= at]
    if subscription is None or subscription["status"] in ENDED:
        finish(ctx, schedule, at, status="canceled", event="subscription_schedule.canceled")
        return
    if following:
        before_subscription = copy_json(subscription)
        switch_items(ctx, subscription, following[0])
        changed = previous_attributes(before_subscription, subscription)
        if changed:
            ctx.emit("customer.subscription.updated", subscription, changed, created=at)
        before = copy_json(schedule)
        _set_current_phase(schedule, at)
        ctx.emit(
            "subscription_schedule.updated",
            schedule,
            previous_attributes(before, schedule),
            created=at,
        )
        return
    if schedule["end_behavior"] == "cancel":
        schedule["subscription"] = subscription["id"]
        finish(ctx, schedule, at, status="completed", event="subscription_schedule.completed")
        lifecycle.end_subscription(ctx, subscription, at, reason="cancellation_requested")
        return
    release(ctx, schedule, at, event="subscription_schedule.completed", status="completed")


def release(ctx: Ctx, schedule: JSON, at: int, *, event: str, status: str) -> None:
    """Detach the subscription (it goes on alone) and close the schedule."""
    subscription = ctx.account.collection("subscriptions").get(schedule["subscription"] or "")
    if subscription is not None:
        before = copy_json(subscription)
        subscription["schedule"] = None
        ctx.emit(
            "customer.subscription.updated",
            subscription,
            previous_attributes(before, subscription),
            created=at,
        )
        schedule["released_subscription"] = subscription["id"]
    schedule["subscription"] = None
    if status == "released":
        schedule["released_at"] = at
    finish(ctx, schedule, at, status=status, event=event)


def finish(ctx: Ctx, schedule: JSON, at: int, *, status: str, event: str) -> None:
    schedule["status"] = status
    if status == "canceled":
        schedule["canceled_at"] = at
    elif status == "completed":
        schedule["completed_at"] = at
    schedule["current_phase"] = None
    ctx.emit(event, schedule, created=at)


def subscription_ended(ctx: Ctx, subscription: JSON, at: int, *, reason: str) -> None:
    """The schedule's subscription was canceled: the schedule is canceled with it (`aborted`
    when payments failed, as Stripe names a schedule ended by delinquency)."""
    schedule = schedules(ctx.account).get(subscription["schedule"] or "")
    if schedule is None or schedule["status"] not in OPEN:
        return
    event = (
        "subscription_schedule.aborted"
        if reason == "payment_failed"
        else "subscription_schedule.canceled"
    )
    finish(ctx, schedule, at, status="canceled", event=event)


def notify_expiring(ctx: Ctx, schedule: JSON, at: int) -> None:
    sent: list[str] = ctx.account.internal.setdefault(_EXPIRING_SENT, [])
    if schedule["id"] not in sent:
        sent.append(schedule["id"])
        ctx.emit("subscription_schedule.expiring", schedule, created=at)


def actions(ctx: Ctx, customers: set[str]) -> list[tuple[int, int, str, str]]:
    """What the schedules of a test clock's customers have due: start, phase ends, notices.
    Ordered before a renewal due at the same moment (order -1)."""
    due: list[tuple[int, int, str, str]] = []
    sent = ctx.account.internal.get(_EXPIRING_SENT, [])
    for schedule in schedules(ctx.account).values():
        if schedule["customer"] not in customers or schedule["status"] not in OPEN:
            continue
        sid = schedule["id"]
        if schedule["status"] == "not_started":
            due.append((schedule["phases"][0]["start_date"], -2, "schedule_start", sid))
            continue
        end = schedule["phases"][-1]["end_date"]
        if sid not in sent and schedule["end_behavior"] in ("cancel", "release"):
            due.append((max(end - EXPIRING_NOTICE, 0), -2, "schedule_expiring", sid))
        phase = schedule["current_phase"]
        if phase is not None:
            due.append((phase["end_date"], -1, "schedule_phase_end", sid))
    return due


def run(ctx: Ctx, kind: str, schedule_id: str, at: int) -> None:
    schedule = schedules(ctx.account)[schedule_id]
    if kind == "schedule_start":
        start(ctx, schedule, at)
    elif kind == "schedule_expiring":
        notify_expiring(ctx, schedule, at)
    elif kind == "schedule_phase_end":
        end_phase(ctx, schedule, at)
