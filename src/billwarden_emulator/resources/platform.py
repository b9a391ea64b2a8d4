"""Account, balance, billing portal sessions, webhook endpoints, events, test clocks, meter events.

Webhook endpoints return their signing `secret` only in the create response, as Stripe does.
Meter events: the `event_name` must belong to an active meter, the payload carries the meter's
`customer_mapping[event_payload_key]` and `value_settings[event_payload_key]`, and a repeated
`identifier` within 24 hours is refused (400, param `identifier`) and not counted again.
"""

from __future__ import annotations

import time

from billwarden_emulator import shapes
from billwarden_emulator.billing import lifecycle
from billwarden_emulator.errors import invalid_request, invalid_value
from billwarden_emulator.forms import Params, merge_metadata
from billwarden_emulator.ids import new_id, random_part
from billwarden_emulator.listing import newest_first, page, range_filter
from billwarden_emulator.resources import delete, get, post
from billwarden_emulator.resources.meters import meter_for_event
from billwarden_emulator.state import JSON, Account, Ctx

DAY = 86_400


@get("/v1/account")
def retrieve_account(ctx: Ctx, params: Params) -> JSON:
    params.finish()
    return shapes.account(ctx.account.id, ctx.account.created)


@get("/v1/balance")
def retrieve_balance(ctx: Ctx, params: Params) -> JSON:
    params.finish()
    pending = sum(
        charge["amount_captured"] - charge["amount_refunded"]
        for charge in ctx.account.collection("charges").values()
        if charge["status"] == "succeeded"
    )
    return shapes.balance(ctx.account.livemode, pending)


# --- billing portal ---------------------------------------------------------------------------


@post("/v1/billing_portal/sessions")
def create_portal_session(ctx: Ctx, params: Params) -> JSON:
    customer_id = params.str("customer", required=True)
    assert customer_id is not None
    ctx.account.get("customers", customer_id, param="customer")
    flow = params.nested("flow_data")
    flow_out = None
    if flow is not None:
        flow_type = flow.str(
            "type",
            required=True,
            choices=(
                "payment_method_update",
                "subscription_cancel",
                "subscription_update",
                "subscription_update_confirm",
            ),
        )
        for name in ("subscription_cancel", "subscription_update", "subscription_update_confirm"):
            nested = flow.nested(name)
            if nested is not None:
                subscription_id = nested.str("subscription", required=True)
                ctx.account.get(
                    "subscriptions", subscription_id or "", param=f"flow_data[{name}][subscription]"
                )
                nested.accept("retention", "items", "discounts")
                nested.finish()
        flow.accept("after_completion")
        flow.finish()
        flow_out = {
            "after_completion": {
                "hosted_confirmation": None,
                "redirect": None,
                "type": "portal_homepage",
            },
            "subscription_cancel": None,
            "subscription_update": None,
            "subscription_update_confirm": None,
            "type": flow_type,
        }
        for name in ("subscription_cancel", "subscription_update", "subscription_update_confirm"):
            value = (flow.data.get(name) or {}) if isinstance(flow.data.get(name), dict) else {}
            if value:
                flow_out[name] = {"subscription": value.get("subscription")}
    configuration = params.str("configuration") or "bpc_" + ctx.account.id[5:]
    session_id = new_id("bps")
    session = shapes.portal_session(
        id=session_id,
        created=int(time.time()),
        livemode=ctx.account.livemode,
        customer=customer_id,
        configuration=configuration,
        flow=flow_out,
        locale=params.str("locale"),
        on_behalf_of=params.str("on_behalf_of"),
        return_url=params.str("return_url"),
        url=f"{ctx.base_url}/_emulator/portal/{session_id}",
    )
    params.finish()
    ctx.account.put("portal_sessions", session)
    ctx.emit("billing_portal.session.created", session, created=session["created"])
    return session


# --- webhook endpoints -------------------------------------------------------------------------


def _enabled_events(params: Params, *, required: bool) -> list[str] | None:
    events = params.strings("enabled_events")
    if events is None or not events:
        if required:
            raise invalid_request(
                "Missing required param: enabled_events.",
                param="enabled_events",
                code="parameter_missing",
            )
        return None
    return events


