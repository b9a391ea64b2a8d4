"""How the chaos run talks to its processes, as a tenant app and Stripe's own tools would: to the
billwarden servers in turn, retrying a refused connection or a 5xx on the other one, and to the
emulator (Stripe) with an idempotency key per intended change, retrying its injected 500s and
429s. Every retry is counted: they are the run's figures."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import httpx
import jwt
import stripe

T = TypeVar("T")
GIVE_UP_SECONDS = 180.0
API = "/api/v1/payments/stripe"


class DriverError(RuntimeError):
    """billwarden or the emulator answered what no retry can change (a 4xx not expected)."""


def _backoff(attempt: int) -> float:
    return float(min(2.0, 0.1 * 2**attempt))


class Billwarden:
    """The tenant app's calls to billwarden: each to the next server in turn."""

    def __init__(self, urls: Sequence[str], project_id: str, end_user_secret: str) -> None:
        self.clients = [
            httpx.AsyncClient(base_url=url, timeout=60, trust_env=False) for url in urls
        ]
        self.project_id = project_id
        self.end_user_secret = end_user_secret
        self.turn = 0
        self.retried: Counter[str] = Counter()  # by cause: "refused", "503", "502", ...
        self.calls = 0

    async def aclose(self) -> None:
        for client in self.clients:
            await client.aclose()

    def token(self, subject: str) -> dict[str, str]:
        claims = {
            "sub": subject,
            "project_id": self.project_id,
            "mode": "test",
            "email": f"{subject}@example.test",
            "exp": int(time.time()) + 3600,
        }
        return {"Authorization": f"Bearer {jwt.encode(claims, self.end_user_secret, 'HS256')}"}

    async def call(
        self,
        method: str,
        path: str,
        subject: str,
        body: dict[str, Any] | None = None,
        *,
        answers: tuple[int, ...] = (),
    ) -> httpx.Response:
        """The answer once it is a 2xx or one of `answers` (self-service's 404 and 409 are
        answers: the change does not apply to the subscriptions as they are now); a refused
        connection or a 5xx is retried."""
        self.calls += 1
        deadline = time.monotonic() + GIVE_UP_SECONDS
        attempt = 0
        while True:
            client = self.clients[self.turn % len(self.clients)]
            self.turn += 1
            try:
                answer = await client.request(
                    method, f"{API}{path}", json=body, headers=self.token(subject)
                )
            except httpx.TransportError as error:
                cause = f"connection: {type(error).__name__}"
            else:
                if answer.status_code < 300 or answer.status_code in answers:
                    return answer
                if answer.status_code < 500:
                    raise DriverError(
                        f"{method} {path} answered {answer.status_code}: {answer.text}"
                    )
                cause = str(answer.status_code)
            self.retried[cause] += 1
            if time.monotonic() > deadline:
                raise DriverError(f"{method} {path}: still failing after {GIVE_UP_SECONDS:.0f} s")
            await asyncio.sleep(_backoff(attempt))
            attempt += 1


class Emulator:
    """The Stripe account in the emulator: its `/_emulator/` helpers (never faulted), raw `/v1`
    reads and the SDK's writes, both retried through injected faults."""

    def __init__(self, url: str, secret_key: str) -> None:
        self.url = url
        headers = {"Authorization": f"Bearer {secret_key}"}
        self.http = httpx.AsyncClient(base_url=url, headers=headers, timeout=60, trust_env=False)
        self.stripe = stripe.StripeClient(
            secret_key,
            base_addresses={"api": url},
            max_network_retries=0,  # retried below, each injected fault counted
            http_client=stripe.HTTPXClient(),
        )
        self.faults_seen: Counter[int] = Counter()  # injected faults the driver itself met

    async def aclose(self) -> None:
        await self.http.aclose()

    async def helper(self, path: str, **body: Any) -> dict[str, Any]:
        answer = await self.http.post(path, json=body)
        if answer.status_code != 200:
            raise DriverError(f"POST {path} answered {answer.status_code}: {answer.text}")
        result: dict[str, Any] = answer.json()
        return result

    async def get(self, path: str, **params: Any) -> dict[str, Any]:
        attempt = 0
        while True:
            answer = await self.http.get(path, params=params)
            if answer.status_code == 200:
                result: dict[str, Any] = answer.json()
                return result
            if answer.status_code not in (429, 500) or attempt > 20:
                raise DriverError(f"GET {path} answered {answer.status_code}: {answer.text}")
            if path.startswith("/v1/"):
                self.faults_seen[answer.status_code] += 1
            await asyncio.sleep(_backoff(attempt))
            attempt += 1

    async def list_all(self, path: str, **params: Any) -> list[dict[str, Any]]:
        """Every object of a `/v1` list (all pages), newest first."""
        found: list[dict[str, Any]] = []
        query: dict[str, Any] = {"limit": 100, **params}
        while True:
            page = await self.get(path, **query)
            found.extend(page["data"])
            if not page["has_more"]:
                return found
            query["starting_after"] = page["data"][-1]["id"]

    async def write(self, call: Callable[[stripe.RequestOptions], Awaitable[T]]) -> T:
        """An SDK write, retried through injected 500s and 429s with one idempotency key."""
        options: stripe.RequestOptions = {"idempotency_key": f"chaos-{uuid.uuid4().hex}"}
        attempt = 0
        while True:
            try:
                return await call(options)
            except (stripe.RateLimitError, stripe.APIError) as error:
                if error.http_status not in (429, 500) or attempt > 20:
                    raise
                self.faults_seen[error.http_status] += 1
            await asyncio.sleep(_backoff(attempt))
            attempt += 1
