"""The emulator's `stripe trigger`: make a running emulator emit one event type, for real.

    result = run_trigger("http://127.0.0.1:12111", "sk_test_...", "checkout.session.completed",
                         metadata={"project": "acme"})

Each trigger makes, over HTTP and form-encoded like the Stripe CLI, the calls a client would make
(the CLI's fixtures: fresh product, price, customer...), so the emulator emits the event together
with those Stripe emits around it and delivers each, signed, to the account's webhook endpoints.
Where the Stripe CLI pays on the hosted checkout page, it completes the session through
`POST /_emulator/checkout/sessions/{id}/complete`. `metadata` goes on the checkout session and
the subscription, so a receiver can tell which of its projects or users an event concerns.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx

SUCCESS_URL = "https://example.com/billwarden/trigger/success"
CANCEL_URL = "https://example.com/billwarden/trigger/cancel"
DESCRIPTION = "(created by billwarden trigger)"

JSONObject = dict[str, Any]


@dataclass(frozen=True)
class TriggerResult:
    """What a trigger did: the event type, the id of its main object, the requests it made."""

    event_type: str
    object_id: str
    requests: list[str]


class TriggerFailed(Exception):
    """The emulator answered one of the trigger's requests with an error, or was unreachable."""

    def __init__(
        self,
        message: str,
        *,
        request: str,
        status: int | None = None,
        code: str | None = None,
        requests: list[str] | None = None,
    ) -> None:
        answer = f"answered {status}" if status is not None else "failed"
        super().__init__(f"{request} {answer}: {message}")
        self.message = message
        self.request = request
        self.status = status
        self.code = code
        self.requests = list(requests or [])


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _form(params: Mapping[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """Stripe's nested form syntax: `metadata[key]`, `line_items[0][price]`."""
    pairs: list[tuple[str, str]] = []
    for key, value in params.items():
        name = f"{prefix}[{key}]" if prefix else key
        if isinstance(value, Mapping):
            pairs.extend(_form(value, name))
        elif isinstance(value, list | tuple):
            for index, item in enumerate(value):
                pairs.extend(_form({str(index): item}, name))
        elif value is not None:
            pairs.append((name, _scalar(value)))
    return pairs


class _Calls:
    """The trigger's HTTP conversation with the emulator, recorded as "METHOD path"."""

    def __init__(self, http: httpx.Client) -> None:
        self.http = http
        self.made: list[str] = []

    def post(self, path: str, params: Mapping[str, Any] | None = None) -> JSONObject:
        return self._send("POST", path, params or {})

    def delete(self, path: str) -> JSONObject:
        return self._send("DELETE", path, {})

    def _send(self, method: str, path: str, params: Mapping[str, Any]) -> JSONObject:
        request = f"{method} {path}"
        self.made.append(request)
        try:
            response = self.http.request(
                method,
                path,
                content=urlencode(_form(params)),
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            )
        except httpx.HTTPError as error:
            raise TriggerFailed(
                f"could not reach the emulator at {self.http.base_url}: {error!r}",
                request=request,
                requests=self.made,
            ) from error
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.is_error or not isinstance(body, dict):
            error_body = body.get("error") if isinstance(body, dict) else None
            if isinstance(error_body, dict):
                message = str(error_body.get("message") or "no message")
                code = error_body.get("code")
            else:
                message, code = response.text[:500] or "empty answer", None
            raise TriggerFailed(
                message,
                request=request,
                status=response.status_code,
                code=None if code is None else str(code),
                requests=self.made,
            )
        return body


def _monthly_price(calls: _Calls) -> str:
    product = calls.post("/v1/products", {"name": "myproduct", "description": DESCRIPTION})
    price = calls.post(
        "/v1/prices",
        {
            "product": product["id"],
            "unit_amount": 1500,
            "currency": "usd",
            "recurring": {"interval": "month"},
        },
    )
    return str(price["id"])


def _customer(calls: _Calls, payment_method: str) -> str:
    """A customer paying with one of Stripe's test payment methods."""
    customer = calls.post(
        "/v1/customers",
        {
            "description": DESCRIPTION,
            "payment_method": payment_method,
            "invoice_settings": {"default_payment_method": payment_method},
        },
    )
    return str(customer["id"])


def _subscription(calls: _Calls, metadata: dict[str, str], *, payment_method: str) -> JSONObject:
    customer = _customer(calls, payment_method)
    price = _monthly_price(calls)
    return calls.post(
        "/v1/subscriptions",
        {"customer": customer, "items": [{"price": price}], "metadata": metadata},
    )


def _checkout_session_completed(calls: _Calls, metadata: dict[str, str]) -> str:
    price = _monthly_price(calls)
    session = calls.post(
        "/v1/checkout/sessions",
        {
            "mode": "subscription",
            "line_items": [{"price": price, "quantity": 1}],
            "success_url": SUCCESS_URL,
            "cancel_url": CANCEL_URL,
            "metadata": metadata,
            "subscription_data": {"metadata": metadata},
        },
    )
    session_id = str(session["id"])
    calls.post(
        f"/_emulator/checkout/sessions/{session_id}/complete",
        {"outcome": "paid", "email": "stripe@example.com"},
    )
    return session_id


def _subscription_updated(calls: _Calls, metadata: dict[str, str]) -> str:
    subscription_id = str(_subscription(calls, metadata, payment_method="pm_card_visa")["id"])
    calls.post(f"/v1/subscriptions/{subscription_id}", {"cancel_at_period_end": True})
    return subscription_id


def _subscription_deleted(calls: _Calls, metadata: dict[str, str]) -> str:
    subscription_id = str(_subscription(calls, metadata, payment_method="pm_card_visa")["id"])
    calls.delete(f"/v1/subscriptions/{subscription_id}")
    return subscription_id


def _invoice_payment_failed(calls: _Calls, metadata: dict[str, str]) -> str:
    # Stripe's test method that attaches but declines every charge: the first invoice fails
    subscription = _subscription(calls, metadata, payment_method="pm_card_chargeDeclined")
    return str(subscription["latest_invoice"])


_BUILDERS: dict[str, Callable[[_Calls, dict[str, str]], str]] = {
    "checkout.session.completed": _checkout_session_completed,
    "customer.subscription.updated": _subscription_updated,
    "customer.subscription.deleted": _subscription_deleted,
    "invoice.payment_failed": _invoice_payment_failed,
}
TRIGGERS: tuple[str, ...] = tuple(_BUILDERS)


def run_trigger(
    base_url: str,
    secret_key: str,
    event_type: str,
    *,
    metadata: dict[str, str] | None = None,
    timeout: float = 10.0,
) -> TriggerResult:
    """Make the emulator at `base_url` emit `event_type` on `secret_key`'s account.

    Raises ValueError for an event type not in `TRIGGERS` (before any request) and TriggerFailed
    when the emulator refuses a request (its message kept) or cannot be reached.
    """
    build = _BUILDERS.get(event_type)
    if build is None:
        raise ValueError(f"Unknown trigger event {event_type!r}; supported: {', '.join(TRIGGERS)}")
    headers = {"Authorization": f"Bearer {secret_key}", "User-Agent": "billwarden-trigger"}
    with httpx.Client(base_url=base_url.rstrip("/"), headers=headers, timeout=timeout) as http:
        calls = _Calls(http)
        object_id = build(calls, dict(metadata or {}))
    return TriggerResult(event_type=event_type, object_id=object_id, requests=list(calls.made))
