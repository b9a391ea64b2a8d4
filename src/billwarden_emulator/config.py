"""Configuration of the emulator, passed in by the caller (the CLI or a test)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import stripe

# the version of the official SDK it stands in for; billwarden's gateway pins the same one and a
# test ties the two
API_VERSION: str = stripe.api_version
# idle connections stay open longer than clients keep them pooled: a server closing one just as a
# client reuses it resets the request (uvicorn's default is 5 s, and a busy test run idles longer)
KEEP_ALIVE_SECONDS = 75


@dataclass(frozen=True)
class EmulatorConfig:
    """How one emulator instance behaves.

    `snapshot_path`: JSON file the state is loaded from at start and saved to after changes
    (debounced by `snapshot_debounce` seconds) and on shutdown; None keeps state in memory only.
    `public_url`: base used in hosted checkout / portal URLs; None uses the request's own base URL.
    """

    snapshot_path: Path | None = None
    snapshot_debounce: float = 0.5
    public_url: str | None = None
    webhook_retry_schedule: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0, 8.0)
    webhook_timeout: float = 5.0
    api_version: str = API_VERSION
