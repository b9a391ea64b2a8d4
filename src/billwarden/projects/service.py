"""Business rules for projects (tenants)."""

from __future__ import annotations

import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from billwarden.crypto import SecretBox
from billwarden.db.base import utcnow
from billwarden.errors import InvalidInput
from billwarden.identity.models import User
from billwarden.identity.service import UserDirectory
from billwarden.projects.exceptions import (
    LastOwner,
    MemberNotFound,
    NotProjectAdmin,
    NotProjectOwner,
    ProjectNotFound,
    SlugTaken,
)
from billwarden.projects.models import (
    SLUG_PATTERN,
    EndUserSecret,
    Project,
    ProjectMember,
    ProjectRole,
)
from billwarden.projects.repository import (
    EndUserSecretRepository,
    ProjectMemberRepository,
    ProjectRepository,
)

_SLUG = re.compile(SLUG_PATTERN)  # always applied in full (fullmatch)
END_USER_SECRET_BYTES = 48  # 384 bits for an HS256 key


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
        if not _SLUG.fullmatch(slug):
            raise InvalidInput(
                "A slug is 1-100 lowercase letters, digits and inner hyphens.",
                details={"field": "slug"},
            )
        if await self.projects.get_by_slug(slug) is not None:
            raise SlugTaken(f"A project with slug {slug!r} already exists.")
        try:
            # a concurrent create may take the slug between the check and the insert
            async with self.session.begin_nested():
                return await self.projects.add(Project(name=name, slug=slug))
        except IntegrityError as exc:
            raise SlugTaken(f"A project with slug {slug!r} already exists.") from exc

    async def find_by_slug(self, slug: str) -> Project | None:
        return await self.projects.get_by_slug(slug)

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


# Members, roles and end-user secrets. Console users come from the identity domain.


@dataclass(frozen=True)
class ProjectAccess:
    """A console user's access to one project. `role` is None for a superuser who is not a
    member."""

    project: Project
    user: User
    role: ProjectRole | None

    @property
    def is_admin(self) -> bool:
        return self.user.is_superuser or (self.role is not None and self.role.is_admin)

    @property
    def is_owner(self) -> bool:
        return self.user.is_superuser or self.role is ProjectRole.OWNER


