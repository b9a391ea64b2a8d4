"""The `/v2` meter event stream and the thin events it reports problems with.

`POST /v2/billing/meter_event_session` hands out an `authentication_token` valid 15 minutes;
`POST /v2/billing/meter_event_stream` takes up to 100 events authorised by that token (not by the
secret key). Stripe validates streamed events asynchronously; the emulator does it at once, in
the same request, and answers `{}` either way. A valid event is recorded like one sent to
`/v1/billing/meter_events` (it counts in the meter's event summaries). A bad one is dropped and
reported as a thin event: `v1.billing.meter.no_meter_found` (no meter has the event's
`event_name`: code `no_meter`) or `v1.billing.meter.error_report_triggered` for the meter
(`archived_meter`, `meter_event_no_customer_defined`, `meter_event_customer_not_found`,
`meter_event_invalid_value`, `timestamp_too_far_in_past`, `timestamp_in_future`), one event per
type and meter for each request, its errors counted by code with sample errors. A repeated
`identifier` within 24 hours is dropped silently.

Thin events are listed at `GET /v2/core/events` (newest first; `types`, `object_id`,
`created[gt|gte|lt|lte]` as RFC 3339, `limit`, `page`) and retrieved at `GET /v2/core/events/{id}`.
They are not sent to `/v1` webhook endpoints: Stripe sends thin events only to event destinations.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

from billwarden_emulator.errors import StripeError, invalid_request, invalid_value
from billwarden_emulator.forms import Params
from billwarden_emulator.ids import random_part
from billwarden_emulator.resources import get, post
from billwarden_emulator.resources.meters import meter_for_event
from billwarden_emulator.resources.platform import record_meter_event
from billwarden_emulator.state import JSON, Account, Ctx, Store

SESSION_LIFETIME = 15 * 60
_DAY = 86_400
_MAX_PAST = 35 * _DAY
_MAX_FUTURE = 5 * 60
_MAX_EVENTS = 100
_MAX_SAMPLES = 5
NO_METER_FOUND = "v1.billing.meter.no_meter_found"
ERROR_REPORT_TRIGGERED = "v1.billing.meter.error_report_triggered"


def rfc3339(seconds: float) -> str:
    moment = dt.datetime.fromtimestamp(seconds, dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _parse_rfc3339(value: str, name: str) -> float:
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise invalid_value(name, f"Invalid timestamp: {name} must be RFC 3339.") from None
    if moment.tzinfo is None:
        raise invalid_value(name, f"Invalid timestamp: {name} must carry a time zone.")
    return moment.timestamp()


def _sessions(account: Account) -> dict[str, int]:
    sessions: dict[str, int] = account.internal.setdefault("meter_sessions", {})
    return sessions


def thin_events(account: Account) -> dict[str, JSON]:
    events: dict[str, JSON] = account.internal.setdefault("thin_events", {})
    return events


def account_for_session(store: Store, token: str) -> Account:
    """The account a meter event session token belongs to; 401 when unknown or expired."""
    now = int(time.time())
    for account in store.accounts.values():
        expires_at = _sessions(account).get(token)
        if expires_at is None:
            continue
        if expires_at <= now:
            raise StripeError(
                401,
                "temporary_session_expired",
                "The meter event session has expired. Create a new meter event session.",
                code="billing_meter_event_session_expired",
            )
        return account
    raise StripeError(
        401,
        "invalid_request_error",
        "Invalid meter event session token. Create a meter event session with "
        "POST /v2/billing/meter_event_session.",
        code="authentication_failed",
    )


@post("/v2/billing/meter_event_session")
def create_meter_event_session(ctx: Ctx, params: Params) -> JSON:
    params.finish()
    account = ctx.account
    now = time.time()
    sessions = _sessions(account)
    for token, expires_at in list(sessions.items()):
        if expires_at <= now:
            del sessions[token]
    token = ("ek_live_" if account.livemode else "ek_test_") + random_part(48)
    expires_at = int(now) + SESSION_LIFETIME
    sessions[token] = expires_at
    return {
        "id": "bmes_" + random_part(24),
        "object": "v2.billing.meter_event_session",
        "authentication_token": token,
        "created": rfc3339(now),
        "expires_at": rfc3339(expires_at),
        "livemode": account.livemode,
    }


# --- the stream --------------------------------------------------------------------------------


class _Report:
    """The problems of one request, grouped into thin events by (type, meter)."""

    def __init__(self) -> None:
        self.groups: dict[tuple[str, str | None], dict[str, list[tuple[str, str]]]] = {}

    def add(self, meter: JSON | None, code: str, message: str, identifier: str) -> None:
        event_type = NO_METER_FOUND if meter is None else ERROR_REPORT_TRIGGERED
        group = self.groups.setdefault((event_type, None if meter is None else meter["id"]), {})
        group.setdefault(code, []).append((message, identifier))


def _event_params(raw: Any, index: int) -> tuple[str, JSON, str | None, str | None]:
    name = f"events[{index}]"
    if not isinstance(raw, dict):
        raise invalid_value(name, f"Invalid object: {name}")
    event = Params(raw, prefix=name)
    event_name = event.str("event_name", required=True)
    identifier = event.str("identifier")
    timestamp = event.str("timestamp")
    payload = event.raw("payload")
    event.finish()
    if not isinstance(payload, dict):
        raise invalid_request(f"Missing required param: {name}[payload].", param=f"{name}.payload")
    if not all(isinstance(value, str) for value in payload.values()):
        raise invalid_value(f"{name}[payload]", f"Invalid {name}[payload]: values must be strings")
    assert event_name is not None
    return event_name, payload, identifier, timestamp


@post("/v2/billing/meter_event_stream")
def create_meter_event_stream(ctx: Ctx, params: Params) -> JSON:
    raw_events = params.raw("events")
    params.finish()
    if not isinstance(raw_events, list) or not raw_events:
        raise invalid_request(
            "Missing required param: events.", param="events", code="parameter_missing"
        )
    if len(raw_events) > _MAX_EVENTS:
        raise invalid_value("events", f"At most {_MAX_EVENTS} events may be sent per request.")
    parsed = [_event_params(raw, index) for index, raw in enumerate(raw_events)]
    stamps = [
        None if stamp is None else _parse_rfc3339(stamp, f"events[{index}][timestamp]")
        for index, (_, _, _, stamp) in enumerate(parsed)
    ]
    account = ctx.account
    report = _Report()
    started = time.time()
    for (event_name, payload, identifier, _), stamp in zip(parsed, stamps, strict=True):
        _accept(account, report, event_name, payload, identifier or random_part(24), stamp)
    for (event_type, meter_id), errors in report.groups.items():
        _publish(account, event_type, meter_id, errors, started)
    return {}


def _accept(
    account: Account,
    report: _Report,
    event_name: str,
    payload: JSON,
    identifier: str,
    stamp: float | None,
) -> None:
    meter = meter_for_event(account, event_name)
    if meter is None:
        message = f"No meter found for event_name `{event_name}`."
        report.add(None, "no_meter", message, identifier)
        return
    if meter["status"] != "active":
        message = f"The meter {meter['id']} for event_name `{event_name}` is inactive."
        report.add(meter, "archived_meter", message, identifier)
        return
    customer_key = meter["customer_mapping"]["event_payload_key"]
    customer_id = payload.get(customer_key)
    if not customer_id:
        message = f"Customer mapping key {customer_key} not found in payload."
        report.add(meter, "meter_event_no_customer_defined", message, identifier)
        return
    if customer_id not in account.collection("customers"):
        message = f"No customer found with id {customer_id}."
        report.add(meter, "meter_event_customer_not_found", message, identifier)
        return
    value_key = meter["value_settings"]["event_payload_key"]
    value = 1.0
    if meter["default_aggregation"]["formula"] != "count" or value_key in payload:
        try:
            value = float(payload.get(value_key, ""))
        except ValueError:
            message = f"Value key {value_key} not found in payload or not a number."
            report.add(meter, "meter_event_invalid_value", message, identifier)
            return
    now = account.now_for(customer_id)
    timestamp = now if stamp is None else int(stamp)
    if timestamp < now - _MAX_PAST:
        message = "Timestamp is more than 35 calendar days in the past."
        report.add(meter, "timestamp_too_far_in_past", message, identifier)
        return
    if timestamp > now + _MAX_FUTURE:
        message = "Timestamp is more than 5 minutes in the future."
        report.add(meter, "timestamp_in_future", message, identifier)
        return
    first = account.internal["meter_identifiers"].get(identifier)
    if first is not None and first["created"] > now - _DAY:
        return  # Stripe counts an identifier once within 24 hours
    event: JSON = {
        "object": "billing.meter_event",
        "created": now,
        "event_name": event_name,
        "identifier": identifier,
        "livemode": account.livemode,
        "payload": dict(payload),
        "timestamp": timestamp,
    }
    record_meter_event(account, event, customer_id, value)


def _publish(
    account: Account,
    event_type: str,
    meter_id: str | None,
    errors: dict[str, list[tuple[str, str]]],
    started: float,
) -> JSON:
    count = sum(len(samples) for samples in errors.values())
    now = time.time()
    event: JSON = {
        "id": ("evt_" if account.livemode else "evt_test_") + random_part(48),
        "object": "v2.core.event",
        "context": None,
        "created": rfc3339(now),
        "data": {
            "developer_message_summary": (
                f"There {'is' if count == 1 else 'are'} {count} invalid "
                f"event{'' if count == 1 else 's'}"
            ),
            "reason": {
                "error_count": count,
                "error_types": [
                    {
                        "code": code,
                        "error_count": len(samples),
                        "sample_errors": [
                            {"error_message": message, "request": {"identifier": identifier}}
                            for message, identifier in samples[:_MAX_SAMPLES]
                        ],
                    }
                    for code, samples in errors.items()
                ],
            },
            "validation_end": rfc3339(now),
            "validation_start": rfc3339(started),
        },
        "livemode": account.livemode,
        "reason": None,  # reported asynchronously by Stripe, not by the request
        "related_object": None
        if meter_id is None
        else {
            "id": meter_id,
            "type": "billing.meter",
            "url": f"/v1/billing/meters/{meter_id}",
        },
        "type": event_type,
        "_created": now,  # for ordering and `created` filters; removed from answers
    }
    thin_events(account)[event["id"]] = event
    return event


# --- /v2/core/events ---------------------------------------------------------------------------


def _public(event: JSON) -> JSON:
    return {key: value for key, value in event.items() if key != "_created"}


@get("/v2/core/events/{id}")
def retrieve_thin_event(ctx: Ctx, params: Params, id: str) -> JSON:
    params.finish()
    event = thin_events(ctx.account).get(id)
    if event is None:
        raise StripeError(
            404, "invalid_request_error", f"No such event: '{id}'", code="resource_missing"
        )
    return _public(event)


def _created_bounds(params: Params) -> dict[str, float]:
    created = params.nested("created")
    if created is None:
        return {}
    bounds = {}
    for name in ("gt", "gte", "lt", "lte"):
        value = created.str(name)
        if value is not None:
            bounds[name] = _parse_rfc3339(value, f"created[{name}]")
    created.finish()
    return bounds


def _in_bounds(moment: float, bounds: dict[str, float]) -> bool:
    return (
        ("gt" not in bounds or moment > bounds["gt"])
        and ("gte" not in bounds or moment >= bounds["gte"])
        and ("lt" not in bounds or moment < bounds["lt"])
        and ("lte" not in bounds or moment <= bounds["lte"])
    )


@get("/v2/core/events")
def list_thin_events(ctx: Ctx, params: Params) -> JSON:
    limit = params.int("limit", minimum=1, maximum=100) or 20
    types = params.strings("types")
    if types is not None and len(types) > 20:
        raise invalid_value("types", "At most 20 types may be given.")
    object_id = params.str("object_id")
    after = params.str("page")
    bounds = _created_bounds(params)
    params.finish()
    events = thin_events(ctx.account)
    if after is not None and after not in events:
        raise invalid_value("page", "Invalid page token.")

    def newest_first() -> Iterator[JSON]:
        passed = after is None
        for event in reversed(list(events.values())):
            if not passed:
                passed = event["id"] == after
                continue
            if types is not None and event["type"] not in types:
                continue
            related = event["related_object"]
            if object_id is not None and (related is None or related["id"] != object_id):
                continue
            if bounds and not _in_bounds(event["_created"], bounds):
                continue
            yield event

    found = []
    for event in newest_first():
        found.append(event)
        if len(found) > limit:
            break
    data = [_public(event) for event in found[:limit]]
    next_page_url = None
    if len(found) > limit:
        query = [f"limit={limit}", f"page={quote(data[-1]['id'])}"]
        if object_id is not None:
            query.append(f"object_id={quote(object_id)}")
        for index, event_type in enumerate(types or ()):
            query.append(f"types[{index}]={quote(event_type)}")
        for name, moment in bounds.items():
            query.append(f"created[{name}]={quote(rfc3339(moment))}")
        next_page_url = "/v2/core/events?" + "&".join(query)
    return {"data": data, "next_page_url": next_page_url, "previous_page_url": None}
