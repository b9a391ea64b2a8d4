"""Business rules for projects (tenants)."""

from __future__ import annotations

import re
import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from billwarden.errors import Conflict, InvalidInput, NotFound
from billwarden.projects.models import Project
from billwarden.projects.repository import ProjectRepository

_SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,98}[a-z0-9])?$")


class ProjectNotFound(NotFound):
    code = "PROJECT_NOT_FOUND"


class SlugTaken(Conflict):
    code = "PROJECT_SLUG_TAKEN"


def slugify(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return slug[:100].strip("-") or "project"


class ProjectService:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.projects = ProjectRepository(session)

    async def create_project(self, name: str, slug: str | None = None) -> Project:
        name = name.strip()
        if not name:
            raise InvalidInput("A project needs a non-empty name.", details={"field": "name"})
        slug = slug or slugify(name)
        if not _SLUG.match(slug):
            raise InvalidInput(
                "A slug is 1-100 lowercase letters, digits and inner hyphens.",
                details={"field": "slug"},
            )
        if await self.projects.get_by_slug(slug) is not None:
            raise SlugTaken(f"A project with slug {slug!r} already exists.")
        return await self.projects.add(Project(name=name, slug=slug))

    async def get_project(self, project_id: uuid.UUID) -> Project:
        project = await self.projects.get(project_id)
        if project is None:
            raise ProjectNotFound("No such project.", details={"projectId": str(project_id)})
        return project

    async def find_project(self, reference: str) -> Project:
        """A project by id or slug (for the CLI)."""
        try:
            return await self.get_project(uuid.UUID(reference))
        except ValueError:
            project = await self.projects.get_by_slug(reference)
        if project is None:
            raise ProjectNotFound(f"No project with id or slug {reference!r}.")
        return project
