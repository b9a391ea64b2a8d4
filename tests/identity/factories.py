"""Console users, browser sessions, developer tokens and API keys made through identity's
services: flushed, never committed."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from billwarden.config import Settings
from billwarden.core.modes import Mode
from billwarden.crypto import SecretBox
from billwarden.identity.cookies import CSRF_COOKIE, CSRF_HEADER, SESSION_COOKIE
from billwarden.identity.models import User
from billwarden.identity.service import ApiKeyService, IdentityPolicy, StartedSession, UserService
from billwarden.identity.tokens import DeveloperTokens

PASSWORD = "correct horse battery staple"


class HasId(Protocol):
    @property
    def id(self) -> uuid.UUID: ...


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


class People:
    """Makes console users and their credentials."""

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
        token = DeveloperTokens.from_settings(self.settings).issue(
            user.id, user.password_changed_at
        )
        return {"Authorization": f"Bearer {token}"}

    async def api_key(self, project: HasId, created_by: User | None, mode: Mode = Mode.TEST) -> str:
        created = await ApiKeyService(self.session, self.secret_box).create_key(
            project.id, mode, "test key", created_by
        )
        return created.plaintext
