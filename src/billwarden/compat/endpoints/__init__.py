"""The seeds' own routes: thin routers over the canonical services, one module per seed (see
docs/migrating/). Each module holds a seed's surface only; the rules stay in the domains they
call. The OpenAPI document tags each seed's routes with the seed's name, so `/docs` shows each
system's surface. Seed 002's routes are billwarden's canonical `/api/v1/payments/...` routes."""

from __future__ import annotations

from billwarden.compat.endpoints import seed000, seed001, seed003, seed004, seeds, webhooks

RAW_BODY_PREFIXES = webhooks.RAW_BODY_PREFIXES
OPENAPI_TAGS = seeds.OPENAPI_TAGS
ALSO_TAGGED = seeds.ALSO_TAGGED

routers = [
    *webhooks.routers,
    *seed000.routers,
    *seed001.routers,
    *seed003.routers,
    *seed004.routers,
]
