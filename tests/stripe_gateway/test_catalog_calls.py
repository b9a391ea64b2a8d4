"""The gateway's catalog calls against the emulator over HTTP: find prices by lookup key, create
a product and its price idempotently, and map Stripe's errors."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
import stripe

from billwarden.core.modes import Mode
from billwarden.stripe_gateway import StripeGateway, StripeGatewayError, StripePrice
from tests.emulator_helpers import emulator_helper

PROJECT = uuid.uuid4()


@pytest.fixture
async def gateway(emulator_url: str) -> AsyncIterator[StripeGateway]:
    stripe_gateway = StripeGateway(api_base=emulator_url, max_network_retries=0)
    yield stripe_gateway
    await stripe_gateway.close()


@pytest.fixture
def key() -> str:
    """A fresh key: a fresh, empty emulator account."""
    return f"sk_test_{uuid.uuid4().hex}"


@pytest.fixture
async def sdk(emulator_url: str, key: str) -> AsyncIterator[stripe.StripeClient]:
    """A plain SDK client on the same account, to look behind the gateway."""
    http_client = stripe.HTTPXClient()
    yield stripe.StripeClient(key, base_addresses={"api": emulator_url}, http_client=http_client)
    await http_client.close_async()  # type: ignore[no-untyped-call]


async def create(
    gateway: StripeGateway,
    key: str,
    lookup_key: str,
    *,
    amount: int = 1200,
    currency: str = "usd",
    interval: str | None = "month",
    idempotency_key: str | None = None,
) -> StripePrice:
    return await gateway.create_price(
        PROJECT,
        Mode.TEST,
        key,
        lookup_key=lookup_key,
        product_name=f"Plan {lookup_key}",
        amount=amount,
        currency=currency,
        interval=interval,
        idempotency_key=idempotency_key or f"push-{uuid.uuid4().hex}",
    )


class TestCreateThenFind:
    async def test_a_created_price_is_found_by_its_lookup_key(
        self, gateway: StripeGateway, key: str, sdk: stripe.StripeClient
    ) -> None:
        created = await create(gateway, key, "pro_monthly", amount=1900, currency="eur")
        assert created.id.startswith("price_")
        assert created.lookup_key == "pro_monthly"
        assert created.unit_amount == 1900
        assert created.currency == "eur"
        assert created.interval == "month"
        assert created.active is True
        product = await sdk.v1.products.retrieve_async(created.product)
        assert product.name == "Plan pro_monthly"

        found = await gateway.prices_by_lookup_key(PROJECT, Mode.TEST, key, ["pro_monthly"])
        assert found == {"pro_monthly": created}

    async def test_a_one_time_price_has_no_interval(self, gateway: StripeGateway, key: str) -> None:
        created = await create(gateway, key, "setup_fee", amount=5000, interval=None)
        assert created.interval is None
        found = await gateway.prices_by_lookup_key(PROJECT, Mode.TEST, key, ["setup_fee"])
        assert found["setup_fee"] == created
        assert found["setup_fee"].interval is None

    async def test_unknown_lookup_keys_are_absent(self, gateway: StripeGateway, key: str) -> None:
        created = await create(gateway, key, "basic_yearly", interval="year")
        found = await gateway.prices_by_lookup_key(
            PROJECT, Mode.TEST, key, ["nobody_has_this", "basic_yearly", "nor_this"]
        )
        assert found == {"basic_yearly": created}
        assert await gateway.prices_by_lookup_key(PROJECT, Mode.TEST, key, ["nothing"]) == {}
        assert await gateway.prices_by_lookup_key(PROJECT, Mode.TEST, key, []) == {}

    async def test_inactive_prices_are_not_found(
        self, gateway: StripeGateway, key: str, sdk: stripe.StripeClient
    ) -> None:
        created = await create(gateway, key, "legacy")
        await sdk.v1.prices.update_async(created.id, {"active": False})
        assert await gateway.prices_by_lookup_key(PROJECT, Mode.TEST, key, ["legacy"]) == {}

    async def test_25_lookup_keys_are_found_across_batches(
        self, gateway: StripeGateway, key: str
    ) -> None:
        lookup_keys = [f"plan_{n:02d}" for n in range(25)]
        created = {
            lookup_key: await create(gateway, key, lookup_key, amount=100 + n)
            for n, lookup_key in enumerate(lookup_keys)
        }
        asked = [*lookup_keys, "missing_one", "plan_03"]  # an unknown key and a repeat
        found = await gateway.prices_by_lookup_key(PROJECT, Mode.TEST, key, asked)
        assert found == created


class TestIdempotency:
    async def test_the_same_push_twice_creates_one_product_and_one_price(
        self, gateway: StripeGateway, key: str, sdk: stripe.StripeClient
    ) -> None:
        first = await create(gateway, key, "team_monthly", idempotency_key="push-42")
        again = await create(gateway, key, "team_monthly", idempotency_key="push-42")
        assert again == first
        products = await sdk.v1.products.list_async({"limit": 100})
        prices = await sdk.v1.prices.list_async({"limit": 100})
        assert [product.id for product in products.data] == [first.product]
        assert [price.id for price in prices.data] == [first.id]

    async def test_another_push_of_a_taken_lookup_key_is_refused(
        self, gateway: StripeGateway, key: str
    ) -> None:
        await create(gateway, key, "team_monthly")
        with pytest.raises(StripeGatewayError) as raised:
            await create(gateway, key, "team_monthly")  # no transfer_lookup_key
        assert raised.value.status_code == 400
        assert raised.value.details["stripeParam"] == "lookup_key"


class TestErrors:
    async def test_an_invalid_currency_is_stripes_400(
        self, gateway: StripeGateway, key: str
    ) -> None:
        with pytest.raises(StripeGatewayError) as raised:
            await create(gateway, key, "bad_currency", currency="zzz")
        assert raised.value.status_code == 400
        assert raised.value.code == "STRIPE_ERROR"

    async def test_an_invalid_price_is_stripes_400(self, gateway: StripeGateway, key: str) -> None:
        with pytest.raises(StripeGatewayError) as raised:
            await create(gateway, key, "bad_interval", interval="fortnight")
        assert raised.value.status_code == 400
        assert raised.value.code == "STRIPE_ERROR"
        assert raised.value.details["stripeType"] == "invalid_request_error"
        assert raised.value.details["stripeParam"] == "recurring[interval]"

    async def test_a_revoked_key_is_rejected(
        self, gateway: StripeGateway, key: str, emulator_url: str
    ) -> None:
        await emulator_helper(emulator_url, key, "/_emulator/keys/revoke")
        with pytest.raises(StripeGatewayError) as raised:
            await gateway.prices_by_lookup_key(PROJECT, Mode.TEST, key, ["pro_monthly"])
        assert raised.value.code == "STRIPE_CREDENTIALS_REJECTED"
        with pytest.raises(StripeGatewayError) as raised:
            await create(gateway, key, "pro_monthly")
        assert raised.value.code == "STRIPE_CREDENTIALS_REJECTED"

    async def test_a_transient_429_is_retried(self, emulator_url: str, key: str) -> None:
        await emulator_helper(
            emulator_url,
            key,
            "/_emulator/faults",
            json={"requests": [{"path": "/v1/prices", "status": 429, "count": 2}]},
        )
        retrying = StripeGateway(
            api_base=emulator_url, max_network_retries=2, rate_limit_backoff=0.01
        )
        try:
            found = await retrying.prices_by_lookup_key(PROJECT, Mode.TEST, key, ["x"])
            assert found == {}  # the first GET and...
            created = await create(retrying, key, "x")  # ...the price POST rode over a 429
        finally:
            await retrying.close()
        assert created.lookup_key == "x"
