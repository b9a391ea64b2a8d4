"""A one-app team's billwarden, configured from the environment only (single-tenant mode), as a
team moving from one of the seeds runs it: `STRIPE_SECRET_KEY`, `STRIPE_WEBHOOK_SECRET`,
`STRIPE_ALLOWED_PRICE_IDS`, `BILLWARDEN_CATALOG` and `BILLWARDEN_END_USER_SECRET`, served over
HTTP against the emulator, whose webhook endpoint points at the seed's own unscoped webhook path.

End users' tokens are the app's own: HS256 with the shared secret and no `project_id` claim.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt
import orjson
import stripe
from pydantic import SecretStr
from sqlalchemy import select

from billwarden.app import create_app
from billwarden.config import Settings
from billwarden.projects.models import Project, ProjectMember, ProjectRole
from billwarden_emulator.testing import serving
from tests.checkout.factories import catalog_document, make_prices
from tests.conftest import Scratch
from tests.factories import Factories

END_USER_SECRET = "app-session-secret-0123456789abcdef0123456789"


@dataclass
class SingleTenant:
    scratch: Scratch
    project_id: uuid.UUID
    stripe_key: str
    emulator_url: str
    url: str
    http: httpx.AsyncClient
    stripe: stripe.StripeClient
    prices: dict[str, str]
    webhook_secret: str
    settings: Settings

    def token(
        self,
        sub: str,
        *,
        email: str | None = None,
        organization: str | None = None,
        roles: str | list[str] | None = None,
        secret: str = END_USER_SECRET,
        **claims: Any,
    ) -> str:
        """A token as the team's app signs it: no project_id, the shared secret."""
        body: dict[str, Any] = {"sub": sub, "exp": int(time.time()) + 600, **claims}
        if email is not None:
            body["email"] = email
        if organization is not None:
            body["organization_id"] = organization
        if roles is not None:
            body["role"] = roles
        return jwt.encode(body, secret, algorithm="HS256")

    def bearer(self, token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    async def pay(self, session_id: str, outcome: str = "paid") -> dict[str, Any]:
        """Complete a checkout in the emulator as the customer would on Stripe's page."""
        async with httpx.AsyncClient(base_url=self.emulator_url) as client:
            answer = await client.post(
                f"/_emulator/checkout/sessions/{session_id}/complete",
                json={"outcome": outcome},
                headers={"Authorization": f"Bearer {self.stripe_key}"},
            )
        assert answer.status_code == 200, answer.text
        result: dict[str, Any] = answer.json()
        return result

    async def eventually(
        self, read: Callable[[], Any], done: Callable[[Any], bool], *, within: float = 10.0
    ) -> Any:
        """`await read()` once `done` holds for its answer (webhooks arrive asynchronously)."""
        deadline = time.monotonic() + within
        while True:
            answer = await read()
            if done(answer):
                return answer
            assert time.monotonic() < deadline, answer
            await asyncio.sleep(0.05)

    async def console_admin(self, made: Callable[[Factories], Any] | None = None) -> str:
        """A console user who administers the single-tenant project: their developer token."""

        async def build(factories: Factories) -> dict[str, str]:
            user = await factories.people.user()
            factories.people.session.add(
                ProjectMember(project_id=self.project_id, user_id=user.id, role=ProjectRole.ADMIN)
            )
            await factories.people.session.flush()
            return factories.people.bearer(user)

        headers = await self.scratch.setup(build)
        return headers["Authorization"].removeprefix("Bearer ")


@asynccontextmanager
async def single_tenant(
    scratch: Scratch,
    emulator_url: str,
    tmp_path: Path,
    *,
    webhook_path: str = "/api/stripe/webhook",
    allowed_prices: list[str] | Callable[[dict[str, str]], list[str]] | None = None,
    **settings: Any,
) -> AsyncIterator[SingleTenant]:
    """billwarden on `scratch`'s database with only the environment a one-app team sets; the
    emulator's webhook endpoint delivers to `webhook_path`. `allowed_prices` is
    STRIPE_ALLOWED_PRICE_IDS, or a function of the prices made (`prices["outside_catalog"]` is a
    real one the catalog does not sell). Keyword arguments override settings
    (`end_user_admin_roles=["OWNER", "ADMIN"]`, `end_user_cookie="session"`, ...)."""
    key = f"sk_test_{uuid.uuid4().hex}"
    client = stripe.StripeClient(key, base_addresses={"api": emulator_url})
    prices = make_prices(client)
    extra = client.v1.products.create({"name": "Pay as you go"})
    prices["outside_catalog"] = client.v1.prices.create(
        {"product": extra.id, "unit_amount": 700, "currency": "usd"}
    ).id
    if callable(allowed_prices):
        allowed_prices = allowed_prices(prices)
    endpoint = client.v1.webhook_endpoints.create(
        {"url": "http://127.0.0.1:9/not-yet", "enabled_events": ["*"]}
    )
    assert endpoint.secret is not None
    catalog = tmp_path / "catalog.json"
    catalog.write_bytes(orjson.dumps(catalog_document(prices)))
    served: Settings = scratch.settings.model_copy(
        update={
            "stripe_api_base": emulator_url,
            "worker_poll_seconds": 0.5,
            "single_tenant_secret_key": SecretStr(key),
            "single_tenant_webhook_secrets": [SecretStr(endpoint.secret)],
            "single_tenant_allowed_price_ids": (
                allowed_prices if allowed_prices is not None else []
            ),
            "catalog": catalog,
            "end_user_secret": SecretStr(END_USER_SECRET),
            **settings,
        }
    )
    with serving(create_app(served, configure_logs=False)) as url:  # start-up makes the project
        client.v1.webhook_endpoints.update(endpoint.id, {"url": f"{url}{webhook_path}"})
        async with scratch.session() as session:
            project = await session.scalar(
                select(Project).where(Project.slug == served.single_tenant_project_slug)
            )
        assert project is not None
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            yield SingleTenant(
                scratch,
                project.id,
                key,
                emulator_url,
                url,
                http,
                client,
                prices,
                endpoint.secret,
                served,
            )
