"""billwarden: a self-hosted billing control plane for Stripe."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("billwarden")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0+local"
