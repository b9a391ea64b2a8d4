"""Every HTTP router billwarden serves: the service routes, then each domain's."""

from __future__ import annotations

from fastapi import APIRouter

from billwarden import domains
from billwarden.kit import health


def api_routers() -> list[APIRouter]:
    return [health.router, *domains.routers()]
