"""Billing meters: create, retrieve, update, list (`status` filter), deactivate, reactivate; and a
meter's event summaries.

Meters live in the account's bookkeeping (`internal["meters"]`, id -> meter, oldest first), so
they survive a snapshot and `reset` clears them. An `event_name` is unique among the account's
active meters. Creating, updating, deactivating and reactivating emit `billing.meter.created`,
`.updated`, `.deactivated` and `.reactivated` (webhook types since API version 2025-03-31.basil).

Summaries aggregate the meter events that `POST /v1/billing/meter_events` recorded (see
`platform.py`): those with the meter's `event_name` whose payload names the customer under the
meter's `customer_mapping[event_payload_key]`, by `timestamp` in `[start_time, end_time)`, with
the meter's formula: `sum` of the payload's `value_settings[event_payload_key]` (events without a
number there are left out, as Stripe drops them asynchronously), `count` of events, or `last`
value by timestamp. Each window of the range is answered, newest first, zero when it holds no
event. Meter events are only recorded for an active meter (see `platform.py` and
`meter_streams.py`).
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Iterator

from billwarden_emulator.errors import invalid_request, invalid_value, resource_missing
from billwarden_emulator.forms import Params
from billwarden_emulator.ids import random_part
from billwarden_emulator.listing import newest_first, page
from billwarden_emulator.resources import get, post
from billwarden_emulator.state import JSON, Account, Ctx, copy_json, previous_attributes

_FORMULAS = ("count", "last", "sum")
_WINDOWS = {"hour": 3600, "day": 86_400}
_MAX_EVENT_NAME = 100
_MAX_DISPLAY_NAME = 250


def _meters(account: Account) -> dict[str, JSON]:
    meters: dict[str, JSON] = account.internal.setdefault("meters", {})
    return meters


def _meter(account: Account, meter_id: str) -> JSON:
    meter = _meters(account).get(meter_id)
    if meter is None:
        raise resource_missing("billing.meter", meter_id)
    return meter


def meter_for_event(account: Account, event_name: str) -> JSON | None:
    """The active meter with this `event_name`, else the latest inactive one, else None."""
    found: JSON | None = None
    for meter in _meters(account).values():
        if meter["event_name"] == event_name:
            if meter["status"] == "active":
                return meter
            found = meter
    return found


def _new_meter_id(account: Account) -> str:
    return ("mtr_" if account.livemode else "mtr_test_") + random_part(32)


def _check_length(name: str, value: str, maximum: int) -> None:
    if len(value) > maximum:
        raise invalid_value(
            name, f"Invalid {name}: must be at most {maximum} characters long ({len(value)} given)"
        )


def _refuse_taken(account: Account, event_name: str, *, param: str) -> None:
    for meter in _meters(account).values():
        if meter["status"] == "active" and meter["event_name"] == event_name:
            raise invalid_request(
                f"An active meter with event_name `{event_name}` already exists "
                f"({meter['id']}). An event_name can be used by one active meter at a time.",
                param=param,
            )


def _payload_key(params: Params, name: str, default: str) -> str:
    nested = params.nested(name)
    if nested is None:
        return default
    key = nested.str("event_payload_key", required=True)
    assert key is not None
    _check_length(f"{name}[event_payload_key]", key, _MAX_EVENT_NAME)
    if name == "customer_mapping":
        nested.str("type", required=True, choices=("by_id",))
    nested.finish()
    return key


@post("/v1/billing/meters")
def create_meter(ctx: Ctx, params: Params) -> JSON:
    display_name = params.str("display_name", required=True)
    event_name = params.str("event_name", required=True)
    assert display_name is not None and event_name is not None
    _check_length("display_name", display_name, _MAX_DISPLAY_NAME)
    _check_length("event_name", event_name, _MAX_EVENT_NAME)
    aggregation = params.nested("default_aggregation", required=True)
    assert aggregation is not None
    formula = aggregation.str("formula", required=True, choices=_FORMULAS)
    aggregation.finish()
    customer_key = _payload_key(params, "customer_mapping", "stripe_customer_id")
    value_key = _payload_key(params, "value_settings", "value")
    window = params.str("event_time_window", choices=tuple(_WINDOWS))
    params.finish()
    account = ctx.account
    _refuse_taken(account, event_name, param="event_name")
    now = int(time.time())
    meter: JSON = {
        "id": _new_meter_id(account),
        "object": "billing.meter",
        "created": now,
        "customer_mapping": {"event_payload_key": customer_key, "type": "by_id"},
        "default_aggregation": {"formula": formula},
        "display_name": display_name,
        "event_name": event_name,
        "event_time_window": window,
        "livemode": account.livemode,
        "status": "active",
        "status_transitions": {"deactivated_at": None},
        "updated": now,
        "value_settings": {"event_payload_key": value_key},
    }
    _meters(account)[meter["id"]] = meter
    ctx.emit("billing.meter.created", meter, created=now)
    return meter


@get("/v1/billing/meters/{id}")
def retrieve_meter(ctx: Ctx, params: Params, id: str) -> JSON:
    params.finish()
    return _meter(ctx.account, id)


@post("/v1/billing/meters/{id}")
def update_meter(ctx: Ctx, params: Params, id: str) -> JSON:
    meter = _meter(ctx.account, id)
    display_name = params.str("display_name")
    params.finish()
    if display_name is None:
        return meter
    _check_length("display_name", display_name, _MAX_DISPLAY_NAME)
    before = copy_json(meter)
    meter["display_name"] = display_name
    if meter != before:
        meter["updated"] = int(time.time())
        ctx.emit("billing.meter.updated", meter, previous_attributes(before, meter))
    return meter


@post("/v1/billing/meters/{id}/deactivate")
def deactivate_meter(ctx: Ctx, params: Params, id: str) -> JSON:
    meter = _meter(ctx.account, id)
    params.finish()
    if meter["status"] == "inactive":
        raise invalid_request(f"The meter {id} is already inactive.")
    now = int(time.time())
    meter.update(status="inactive", status_transitions={"deactivated_at": now}, updated=now)
    ctx.emit("billing.meter.deactivated", meter, created=now)
    return meter


@post("/v1/billing/meters/{id}/reactivate")
def reactivate_meter(ctx: Ctx, params: Params, id: str) -> JSON:
    meter = _meter(ctx.account, id)
    params.finish()
    if meter["status"] == "active":
        raise invalid_request(f"The meter {id} is already active.")
    _refuse_taken(ctx.account, meter["event_name"], param="id")
    now = int(time.time())
    meter.update(status="active", status_transitions={"deactivated_at": None}, updated=now)
    ctx.emit("billing.meter.reactivated", meter, created=now)
    return meter


@get("/v1/billing/meters")
def list_meters(ctx: Ctx, params: Params) -> JSON:
    status = params.str("status", choices=("active", "inactive"))
    result = page(
        params,
        "/v1/billing/meters",
        newest_first(
            _meters(ctx.account), lambda meter: status is None or meter["status"] == status
        ),
        object_name="billing.meter",
    )
    params.finish()
    return result


# --- event summaries ---------------------------------------------------------------------------


def _number(value: float) -> float | int:
    return int(value) if value.is_integer() else value


def _aligned(params: Params, name: str, step: int, unit: str) -> int:
    value = params.int(name, required=True)
    assert value is not None
    if value % step:
        raise invalid_value(name, f"{name} must be aligned with {unit} boundaries.")
    return value


@get("/v1/billing/meters/{id}/event_summaries")
def list_event_summaries(ctx: Ctx, params: Params, id: str) -> JSON:
    account = ctx.account
    meter = _meter(account, id)
    customer = params.str("customer", required=True)
    grouping = params.str("value_grouping_window", choices=tuple(_WINDOWS))
    step, unit = (60, "minute") if grouping is None else (_WINDOWS[grouping], grouping)
    start = _aligned(params, "start_time", step, unit)
    end = _aligned(params, "end_time", step, unit)
    assert customer is not None
    if start >= end:
        raise invalid_value("end_time", "end_time must be after start_time.")
    account.get("customers", customer, param="customer")
    width = end - start if grouping is None else step
    customer_key = meter["customer_mapping"]["event_payload_key"]
    value_key = meter["value_settings"]["event_payload_key"]
    formula = meter["default_aggregation"]["formula"]
    # window start -> [count, sum, last event's timestamp, its arrival order, its value]
    buckets: dict[int, list[float]] = {}
    events: dict[str, JSON] = account.internal.get("meter_identifiers", {})
    for order, event in enumerate(events.values()):
        payload = event.get("payload") or {}
        timestamp = int(event["timestamp"])
        if (
            event.get("event_name") != meter["event_name"]
            or payload.get(customer_key) != customer
            or not start <= timestamp < end
        ):
            continue
        value = 1.0
        if formula != "count":  # a count meter reads no value
            try:
                value = float(str(payload.get(value_key)))
            except ValueError:
                continue
            if not math.isfinite(value):
                continue
        window = start + (timestamp - start) // width * width
        bucket = buckets.setdefault(window, [0.0, 0.0, -1.0, -1.0, 0.0])
        bucket[0] += 1
        bucket[1] += value
        if (timestamp, order) >= (bucket[2], bucket[3]):
            bucket[2], bucket[3], bucket[4] = timestamp, order, value

    def summaries() -> Iterator[JSON]:
        window = start + (end - start - 1) // width * width
        while window >= start:
            bucket = buckets.get(window)
            if bucket is None:
                value = 0.0
            else:
                value = {"count": bucket[0], "sum": bucket[1], "last": bucket[4]}[formula]
            digest = hashlib.sha256(f"{meter['id']}:{customer}:{window}:{width}".encode())
            yield {
                "id": ("mtrusg_" if account.livemode else "mtrusg_test_") + digest.hexdigest(),
                "object": "billing.meter_event_summary",
                "aggregated_value": _number(value),
                "end_time": min(window + width, end),
                "livemode": account.livemode,
                "meter": meter["id"],
                "start_time": window,
            }
            window -= width

    result = page(
        params,
        f"/v1/billing/meters/{id}/event_summaries",
        summaries(),
        object_name="billing.meter_event_summary",
    )
    params.finish()
    return result
