"""A project ready to sell: Stripe configured against the emulator (an account of its own), the
catalog of `tests/checkout/loop.py` with its prices made in that account, a key and a token."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

import jwt
import stripe
from sqlalchemy.ext.asyncio import AsyncSession

from billwarden.config import Settings
from billwarden.core.modes import Mode
from billwarden.crypto import SecretBox
from billwarden.projects.stripe_config import StripeConfigService
from tests.catalog.factories import Catalogs
from tests.identity.factories import People
from tests.projects.factories import ProjectWithSecret, Tenants

MONTHLY = 900


def catalog_document(prices: dict[str, str]) -> dict[str, Any]:
    return {
        "checkout": {"default_purchase_key": "premium_monthly"},
        "families": {"membership": {"primary": True, "cancellable": True}, "api": {}},
        "free": {"features": ["basic"], "quotas": {"api_calls": {"limit": 100, "period": "day"}}},
        "plans": {
            "premium_monthly": {
                "family": "membership",
                "entitlement": "PREMIUM_MONTHLY",
                "role": "premium",
                "features": ["premium", "export"],
                "prices": {"test": prices["premium_monthly"]},
                "quotas": {"api_calls": {"limit": 10000, "period": "day"}},
            },
            "premium_yearly": {
                "family": "membership",
                "entitlement": "PREMIUM_YEARLY",
                "features": ["premium", "export", "yearly"],
                "prices": {"test": prices["premium_yearly"]},
            },
            "api_pro": {
                "family": "api",
                "entitlement": "CUSTOM",
                "features": ["api"],
                "prices": {"test": prices["api_pro"]},
                "quotas": {"api_calls": {"limit": 50000, "period": "day"}},
            },
            **(
                {
                    "premium_plus": {
                        "family": "membership",
                        "entitlement": "CUSTOM",
                        "features": ["premium", "export", "priority"],
                        "prices": {"test": prices["premium_plus"]},
                    }
                }
                if "premium_plus" in prices
                else {}
            ),
            "enterprise": {
                "family": "membership",
                "entitlement": "CUSTOM",
                "self_serve": False,
                "prices": {"test": prices["enterprise"]},
            },
        },
    }


def make_prices(client: stripe.StripeClient) -> dict[str, str]:
    product = client.v1.products.create({"name": "Premium"})
    specs = {
        "premium_monthly": (MONTHLY, "month"),
        "premium_yearly": (9000, "year"),
        "api_pro": (4900, "month"),
        "premium_plus": (1900, "month"),
        "enterprise": (99000, "month"),
    }
    return {
        key: client.v1.prices.create(
            {
                "product": product.id,
                "unit_amount": amount,
                "currency": "usd",
                "recurring": {"interval": interval},
            }
        ).id
        for key, (amount, interval) in specs.items()
    }


@dataclass
class Shop:
    project: ProjectWithSecret
    stripe: stripe.StripeClient
    stripe_key: str
    prices: dict[str, str]
    api_key: str

    def token(self, sub: str, **claims: Any) -> dict[str, str]:
        payload = {
            "sub": sub,
            "project_id": str(self.project.id),
            "mode": "test",
            "exp": int(time.time()) + 600,
            **claims,
        }
        token = jwt.encode(payload, self.project.end_user_secret, algorithm="HS256")
        return {"Authorization": f"Bearer {token}"}

    @property
    def key(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}


@dataclass
class Shops:
    session: AsyncSession
    secret_box: SecretBox
    settings: Settings

    async def open(self, *, catalog: dict[str, Any] | None = None) -> Shop:
        people = People(self.session, self.secret_box, self.settings)
        owner = await people.user()
        project = await Tenants(self.session, self.secret_box, self.settings).project(owner)
        key = f"sk_test_{uuid.uuid4().hex}"
        client = stripe.StripeClient(key, base_addresses={"api": self.settings.stripe_api_base})
        prices = make_prices(client)
        await StripeConfigService(self.session, self.secret_box).set_stripe_config(
            project.project, Mode.TEST, secret_key=key, webhook_secrets=["whsec_shop"]
        )
        await Catalogs(self.session).load(project.id, catalog or catalog_document(prices))
        api_key = await people.api_key(project, owner)
        return Shop(project, client, key, prices, api_key)