@post("/v1/webhook_endpoints")
def create_webhook_endpoint(ctx: Ctx, params: Params) -> JSON:
    url = params.str("url", required=True)
    assert url is not None
    if not url.startswith(("http://", "https://")):
        raise invalid_value("url", "Invalid URL: URL must be publicly accessible over http(s).")
    endpoint = shapes.webhook_endpoint(
        id=new_id("we"),
        created=int(time.time()),
        livemode=ctx.account.livemode,
        url=url,
        enabled_events=_enabled_events(params, required=True),
        description=params.str("description"),
        metadata=params.metadata() or {},
        api_version=params.str("api_version"),
    )
    params.accept("connect")
    params.finish()
    secret = "whsec_" + random_part(32)
    ctx.account.internal["secrets"][endpoint["id"]] = [secret]
    ctx.account.put("webhook_endpoints", endpoint)
    return {**endpoint, "secret": secret}


@get("/v1/webhook_endpoints/{id}")
def retrieve_webhook_endpoint(ctx: Ctx, params: Params, id: str) -> JSON:
    params.finish()
    return ctx.account.get("webhook_endpoints", id)


@post("/v1/webhook_endpoints/{id}")
def update_webhook_endpoint(ctx: Ctx, params: Params, id: str) -> JSON:
    endpoint = ctx.account.get("webhook_endpoints", id)
    if params.has("url"):
        endpoint["url"] = params.str("url", required=True)
    events = _enabled_events(params, required=False)
    if events is not None:
        endpoint["enabled_events"] = events
    if params.has("description"):
        endpoint["description"] = params.str("description")
    if params.has("disabled"):
        endpoint["status"] = "disabled" if params.bool("disabled") else "enabled"
    endpoint["metadata"] = merge_metadata(endpoint["metadata"], params.metadata())
    params.finish()
    return endpoint


@delete("/v1/webhook_endpoints/{id}")
def delete_webhook_endpoint(ctx: Ctx, params: Params, id: str) -> JSON:
    params.finish()
    ctx.account.get("webhook_endpoints", id)
    del ctx.account.collection("webhook_endpoints")[id]
    ctx.account.internal["secrets"].pop(id, None)
    return shapes.deleted("webhook_endpoint", id)


@get("/v1/webhook_endpoints")
def list_webhook_endpoints(ctx: Ctx, params: Params) -> JSON:
    result = page(
        params,
        "/v1/webhook_endpoints",
        newest_first(ctx.account.collection("webhook_endpoints")),
        object_name="webhook_endpoint",
    )
    params.finish()
    return result


# --- events ------------------------------------------------------------------------------------


@get("/v1/events/{id}")
def retrieve_event(ctx: Ctx, params: Params, id: str) -> JSON:
    params.finish()
    return ctx.account.get("events", id)


@get("/v1/events")
def list_events(ctx: Ctx, params: Params) -> JSON:
    event_type = params.str("type")
    types = params.strings("types")
    if event_type is not None and types is not None:
        raise invalid_request(
            "You may only specify one of these parameters: type, types.", param="types"
        )
    delivery_success = params.bool("delivery_success")
    created = range_filter(params, "created")
    prefix = event_type[:-1] if event_type is not None and event_type.endswith("*") else None

    def keep(event: JSON) -> bool:
        if prefix is not None:
            if not event["type"].startswith(prefix):
                return False
        elif event_type is not None and event["type"] != event_type:
            return False
        if types is not None and event["type"] not in types:
            return False
        if delivery_success is not None and (event["pending_webhooks"] == 0) != delivery_success:
            return False
        return created is None or created(event["created"])

    result = page(
        params,
        "/v1/events",
        newest_first(ctx.account.collection("events"), keep),
        object_name="event",
    )
    params.finish()
    return result


# --- test clocks -------------------------------------------------------------------------------


@post("/v1/test_helpers/test_clocks")
def create_test_clock(ctx: Ctx, params: Params) -> JSON:
    frozen_time = params.int("frozen_time", required=True)
    assert frozen_time is not None
    now = int(time.time())
    clock = shapes.test_clock(
        id=new_id("clock"),
        created=now,
        deletes_after=now + 30 * DAY,
        frozen_time=frozen_time,
        livemode=False,
        name=params.str("name"),
    )
    params.finish()
    ctx.account.put("test_clocks", clock)
    ctx.emit("test_helpers.test_clock.created", clock, created=now)
    return clock


@get("/v1/test_helpers/test_clocks/{id}")
def retrieve_test_clock(ctx: Ctx, params: Params, id: str) -> JSON:
    params.finish()
    return ctx.account.get("test_clocks", id)


@get("/v1/test_helpers/test_clocks")
def list_test_clocks(ctx: Ctx, params: Params) -> JSON:
    result = page(
        params,
        "/v1/test_helpers/test_clocks",
        newest_first(ctx.account.collection("test_clocks")),
        object_name="test_helpers.test_clock",
    )
    params.finish()
    return result


