"""Test-helper routes under `/_emulator/` (never `/v1`); each acts on the caller key's account.

    POST /_emulator/checkout/sessions/{id}/complete   outcome=paid|card_declined|async_pending
    POST /_emulator/checkout/sessions/{id}/async_payment   outcome=succeeded|failed
    POST /_emulator/test_clocks/{id}/advance   frozen_time=<unix> or seconds=<n>
    POST /_emulator/customers/{id}/card   outcome=succeeds|declined|insufficient_funds
    POST /_emulator/customers/{id}/test_clock   test_clock=<clock id>: put a customer on a clock
    POST /_emulator/reset   forget the account's objects, faults and deliveries
    POST /_emulator/keys/revoke   key=<key> (default: the calling key)
    GET /_emulator/deliveries   the webhook delivery log
    GET|POST|DELETE /_emulator/faults   read, configure (JSON body), reset the fault knobs
    GET /_emulator/checkout/{id}, /_emulator/portal/{id}   minimal hosted pages (no key needed)
    GET /_emulator/invoices/{id}[/pdf], /_emulator/receipts/{id}   invoice and receipt pages

Bodies may be JSON or form-encoded; answers use Stripe's error envelope.
"""

from __future__ import annotations

import html
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

import orjson
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from billwarden_emulator import pages
from billwarden_emulator.billing.lifecycle import ENDED
from billwarden_emulator.errors import (
    StripeError,
    invalid_request,
    invalid_value,
    missing_parameter,
)
from billwarden_emulator.resources import checkout, platform
from billwarden_emulator.state import JSON, Account, Ctx, copy_json, previous_attributes

if TYPE_CHECKING:
    from billwarden_emulator.app import Emulator

Helper = Callable[[Ctx, dict[str, Any], dict[str, str]], Awaitable[Any] | Any]


def _json(payload: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(payload), status, media_type="application/json")


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw:
        return dict(request.query_params)
    if request.headers.get("content-type", "").startswith("application/json"):
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise invalid_request("Request body is not valid JSON.") from None
        if not isinstance(data, dict):
            raise invalid_request("Request body must be a JSON object.")
        return data
    return dict(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))


