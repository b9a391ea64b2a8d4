"""`StripeGateway`: one `StripeClient` per (project, mode), pinned API version, mapped errors."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import stripe

from billwarden.core.modes import Mode
from billwarden.errors import BillwardenError

logger = logging.getLogger("billwarden.stripe_gateway")
T = TypeVar("T")

STRIPE_API_VERSION = "2026-10-28.endive"
_REQUEST_TIMEOUT_SECONDS = 30.0
# Stripe's `GET /v1/prices` takes at most 10 `lookup_keys` per request
_LOOKUP_KEYS_PER_REQUEST = 10


@dataclass(eq=False)
class _Client:
    stripe_client: stripe.StripeClient
    http_client: stripe.HTTPXClient
    leases: int = 0  # calls using it now
    retired: bool = False  # the project's key has changed since


class StripeGatewayError(BillwardenError):
    """Stripe answered with an error, or could not be reached."""

    code = "STRIPE_ERROR"
    status_code = 502


@dataclass(frozen=True)
class CredentialCheck:
    valid: bool
    livemode: bool | None
    error: str | None


@dataclass(frozen=True)
class StripePrice:
    """The parts of a Stripe price the catalog needs."""

    id: str
    lookup_key: str | None
    product: str  # the product's id
    unit_amount: int | None
    currency: str
    interval: str | None  # `recurring.interval`; None for a one-time price
    active: bool

    @classmethod
    def from_stripe(cls, price: stripe.Price) -> StripePrice:
        product = price.product
        return cls(
            id=price.id,
            lookup_key=price.lookup_key,
            product=product if isinstance(product, str) else product.id,
            unit_amount=price.unit_amount,
            currency=price.currency,
            interval=price.recurring.interval if price.recurring is not None else None,
            active=price.active,
        )


def _fingerprint(secret_key: str) -> str:
    # cache key only: never logged, never stored
    return hashlib.sha256(secret_key.encode()).hexdigest()[:16]


def map_stripe_error(exc: stripe.StripeError) -> StripeGatewayError:
    """Stripe's 4xx keep their status and message; outages and our own bad key answer 502."""
    status = exc.http_status
    error = exc.error
    details: dict[str, Any] = {
        "stripeType": getattr(error, "type", None),
        "stripeCode": exc.code,
        "stripeParam": getattr(error, "param", None),
        "stripeRequestId": exc.request_id,
    }
    details = {key: value for key, value in details.items() if value is not None}
    message = exc.user_message or str(getattr(error, "message", None) or "Stripe request failed.")
    if isinstance(exc, stripe.AuthenticationError | stripe.PermissionError):
        return StripeGatewayError(
            f"Stripe refused the project's API key: {message}",
            code="STRIPE_CREDENTIALS_REJECTED",
            details=details,
        )
    if isinstance(exc, stripe.APIConnectionError) or status is None:
        return StripeGatewayError("Stripe could not be reached.", details=details)
    if status == 429 or status >= 500:
        return StripeGatewayError(
            f"Stripe is unavailable (HTTP {status}): {message}", details=details
        )
    return StripeGatewayError(message, status_code=status, details=details)


