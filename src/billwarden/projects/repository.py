"""Queries for projects and their Stripe configuration."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, func, or_, select, update

from billwarden.core.modes import Mode
from billwarden.db.repository import RepositoryBase
from billwarden.identity.models import User
from billwarden.projects.models import (
    EndUserSecret,
    Project,
    ProjectInvitation,
    ProjectMember,
    ProjectRole,
    StripeConfig,
)


class ProjectRepository(RepositoryBase[Project]):
    model = Project

    async def get_by_slug(self, slug: str) -> Project | None:
        return await self.one_or_none(self.select().where(Project.slug == slug))

    async def list_all(self) -> list[Project]:
        return await self.all(self.select().order_by(Project.created_at, Project.id))

    async def lock(self, project_id: uuid.UUID) -> None:
        """Hold the project's row until the transaction ends, so rules that count its members
        or secrets see every concurrent change. PostgreSQL: FOR UPDATE; SQLite ignores it and
        relies on its single writer (requests that write begin IMMEDIATE)."""
        await self.session.execute(
            select(Project.id).where(Project.id == project_id).with_for_update()
        )


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


class ProjectMemberRepository(RepositoryBase[ProjectMember]):
    model = ProjectMember

    async def get_membership(
        self, project_id: uuid.UUID, user_id: uuid.UUID, *, refresh: bool = False
    ) -> ProjectMember | None:
        """The membership; `refresh` overwrites a copy loaded earlier in the session."""
        statement = self.select().where(
            ProjectMember.project_id == project_id, ProjectMember.user_id == user_id
        )
        if refresh:
            statement = statement.execution_options(populate_existing=True)
        return await self.one_or_none(statement)

    async def get_by_email(self, project_id: uuid.UUID, email: str) -> ProjectMember | None:
        """The membership of the console user with this (normalized) email."""
        return await self.one_or_none(
            self.select()
            .join(User, User.id == ProjectMember.user_id)
            .where(ProjectMember.project_id == project_id, User.email == email)
        )

    async def project_ids_of(self, user_id: uuid.UUID) -> tuple[list[uuid.UUID], list[uuid.UUID]]:
        """The projects the user owns or administers, and every project they are a member of."""
        rows = await self.session.execute(
            select(ProjectMember.project_id, ProjectMember.role).where(
                ProjectMember.user_id == user_id
            )
        )
        memberships = rows.all()
        administered = [project_id for project_id, role in memberships if role.is_admin]
        return administered, [project_id for project_id, _ in memberships]

    async def count_owners(self, project_id: uuid.UUID) -> int:
        count = await self.session.scalar(
            select(func.count(ProjectMember.id)).where(
                ProjectMember.project_id == project_id, ProjectMember.role == ProjectRole.OWNER
            )
        )
        return int(count or 0)

    async def list_members(
        self, project_id: uuid.UUID, *, limit: int, offset: int
    ) -> tuple[list[tuple[ProjectMember, str]], int]:
        """Members with their email, oldest first, and the total count."""
        total = await self.session.scalar(
            select(func.count(ProjectMember.id)).where(ProjectMember.project_id == project_id)
        )
        rows = await self.session.execute(
            select(ProjectMember, User.email)
            .join(User, User.id == ProjectMember.user_id)
            .where(ProjectMember.project_id == project_id)
            .order_by(ProjectMember.created_at, ProjectMember.id)
            .limit(limit)
            .offset(offset)
        )
        return [(member, email) for member, email in rows.all()], int(total or 0)

    async def list_projects_for(
        self, user_id: uuid.UUID, *, every_project: bool, limit: int, offset: int
    ) -> tuple[list[tuple[Project, ProjectRole | None]], int]:
        """Projects the user is a member of (or every project), with the user's role, oldest
        first, and the total count."""
        membership = (ProjectMember.project_id == Project.id) & (ProjectMember.user_id == user_id)
        statement = select(Project, ProjectMember.role).outerjoin(ProjectMember, membership)
        counted = select(func.count(Project.id))
        if not every_project:
            statement = statement.where(ProjectMember.id.is_not(None))
            counted = counted.join(ProjectMember, membership)
        total = await self.session.scalar(counted)
        rows = await self.session.execute(
            statement.order_by(Project.created_at, Project.id).limit(limit).offset(offset)
        )
        return [(project, role) for project, role in rows.all()], int(total or 0)


class EndUserSecretRepository(RepositoryBase[EndUserSecret]):
    model = EndUserSecret

    async def get_current(self, project_id: uuid.UUID) -> EndUserSecret | None:
        return await self.one_or_none(
            self.select().where(
                EndUserSecret.project_id == project_id, EndUserSecret.expires_at.is_(None)
            )
        )

    async def list_live(self, project_id: uuid.UUID, now: datetime) -> list[EndUserSecret]:
        """The current secret first, then those still inside their overlap window."""
        return await self.all(
            self.select()
            .where(
                EndUserSecret.project_id == project_id,
                or_(EndUserSecret.expires_at.is_(None), EndUserSecret.expires_at > now),
            )
            .order_by(EndUserSecret.expires_at.is_not(None), EndUserSecret.created_at.desc())
        )


class InvitationRepository(RepositoryBase[ProjectInvitation]):
    model = ProjectInvitation

    @staticmethod
    def _outstanding() -> list[ColumnElement[bool]]:
        return [ProjectInvitation.accepted_at.is_(None), ProjectInvitation.revoked_at.is_(None)]

    async def get_by_hashes(self, token_hashes: Sequence[str]) -> ProjectInvitation | None:
        return await self.one_or_none(
            self.select().where(ProjectInvitation.token_hash.in_(token_hashes))
        )

    async def get_outstanding(self, project_id: uuid.UUID, email: str) -> ProjectInvitation | None:
        """The project's outstanding invitation to this email (at most one: a unique index)."""
        return await self.one_or_none(
            self.select().where(
                ProjectInvitation.project_id == project_id,
                ProjectInvitation.email == email,
                *self._outstanding(),
            )
        )

    async def claim(self, invitation_id: uuid.UUID, user_id: uuid.UUID, at: datetime) -> bool:
        """Mark the invitation accepted by `user_id`, if it is still outstanding and unexpired:
        one statement, so two acceptances at once cannot both succeed."""
        result = await self.session.execute(
            update(ProjectInvitation)
            .where(
                ProjectInvitation.id == invitation_id,
                ProjectInvitation.expires_at > at,
                *self._outstanding(),
            )
            .values(accepted_at=at, accepted_by_id=user_id)
            .execution_options(synchronize_session="fetch")
        )
        return int(getattr(result, "rowcount", 0) or 0) == 1

    async def list_outstanding(
        self, project_id: uuid.UUID, *, limit: int, offset: int
    ) -> tuple[list[tuple[ProjectInvitation, str | None]], int]:
        """The project's outstanding invitations (pending or expired) with the inviter's email,
        newest first, and the total count."""
        conditions = [ProjectInvitation.project_id == project_id, *self._outstanding()]
        total = await self.session.scalar(
            select(func.count(ProjectInvitation.id)).where(*conditions)
        )
        rows = await self.session.execute(
            select(ProjectInvitation, User.email)
            .outerjoin(User, User.id == ProjectInvitation.invited_by_id)
            .where(*conditions)
            .order_by(ProjectInvitation.created_at.desc(), ProjectInvitation.id)
            .limit(limit)
            .offset(offset)
        )
        return [(invitation, email) for invitation, email in rows.all()], int(total or 0)

    async def list_pending_for(
        self, email: str, now: datetime, *, limit: int, offset: int
    ) -> tuple[list[tuple[ProjectInvitation, Project, str | None]], int]:
        """The invitations to this email that can still be accepted, with their project and the
        inviter's email, newest first, and the total count."""
        conditions = [
            ProjectInvitation.email == email,
            ProjectInvitation.expires_at > now,
            *self._outstanding(),
        ]
        total = await self.session.scalar(
            select(func.count(ProjectInvitation.id)).where(*conditions)
        )
        rows = await self.session.execute(
            select(ProjectInvitation, Project, User.email)
            .join(Project, Project.id == ProjectInvitation.project_id)
            .outerjoin(User, User.id == ProjectInvitation.invited_by_id)
            .where(*conditions)
            .order_by(ProjectInvitation.created_at.desc(), ProjectInvitation.id)
            .limit(limit)
            .offset(offset)
        )
        found: list[tuple[ProjectInvitation, Project, str | None]] = [
            (invitation, project, inviter) for invitation, project, inviter in rows.all()
        ]
        return found, int(total or 0)
