"""People, projects, sessions and keys made through the services: flushed, never committed."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from billwarden.config import Settings
from billwarden.crypto import SecretBox
from billwarden.db.base import Mode
from billwarden.identity.auth import CSRF_COOKIE, CSRF_HEADER, SESSION_COOKIE, developer_tokens
from billwarden.identity.models import User
from billwarden.identity.service import ApiKeyService, IdentityPolicy, StartedSession, UserService
from billwarden.projects.models import Project, ProjectRole
from billwarden.projects.service import (
    EndUserSecretService,
    MembershipService,
    ProjectAccess,
)

PASSWORD = "correct horse battery staple"


@dataclass
class SignedIn:
    """A browser session: cookies to send, and the CSRF token for unsafe requests."""

    started: StartedSession

    @property
    def cookie(self) -> dict[str, str]:
        """Headers of a safe request: the cookies only."""
        return {
            "Cookie": f"{SESSION_COOKIE}={self.started.token}; "
            f"{CSRF_COOKIE}={self.started.csrf_token}"
        }

    @property
    def unsafe(self) -> dict[str, str]:
        """Headers of an unsafe request: the cookies and the CSRF token."""
        return {**self.cookie, CSRF_HEADER: self.started.csrf_token}


@dataclass
class ProjectWithSecret:
    project: Project
    end_user_secret: str

    @property
    def id(self) -> uuid.UUID:
        return self.project.id


class Actors:
    """Makes the people and things a test needs, straight through the services."""

    def __init__(self, session: AsyncSession, secret_box: SecretBox, settings: Settings) -> None:
        self.session = session
        self.secret_box = secret_box
        self.settings = settings
        self.users = UserService(session, secret_box, IdentityPolicy.from_settings(settings))

    async def user(self, email: str | None = None, *, superuser: bool = False) -> User:
        email = email or f"user-{uuid.uuid4().hex[:8]}@example.test"
        return await self.users.create_user(email, PASSWORD, is_superuser=superuser)

    async def sign_in(self, user: User) -> SignedIn:
        return SignedIn(await self.users.start_session(user))

    def bearer(self, user: User) -> dict[str, str]:
        token = developer_tokens(self.settings).issue(user.id, user.password_changed_at)
        return {"Authorization": f"Bearer {token}"}

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

    async def api_key(
        self, project: ProjectWithSecret, created_by: User | None, mode: Mode = Mode.TEST
    ) -> str:
        created = await ApiKeyService(self.session, self.secret_box).create_key(
            project.project, mode, "test key", created_by
        )
        return created.plaintext
