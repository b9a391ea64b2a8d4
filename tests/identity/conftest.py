from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from billwarden.config import Settings
from billwarden.crypto import SecretBox
from tests.identity.actors import Actors, cheap_password_hashing, request_savepoints

__all__ = ["cheap_password_hashing", "request_savepoints"]


@pytest.fixture(autouse=True)
def _identity_defaults(cheap_password_hashing: None, request_savepoints: None) -> None:
    """Test-sized argon2id parameters; a savepoint per request."""


@pytest.fixture
def actors(session: AsyncSession, secret_box: SecretBox, settings: Settings) -> Actors:
    return Actors(session, secret_box, settings)
