"""Queries for the audit log."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select

from billwarden.audit.models import AuditEntry
from billwarden.db.repository import RepositoryBase


class AuditRepository(RepositoryBase[AuditEntry]):
    model = AuditEntry

    async def list_entries(
        self,
        project_id: uuid.UUID,
        *,
        action: str | None,
        target_id: str | None,
        limit: int,
        offset: int,
    ) -> tuple[list[AuditEntry], int]:
        conditions = [AuditEntry.project_id == project_id]
        if action is not None:
            conditions.append(AuditEntry.action == action)
        if target_id is not None:
            conditions.append(AuditEntry.target_id == target_id)
        total = await self.session.scalar(select(func.count(AuditEntry.id)).where(*conditions))
        rows = await self.all(
            self.select()
            .where(*conditions)
            .order_by(AuditEntry.created_at.desc(), AuditEntry.id)
            .limit(limit)
            .offset(offset)
        )
        return rows, int(total or 0)
