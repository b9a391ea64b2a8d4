"""Every HTTP router billwarden serves, in one list (the authorization matrix test walks them)."""

from __future__ import annotations

from fastapi import APIRouter

from billwarden.core import health
from billwarden.identity import endpoints as identity
from billwarden.projects import endpoints as projects
from billwarden.projects import stripe_endpoints


def api_routers() -> list[APIRouter]:
    return [
        health.router,
        identity.router,
        identity.keys_router,
        identity.pages_router,
        projects.router,
        stripe_endpoints.router,
    ]
