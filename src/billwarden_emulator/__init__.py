"""A Stripe-compatible emulator: the official SDK runs unmodified against it.

`create_app(config)` builds the ASGI app, `serve(host, port, config)` runs it, and
`billwarden_emulator.testing.running_emulator()` runs it on a free local port for tests.
"""

from billwarden_emulator.app import create_app
from billwarden_emulator.config import API_VERSION, EmulatorConfig
from billwarden_emulator.server import serve

__all__ = ["API_VERSION", "EmulatorConfig", "create_app", "serve"]
