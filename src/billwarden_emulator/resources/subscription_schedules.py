"""Subscription schedules: create, retrieve, update, list, cancel, release.

Schedules live in the account's bookkeeping (`internal["subscription_schedules"]`, id ->
schedule, oldest first). A schedule starting now (or earlier) creates its subscription at once;
a later one is `not_started` until the customer's test clock reaches its start. The test clock
moves it through its phases (`billing/schedules.py`). Events: `subscription_schedule.created`,
`.updated` (with `previous_attributes`), `.canceled` (canceled while active), `.aborted`
(canceled before it started, or ended with its subscription by failed payments), `.released`,
`.completed`, `.expiring`.
"""

from __future__ import annotations

from billwarden_emulator.billing import lifecycle, schedules
from billwarden_emulator.billing.lifecycle import ItemSpec
from billwarden_emulator.errors import invalid_request, resource_missing
from billwarden_emulator.forms import Params, merge_metadata
from billwarden_emulator.ids import random_part
from billwarden_emulator.listing import newest_first, page, range_filter
from billwarden_emulator.resources import get, post
from billwarden_emulator.state import JSON, Ctx, copy_json, previous_attributes

_END_BEHAVIORS = ("cancel", "none", "release", "renew")
_COLLECTION_METHODS = ("charge_automatically", "send_invoice")
_PRORATIONS = ("always_invoice", "create_prorations", "none")
_PHASE_ACCEPTED = (
    "add_invoice_items",
    "application_fee_percent",
    "automatic_tax",
    "billing_cycle_anchor",
    "billing_thresholds",
    "currency",
    "default_tax_rates",
    "discounts",
    "duration",
    "invoice_settings",
    "on_behalf_of",
    "transfer_data",
)


def _schedule(ctx: Ctx, schedule_id: str) -> JSON:
    found = schedules.schedules(ctx.account).get(schedule_id)
    if found is None:
        raise resource_missing("subscription_schedule", schedule_id)
    return found


def _default_settings() -> JSON:
    return {
        "application_fee_percent": None,
        "automatic_tax": {"enabled": False, "liability": None, "disabled_reason": None},
        "billing_cycle_anchor": "automatic",
        "collection_method": "charge_automatically",
        "default_payment_method": None,
        "description": None,
        "invoice_settings": {
            "account_tax_ids": None,
            "days_until_due": None,
            "issuer": {"type": "self"},
            "custom_fields": None,
            "description": None,
            "footer": None,
        },
        "on_behalf_of": None,
        "transfer_data": None,
        "billing_thresholds": None,
    }


def _phase_items(ctx: Ctx, phase: Params, param: str) -> tuple[list[ItemSpec], list[JSON]]:
    specs: list[ItemSpec] = []
    items: list[JSON] = []
    for index, item in enumerate(phase.nested_list("items", required=True)):
        price_id = item.str("price", required=True)
        assert price_id is not None
        price = ctx.account.get("prices", price_id, param=f"{param}[items][{index}][price]")
        quantity = item.int("quantity", minimum=0)
        metadata = item.metadata() or {}
        item.accept("discounts", "tax_rates", "billing_thresholds", "price_data", "plan")
        item.finish()
        specs.append(ItemSpec(price, 1 if quantity is None else quantity, metadata))
        items.append(schedules.phase_item(price, 1 if quantity is None else quantity, metadata))
    lifecycle.check_recurring(specs, f"{param}[items]")
    return specs, items


def _phases(ctx: Ctx, params: Params, start: int) -> list[JSON]:
    """The `phases` param as Stripe's phase objects, each starting where the previous ends."""
    phases: list[JSON] = []
    phase_start = start
    for index, phase in enumerate(params.nested_list("phases", required=True)):
        param = f"phases[{index}]"
        specs, items = _phase_items(ctx, phase, param)
        iterations = phase.int("iterations", minimum=1)
        end_date = phase.int("end_date")
        if index == 0:
            phase.int("start_date")  # read by the caller
        if iterations is not None and end_date is not None:
            raise invalid_request(
                "You may only specify one of these parameters: end_date, iterations.",
                param=f"{param}[end_date]",
            )
        if end_date is None:
            end_date = schedules.phase_end(phase_start, specs, iterations or 1)
        if end_date <= phase_start:
            raise invalid_request(
                "The phase end_date must be after its start_date.", param=f"{param}[end_date]"
            )
        trial_end = phase.int("trial_end")
        if phase.bool("trial") and trial_end is None:
            trial_end = end_date
        phases.append(
            {
                "add_invoice_items": [],
                "application_fee_percent": None,
                "billing_cycle_anchor": None,
                "collection_method": phase.str("collection_method", choices=_COLLECTION_METHODS),
                "currency": specs[0].price["currency"],
                "default_payment_method": phase.str("default_payment_method"),
                "default_tax_rates": [],
                "description": phase.str("description"),
                "discounts": [],
                "end_date": end_date,
                "invoice_settings": None,
                "items": items,
                "metadata": phase.metadata() or {},
                "on_behalf_of": None,
                "proration_behavior": phase.str("proration_behavior", choices=_PRORATIONS)
                or "create_prorations",
                "start_date": phase_start,
                "transfer_data": None,
                "trial_end": trial_end,
                "billing_thresholds": None,
            }
        )
        phase.accept(*_PHASE_ACCEPTED)
        phase.finish()
        phase_start = end_date
    return phases


