"""The fuzz stage's settings: its callers' credentials outlast a long `make fuzz` pass."""

from __future__ import annotations

import pytest

from billwarden.config import Settings

DAY = 86400


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={"developer_token_ttl_seconds": DAY, "session_idle_timeout_seconds": DAY}
    )
