"""Billing portal configurations: create, retrieve, update, list.

Configurations live in the account's bookkeeping (`internal["portal_configurations"]`, id ->
configuration, oldest first), so they survive a snapshot and `reset` clears them. Creating emits
`billing_portal.configuration.created`, a change `billing_portal.configuration.updated` (with
`previous_attributes`). The emulator's portal page does not read them: it always shows the
customer's subscriptions. Portal sessions are in `platform.py`.
"""

from __future__ import annotations

import time
from typing import Any

from billwarden_emulator.errors import invalid_request, resource_missing
from billwarden_emulator.forms import Params, merge_metadata
from billwarden_emulator.ids import new_id
from billwarden_emulator.listing import newest_first, page
from billwarden_emulator.resources import get, post
from billwarden_emulator.state import JSON, Account, Ctx, copy_json, previous_attributes

_CUSTOMER_UPDATES = ("address", "email", "name", "phone", "shipping", "tax_id")
_SUBSCRIPTION_UPDATES = ("price", "promotion_code", "quantity")
_PRORATIONS = ("always_invoice", "create_prorations", "none")
_CANCEL_REASONS = (
    "customer_service",
    "low_quality",
    "missing_features",
    "other",
    "switched_service",
    "too_complex",
    "too_expensive",
    "unused",
)


def _configurations(account: Account) -> dict[str, JSON]:
    found: dict[str, JSON] = account.internal.setdefault("portal_configurations", {})
    return found


def _configuration(account: Account, configuration_id: str) -> JSON:
    found = _configurations(account).get(configuration_id)
    if found is None:
        raise resource_missing("billing_portal.configuration", configuration_id)
    return found


def _default_features() -> JSON:
    return {
        "customer_update": {"allowed_updates": [], "enabled": False},
        "invoice_history": {"enabled": False},
        "payment_method_update": {"enabled": False, "payment_method_configuration": None},
        "subscription_cancel": {
            "cancellation_reason": {"enabled": False, "options": []},
            "enabled": False,
            "mode": "at_period_end",
            "proration_behavior": "none",
        },
        "subscription_update": {
            "default_allowed_updates": [],
            "enabled": False,
            "products": [],
            "proration_behavior": "none",
            "schedule_at_period_end": {"conditions": []},
            "trial_update_behavior": "end_trial",
            "billing_cycle_anchor": None,
        },
    }


def _choices(params: Params, name: str, allowed: tuple[str, ...]) -> list[str] | None:
    values = params.strings(name)
    if values is None:
        return None
    for value in values:
        if value not in allowed:
            raise invalid_request(
                f"Invalid {params._name(name)}: must be one of {', '.join(allowed)}",
                param=params._name(name),
                code="parameter_invalid",
            )
    return values


def _set_enabled(feature: Params, into: JSON, *, required: bool) -> None:
    enabled = feature.bool("enabled", required=required)
    if enabled is not None:
        into["enabled"] = enabled


def _apply_features(params: Params, features: JSON, *, creating: bool) -> None:
    customer_update = params.nested("customer_update")
    if customer_update is not None:
        target = features["customer_update"]
        _set_enabled(customer_update, target, required=creating)
        updates = _choices(customer_update, "allowed_updates", _CUSTOMER_UPDATES)
        if updates is not None:
            target["allowed_updates"] = updates
        customer_update.finish()
    history = params.nested("invoice_history")
    if history is not None:
        _set_enabled(history, features["invoice_history"], required=True)
        history.finish()
    method_update = params.nested("payment_method_update")
    if method_update is not None:
        target = features["payment_method_update"]
        _set_enabled(method_update, target, required=True)
        if method_update.has("payment_method_configuration"):
            target["payment_method_configuration"] = method_update.str(
                "payment_method_configuration"
            )
        method_update.finish()
    cancel = params.nested("subscription_cancel")
    if cancel is not None:
        _apply_cancel(cancel, features["subscription_cancel"], creating=creating)
    update = params.nested("subscription_update")
    if update is not None:
        _apply_update(update, features["subscription_update"], creating=creating)
    params.finish()


def _apply_cancel(cancel: Params, target: JSON, *, creating: bool) -> None:
    _set_enabled(cancel, target, required=creating)
    mode = cancel.str("mode", choices=("at_period_end", "immediately"))
    if mode is not None:
        target["mode"] = mode
    proration = cancel.str("proration_behavior", choices=_PRORATIONS)
    if proration is not None:
        target["proration_behavior"] = proration
    reason = cancel.nested("cancellation_reason")
    if reason is not None:
        _set_enabled(reason, target["cancellation_reason"], required=True)
        options = _choices(reason, "options", _CANCEL_REASONS)
        if options is not None:
            target["cancellation_reason"]["options"] = options
        reason.finish()
    cancel.finish()