def routes(emulator: Emulator) -> list[Route]:
    store = emulator.store

    def authenticated(helper: Helper) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            try:
                account = emulator.authenticate(request)
                body = await _body(request)
                ctx = Ctx(store, account, None, None, emulator.base_url(request))
                result = helper(ctx, body, dict(request.path_params))
                if isinstance(result, Awaitable):
                    result = await result
                if request.method != "GET":
                    store.changed()
                return result if isinstance(result, Response) else _json(result)
            except StripeError as error:
                return _json(error.body(), error.status)

        return endpoint

    def complete(ctx: Ctx, body: dict[str, Any], path: dict[str, str]) -> JSON:
        session = ctx.account.get("checkout_sessions", path["id"], param="session")
        outcome = _choice(body, "outcome", checkout.OUTCOMES, default="paid")
        try:
            return checkout.complete_session(ctx, session, outcome, email=body.get("email"))
        finally:
            store.changed()

    def async_payment(ctx: Ctx, body: dict[str, Any], path: dict[str, str]) -> JSON:
        session = ctx.account.get("checkout_sessions", path["id"], param="session")
        outcome = _choice(body, "outcome", ("succeeded", "failed"))
        return checkout.settle_async_payment(ctx, session, outcome)

    def advance(ctx: Ctx, body: dict[str, Any], path: dict[str, str]) -> JSON:
        clock = ctx.account.get("test_clocks", path["id"])
        if "frozen_time" in body:
            target = _int(body, "frozen_time")
        elif "seconds" in body:
            target = clock["frozen_time"] + _int(body, "seconds")
        else:
            raise missing_parameter("frozen_time")
        return platform.advance(ctx, clock, target)

    def card(ctx: Ctx, body: dict[str, Any], path: dict[str, str]) -> JSON:
        customer = ctx.account.get("customers", path["id"])
        outcome = _choice(body, "outcome", ("succeeds", "declined", "insufficient_funds"))
        before = copy_json(customer)
        metadata = dict(customer["metadata"])
        if outcome == "succeeds":
            metadata.pop("emulator_card", None)
        else:
            metadata["emulator_card"] = outcome
        customer["metadata"] = metadata
        changes = previous_attributes(before, customer)
        if changes:
            ctx.emit(
                "customer.updated", customer, changes, created=ctx.account.now_for(customer["id"])
            )
        return customer

    def attach_clock(ctx: Ctx, body: dict[str, Any], path: dict[str, str]) -> JSON:
        customer = ctx.account.get("customers", path["id"])
        clock_id = body.get("test_clock")
        if clock_id is None or clock_id == "":
            raise missing_parameter("test_clock")
        if not isinstance(clock_id, str):
            raise invalid_value("test_clock", f"Invalid string: {clock_id!r}")
        clock = ctx.account.get("test_clocks", clock_id, param="test_clock")
        return _attach_test_clock(ctx, customer, clock)

    def reset(ctx: Ctx, body: dict[str, Any], path: dict[str, str]) -> JSON:
        ctx.account.clear()
        ctx.account.faults.reset()
        store.dispatcher.reset(ctx.account.key)
        return {"object": "emulator.reset", "account": ctx.account.id}

    def revoke(ctx: Ctx, body: dict[str, Any], path: dict[str, str]) -> JSON:
        key = str(body.get("key") or ctx.account.key)
        store.revoked.add(key)
        return {"object": "emulator.revoked_key", "revoked": True}

    def deliveries(ctx: Ctx, body: dict[str, Any], path: dict[str, str]) -> JSON:
        log = store.dispatcher.delivery_log(ctx.account.key)
        return {"object": "list", "data": log, "has_more": False, "url": "/_emulator/deliveries"}

    def delivery_summary(ctx: Ctx, body: dict[str, Any], path: dict[str, str]) -> JSON:
        counts = store.dispatcher.delivery_summary(ctx.account.key)
        return {"object": "emulator.delivery_summary", **counts}

    def faults(ctx: Ctx, body: dict[str, Any], path: dict[str, str]) -> JSON:
        return ctx.account.faults.state()

    def configure_faults(ctx: Ctx, body: dict[str, Any], path: dict[str, str]) -> JSON:
        try:
            ctx.account.faults.configure(body)
        except ValueError as error:
            raise invalid_request(str(error), param="faults") from None
        return ctx.account.faults.state()

    def reset_faults(ctx: Ctx, body: dict[str, Any], path: dict[str, str]) -> JSON:
        ctx.account.faults.reset()
        return ctx.account.faults.state()

    async def hosted_checkout(request: Request) -> Response:
        found = _find_session(emulator.store.accounts.values(), request.path_params["id"])
        if found is None:
            return HTMLResponse("<h1>Checkout session not found</h1>", 404)
        _, session = found
        amount = (session["amount_total"] or 0) / 100
        buttons = "".join(
            f'<button name="outcome" value="{value}">{label}</button> '
            for value, label in (
                ("paid", "Pay"),
                ("card_declined", "Pay with a declined card"),
                ("async_pending", "Pay with a delayed method"),
            )
        )
        page = (
            "<!doctype html><title>billwarden checkout</title>"
            f"<h1>Checkout</h1><p>{html.escape(session['mode'])}: "
            f"{amount:.2f} {html.escape((session['currency'] or '').upper())}</p>"
            f"<p>Status: {html.escape(session['status'])}</p>"
            f'<form method="post" action="/_emulator/checkout/{html.escape(session["id"])}/pay">'
            f"{buttons}</form>"
        )
        return HTMLResponse(page)

    async def hosted_checkout_pay(request: Request) -> Response:
        found = _find_session(emulator.store.accounts.values(), request.path_params["id"])
        if found is None:
            return HTMLResponse("<h1>Checkout session not found</h1>", 404)
        account, session = found
        body = await _body(request)
        outcome = str(body.get("outcome", "paid"))
        ctx = Ctx(store, account, None, None, emulator.base_url(request))
        try:
            checkout.complete_session(
                ctx, session, outcome if outcome in checkout.OUTCOMES else "paid"
            )
        except StripeError as error:
            store.changed()
            return HTMLResponse(f"<h1>Payment failed</h1><p>{html.escape(error.message)}</p>", 402)
        store.changed()
        target = (session["success_url"] or "").replace("{CHECKOUT_SESSION_ID}", session["id"])
        if target:
            return RedirectResponse(target, 303)
        return HTMLResponse("<h1>Payment complete</h1>")

    async def hosted_portal(request: Request) -> Response:
        for account in emulator.store.accounts.values():
            session = account.collection("portal_sessions").get(request.path_params["id"])
            if session is not None:
                subscriptions = [
                    f"<li>{html.escape(s['id'])}: {html.escape(s['status'])}</li>"
                    for s in account.collection("subscriptions").values()
                    if s["customer"] == session["customer"]
                ]
                back = html.escape(session["return_url"] or "/")
                return HTMLResponse(
                    "<!doctype html><title>billwarden billing portal</title>"
                    f"<h1>Billing portal</h1><ul>{''.join(subscriptions)}</ul>"
                    f'<a href="{back}">Return</a>'
                )
        return HTMLResponse("<h1>Portal session not found</h1>", 404)

    async def health(request: Request) -> Response:
        return _json({"ok": True})

    return [
        Route("/_emulator/health", health, methods=["GET"]),
        Route(
            "/_emulator/checkout/sessions/{id}/complete", authenticated(complete), methods=["POST"]
        ),
        Route(
            "/_emulator/checkout/sessions/{id}/async_payment",
            authenticated(async_payment),
            methods=["POST"],
        ),
        Route("/_emulator/test_clocks/{id}/advance", authenticated(advance), methods=["POST"]),
        Route("/_emulator/customers/{id}/card", authenticated(card), methods=["POST"]),
        Route(
            "/_emulator/customers/{id}/test_clock", authenticated(attach_clock), methods=["POST"]
        ),
        Route("/_emulator/reset", authenticated(reset), methods=["POST"]),
        Route("/_emulator/keys/revoke", authenticated(revoke), methods=["POST"]),
        Route("/_emulator/deliveries", authenticated(deliveries), methods=["GET"]),
        Route("/_emulator/deliveries/summary", authenticated(delivery_summary), methods=["GET"]),
        Route("/_emulator/faults", authenticated(faults), methods=["GET"]),
        Route("/_emulator/faults", authenticated(configure_faults), methods=["POST"]),
        Route("/_emulator/faults", authenticated(reset_faults), methods=["DELETE"]),
        Route("/_emulator/faults/reset", authenticated(reset_faults), methods=["POST"]),
        Route("/_emulator/checkout/{id}", hosted_checkout, methods=["GET"]),
        Route("/_emulator/checkout/{id}/pay", hosted_checkout_pay, methods=["POST"]),
        Route("/_emulator/portal/{id}", hosted_portal, methods=["GET"]),
        *pages.routes(emulator),
    ]


