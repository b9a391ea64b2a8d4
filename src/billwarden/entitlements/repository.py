"""Queries for entitlement snapshots."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from billwarden.core.modes import Mode
from billwarden.core.subjects import Subject
from billwarden.db.repository import RepositoryBase
from billwarden.entitlements.models import Entitlement


class EntitlementRepository(RepositoryBase[Entitlement]):
    model = Entitlement

    def __init__(self, session: AsyncSession) -> None:
        super().__init__(session)

    async def for_subject(
        self, project_id: uuid.UUID, mode: Mode, subject: Subject, *, fresh: bool = False
    ) -> Entitlement | None:
        return await self.one_or_none(
            self.select().where(
                Entitlement.project_id == project_id,
                Entitlement.mode == mode,
                Entitlement.subject_type == subject.type.value,
                Entitlement.subject_id == subject.id,
            ),
            fresh=fresh,
        )

    async def with_status(self, project_id: uuid.UUID, status: str) -> list[Entitlement]:
        return await self.all(
            self.select().where(Entitlement.project_id == project_id, Entitlement.status == status)
        )

    async def of_project(self, project_id: uuid.UUID) -> list[Entitlement]:
        return await self.all(self.select().where(Entitlement.project_id == project_id))