def _apply_update(update: Params, target: JSON, *, creating: bool) -> None:
    _set_enabled(update, target, required=creating)
    allowed = _choices(update, "default_allowed_updates", _SUBSCRIPTION_UPDATES)
    if allowed is not None:
        target["default_allowed_updates"] = allowed
    proration = update.str("proration_behavior", choices=_PRORATIONS)
    if proration is not None:
        target["proration_behavior"] = proration
    trial = update.str("trial_update_behavior", choices=("continue_trial", "end_trial"))
    if trial is not None:
        target["trial_update_behavior"] = trial
    products = update.nested_list("products")
    if products:
        target["products"] = []
        for product in products:
            prices = product.strings("prices") or []
            target["products"].append(
                {"prices": prices, "product": product.str("product", required=True)}
            )
            product.accept("adjustable_quantity")
            product.finish()
    update.accept("schedule_at_period_end", "billing_cycle_anchor")
    update.finish()


def _business_profile(params: Params, current: JSON) -> JSON:
    profile = params.nested("business_profile")
    if profile is None:
        return current
    updated = dict(current)
    for name in ("headline", "privacy_policy_url", "terms_of_service_url"):
        if profile.has(name):
            updated[name] = profile.str(name)
    profile.finish()
    return updated


def _login_page(params: Params, current: JSON) -> JSON:
    login = params.nested("login_page")
    if login is None:
        return current
    enabled = bool(login.bool("enabled", required=True))
    login.finish()
    if current["enabled"] == enabled:
        return current
    return {"enabled": enabled, "url": None}


@post("/v1/billing_portal/configurations")
def create_configuration(ctx: Ctx, params: Params) -> JSON:
    account = ctx.account
    features_params = params.nested("features", required=True)
    assert features_params is not None
    features = _default_features()
    _apply_features(features_params, features, creating=True)
    now = int(time.time())
    configuration: JSON = {
        "active": True,
        "application": None,
        "business_profile": _business_profile(
            params, {"headline": None, "privacy_policy_url": None, "terms_of_service_url": None}
        ),
        "created": now,
        "default_return_url": params.str("default_return_url"),
        "features": features,
        "id": new_id("bpc"),
        "is_default": False,
        "livemode": account.livemode,
        "login_page": _login_page(params, {"enabled": False, "url": None}),
        "metadata": params.metadata() or {},
        "object": "billing_portal.configuration",
        "updated": now,
        "name": params.str("name"),
    }
    params.finish()
    if configuration["login_page"]["enabled"]:
        configuration["login_page"]["url"] = f"{ctx.base_url}/_emulator/portal/login"
    _configurations(account)[configuration["id"]] = configuration
    ctx.emit("billing_portal.configuration.created", configuration, created=now)
    return configuration


@get("/v1/billing_portal/configurations/{id}")
def retrieve_configuration(ctx: Ctx, params: Params, id: str) -> JSON:
    params.finish()
    return _configuration(ctx.account, id)


@post("/v1/billing_portal/configurations/{id}")
def update_configuration(ctx: Ctx, params: Params, id: str) -> JSON:
    configuration = _configuration(ctx.account, id)
    before = copy_json(configuration)
    changed: dict[str, Any] = {}
    if params.has("active"):
        changed["active"] = bool(params.bool("active", required=True))
    changed["business_profile"] = _business_profile(params, configuration["business_profile"])
    if params.has("default_return_url"):
        changed["default_return_url"] = params.str("default_return_url")
    features = params.nested("features")
    if features is not None:
        updated = copy_json(configuration["features"])
        _apply_features(features, updated, creating=False)
        changed["features"] = updated
    login = _login_page(params, configuration["login_page"])
    if login is not configuration["login_page"] and login["enabled"]:
        login["url"] = f"{ctx.base_url}/_emulator/portal/login"
    changed["login_page"] = login
    changed["metadata"] = merge_metadata(configuration["metadata"], params.metadata())
    if params.has("name"):
        changed["name"] = params.str("name")
    params.finish()
    configuration.update(changed)
    difference = previous_attributes(before, configuration)
    if difference:
        configuration["updated"] = int(time.time())
        ctx.emit(
            "billing_portal.configuration.updated",
            configuration,
            previous_attributes(before, configuration),
        )
    return configuration


@get("/v1/billing_portal/configurations")
def list_configurations(ctx: Ctx, params: Params) -> JSON:
    active = params.bool("active")
    is_default = params.bool("is_default")

    def keep(configuration: JSON) -> bool:
        return (active is None or configuration["active"] == active) and (
            is_default is None or configuration["is_default"] == is_default
        )

    result = page(
        params,
        "/v1/billing_portal/configurations",
        newest_first(_configurations(ctx.account), keep),
        object_name="billing_portal.configuration",
    )
    params.finish()
    return result