@post("/v1/test_helpers/test_clocks/{id}/advance")
def advance_test_clock(ctx: Ctx, params: Params, id: str) -> JSON:
    clock = ctx.account.get("test_clocks", id)
    frozen_time = params.int("frozen_time", required=True)
    assert frozen_time is not None
    params.finish()
    return advance(ctx, clock, frozen_time)


def advance(ctx: Ctx, clock: JSON, frozen_time: int) -> JSON:
    """Move a clock forward, running everything due on its customers' subscriptions."""
    if frozen_time <= clock["frozen_time"]:
        raise invalid_value(
            "frozen_time",
            "The test clock can only be advanced to a time after its current frozen_time.",
        )
    automatic = ctx.automatic()
    clock["status"] = "advancing"
    automatic.emit("test_helpers.test_clock.advancing", clock, created=clock["frozen_time"])
    lifecycle.advance_clock(automatic, clock, frozen_time)
    clock["status"] = "ready"
    automatic.emit("test_helpers.test_clock.ready", clock, created=frozen_time)
    return clock


@delete("/v1/test_helpers/test_clocks/{id}")
def delete_test_clock(ctx: Ctx, params: Params, id: str) -> JSON:
    params.finish()
    account = ctx.account
    account.get("test_clocks", id)
    # Stripe deletes the clock's customers and their subscriptions with it
    customers = [cid for cid, c in account.collection("customers").items() if c["test_clock"] == id]
    for sid, subscription in list(account.collection("subscriptions").items()):
        if subscription["customer"] in customers:
            del account.collection("subscriptions")[sid]
    for cid in customers:
        del account.collection("customers")[cid]
    clock = account.collection("test_clocks").pop(id)
    ctx.emit("test_helpers.test_clock.deleted", clock)
    return shapes.deleted("test_helpers.test_clock", id)


# --- meter events ------------------------------------------------------------------------------

_MAX_PAST = 35 * DAY
_MAX_FUTURE = 5 * 60
_DEDUPE_WINDOW = DAY


@post("/v1/billing/meter_events")
def create_meter_event(ctx: Ctx, params: Params) -> JSON:
    event_name = params.str("event_name", required=True)
    payload = params.nested("payload", required=True)
    assert payload is not None and event_name is not None
    account = ctx.account
    meter = meter_for_event(account, event_name)
    if meter is None or meter["status"] != "active":
        raise invalid_value(
            "event_name",
            f"No active meter was found for event_name `{event_name}`."
            if meter is None
            else f"The meter {meter['id']} for event_name `{event_name}` is inactive.",
        )
    customer_key = meter["customer_mapping"]["event_payload_key"]
    value_key = meter["value_settings"]["event_payload_key"]
    customer_id = payload.str(customer_key, required=True)
    value_text = payload.str(value_key, required=meter["default_aggregation"]["formula"] != "count")
    assert customer_id is not None
    value = 1.0
    if value_text is not None:
        try:
            value = float(value_text)
        except ValueError:
            raise invalid_value(
                f"payload[{value_key}]", f"Invalid numeric value: {value_text}"
            ) from None
    payload.used.update(payload.data)
    now = account.now_for(customer_id)
    timestamp = params.int("timestamp")
    if timestamp is None:
        timestamp = now
    elif timestamp < now - _MAX_PAST or timestamp > now + _MAX_FUTURE:
        raise invalid_value(
            "timestamp",
            "Timestamp must be within the past 35 calendar days or up to 5 minutes in the future.",
        )
    identifier = params.str("identifier") or random_part(24)
    params.finish()
    seen: dict[str, JSON] = account.internal["meter_identifiers"]
    first = seen.get(identifier)
    if first is not None and first["created"] > now - _DEDUPE_WINDOW:
        raise invalid_value(
            "identifier",
            f"An event already exists with identifier {identifier}. Identifiers must be unique "
            "within a rolling 24 hour period.",
        )
    event = shapes.meter_event(
        created=now,
        event_name=event_name,
        identifier=identifier,
        livemode=account.livemode,
        payload={key: str(v) for key, v in payload.data.items()},
        timestamp=timestamp,
    )
    record_meter_event(account, event, customer_id, value)
    return event


def record_meter_event(account: Account, event: JSON, customer_id: str, value: float) -> None:
    """Count an accepted meter event (its identifier is then taken for 24 hours)."""
    account.internal["meter_identifiers"][event["identifier"]] = event
    totals: dict[str, float] = account.internal["meter_totals"]
    key = f"{event['event_name']}:{customer_id}"
    totals[key] = totals.get(key, 0.0) + value