class StripeGateway:
    """Builds and caches one `StripeClient` per (project, mode, key); all calls are async."""

    def __init__(
        self, *, api_base: str, max_network_retries: int = 2, rate_limit_backoff: float = 0.5
    ) -> None:
        self.api_base = api_base.rstrip("/")
        self.max_network_retries = max_network_retries
        self.rate_limit_backoff = rate_limit_backoff
        self._clients: dict[tuple[uuid.UUID, Mode, str], _Client] = {}
        # clients of replaced keys that calls still use: closed when the last call ends
        self._retired: list[_Client] = []

    @asynccontextmanager
    async def lease(
        self, project_id: uuid.UUID, mode: Mode, secret_key: str
    ) -> AsyncIterator[stripe.StripeClient]:
        """The project's client for the length of the block. When the project's key changes,
        the previous client is closed (with its connections) once no block uses it."""
        cached = await self._current(project_id, mode, secret_key)
        cached.leases += 1
        try:
            yield cached.stripe_client
        finally:
            cached.leases -= 1
            if cached.retired and cached.leases == 0:
                await self._close(cached)

    @property
    def open_http_clients(self) -> int:
        """How many HTTP clients (each with its connection pool) the gateway holds open."""
        return len(self._clients) + len(self._retired)

    async def _current(self, project_id: uuid.UUID, mode: Mode, secret_key: str) -> _Client:
        cache_key = (project_id, mode, _fingerprint(secret_key))
        cached = self._clients.get(cache_key)
        if cached is not None:
            return cached
        for key in [key for key in self._clients if key[:2] == (project_id, mode)]:
            stale = self._clients.pop(key)
            stale.retired = True
            if stale.leases == 0:
                await self._close(stale)
            else:
                self._retired.append(stale)
        http_client = stripe.HTTPXClient(timeout=_REQUEST_TIMEOUT_SECONDS)
        client = stripe.StripeClient(
            secret_key,
            stripe_version=STRIPE_API_VERSION,
            base_addresses={"api": self.api_base},
            max_network_retries=self.max_network_retries,
            http_client=http_client,
        )
        cached = self._clients[cache_key] = _Client(client, http_client)
        return cached

    async def _close(self, cached: _Client) -> None:
        if cached in self._retired:
            self._retired.remove(cached)
        await cached.http_client.close_async()  # type: ignore[no-untyped-call]

    async def check_credentials(
        self, project_id: uuid.UUID, mode: Mode, secret_key: str
    ) -> CredentialCheck:
        """Ask Stripe whether the key works (`GET /v1/balance`, which also tells livemode).

        A refusal is an answer, not an error; outages still raise `StripeGatewayError`.
        """
        try:
            async with self.lease(project_id, mode, secret_key) as client:
                balance = await self._with_rate_limit_retries(client.v1.balance.retrieve_async)
        except (stripe.AuthenticationError, stripe.PermissionError) as exc:
            message = exc.user_message or "Stripe refused the key."
            return CredentialCheck(valid=False, livemode=None, error=message)
        except stripe.StripeError as exc:
            raise map_stripe_error(exc) from exc
        return CredentialCheck(valid=True, livemode=balance.livemode, error=None)

    async def prices_by_lookup_key(
        self, project_id: uuid.UUID, mode: Mode, secret_key: str, lookup_keys: Sequence[str]
    ) -> dict[str, StripePrice]:
        """The active prices with these lookup keys, by lookup key; a key no active price has
        is absent. Asks `GET /v1/prices?active=true&lookup_keys[]=...`, ten keys a request."""
        if isinstance(lookup_keys, str):
            raise TypeError("lookup_keys must be a sequence of keys, not one string")
        wanted = list(dict.fromkeys(lookup_keys))  # unique, in order
        found: dict[str, StripePrice] = {}
        try:
            async with self.lease(project_id, mode, secret_key) as client:
                for start in range(0, len(wanted), _LOOKUP_KEYS_PER_REQUEST):
                    batch = wanted[start : start + _LOOKUP_KEYS_PER_REQUEST]
                    # a lookup key belongs to one price at most: one page holds the batch
                    params: stripe.params.PriceListParams = {
                        "lookup_keys": batch,
                        "active": True,
                        "limit": 100,
                    }
                    prices = await self._with_rate_limit_retries(
                        functools.partial(client.v1.prices.list_async, params)
                    )
                    for price in prices.data:
                        if price.lookup_key is not None and price.lookup_key in batch:
                            found[price.lookup_key] = StripePrice.from_stripe(price)
        except stripe.StripeError as exc:
            raise map_stripe_error(exc) from exc
        return found

    async def create_price(
        self,
        project_id: uuid.UUID,
        mode: Mode,
        secret_key: str,
        *,
        lookup_key: str,
        product_name: str,
        amount: int,
        currency: str,
        interval: str | None,
        idempotency_key: str,
    ) -> StripePrice:
        """Create a product named `product_name` and a price for it with `lookup_key`
        (`recurring[interval]` when `interval` is set, one-time otherwise).

        Each request has its own idempotency key derived from `idempotency_key`, so a retried
        push with the same key creates the product and the price once. A lookup key another
        price holds is refused by Stripe (400): it is never transferred.
        """
        try:
            async with self.lease(project_id, mode, secret_key) as client:
                product_params: stripe.params.ProductCreateParams = {"name": product_name}
                product = await self._with_rate_limit_retries(
                    lambda: client.v1.products.create_async(
                        product_params, {"idempotency_key": f"{idempotency_key}:product"}
                    )
                )
                price_params: stripe.params.PriceCreateParams = {
                    "product": product.id,
                    "lookup_key": lookup_key,
                    "transfer_lookup_key": False,
                    "unit_amount": amount,
                    "currency": currency,
                }
                if interval is not None:
                    price_params["recurring"] = {"interval": interval}
                price = await self._with_rate_limit_retries(
                    lambda: client.v1.prices.create_async(
                        price_params, {"idempotency_key": f"{idempotency_key}:price"}
                    )
                )
        except stripe.StripeError as exc:
            raise map_stripe_error(exc) from exc
        return StripePrice.from_stripe(price)

    async def retrieve(
        self,
        project_id: uuid.UUID,
        mode: Mode,
        secret_key: str,
        path: str,
        *,
        expand: list[str] | None = None,
    ) -> dict[str, Any] | None:
        """`GET path` (`/v1/subscriptions/sub_...`, with `expand[]`) as Stripe's raw JSON, or
        None when Stripe has no such object (404). Raw, not the SDK's typed objects: the mirror
        keeps it as is, and building typed objects costs most of a read's time."""
        params: dict[str, Any] = {"expand": expand} if expand else {}
        return await self._raw_get(project_id, mode, secret_key, path, params)

    async def list_page(
        self,
        project_id: uuid.UUID,
        mode: Mode,
        secret_key: str,
        path: str,
        params: dict[str, Any],
    ) -> dict[str, Any]:
        """One page of a Stripe list (`/v1/subscriptions` with `limit`, `starting_after`, ...)
        as raw JSON: `{"data": [...], "has_more": ...}`. Raw for the reason `retrieve` is."""
        page = await self._raw_get(project_id, mode, secret_key, path, params)
        if page is None or not isinstance(page.get("data"), list):
            raise StripeGatewayError(f"Stripe answered {path} with something other than a list.")
        return page

    async def _raw_get(
        self,
        project_id: uuid.UUID,
        mode: Mode,
        secret_key: str,
        path: str,
        params: dict[str, Any],
    ) -> dict[str, Any] | None:
        try:
            async with self.lease(project_id, mode, secret_key) as client:
                response = await self._with_rate_limit_retries(
                    lambda: client.raw_request_async("get", path, **params)
                )
        except stripe.InvalidRequestError as exc:
            if exc.http_status == 404:
                return None
            raise map_stripe_error(exc) from exc
        except stripe.StripeError as exc:
            raise map_stripe_error(exc) from exc
        data = response.data
        if not isinstance(data, dict):
            raise StripeGatewayError("Stripe answered with something other than an object.")
        return data

    async def create_customer(
        self,
        project_id: uuid.UUID,
        mode: Mode,
        secret_key: str,
        *,
        email: str | None,
        metadata: dict[str, str],
        idempotency_key: str,
    ) -> dict[str, Any]:
        """Create a customer; the same `idempotency_key` within Stripe's 24 hours answers the
        customer the first call created, so concurrent callers for one subject get one."""
        params: stripe.params.CustomerCreateParams = {"metadata": metadata}
        if email is not None:
            params["email"] = email
        try:
            async with self.lease(project_id, mode, secret_key) as client:
                customer = await self._with_rate_limit_retries(
                    lambda: client.v1.customers.create_async(
                        params, {"idempotency_key": idempotency_key}
                    )
                )
        except stripe.StripeError as exc:
            raise map_stripe_error(exc) from exc
        return customer.to_dict()

    async def update_customer_metadata(
        self,
        project_id: uuid.UUID,
        mode: Mode,
        secret_key: str,
        customer_id: str,
        metadata: dict[str, str],
        *,
        idempotency_key: str,
    ) -> dict[str, Any]:
        """Set these metadata keys on the customer (Stripe merges them: other keys stay)."""
        params: stripe.params.CustomerUpdateParams = {"metadata": metadata}
        try:
            async with self.lease(project_id, mode, secret_key) as client:
                customer = await self._with_rate_limit_retries(
                    lambda: client.v1.customers.update_async(
                        customer_id, params, {"idempotency_key": idempotency_key}
                    )
                )
        except stripe.StripeError as exc:
            raise map_stripe_error(exc) from exc
        return customer.to_dict()

    async def create_checkout_session(
        self, project_id: uuid.UUID, mode: Mode, secret_key: str, params: dict[str, Any]
    ) -> dict[str, Any]:
        """Create a Checkout Session from Stripe's own parameters (`mode`, `line_items`, ...)."""
        typed = cast("stripe.params.checkout.SessionCreateParams", params)
        try:
            async with self.lease(project_id, mode, secret_key) as client:
                session = await self._with_rate_limit_retries(
                    lambda: client.v1.checkout.sessions.create_async(typed)
                )
        except stripe.StripeError as exc:
            raise map_stripe_error(exc) from exc
        return session.to_dict()

    async def change_subscription(
        self,
        project_id: uuid.UUID,
        mode: Mode,
        secret_key: str,
        subscription_id: str,
        action: str,
        params: dict[str, Any],
        *,
        idempotency_key: str,
    ) -> dict[str, Any]:
        """Change a subscription and answer Stripe's new state of it, raw. `action`: `update`
        (`POST /v1/subscriptions/{id}` with `params`), `cancel` (`DELETE`, now) or `resume`
        (`POST .../resume`, a paused one). One idempotency key per intended change: a retried
        request is applied once."""
        options: stripe.RequestOptions = {"idempotency_key": idempotency_key}
        try:
            async with self.lease(project_id, mode, secret_key) as client:
                subscriptions = client.v1.subscriptions
                if action == "update":
                    typed = cast("stripe.params.SubscriptionUpdateParams", params)
                    result = await self._with_rate_limit_retries(
                        lambda: subscriptions.update_async(subscription_id, typed, options)
                    )
                elif action == "cancel":
                    result = await self._with_rate_limit_retries(
                        lambda: subscriptions.cancel_async(subscription_id, {}, options)
                    )
                elif action == "resume":
                    result = await self._with_rate_limit_retries(
                        lambda: subscriptions.resume_async(subscription_id, {}, options)
                    )
                else:
                    raise ValueError(f"unknown subscription action {action!r}")
        except stripe.StripeError as exc:
            raise map_stripe_error(exc) from exc
        return result.to_dict()

    async def create_portal_session(
        self,
        project_id: uuid.UUID,
        mode: Mode,
        secret_key: str,
        *,
        customer: str,
        return_url: str,
    ) -> str:
        """A billing-portal session for the customer; its (short-lived) URL."""
        params: stripe.params.billing_portal.SessionCreateParams = {
            "customer": customer,
            "return_url": return_url,
        }
        try:
            async with self.lease(project_id, mode, secret_key) as client:
                session = await self._with_rate_limit_retries(
                    lambda: client.v1.billing_portal.sessions.create_async(params)
                )
        except stripe.StripeError as exc:
            raise map_stripe_error(exc) from exc
        return str(session.url)

    async def send_meter_event(
        self,
        project_id: uuid.UUID,
        mode: Mode,
        secret_key: str,
        *,
        event_name: str,
        customer: str,
        value: float,
        identifier: str,
        timestamp: int,
    ) -> None:
        """`POST /v1/billing/meter_events`: Stripe counts an `identifier` once (within at
        least 24 hours), so a retried send is never counted twice."""
        amount = str(int(value)) if float(value).is_integer() else repr(float(value))
        params: stripe.params.billing.MeterEventCreateParams = {
            "event_name": event_name,
            "payload": {"stripe_customer_id": customer, "value": amount},
            "identifier": identifier,
            "timestamp": timestamp,
        }
        try:
            async with self.lease(project_id, mode, secret_key) as client:
                meter_events = client.v1.billing.meter_events
                await self._with_rate_limit_retries(lambda: meter_events.create_async(params))
        except stripe.StripeError as exc:
            raise map_stripe_error(exc) from exc

    async def _with_rate_limit_retries(self, call: Callable[[], Awaitable[T]]) -> T:
        """The SDK retries connection errors, 409 and 5xx itself; Stripe's 429s are retried
        here, with exponential backoff. Callers of POSTs pass an explicit idempotency key so a
        retried write is applied once."""
        attempt = 0
        while True:
            try:
                return await call()
            except stripe.RateLimitError:
                if attempt >= self.max_network_retries:
                    raise
                await asyncio.sleep(self.rate_limit_backoff * (2**attempt))
                attempt += 1

    async def close(self) -> None:
        clients = [*self._clients.values(), *self._retired]
        self._clients.clear()
        self._retired.clear()
        for cached in clients:
            await cached.http_client.close_async()  # type: ignore[no-untyped-call]


WEBHOOK_TOLERANCE_SECONDS = 300  # Stripe's own default: an older signature is a replay


class WebhookSignatureInvalid(BillwardenError):
    code = "STRIPE_SIGNATURE_INVALID"
    status_code = 400


def verify_webhook_signature(payload: bytes, header: str, secrets: Sequence[str]) -> None:
    """Check `Stripe-Signature` over the raw body against any of the signing secrets (several
    while rotating), at most WEBHOOK_TOLERANCE_SECONDS old; raises WebhookSignatureInvalid."""
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise WebhookSignatureInvalid("The body is not UTF-8, so no signature matches it.") from exc
    if not header.isascii():  # the SDK's digest comparison raises TypeError on such text
        raise WebhookSignatureInvalid(
            "The Stripe-Signature header is not ASCII, so it does not verify."
        )
    reason = "The project has no webhook signing secret for this mode."
    for secret in secrets:
        try:
            stripe.WebhookSignature.verify_header(
                text, header, secret, tolerance=WEBHOOK_TOLERANCE_SECONDS
            )
        except stripe.SignatureVerificationError as exc:
            reason = str(exc.user_message or exc)
            continue
        return
    raise WebhookSignatureInvalid(f"The Stripe-Signature header does not verify: {reason}")
