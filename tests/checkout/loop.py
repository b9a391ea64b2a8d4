"""The whole loop over HTTP: a served billwarden (its own engine, embedded worker) on a scratch
database, a project configured against the emulator with a webhook endpoint pointing at it, a
catalog whose prices exist in the emulator, and end users buying through the canonical API."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
import stripe

from billwarden.app import create_app
from billwarden.config import Settings
from billwarden.core.modes import Mode
from billwarden.db.engine import create_sessionmaker
from billwarden.db.unit_of_work import unit_of_work
from billwarden.projects.stripe_config import StripeConfigService
from billwarden_emulator.testing import serving
from tests.catalog.factories import Catalogs
from tests.checkout.factories import catalog_document, make_prices
from tests.conftest import Scratch
from tests.factories import Factories
from tests.projects.factories import ProjectWithSecret


@dataclass
class Loop:
    scratch: Scratch
    project: ProjectWithSecret
    stripe_key: str
    emulator_url: str
    url: str
    http: httpx.AsyncClient
    stripe: stripe.StripeClient
    prices: dict[str, str]
    webhook_secret: str
    # the project owner's developer token (admin routes)
    owner: dict[str, str]

    def token(self, sub: str, *, email: str | None = None, organization: str | None = None) -> str:
        claims: dict[str, Any] = {
            "sub": sub,
            "project_id": str(self.project.id),
            "mode": "test",
            "exp": int(time.time()) + 600,
        }
        if email:
            claims["email"] = email
        if organization:
            claims["organization_id"] = organization
        return jwt.encode(claims, self.project.end_user_secret, algorithm="HS256")

    def bearer(self, token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    async def emulator(self, path: str, **body: Any) -> dict[str, Any]:
        async with httpx.AsyncClient(base_url=self.emulator_url) as client:
            answer = await client.post(
                path, json=body, headers={"Authorization": f"Bearer {self.stripe_key}"}
            )
        assert answer.status_code == 200, answer.text
        result: dict[str, Any] = answer.json()
        return result

    async def checkout(self, token: str, **body: Any) -> str:
        answer = await self.http.post(
            "/api/v1/payments/stripe/checkout-session", json=body, headers=self.bearer(token)
        )
        assert answer.status_code == 201, answer.text
        session_id: str = answer.json()["sessionId"]
        return session_id

    async def pay(self, session_id: str, outcome: str = "paid") -> dict[str, Any]:
        return await self.emulator(
            f"/_emulator/checkout/sessions/{session_id}/complete", outcome=outcome
        )

    async def entitlement(self, token: str) -> dict[str, Any]:
        answer = await self.http.get("/api/v1/entitlements/me", headers=self.bearer(token))
        assert answer.status_code == 200, answer.text
        result: dict[str, Any] = answer.json()
        return result

    async def eventually(
        self, token: str, done: Callable[[dict[str, Any]], bool], *, within: float = 10.0
    ) -> dict[str, Any]:
        """The entitlement once `done` holds for it (webhooks arrive asynchronously)."""
        deadline = time.monotonic() + within
        while True:
            answer = await self.entitlement(token)
            if done(answer):
                return answer
            assert time.monotonic() < deadline, answer
            await asyncio.sleep(0.05)

    def clock(self) -> str:
        clock = self.stripe.v1.test_helpers.test_clocks.create({"frozen_time": int(time.time())})
        return clock.id

    async def advance(self, clock_id: str, seconds: int) -> None:
        await self.emulator(f"/_emulator/test_clocks/{clock_id}/advance", seconds=seconds)

    async def customer_of(self, session_id: str) -> str:
        customer = self.stripe.v1.checkout.sessions.retrieve(session_id).customer
        assert isinstance(customer, str)
        return customer


@asynccontextmanager
async def billing_loop(scratch: Scratch, emulator_url: str, **settings: Any) -> AsyncIterator[Loop]:
    """billwarden served on `scratch`'s database, wired to the emulator as Stripe would be."""
    key = f"sk_test_{uuid.uuid4().hex}"
    served: Settings = scratch.settings.model_copy(
        update={"stripe_api_base": emulator_url, "worker_poll_seconds": 0.5, **settings}
    )
    client = stripe.StripeClient(key, base_addresses={"api": emulator_url})
    prices = make_prices(client)

    async def build(made: Factories) -> tuple[ProjectWithSecret, dict[str, str]]:
        owner = await made.people.user()
        project = await made.tenants.project(owner)
        await Catalogs(made.people.session).load(project.id, catalog_document(prices))
        return project, made.people.bearer(owner)

    project, owner = await scratch.setup(build)
    with serving(create_app(served, configure_logs=False)) as url:
        endpoint = client.v1.webhook_endpoints.create(
            {
                "url": f"{url}/api/v1/payments/stripe/webhooks/{project.id}/test",
                "enabled_events": ["*"],
            }
        )
        assert endpoint.secret is not None
        # the served app writes too now (its worker): a writer's transaction, as billwarden's own
        async with unit_of_work(create_sessionmaker(scratch.engine)) as session:
            await StripeConfigService(session, scratch.secret_box).set_stripe_config(
                project.project, Mode.TEST, secret_key=key, webhook_secrets=[endpoint.secret]
            )
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            yield Loop(
                scratch,
                project,
                key,
                emulator_url,
                url,
                http,
                client,
                prices,
                endpoint.secret,
                owner,
            )
