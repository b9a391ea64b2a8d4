"""Projects, memberships and end-user secrets made through the projects services: flushed, never
committed."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from billwarden.config import Settings
from billwarden.crypto import SecretBox
from billwarden.identity.models import User
from billwarden.projects.models import Project, ProjectRole
from billwarden.projects.service import EndUserSecretService, MembershipService, ProjectAccess


@dataclass
class ProjectWithSecret:
    project: Project
    end_user_secret: str

    @property
    def id(self) -> uuid.UUID:
        return self.project.id


class Tenants:
    """Makes projects with an owner, their members and end-user secrets."""

    def __init__(self, session: AsyncSession, secret_box: SecretBox, settings: Settings) -> None:
        self.session = session
        self.secret_box = secret_box
        self.settings = settings

    async def project(self, owner: User, name: str | None = None) -> ProjectWithSecret:
        name = name or f"Project {uuid.uuid4().hex[:8]}"
        project = await MembershipService(self.session).create_project(owner, name)
        secret, _ = await self.end_user_secrets().rotate(project)
        return ProjectWithSecret(project, secret)

    def end_user_secrets(self) -> EndUserSecretService:
        overlap = timedelta(seconds=self.settings.end_user_secret_overlap_seconds)
        return EndUserSecretService(self.session, self.secret_box, overlap)

    async def add_member(self, project: ProjectWithSecret, user: User, role: ProjectRole) -> None:
        owner_view = ProjectAccess(project.project, user, ProjectRole.OWNER)
        await MembershipService(self.session).add_member(owner_view, user, role)
