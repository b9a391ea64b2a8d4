"""HTTP routes for a project's catalog: read it (members), replace it (admins)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body

from billwarden.audit.service import audit
from billwarden.auth import CurrentConsoleUser, ProjectAdminAccess, ProjectMemberAccess
from billwarden.catalog.schemas import CatalogRead
from billwarden.catalog.service import CatalogService, LoadedCatalog
from billwarden.core.modes import Mode
from billwarden.db.unit_of_work import DbSession
from billwarden.entitlements.service import EntitlementService
from billwarden.errors import error_responses

router = APIRouter(
    prefix="/api/v1/projects/{project_id}/catalog",
    tags=["catalog"],
    responses=error_responses(400, 401, 403, 404),
)
routers = [router]


async def _read(service: CatalogService, project_id: Any, loaded: LoadedCatalog) -> CatalogRead:
    return CatalogRead(
        version=loaded.version,
        loaded_at=loaded.loaded_at,
        document=loaded.document,
        resolved_prices={mode: await service.resolved_prices(project_id, mode) for mode in Mode},
    )


@router.get("", response_model=CatalogRead, summary="The catalog in force (members)")
async def get_catalog(access: ProjectMemberAccess, session: DbSession) -> CatalogRead:
    service = CatalogService(session)
    loaded = await service.require(access.project.id)
    return await _read(service, access.project.id, loaded)


@router.put(
    "",
    response_model=CatalogRead,
    summary="Replace the catalog (admins); a bad document is refused whole, the previous stays",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/CatalogDocument"}}
            },
        }
    },
)
async def put_catalog(
    access: ProjectAdminAccess,
    user: CurrentConsoleUser,
    session: DbSession,
    # validated by the catalog itself, so every error names its key path (INVALID_CATALOG)
    document: dict[str, Any] = Body(..., include_in_schema=False),
) -> CatalogRead:
    service = CatalogService(session)
    before = await service.current(access.project.id)
    loaded = await service.load_raw(access.project.id, document, user.id)
    await audit(
        session,
        user,
        "catalog.updated",
        project_id=access.project.id,
        target_type="catalog",
        target_id=access.project.id,
        before={"version": before.version} if before is not None else None,
        after={"version": loaded.version, "plans": sorted(loaded.document.plans)},
    )
    if before is None or before.version != loaded.version:
        # plans, features and quotas may have changed: every entitlement follows at once
        await EntitlementService(session).recompute_project(access.project.id)
    return await _read(service, access.project.id, loaded)