def _attach_test_clock(ctx: Ctx, customer: JSON, clock: JSON) -> JSON:
    """Put a customer created without a clock on `clock`, so that advancing it moves the
    customer's subscriptions; refused once the customer has a clock or a live subscription."""
    if customer["test_clock"] is not None:
        raise invalid_request(
            f"Customer {customer['id']} is already on test clock {customer['test_clock']}; "
            "a customer's test clock cannot be changed.",
            param="test_clock",
        )
    for subscription in ctx.account.collection("subscriptions").values():
        if subscription["customer"] == customer["id"] and subscription["status"] not in ENDED:
            raise invalid_request(
                f"Customer {customer['id']} has subscription {subscription['id']} "
                f"(status {subscription['status']}), whose periods run on real time; cancel it "
                "before attaching a test clock.",
                param="test_clock",
            )
    before = copy_json(customer)
    customer["test_clock"] = clock["id"]
    ctx.emit(
        "customer.updated",
        customer,
        previous_attributes(before, customer),
        created=int(clock["frozen_time"]),
    )
    return customer


def _find_session(accounts: Any, session_id: str) -> tuple[Account, JSON] | None:
    for account in accounts:
        session = account.collection("checkout_sessions").get(session_id)
        if session is not None:
            return account, session
    return None


def _choice(
    body: dict[str, Any], name: str, choices: tuple[str, ...], default: str | None = None
) -> str:
    value = body.get(name, default)
    if value is None:
        raise missing_parameter(name)
    if value not in choices:
        raise invalid_value(name, f"Invalid {name}: must be one of {', '.join(choices)}")
    return str(value)


def _int(body: dict[str, Any], name: str) -> int:
    try:
        return int(body[name])
    except (TypeError, ValueError):
        raise invalid_value(name, f"Invalid integer: {body[name]}") from None
