"""Run the emulator as a standalone server (`billwarden emulator --port 12111`)."""

from __future__ import annotations

import uvicorn

from billwarden_emulator.app import create_app
from billwarden_emulator.config import KEEP_ALIVE_SECONDS, EmulatorConfig


def serve(host: str, port: int, config: EmulatorConfig) -> None:
    """Serve until interrupted; the snapshot (if configured) is saved on shutdown."""
    uvicorn.run(
        create_app(config),
        host=host,
        port=port,
        log_level="info",
        access_log=False,
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
    )
