"""The usage tests' project: the checkout tests' catalog with two metrics."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from billwarden.config import Settings
from billwarden.crypto import SecretBox
from tests.catalog.factories import Catalogs
from tests.checkout.factories import Shop, Shops, catalog_document


@pytest.fixture
async def shop(session: AsyncSession, secret_box: SecretBox, settings: Settings) -> Shop:
    """A project selling the checkout tests' catalog, with two metrics: api_calls (the free
    tier's quota: 100 a day) and tokens_issued."""
    opened = await Shops(session, secret_box, settings).open()
    catalog = catalog_document(opened.prices)
    catalog["metrics"] = {
        "api_calls": {"description": "calls to the app's API"},
        "tokens_issued": {},
    }
    await Catalogs(session).load(opened.project.id, catalog)
    return opened
