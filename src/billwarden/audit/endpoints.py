"""HTTP routes for the audit log (project admins)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from billwarden.audit.schemas import AuditEntryRead
from billwarden.audit.service import AuditLog
from billwarden.auth import CurrentConsoleUser, admin_access
from billwarden.db.unit_of_work import DbSession
from billwarden.errors import error_responses
from billwarden.kit.schemas import Page, Pages

router = APIRouter(prefix="/api/v1/admin/audit", tags=["audit"])
routers = [router]


@router.get(
    "",
    response_model=Page[AuditEntryRead],
    responses=error_responses(400, 401, 403, 404),
    summary="The project's audit log, newest first (project admins)",
)
async def list_audit_entries(
    user: CurrentConsoleUser,
    session: DbSession,
    pages: Pages,
    project_id: Annotated[uuid.UUID, Query(alias="projectId")],
    action: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    target_id: Annotated[str | None, Query(alias="targetId", min_length=1, max_length=255)] = None,
) -> Page[AuditEntryRead]:
    access = await admin_access(session, user, project_id)
    rows, total = await AuditLog(session).list_entries(
        access.project.id, action=action, target_id=target_id, **pages.window
    )
    return Page[AuditEntryRead].of(rows, total, pages, AuditEntryRead.of)
