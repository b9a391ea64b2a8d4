"""Every HTTP router billwarden serves, in one list (the authorization matrix test walks them)."""

from __future__ import annotations

from fastapi import APIRouter

from billwarden.core import health


def api_routers() -> list[APIRouter]:
    return [
        health.router,
    ]
