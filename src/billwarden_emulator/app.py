"""The emulator's ASGI app: Stripe's `/v1` and `/v2` protocols plus the `/_emulator/` helpers.

Per request: authenticate the key (each well-formed key is its own account), apply the account's
fault knobs, decode Stripe's form encoding, honour `Idempotency-Key`, run the handler, `expand`,
and answer JSON with Stripe's headers. All state lives in one `Store` on the app.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import logging
import re
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import parse_qsl

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route as StarletteRoute

from billwarden_emulator import helpers, snapshot
from billwarden_emulator.config import EmulatorConfig
from billwarden_emulator.errors import (
    StripeError,
    api_error,
    authentication_error,
    idempotency_mismatch,
    rate_limited,
)
from billwarden_emulator.forms import Params, decode_form, expand_paths
from billwarden_emulator.ids import random_part
from billwarden_emulator.listing import expand
from billwarden_emulator.resources import meter_streams
from billwarden_emulator.routing import build_router
from billwarden_emulator.state import Account, Ctx, DispatcherLike, FaultsLike, Store

logger = logging.getLogger(__name__)
# matched with fullmatch: `$` would also accept a key followed by "\n"
_KEY = re.compile(r"(sk|rk)_(test|live)_[A-Za-z0-9_]+")
_SAVED_STATUSES = (200, 402)


def _mask(key: str) -> str:
    return key[:8] + "*" * max(0, len(key) - 12) + key[-4:]


def api_key_of(request: Request) -> str:
    """The caller's secret key from Bearer or Basic auth; 401 in Stripe's envelope otherwise."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    key = ""
    if scheme.lower() == "bearer":
        key = value.strip()
    elif scheme.lower() == "basic":
        with contextlib.suppress(ValueError):
            key = base64.b64decode(value.strip()).decode().split(":", 1)[0]
    if not key:
        raise authentication_error(
            "You did not provide an API key. You need to provide your API key in the "
            "Authorization header, using Bearer auth (e.g. 'Authorization: Bearer "
            "YOUR_SECRET_KEY')."
        )
    if not _KEY.fullmatch(key):
        raise authentication_error(f"Invalid API Key provided: {_mask(key)}")
    return key


