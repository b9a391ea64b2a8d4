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
from billwarden.projects.invitations import (
    CreatedInvitation,
    InvitationPolicy,
    InvitationService,
)
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

    def invitations(self) -> InvitationService:
        return InvitationService(
            self.session, self.secret_box, InvitationPolicy.from_settings(self.settings)
        )

    async def invite(
        self,
        project: ProjectWithSecret | Project,
        email: str,
        role: ProjectRole = ProjectRole.MEMBER,
        *,
        invited_by: User | None = None,
    ) -> CreatedInvitation:
        """An invitation, as if one of the project's owners (or `invited_by`) sent it."""
        target = project.project if isinstance(project, ProjectWithSecret) else project
        inviter = invited_by or await self._an_owner(target)
        if inviter is None:
            raise AssertionError("the project has no owner: name who invites")
        access = ProjectAccess(target, inviter, ProjectRole.OWNER)
        return await self.invitations().invite(access, email, role)

    async def add_member(
        self, project: ProjectWithSecret | Project, user: User, role: ProjectRole
    ) -> None:
        """Make `user` a member the way people become one: invited, then accepting."""
        target = project.project if isinstance(project, ProjectWithSecret) else project
        # a project made without an owner (single-tenant): the invitation comes from nobody real
        created = await self.invite(
            target, user.email, role, invited_by=await self._an_owner(target) or user
        )
        await self.invitations().accept(user, token=created.token, invitation_id=None)

    async def _an_owner(self, project: Project) -> User | None:
        memberships = MembershipService(self.session)
        rows, _ = await memberships.members.list_members(project.id, limit=100, offset=0)
        owners = [member for member, _ in rows if member.role is ProjectRole.OWNER]
        return await memberships.member_user(owners[0]) if owners else None
