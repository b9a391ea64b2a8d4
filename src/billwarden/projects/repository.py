"""Queries for projects and their Stripe configuration."""

from __future__ import annotations

import uuid

from billwarden.db.base import Mode
from billwarden.db.repository import RepositoryBase
from billwarden.projects.models import Project, StripeConfig


class ProjectRepository(RepositoryBase[Project]):
    model = Project

    async def get_by_slug(self, slug: str) -> Project | None:
        return await self.one_or_none(self.select().where(Project.slug == slug))

    async def list_all(self) -> list[Project]:
        return await self.all(self.select().order_by(Project.created_at, Project.id))


class StripeConfigRepository(RepositoryBase[StripeConfig]):
    model = StripeConfig

    async def get_active(self, project_id: uuid.UUID, mode: Mode) -> StripeConfig | None:
        return await self.one_or_none(
            self.select().where(
                StripeConfig.project_id == project_id,
                StripeConfig.mode == mode,
                StripeConfig.is_active.is_(True),
            )
        )

    async def list_all(self) -> list[StripeConfig]:
        return await self.all(self.select())
