"""Who may call the catalog routes: members read, admins replace."""

from __future__ import annotations

from tests.authz import PROJECT_ADMIN, PROJECT_MEMBER, Declaration, Routes, World, project_path
from tests.factories import Factories

DOCUMENT = {
    "families": {"membership": {"primary": True}},
    "plans": {"premium_monthly": {"family": "membership", "prices": {"test": "price_matrix"}}},
}

ROUTES: Routes = {
    ("GET", "/api/v1/projects/{project_id}/catalog"): Declaration(
        PROJECT_MEMBER, path=project_path
    ),
    ("PUT", "/api/v1/projects/{project_id}/catalog"): Declaration(
        PROJECT_ADMIN, path=project_path, json=lambda w: DOCUMENT
    ),
}


async def prepare(world: World, made: Factories) -> None:
    """Project A has a catalog to read."""
    await made.catalogs.load(world.project.id, DOCUMENT)