def _start_date(params: Params, now: int) -> int:
    start = params.timestamp_or_now("start_date")
    if isinstance(start, int):
        return start
    return now


@post("/v1/subscription_schedules")
def create_schedule(ctx: Ctx, params: Params) -> JSON:
    account = ctx.account
    if params.has("from_subscription"):
        return _from_subscription(ctx, params)
    customer_id = params.str("customer", required=True)
    assert customer_id is not None
    customer = account.get("customers", customer_id, param="customer")
    now = account.now_for(customer_id)
    start = _start_date(params, now)
    phases = _phases(ctx, params, start)
    end_behavior = params.str("end_behavior", choices=_END_BEHAVIORS) or "release"
    metadata = params.metadata() or {}
    params.accept("default_settings", "billing_mode")
    params.finish()
    schedule = _new_schedule(ctx, customer, phases, end_behavior, metadata, now)
    if start <= now:
        schedules.start(ctx, schedule, now, announce=False)
    ctx.emit("subscription_schedule.created", schedule, created=now)
    return schedule


def _new_schedule(
    ctx: Ctx,
    customer: JSON,
    phases: list[JSON],
    end_behavior: str,
    metadata: dict[str, str],
    now: int,
) -> JSON:
    account = ctx.account
    schedule: JSON = {
        "application": None,
        "canceled_at": None,
        "completed_at": None,
        "created": now,
        "current_phase": None,
        "customer": customer["id"],
        "default_settings": _default_settings(),
        "end_behavior": end_behavior,
        "id": "sub_sched_" + random_part(24),
        "livemode": account.livemode,
        "metadata": metadata,
        "object": "subscription_schedule",
        "phases": phases,
        "released_at": None,
        "released_subscription": None,
        "status": "not_started",
        "subscription": None,
        "test_clock": customer["test_clock"],
        "billing_mode": {"type": "classic", "flexible": None},
        "customer_account": None,
    }
    schedules.schedules(account)[schedule["id"]] = schedule
    return schedule


def _from_subscription(ctx: Ctx, params: Params) -> JSON:
    """A schedule taking over a subscription: one phase, its current period and items."""
    subscription_id = params.str("from_subscription", required=True)
    assert subscription_id is not None
    for name in ("customer", "phases", "start_date", "end_behavior"):
        if params.has(name):
            raise invalid_request(
                f"You cannot set `{name}` if `from_subscription` is set.", param=name
            )
    metadata = params.metadata() or {}
    params.accept("default_settings", "billing_mode")
    params.finish()
    account = ctx.account
    subscription = account.get("subscriptions", subscription_id, param="from_subscription")
    if subscription["schedule"] is not None:
        raise invalid_request(
            f"You cannot migrate a subscription that is already attached to a schedule: "
            f"`{subscription['schedule']}`.",
            param="from_subscription",
        )
    if subscription["status"] in lifecycle.ENDED:
        raise invalid_request(
            "You cannot create a subscription schedule from a canceled subscription.",
            param="from_subscription",
        )
    customer = account.get("customers", subscription["customer"])
    now = account.now_for(customer["id"])
    items = subscription["items"]["data"]
    phase = {
        "add_invoice_items": [],
        "application_fee_percent": None,
        "billing_cycle_anchor": None,
        "collection_method": subscription["collection_method"],
        "currency": subscription["currency"],
        "default_payment_method": subscription["default_payment_method"],
        "default_tax_rates": [],
        "description": subscription["description"],
        "discounts": [],
        "end_date": lifecycle.current_period_end(subscription),
        "invoice_settings": None,
        "items": [
            schedules.phase_item(item["price"], item["quantity"], item["metadata"])
            for item in items
        ],
        "metadata": {},
        "on_behalf_of": None,
        "proration_behavior": "create_prorations",
        "start_date": min(item["current_period_start"] for item in items),
        "transfer_data": None,
        "trial_end": subscription["trial_end"],
        "billing_thresholds": None,
    }
    schedule = _new_schedule(ctx, customer, [phase], "release", metadata, now)
    schedule["status"] = "active"
    schedule["subscription"] = subscription["id"]
    schedule["current_phase"] = {"start_date": phase["start_date"], "end_date": phase["end_date"]}
    ctx.emit("subscription_schedule.created", schedule, created=now)
    before = copy_json(subscription)
    subscription["schedule"] = schedule["id"]
    ctx.emit(
        "customer.subscription.updated",
        subscription,
        previous_attributes(before, subscription),
        created=now,
    )
    return schedule


@get("/v1/subscription_schedules/{id}")
def retrieve_schedule(ctx: Ctx, params: Params, id: str) -> JSON:
    params.finish()
    return _schedule(ctx, id)


