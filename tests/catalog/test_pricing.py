"""Prices: `lookup:` keys resolved through the gateway, `catalog push` creating what Stripe lacks
(once), and the allowlist a checkout sells from. Against the emulator over HTTP."""

from __future__ import annotations

import tomllib
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import stripe
from sqlalchemy.ext.asyncio import AsyncSession

from billwarden.catalog.exceptions import PriceCannotBeCreated, PriceMismatch
from billwarden.catalog.service import CatalogPricing, CatalogService
from billwarden.core.modes import Mode
from billwarden.stripe_gateway import StripeGateway
from tests.catalog.factories import Catalogs
from tests.identity.factories import People
from tests.projects.factories import ProjectWithSecret, Tenants

SAMPLE = tomllib.loads((Path(__file__).parents[2] / "examples" / "catalog.toml").read_text())


@pytest.fixture
async def gateway(emulator_url: str) -> AsyncIterator[StripeGateway]:
    stripe_gateway = StripeGateway(api_base=emulator_url, max_network_retries=0)
    yield stripe_gateway
    await stripe_gateway.close()


@pytest.fixture
async def project(people: People, tenants: Tenants) -> ProjectWithSecret:
    return await tenants.project(await people.user())


def stripe_client(emulator_url: str, key: str) -> stripe.StripeClient:
    return stripe.StripeClient(key, base_addresses={"api": emulator_url})


class TestPush:
    async def test_push_creates_every_missing_price_once(
        self,
        session: AsyncSession,
        gateway: StripeGateway,
        catalogs: Catalogs,
        project: ProjectWithSecret,
        emulator_url: str,
    ) -> None:
        key = f"sk_test_{uuid.uuid4().hex}"
        await catalogs.load(project.id, SAMPLE)
        pricing = CatalogPricing(session, gateway, project.id, Mode.TEST, key)
        first = await pricing.push()
        assert sorted(first.created) == [
            "api_pro",
            "enterprise",
            "premium_monthly",
            "premium_yearly",
        ]
        assert first.found == {}
        again = await pricing.push()
        assert again.created == {}
        assert again.found == first.created
        prices = stripe_client(emulator_url, key).v1.prices.list({"limit": 100}).data
        assert len(prices) == 4
        monthly = next(price for price in prices if price.lookup_key == "premium_monthly")
        assert monthly.unit_amount == 900 and monthly.currency == "usd"
        assert monthly.recurring is not None and monthly.recurring.interval == "month"
        resolved = await CatalogService(session).resolved_prices(project.id, Mode.TEST)
        assert resolved == first.created

    async def test_existing_prices_are_found_not_created(
        self,
        session: AsyncSession,
        gateway: StripeGateway,
        catalogs: Catalogs,
        project: ProjectWithSecret,
        emulator_url: str,
    ) -> None:
        key = f"sk_test_{uuid.uuid4().hex}"
        client = stripe_client(emulator_url, key)
        product = client.v1.products.create({"name": "Premium"})
        made = client.v1.prices.create(
            {
                "product": product.id,
                "unit_amount": 900,
                "currency": "usd",
                "recurring": {"interval": "month"},
                "lookup_key": "premium_monthly",
            }
        )
        await catalogs.load(project.id, SAMPLE)
        result = await CatalogPricing(session, gateway, project.id, Mode.TEST, key).push()
        assert result.found == {"premium_monthly": made.id}
        assert "premium_monthly" not in result.created

    async def test_a_plan_without_amount_cannot_be_created(
        self,
        session: AsyncSession,
        gateway: StripeGateway,
        catalogs: Catalogs,
        project: ProjectWithSecret,
    ) -> None:
        document: dict[str, Any] = {
            "families": {"membership": {}},
            "plans": {"gold": {"family": "membership", "prices": {"test": "lookup:gold"}}},
        }
        await catalogs.load(project.id, document)
        pricing = CatalogPricing(
            session, gateway, project.id, Mode.TEST, f"sk_test_{uuid.uuid4().hex}"
        )
        with pytest.raises(PriceCannotBeCreated) as refused:
            await pricing.push()
        assert refused.value.code == "CATALOG_PRICE_UNDEFINED"
        assert refused.value.details == {"plans": ["plans.gold"]}


class TestAllowlist:
    async def test_allowlist_is_the_catalogs_prices_in_the_mode_plus_extra(
        self, session: AsyncSession, catalogs: Catalogs, project: ProjectWithSecret
    ) -> None:
        document = {
            "families": {"membership": {}},
            "plans": {
                "monthly": {
                    "family": "membership",
                    "prices": {"test": "price_testmonthly", "live": "price_livemonthly"},
                },
                "yearly": {"family": "membership", "prices": {"test": "lookup:yearly"}},
            },
        }
        loaded = await catalogs.load(project.id, document)
        service = CatalogService(session)
        assert await service.allowed_price_ids(project.id, Mode.TEST) == {"price_testmonthly"}
        await service.record_price(project.id, Mode.TEST, "yearly", "price_resolvedyearly")
        allowed = await service.allowed_price_ids(project.id, Mode.TEST, ["price_env"])
        assert allowed == {"price_testmonthly", "price_resolvedyearly", "price_env"}
        assert await service.allowed_price_ids(project.id, Mode.LIVE) == {"price_livemonthly"}
        mapping = await service.price_map(project.id, Mode.TEST, loaded.document)
        assert mapping == {"price_testmonthly": "monthly", "price_resolvedyearly": "yearly"}

    async def test_no_catalog_allows_only_the_extra_prices(
        self, session: AsyncSession, project: ProjectWithSecret
    ) -> None:
        allowed = await CatalogService(session).allowed_price_ids(project.id, Mode.TEST, ["p1"])
        assert allowed == {"p1"}


class TestPushRefusals:
    async def test_a_price_in_stripe_that_charges_otherwise_stops_the_push(
        self,
        session: AsyncSession,
        gateway: StripeGateway,
        catalogs: Catalogs,
        project: ProjectWithSecret,
        emulator_url: str,
    ) -> None:
        key = f"sk_test_{uuid.uuid4().hex}"
        client = stripe_client(emulator_url, key)
        product = client.v1.products.create({"name": "Premium"})
        client.v1.prices.create(
            {
                "product": product.id,
                "unit_amount": 100,
                "currency": "usd",
                "recurring": {"interval": "month"},
                "lookup_key": "premium_monthly",
            }
        )
        await catalogs.load(project.id, SAMPLE)
        with pytest.raises(PriceMismatch) as refused:
            await CatalogPricing(session, gateway, project.id, Mode.TEST, key).push()
        assert refused.value.code == "CATALOG_PRICE_MISMATCH"
        assert "plans.premium_monthly: Stripe's premium_monthly is 100 usd per month" in (
            refused.value.message
        )
        assert len(client.v1.prices.list({"limit": 100}).data) == 1  # nothing created

    async def test_a_200_character_lookup_key_can_be_pushed(
        self,
        session: AsyncSession,
        gateway: StripeGateway,
        catalogs: Catalogs,
        project: ProjectWithSecret,
    ) -> None:
        lookup_key = "k" * 200
        document = {
            "families": {"membership": {}},
            "plans": {
                "long": {
                    "family": "membership",
                    "prices": {"test": f"lookup:{lookup_key}"},
                    "amount": 500,
                    "currency": "usd",
                    "interval": "month",
                }
            },
        }
        await catalogs.load(project.id, document)
        pricing = CatalogPricing(
            session, gateway, project.id, Mode.TEST, f"sk_test_{uuid.uuid4().hex}"
        )
        result = await pricing.push()
        assert list(result.created) == [lookup_key]
