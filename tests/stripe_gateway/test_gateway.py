"""The gateway against the emulator over HTTP: credential checks and error mapping."""

from __future__ import annotations

import socket
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
import stripe

from billwarden.core.modes import Mode
from billwarden.stripe_gateway import STRIPE_API_VERSION, StripeGateway, StripeGatewayError
from billwarden_emulator import API_VERSION, EmulatorConfig
from tests.emulator_helpers import emulator_helper

PROJECT = uuid.uuid4()


@pytest.fixture
async def gateway(emulator_url: str) -> AsyncIterator[StripeGateway]:
    stripe_gateway = StripeGateway(api_base=emulator_url, max_network_retries=0)
    yield stripe_gateway
    await stripe_gateway.close()


def new_key(prefix: str = "sk_test_") -> str:
    return f"{prefix}{uuid.uuid4().hex}"


class TestCredentialCheck:
    async def test_accepted_test_key_is_valid_and_not_live(self, gateway: StripeGateway) -> None:
        check = await gateway.check_credentials(PROJECT, Mode.TEST, new_key())
        assert check.valid is True
        assert check.livemode is False
        assert check.error is None

    async def test_live_key_reports_livemode(self, gateway: StripeGateway) -> None:
        check = await gateway.check_credentials(PROJECT, Mode.LIVE, new_key("sk_live_"))
        assert check.valid is True and check.livemode is True

    async def test_revoked_key_is_invalid_with_stripes_message(
        self, gateway: StripeGateway, emulator_url: str
    ) -> None:
        key = new_key()
        await emulator_helper(emulator_url, key, "/_emulator/keys/revoke")
        check = await gateway.check_credentials(PROJECT, Mode.TEST, key)
        assert check.valid is False
        assert check.error and "api key" in check.error.lower()

    async def test_malformed_key_is_invalid(self, gateway: StripeGateway) -> None:
        check = await gateway.check_credentials(PROJECT, Mode.TEST, "sk_test_not a key!")
        assert check.valid is False and check.error


class TestErrorMapping:
    async def test_stripe_outage_is_a_502(self, gateway: StripeGateway, emulator_url: str) -> None:
        key = new_key()
        await emulator_helper(
            emulator_url,
            key,
            "/_emulator/faults",
            json={"requests": [{"path": "/v1/balance", "status": 500, "count": 1}]},
        )
        with pytest.raises(StripeGatewayError) as raised:
            await gateway.check_credentials(PROJECT, Mode.TEST, key)
        assert raised.value.status_code == 502
        assert raised.value.code == "STRIPE_ERROR"

    async def test_retries_ride_over_a_transient_429(self, emulator_url: str) -> None:
        key = new_key()
        await emulator_helper(
            emulator_url,
            key,
            "/_emulator/faults",
            json={"requests": [{"path": "/v1/balance", "status": 429, "count": 1}]},
        )
        retrying = StripeGateway(
            api_base=emulator_url, max_network_retries=2, rate_limit_backoff=0.01
        )
        try:
            check = await retrying.check_credentials(PROJECT, Mode.TEST, key)
        finally:
            await retrying.close()
        assert check.valid is True

    async def test_unreachable_stripe_is_a_502(self) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            closed_port = sock.getsockname()[1]
        unreachable = StripeGateway(api_base=f"http://127.0.0.1:{closed_port}")
        try:
            with pytest.raises(StripeGatewayError) as raised:
                await unreachable.check_credentials(PROJECT, Mode.TEST, new_key())
        finally:
            await unreachable.close()
        assert raised.value.status_code == 502
        assert "could not be reached" in raised.value.message

    async def test_client_is_rebuilt_when_the_key_changes(self, gateway: StripeGateway) -> None:
        async with gateway.lease(PROJECT, Mode.TEST, new_key()) as first:
            pass
        async with gateway.lease(PROJECT, Mode.TEST, "sk_test_other0000") as second:
            assert second is not first


class TestReplacedKeys:
    async def test_a_replaced_keys_connections_are_closed(self, emulator_url: str) -> None:
        gateway = StripeGateway(api_base=emulator_url, max_network_retries=0)
        try:
            for _ in range(5):  # an admin replacing the key again and again
                check = await gateway.check_credentials(PROJECT, Mode.TEST, new_key())
                assert check.valid
            assert gateway.open_http_clients == 1  # the current key's only
        finally:
            await gateway.close()
        assert gateway.open_http_clients == 0

    async def test_a_call_on_the_replaced_key_completes_then_its_client_closes(
        self, emulator_url: str
    ) -> None:
        gateway = StripeGateway(api_base=emulator_url, max_network_retries=0)
        try:
            async with gateway.lease(PROJECT, Mode.TEST, new_key()) as old:
                async with gateway.lease(PROJECT, Mode.TEST, new_key()):
                    assert gateway.open_http_clients == 2
                balance = await old.v1.balance.retrieve_async()  # a long call on the old key
                assert balance.object == "balance"
            assert gateway.open_http_clients == 1
        finally:
            await gateway.close()


class TestOneApiVersion:
    def test_gateway_pin_is_the_sdk_version_and_the_emulator_default(self) -> None:
        # upgrading the SDK to another API version must be a deliberate change of the pin
        assert stripe.api_version == STRIPE_API_VERSION
        assert API_VERSION == STRIPE_API_VERSION
        assert EmulatorConfig().api_version == STRIPE_API_VERSION

    async def test_emulator_answers_with_the_pinned_version(
        self, gateway: StripeGateway, emulator_url: str
    ) -> None:
        async with httpx.AsyncClient() as http:
            response = await http.get(
                f"{emulator_url}/v1/balance", headers={"Authorization": f"Bearer {new_key()}"}
            )
        assert response.status_code == 200
        assert response.headers["Stripe-Version"] == STRIPE_API_VERSION
