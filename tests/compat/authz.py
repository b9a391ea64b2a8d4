"""Who may call the seeds' routes: the unscoped webhook routes here, each seed's routes in
`authz_seed<NNN>.py` (merged below, each with its own `prepare` when it has one).

The unscoped webhook routes take a Stripe signature, not a principal: in the matrix's world there
is no single-tenant project, so every caller gets 404."""

from __future__ import annotations

from tests.authz import PRINCIPALS, Declaration, Routes, World, policy
from tests.compat import authz_seed000, authz_seed001, authz_seed003, authz_seed004
from tests.factories import Factories

NO_SINGLE_TENANT = policy(**dict.fromkeys(PRINCIPALS, 404))
SEEDS = (authz_seed000, authz_seed001, authz_seed003, authz_seed004)

ROUTES: Routes = {
    ("POST", path): Declaration(NO_SINGLE_TENANT)
    for path in ("/api/stripe/webhook", "/api/billing/stripe/webhook", "/api/v1/billing/webhook")
}
for _seed in SEEDS:
    assert not set(_seed.ROUTES) & set(ROUTES), f"{_seed.__name__} declares a route twice"
    ROUTES.update(_seed.ROUTES)


async def prepare(world: World, made: Factories) -> None:
    for seed in SEEDS:
        seed_prepare = getattr(seed, "prepare", None)
        if seed_prepare is not None:
            await seed_prepare(world, made)
