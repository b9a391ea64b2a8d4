"""The one list of billwarden's domains.

Each domain is a package of the same shape (docs/architecture.md, "Adding a domain"): its
`endpoints.routers`, its `cli.register`, its `models` and, in the tests, its
`tests/<domain>/authz.py` declarations are collected from this list, so adding a domain touches
its own package and this list. The order is the order of routes in the OpenAPI document.
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType
from typing import Any

import typer
from fastapi import APIRouter
from sqlalchemy import MetaData

from billwarden.db.base import Base

DOMAINS: tuple[str, ...] = (
    # the hot paths first: a request is matched against the routes in this order
    "entitlements",
    "webhooks",
    "checkout",
    "subscriptions",
    "payments",
    "identity",
    "projects",
    "catalog",
    "notifications",
    "usage",
    "reconciliation",
    "audit",
    "admin",
    "compat",
)


def domain_module(domain: str, name: str) -> ModuleType | None:
    """`billwarden.<domain>.<name>`, or None when the domain has no such module."""
    qualified = f"billwarden.{domain}.{name}"
    if importlib.util.find_spec(qualified) is None:
        return None
    return importlib.import_module(qualified)


def _modules(name: str) -> list[ModuleType]:
    found = (domain_module(domain, name) for domain in DOMAINS)
    return [module for module in found if module is not None]


def routers() -> list[APIRouter]:
    """Every domain's HTTP routers, from `endpoints.routers`."""
    return [router for module in _modules("endpoints") for router in module.routers]


def openapi_tags() -> list[dict[str, Any]]:
    """Descriptions of the OpenAPI document's tags, from `endpoints.OPENAPI_TAGS`."""
    return [tag for module in _modules("endpoints") for tag in getattr(module, "OPENAPI_TAGS", ())]


def also_tagged() -> dict[tuple[str, str], tuple[str, ...]]:
    """Routes of one domain that another's surface includes: (method, path) -> extra tags,
    from `endpoints.ALSO_TAGGED` (the seeds' surfaces over the canonical routes)."""
    found: dict[tuple[str, str], tuple[str, ...]] = {}
    for module in _modules("endpoints"):
        for route, tags in getattr(module, "ALSO_TAGGED", {}).items():
            found[route] = (*found.get(route, ()), *tags)
    return found


def raw_body_prefixes() -> tuple[str, ...]:
    """Paths whose body must reach the route exactly as sent (Stripe's signed webhooks)."""
    return tuple(
        prefix
        for module in _modules("endpoints")
        for prefix in getattr(module, "RAW_BODY_PREFIXES", ())
    )


def event_handlers() -> dict[str, Any]:
    """Every domain's Stripe event handlers (`handlers.HANDLERS`: event type -> handler); two
    domains handling one type is a mistake caught here."""
    handlers: dict[str, Any] = {}
    for module in _modules("handlers"):
        for event_type, handler in module.HANDLERS.items():
            if event_type in handlers:
                raise ValueError(f"two domains handle {event_type}")
            handlers[event_type] = handler
    return handlers


def register_commands(cli: typer.Typer) -> None:
    """Add every domain's commands (`cli.register`) to the `billwarden` command."""
    for module in _modules("cli"):
        module.register(cli)


def metadata() -> MetaData:
    """The metadata of every domain's tables (what Alembic compares the migrations with)."""
    _modules("models")
    importlib.import_module("billwarden.db.changes")  # the read caches' generation table
    return Base.metadata