def _refuse_closed(schedule: JSON, action: str) -> None:
    if schedule["status"] not in schedules.OPEN:
        raise invalid_request(
            f"You cannot {action} a subscription schedule that is currently in the "
            f"`{schedule['status']}` status. It must be in `not_started` or `active`."
        )


@post("/v1/subscription_schedules/{id}")
def update_schedule(ctx: Ctx, params: Params, id: str) -> JSON:
    schedule = _schedule(ctx, id)
    now = ctx.account.now_for(schedule["customer"])
    if params.has("phases") or params.has("end_behavior"):
        _refuse_closed(schedule, "update")
    before = copy_json(schedule)
    schedule_metadata = merge_metadata(schedule["metadata"], params.metadata())
    end_behavior = params.str("end_behavior", choices=_END_BEHAVIORS)
    phases = None
    if params.has("phases"):
        first = params.nested_list("phases", required=True)[0]
        start = first.int("start_date")
        phases = _phases(ctx, params, start if start is not None else _first_start(schedule))
    params.str("proration_behavior", choices=_PRORATIONS)
    params.accept("default_settings", "billing_mode")
    params.finish()
    schedule["metadata"] = schedule_metadata
    if end_behavior is not None:
        schedule["end_behavior"] = end_behavior
    if phases is not None:
        _replace_phases(ctx, schedule, phases, now)
    changed = previous_attributes(before, schedule)
    if changed:
        ctx.emit("subscription_schedule.updated", schedule, changed, created=now)
    if schedule["status"] == "not_started" and schedule["phases"][0]["start_date"] <= now:
        schedules.start(ctx, schedule, now)
    return schedule


def _first_start(schedule: JSON) -> int:
    return int(schedule["phases"][0]["start_date"])


def _replace_phases(ctx: Ctx, schedule: JSON, phases: list[JSON], now: int) -> None:
    schedule["phases"] = phases
    if schedule["status"] != "active":
        return
    phase = schedules.current_phase(schedule, now)
    schedule["current_phase"] = (
        None
        if phase is None
        else {"start_date": phase["start_date"], "end_date": phase["end_date"]}
    )
    subscription = ctx.account.collection("subscriptions").get(schedule["subscription"] or "")
    if phase is not None and subscription is not None:
        before = copy_json(subscription)
        schedules.switch_items(ctx, subscription, phase)
        changed = previous_attributes(before, subscription)
        if changed:
            ctx.emit("customer.subscription.updated", subscription, changed, created=now)


@post("/v1/subscription_schedules/{id}/cancel")
def cancel_schedule(ctx: Ctx, params: Params, id: str) -> JSON:
    schedule = _schedule(ctx, id)
    params.bool("invoice_now")
    params.bool("prorate")
    params.finish()
    _refuse_closed(schedule, "cancel")
    now = ctx.account.now_for(schedule["customer"])
    if schedule["status"] == "not_started":
        # nothing started: Stripe reports the schedule as aborted
        schedules.finish(
            ctx, schedule, now, status="canceled", event="subscription_schedule.aborted"
        )
        return schedule
    subscription = ctx.account.collection("subscriptions").get(schedule["subscription"] or "")
    schedules.finish(ctx, schedule, now, status="canceled", event="subscription_schedule.canceled")
    if subscription is not None and subscription["status"] not in lifecycle.ENDED:
        subscription["canceled_at"] = now
        lifecycle.end_subscription(ctx, subscription, now, reason="cancellation_requested")
    return schedule


@post("/v1/subscription_schedules/{id}/release")
def release_schedule(ctx: Ctx, params: Params, id: str) -> JSON:
    schedule = _schedule(ctx, id)
    params.bool("preserve_cancel_date")
    params.finish()
    _refuse_closed(schedule, "release")
    now = ctx.account.now_for(schedule["customer"])
    schedules.release(ctx, schedule, now, event="subscription_schedule.released", status="released")
    return schedule


@get("/v1/subscription_schedules")
def list_schedules(ctx: Ctx, params: Params) -> JSON:
    customer = params.str("customer")
    scheduled = params.bool("scheduled")
    created = range_filter(params, "created")
    canceled_at = range_filter(params, "canceled_at")
    completed_at = range_filter(params, "completed_at")
    released_at = range_filter(params, "released_at")

    def keep(schedule: JSON) -> bool:
        if customer is not None and schedule["customer"] != customer:
            return False
        if scheduled is not None and (schedule["status"] == "not_started") != scheduled:
            return False
        for check, field in (
            (created, "created"),
            (canceled_at, "canceled_at"),
            (completed_at, "completed_at"),
            (released_at, "released_at"),
        ):
            if check is not None and (schedule[field] is None or not check(schedule[field])):
                return False
        return True

    result = page(
        params,
        "/v1/subscription_schedules",
        newest_first(schedules.schedules(ctx.account), keep),
        object_name="subscription_schedule",
    )
    params.accept("customer_account")
    params.finish()
    return result