class Emulator:
    """Holds the store and answers requests; one per app."""

    def __init__(
        self,
        config: EmulatorConfig,
        dispatcher_factory: Callable[[Callable[[str, str, str, bool], None]], DispatcherLike],
        faults_factory: Callable[[], FaultsLike],
        make_target: Callable[[str, str, tuple[str, ...], tuple[str, ...]], Any],
    ) -> None:
        self.config = config
        self.store = Store(
            faults_factory=faults_factory,
            dispatcher=None,  # type: ignore[arg-type]  # set just below
            make_target=make_target,
            api_version=config.api_version,
        )
        self.store.dispatcher = dispatcher_factory(self.store.on_delivery_result)
        self.store.on_change = self._schedule_save
        self.router = build_router()
        self._save_handle: asyncio.TimerHandle | None = None

    # --- snapshot ----------------------------------------------------------------------------

    def load(self) -> None:
        if self.config.snapshot_path is not None:
            snapshot.load_file(self.store, self.config.snapshot_path)

    def save(self) -> None:
        self._save_handle = None
        if self.config.snapshot_path is not None:
            snapshot.save_file(self.store, self.config.snapshot_path)

    def _schedule_save(self) -> None:
        if self.config.snapshot_path is None or self._save_handle is not None:
            return
        with contextlib.suppress(RuntimeError):
            loop = asyncio.get_running_loop()
            self._save_handle = loop.call_later(self.config.snapshot_debounce, self.save)

    # --- requests ----------------------------------------------------------------------------

    def base_url(self, request: Request) -> str:
        if self.config.public_url:
            return self.config.public_url.rstrip("/")
        return str(request.base_url).rstrip("/")

    def authenticate(self, request: Request) -> Account:
        key = api_key_of(request)
        if key in self.store.revoked:
            raise authentication_error(f"Expired API Key provided: {_mask(key)}")
        return self.store.account_for(key)

    async def handle_api(self, request: Request) -> Response:
        request_id = "req_" + random_part(14)
        headers = {"Request-Id": request_id, "Stripe-Version": self.config.api_version}
        method = request.method
        # the path as the server decoded it: `request.url` is re-parsed by `urlsplit`, which
        # silently drops tabs and newlines, so `/v1/customers%0A` would read as `/v1/customers`
        path: str = request.scope["path"]
        try:
            account = self.authenticate(request)
            latency = account.faults.latency_for(method, path)
            if latency > 0:
                await asyncio.sleep(latency)
            fault = account.faults.take_request_fault(method, path)
            if fault == 429:
                raise rate_limited()
            if fault is not None:
                raise api_error()
            matched = self.router.match(method, path)
            if matched is None:
                raise StripeError(
                    404,
                    "invalid_request_error",
                    f"Unrecognized request URL ({method}: {path}). Please see "
                    "https://stripe.com/docs or we can help at https://support.stripe.com/.",
                )
            route, path_params = matched
            body = await request.body()
            pairs = parse_qsl(request.url.query, keep_blank_values=True)
            if body:
                pairs += parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
            idempotency_key = request.headers.get("idempotency-key") if method == "POST" else None
            fingerprint = ""
            if idempotency_key:
                if len(idempotency_key) > 255:
                    raise StripeError(
                        400,
                        "invalid_request_error",
                        "Idempotency keys must be 255 characters or fewer.",
                        param="Idempotency-Key",
                    )
                fingerprint = hashlib.sha256(
                    f"{method} {path} ".encode() + orjson.dumps(sorted(pairs))
                ).hexdigest()
                saved = account.idempotency.get(idempotency_key)
                if saved is not None:
                    if saved[0] != fingerprint:
                        raise idempotency_mismatch(idempotency_key)
                    headers["Idempotent-Replayed"] = "true"
                    headers["Idempotency-Key"] = idempotency_key
                    return Response(saved[2], saved[1], headers, media_type="application/json")
            params = Params(decode_form(pairs))
            ctx = Ctx(self.store, account, request_id, idempotency_key, self.base_url(request))
            try:
                result = route.handler(ctx, params, **path_params)
                paths = expand_paths(params)
                if paths:
                    result = expand(account, result, paths)
                status, payload = 200, orjson.dumps(result)
            except StripeError as error:
                status, payload = error.status, orjson.dumps(error.body())
            except Exception:
                # a bug in a handler still answers in Stripe's envelope, and is logged
                logger.exception("emulator handler failed: %s %s", method, path)
                status, payload = 500, orjson.dumps(api_error().body())
            if idempotency_key:
                headers["Idempotency-Key"] = idempotency_key
                if status in _SAVED_STATUSES:
                    account.idempotency[idempotency_key] = (fingerprint, status, payload)
            if route.mutates and status in _SAVED_STATUSES:
                self.store.changed()
            return Response(payload, status, headers, media_type="application/json")
        except StripeError as error:
            return Response(
                orjson.dumps(error.body()), error.status, headers, media_type="application/json"
            )

    async def handle_v2(self, request: Request) -> Response:
        """`/v2`: JSON bodies, and errors in the v2 envelope (`type`, `code`, `message`).
        The meter event stream is authorised by a meter event session's token, not a key."""
        headers = {"Request-Id": "req_" + random_part(14)}
        method = request.method
        path: str = request.scope["path"]
        try:
            if path == "/v2/billing/meter_event_stream" and method == "POST":
                token = request.headers.get("authorization", "").partition(" ")[2].strip()
                account = meter_streams.account_for_session(self.store, token)
            else:
                account = self.authenticate(request)
            matched = self.router.match(method, path)
            if matched is None:
                raise StripeError(
                    404,
                    "invalid_request_error",
                    f"Unrecognized request URL ({method}: {path}).",
                    code="not_found",
                )
            route, path_params = matched
            data: Any = decode_form(parse_qsl(request.url.query, keep_blank_values=True))
            if method == "POST":
                body = await request.body()
                try:
                    data = orjson.loads(body) if body.strip() else {}
                except orjson.JSONDecodeError:
                    raise StripeError(
                        400, "invalid_request_error", "Invalid JSON body.", code="invalid_json"
                    ) from None
                if not isinstance(data, dict):
                    raise StripeError(
                        400,
                        "invalid_request_error",
                        "The body must be a JSON object.",
                        code="invalid_json",
                    )
            ctx = Ctx(self.store, account, headers["Request-Id"], None, self.base_url(request))
            try:
                result = route.handler(ctx, Params(data), **path_params)
            except StripeError:
                raise
            except Exception:
                logger.exception("emulator handler failed: %s %s", method, path)
                raise api_error() from None
            if route.mutates:
                self.store.changed()
            return Response(orjson.dumps(result), 200, headers, media_type="application/json")
        except StripeError as error:
            envelope = {"type": error.type, "code": error.code, "message": error.message}
            if error.param is not None:
                envelope["param"] = error.param
            return Response(
                orjson.dumps({"error": envelope}),
                error.status,
                headers,
                media_type="application/json",
            )


def _default_parts(
    config: EmulatorConfig,
) -> tuple[
    Callable[[Callable[[str, str, str, bool], None]], DispatcherLike],
    Callable[[], FaultsLike],
    Callable[[str, str, tuple[str, ...], tuple[str, ...]], Any],
]:
    from billwarden_emulator.delivery import EndpointTarget, WebhookDispatcher
    from billwarden_emulator.faults import AccountFaults

    def dispatcher_factory(on_result: Callable[[str, str, str, bool], None]) -> DispatcherLike:
        return WebhookDispatcher(
            retry_schedule=config.webhook_retry_schedule,
            timeout=config.webhook_timeout,
            on_result=on_result,
        )

    def make_target(
        endpoint_id: str, url: str, secrets: tuple[str, ...], events: tuple[str, ...]
    ) -> EndpointTarget:
        return EndpointTarget(id=endpoint_id, url=url, secrets=secrets, enabled_events=events)

    return dispatcher_factory, AccountFaults, make_target


def create_app(config: EmulatorConfig | None = None) -> Starlette:
    """The emulator as an ASGI app; state lives in memory (and in the snapshot file, if set)."""
    config = config or EmulatorConfig()
    emulator = Emulator(config, *_default_parts(config))
    emulator.load()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await emulator.store.dispatcher.start()
        try:
            yield
        finally:
            await emulator.store.dispatcher.stop()
            if emulator._save_handle is not None:
                emulator._save_handle.cancel()
            emulator.save()

    routes = [
        StarletteRoute("/v1/{path:path}", emulator.handle_api, methods=["GET", "POST", "DELETE"]),
        StarletteRoute("/v2/{path:path}", emulator.handle_v2, methods=["GET", "POST", "DELETE"]),
        *helpers.routes(emulator),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.emulator = emulator
    return app
