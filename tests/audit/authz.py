"""Who may read the audit log: project admins."""

from __future__ import annotations

from tests.authz import PROJECT_ADMIN, Declaration, Routes, World


def _project(world: World) -> dict[str, str]:
    return {"projectId": str(world.project.id)}


ROUTES: Routes = {
    ("GET", "/api/v1/admin/audit"): Declaration(PROJECT_ADMIN, query=_project),
}
