"""Fixtures for emulator tests; `emulator_url` itself comes from tests/conftest.py."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest
import stripe


@pytest.fixture
def api_key() -> str:
    """A fresh key, hence a fresh empty account, for every test."""
    return f"sk_test_{uuid.uuid4().hex}"


@pytest.fixture
def client(emulator_url: str, api_key: str) -> stripe.StripeClient:
    return stripe.StripeClient(api_key, base_addresses={"api": emulator_url})


@pytest.fixture
def async_client(emulator_url: str, api_key: str) -> stripe.StripeClient:
    return stripe.StripeClient(
        api_key, base_addresses={"api": emulator_url}, http_client=stripe.HTTPXClient()
    )


@pytest.fixture
def raw(emulator_url: str, api_key: str) -> Iterator[httpx.Client]:
    """Plain HTTP to the emulator with the test's key, for wire-level assertions and helpers."""
    with httpx.Client(
        base_url=emulator_url, headers={"Authorization": f"Bearer {api_key}"}, timeout=10
    ) as http:
        yield http