class MembershipService:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.projects = ProjectRepository(session)
        self.members = ProjectMemberRepository(session)
        self.users = UserDirectory(session)

    async def access(self, user: User, project_id: uuid.UUID) -> ProjectAccess:
        """The user's access; a project the user cannot see is reported as not existing."""
        project = await self.projects.get(project_id)
        membership = (
            await self.members.get_membership(project_id, user.id) if project is not None else None
        )
        if project is None or (membership is None and not user.is_superuser):
            raise ProjectNotFound("No such project.", details={"projectId": str(project_id)})
        return ProjectAccess(project, user, membership.role if membership else None)

    async def project_ids_of(self, user: User) -> tuple[list[uuid.UUID], list[uuid.UUID]]:
        """The projects the user administers, and those they are a member of."""
        return await self.members.project_ids_of(user.id)

    async def admin_access(self, user: User, project_id: uuid.UUID) -> ProjectAccess:
        access = await self.access(user, project_id)
        if not access.is_admin:
            raise NotProjectAdmin("Only the project's owners and admins may do this.")
        return access

    async def list_projects(
        self, user: User, *, limit: int, offset: int
    ) -> tuple[list[tuple[Project, ProjectRole | None]], int]:
        return await self.members.list_projects_for(
            user.id, every_project=user.is_superuser, limit=limit, offset=offset
        )

    async def create_project(self, owner: User, name: str, slug: str | None = None) -> Project:
        """Create a project whose creator becomes its owner."""
        project = await ProjectService(self.session).create_project(name, slug)
        await self.members.add(
            ProjectMember(project_id=project.id, user_id=owner.id, role=ProjectRole.OWNER)
        )
        return project

    async def update_project(
        self,
        access: ProjectAccess,
        *,
        name: str | None,
        slug: str | None,
        past_due_grace_days: int | None = None,
    ) -> Project:
        project = access.project
        if past_due_grace_days is not None:
            if not 0 <= past_due_grace_days <= 365:
                raise InvalidInput(
                    "pastDueGraceDays is 0 to 365.", details={"field": "pastDueGraceDays"}
                )
            project.past_due_grace_days = past_due_grace_days
        if name is not None:
            if not name.strip():
                raise InvalidInput("A project needs a non-empty name.", details={"field": "name"})
            project.name = name.strip()
        if slug is not None and slug != project.slug:
            if not _SLUG.fullmatch(slug):
                raise InvalidInput(
                    "A slug is 1-100 lowercase letters, digits and inner hyphens.",
                    details={"field": "slug"},
                )
            if await self.projects.get_by_slug(slug) is not None:
                raise SlugTaken(f"A project with slug {slug!r} already exists.")
            project.slug = slug
        try:
            async with self.session.begin_nested():
                await self.session.flush()
        except IntegrityError as exc:
            raise SlugTaken(f"A project with slug {slug!r} already exists.") from exc
        return project

    async def list_members(
        self, access: ProjectAccess, *, limit: int, offset: int
    ) -> tuple[list[tuple[ProjectMember, str]], int]:
        return await self.members.list_members(access.project.id, limit=limit, offset=offset)

    async def change_role(
        self, access: ProjectAccess, user_id: uuid.UUID, role: ProjectRole
    ) -> ProjectMember:
        await self.projects.lock(access.project.id)
        member = await self._member(access, user_id)
        if ProjectRole.OWNER in (role, member.role) and not access.is_owner:
            raise NotProjectOwner("Only an owner may grant or take away the owner role.")
        if member.role is ProjectRole.OWNER and role is not ProjectRole.OWNER:
            await self._keep_an_owner(access.project.id)
        member.role = role
        await self.session.flush()
        return member

    async def remove_member(self, access: ProjectAccess, user_id: uuid.UUID) -> None:
        """Remove a member and deactivate the API keys they created for the project: once out,
        they can neither see nor deactivate those keys."""
        await self.projects.lock(access.project.id)
        member = await self._member(access, user_id)
        if member.role is ProjectRole.OWNER:
            if not access.is_owner:
                raise NotProjectOwner("Only an owner may remove an owner.")
            await self._keep_an_owner(access.project.id)
        await self.session.delete(member)
        await self.session.flush()
        await self.users.deactivate_keys_created_by(access.project.id, user_id)

    async def member_user(self, member: ProjectMember) -> User:
        return await self.users.get(member.user_id)

    async def _member(self, access: ProjectAccess, user_id: uuid.UUID) -> ProjectMember:
        # refreshed: called under the project lock, after others may have changed the role
        member = await self.members.get_membership(access.project.id, user_id, refresh=True)
        if member is None:
            raise MemberNotFound("That user is not a member of this project.")
        return member

    async def _keep_an_owner(self, project_id: uuid.UUID) -> None:
        if await self.members.count_owners(project_id) <= 1:
            raise LastOwner("A project keeps at least one owner: make someone else an owner first.")


class EndUserSecretService:
    """The HS256 secrets tenant backends sign end-user JWTs with, encrypted at rest."""

    def __init__(
        self, session: AsyncSession, secret_box: SecretBox, overlap: timedelta = timedelta(0)
    ) -> None:
        self.session = session
        self.secret_box = secret_box
        self.overlap = overlap
        self.secrets = EndUserSecretRepository(session)
        self.projects = ProjectRepository(session)

    async def rotate(self, project: Project) -> tuple[str, datetime | None]:
        """A new current secret (returned once) and when the previous one stops verifying.

        Only the previous secret keeps verifying, for the overlap: any older one still inside
        its own overlap stops now (expired, kept as history), so however often a project
        rotates, at most two secrets verify."""
        # two rotations at once would both demote the same current secret and insert two
        await self.projects.lock(project.id)
        now = utcnow()
        previous = await self.secrets.get_current(project.id)
        for older in await self.secrets.list_live(project.id, now):
            if previous is None or older.id != previous.id:
                older.expires_at = now
        previous_expires_at: datetime | None = None
        if previous is not None:
            previous_expires_at = now + self.overlap
            previous.expires_at = previous_expires_at
        await self.session.flush()
        secret = secrets.token_urlsafe(END_USER_SECRET_BYTES)
        await self.secrets.add(
            EndUserSecret(
                project_id=project.id,
                secret_ciphertext=self.secret_box.encrypt(secret),
                created_at=now,
            )
        )
        return secret, previous_expires_at

    async def live_secrets(self, project_id: uuid.UUID) -> list[str]:
        """Every secret that verifies now: the current one first, then those in overlap."""
        rows = await self.secrets.list_live(project_id, utcnow())
        return [self.secret_box.decrypt(row.secret_ciphertext) for row in rows]
