"""Business rules for console users, sessions, CSRF, login throttling and API keys."""

from __future__ import annotations

import hmac
import math
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from billwarden.config import Settings
from billwarden.core.modes import Mode
from billwarden.crypto import SecretBox
from billwarden.db.base import utcnow
from billwarden.errors import InvalidInput
from billwarden.identity import passwords
from billwarden.identity.exceptions import (
    ApiKeyNotFound,
    CsrfFailed,
    InvalidCredentials,
    TooManyAttempts,
    Unauthenticated,
    UserExists,
    UserNotFound,
    WrongPassword,
)
from billwarden.identity.models import ApiKey, ConsoleSession, LoginFailure, User
from billwarden.identity.repository import (
    ApiKeyRepository,
    ConsoleSessionRepository,
    KeyViewer,
    LoginFailureRepository,
    UserRepository,
)
from billwarden.identity.tokens import password_version

_EMAIL = re.compile(r"[^@\s]+@[^@\s]+")
_API_KEY = re.compile(r"bw_(test|live)_[A-Za-z0-9_-]{32,}")
API_KEY_RANDOM_BYTES = 40  # 320 bits; the 8 characters kept for display leave 272 unknown
API_KEY_DISPLAY_CHARACTERS = 8
SESSION_TOKEN_BYTES = 32  # 256 bits
# writes that only record activity happen at most this often per session or key
ACTIVITY_RESOLUTION = timedelta(seconds=60)


@dataclass(frozen=True)
class IdentityPolicy:
    """The time limits and thresholds of `Settings` that identity rules use."""

    session_idle: timedelta
    session_absolute: timedelta
    throttle_window: timedelta
    max_failures_per_email: int
    max_failures_per_address: int

    @classmethod
    def from_settings(cls, settings: Settings) -> IdentityPolicy:
        return cls(
            session_idle=timedelta(seconds=settings.session_idle_timeout_seconds),
            session_absolute=timedelta(seconds=settings.session_absolute_timeout_seconds),
            throttle_window=timedelta(seconds=settings.login_throttle_window_seconds),
            max_failures_per_email=settings.login_throttle_max_failures_per_email,
            max_failures_per_address=settings.login_throttle_max_failures_per_address,
        )


@dataclass(frozen=True)
class StartedSession:
    """A new console session; `token` and `csrf_token` exist only in this object and cookies."""

    session: ConsoleSession
    token: str
    csrf_token: str


def normalize_email(email: str) -> str:
    normalized = email.strip().lower()
    if not _EMAIL.fullmatch(normalized) or len(normalized) > 320:
        raise InvalidInput("That is not an email address.", details={"field": "email"})
    return normalized


class UserService:
    def __init__(self, session: AsyncSession, secret_box: SecretBox, policy: IdentityPolicy):
        self.session = session
        self.secret_box = secret_box
        self.policy = policy
        self.users = UserRepository(session)
        self.sessions = ConsoleSessionRepository(session)
        self.failures = LoginFailureRepository(session)

    async def create_user(self, email: str, password: str, *, is_superuser: bool = False) -> User:
        email = normalize_email(email)
        passwords.check_password_policy(password)
        if await self.users.get_by_email(email) is not None:
            raise UserExists(f"A user with email {email} already exists.")
        return await self.users.add(
            User(
                email=email,
                password_hash=await passwords.hash_password(password),
                is_superuser=is_superuser,
                password_changed_at=utcnow(),
            )
        )

    async def get_user(self, user_id: uuid.UUID) -> User:
        user = await self.users.get(user_id)
        if user is None:
            raise UserNotFound("No such user.")
        return user

    async def find_user_by_email(self, email: str) -> User:
        user = await self.users.get_by_email(normalize_email(email))
        if user is None:
            raise UserNotFound(f"No user with email {email.strip()}.")
        return user

    # logins and throttling

    async def authenticate(self, email: str, password: str, client_address: str) -> User:
        """The user whose credentials these are, or InvalidCredentials (recorded for throttling).

        Raises TooManyAttempts before checking the password once the email or the client
        address has failed too often within the window.
        """
        email = email.strip().lower()
        email_hashes = self._throttle_hashes("email", email)
        address_hashes = self._throttle_hashes("address", client_address)
        # always email first, then address: concurrent sign-ins never wait on each other in a cycle
        await self.failures.serialize(email_hashes[0])
        await self.failures.serialize(address_hashes[0])
        await self._check_throttle("email", email_hashes, self.policy.max_failures_per_email)
        await self._check_throttle("address", address_hashes, self.policy.max_failures_per_address)
        user = await self.users.get_by_email(email) if email else None
        known_hash = user.password_hash if user is not None and user.is_active else None
        if not await passwords.verify_password(known_hash, password) or user is None:
            await self._record_failure("email", email_hashes)
            await self._record_failure("address", address_hashes)
            raise InvalidCredentials("The email or password is incorrect.")
        await self.failures.forget("email", email_hashes)
        if passwords.needs_rehash(user.password_hash):
            user.password_hash = await passwords.hash_password(password)
            await self.session.flush()
        return user

    def _throttle_hashes(self, scope: str, value: str) -> list[str]:
        return self.secret_box.lookup_hashes(f"login-{scope}:{value}")

    async def _check_throttle(self, scope: str, key_hashes: list[str], limit: int) -> None:
        now = utcnow()
        count, oldest = await self.failures.count_since(
            scope, key_hashes, now - self.policy.throttle_window
        )
        if count >= limit and oldest is not None:
            retry_after = max(
                1, math.ceil((oldest + self.policy.throttle_window - now).total_seconds())
            )
            subject = "this email" if scope == "email" else "this address"
            raise TooManyAttempts(
                f"Too many failed sign-ins for {subject}. Try again in {retry_after} seconds.",
                retry_after=retry_after,
            )

    async def _record_failure(self, scope: str, key_hashes: list[str]) -> None:
        now = utcnow()
        await self.failures.forget(scope, key_hashes, before=now - self.policy.throttle_window)
        await self.failures.add(LoginFailure(scope=scope, key_hash=key_hashes[0], created_at=now))

    # sessions and CSRF

    async def start_session(self, user: User) -> StartedSession:
        token = secrets.token_urlsafe(SESSION_TOKEN_BYTES)
        now = utcnow()
        expires_at = now + self.policy.session_absolute
        console_session = await self.sessions.add(
            ConsoleSession(
                user_id=user.id,
                token_hash=self.secret_box.keyed_hash(token),
                created_at=now,
                last_seen_at=now,
                idle_expires_at=min(now + self.policy.session_idle, expires_at),
                expires_at=expires_at,
            )
        )
        return StartedSession(console_session, token, self.csrf_token_for(token))

    def csrf_token_for(self, session_token: str) -> str:
        # derived, not stored: only the server can compute it from the cookie's token
        return self.secret_box.keyed_hash(f"csrf:{session_token}")

    def check_csrf(self, session_token: str, presented: str | None) -> None:
        if presented:
            # bytes, not str: compare_digest raises TypeError on non-ASCII text
            presented_bytes = presented.encode("utf-8", "surrogatepass")
            for expected in self.secret_box.lookup_hashes(f"csrf:{session_token}"):
                if hmac.compare_digest(expected.encode(), presented_bytes):
                    return
        raise CsrfFailed(
            "This request needs the X-CSRF-Token header with the token returned at sign-in "
            "(also in the bw_csrf cookie)."
        )

    async def resolve_session(self, token: str) -> tuple[ConsoleSession, User]:
        console_session = await self.sessions.get_by_hashes(self.secret_box.lookup_hashes(token))
        now = utcnow()
        if console_session is None or console_session.revoked_at is not None:
            raise Unauthenticated("The session is not valid; sign in again.")
        if now >= console_session.expires_at:
            raise Unauthenticated("The session has expired; sign in again.")
        if now >= console_session.idle_expires_at:
            raise Unauthenticated("The session expired after inactivity; sign in again.")
        user = await self.users.get(console_session.user_id)
        if user is None or not user.is_active:
            raise Unauthenticated("The session's user no longer exists or is disabled.")
        if now - console_session.last_seen_at >= ACTIVITY_RESOLUTION:
            idle_expires_at = min(now + self.policy.session_idle, console_session.expires_at)
            await self.sessions.record_activity(console_session, now, idle_expires_at)
        return console_session, user

    async def end_session(self, console_session: ConsoleSession) -> None:
        console_session.revoked_at = utcnow()
        await self.session.flush()

    async def change_password(self, user: User, current_password: str, new_password: str) -> None:
        """Set a new password and revoke every session and developer token of the user.

        A wrong current password counts as a failed sign-in for the user's email, so a stolen
        session or token cannot be used to guess the password without limit. WrongPassword
        keeps the unit of work's changes, so the failure stays counted."""
        email_hashes = self._throttle_hashes("email", user.email)
        await self.failures.serialize(email_hashes[0])
        await self._check_throttle("email", email_hashes, self.policy.max_failures_per_email)
        if not await passwords.verify_password(user.password_hash, current_password):
            await self._record_failure("email", email_hashes)
            raise WrongPassword(
                "The current password is incorrect.", details={"field": "currentPassword"}
            )
        await self.set_password(user, new_password)

    async def set_password(self, user: User, new_password: str) -> None:
        passwords.check_password_policy(new_password)
        now = utcnow()
        user.password_hash = await passwords.hash_password(new_password)
        user.password_changed_at = now
        await self.session.flush()
        await self.sessions.revoke_all_for_user(user.id, now)

    async def user_for_developer_token(self, user_id: uuid.UUID, version: int) -> User:
        user = await self.users.get(user_id)
        if user is None or not user.is_active:
            raise Unauthenticated("The token's user no longer exists or is disabled.")
        if password_version(user.password_changed_at) != version:
            raise Unauthenticated("The token was issued before a password change; get a new one.")
        return user


@dataclass(frozen=True)
class CreatedApiKey:
    """A new key; `plaintext` is shown to its creator once and never stored."""

    key: ApiKey
    plaintext: str


class ApiKeyService:
    def __init__(self, session: AsyncSession, secret_box: SecretBox) -> None:
        self.session = session
        self.secret_box = secret_box
        self.keys = ApiKeyRepository(session)

    async def create_key(
        self, project_id: uuid.UUID, mode: Mode, name: str, created_by: User | None
    ) -> CreatedApiKey:
        name = name.strip()
        if not name or len(name) > 200:
            raise InvalidInput(
                "An API key needs a name of 1 to 200 characters.", details={"field": "name"}
            )
        plaintext = f"bw_{mode.value}_{secrets.token_urlsafe(API_KEY_RANDOM_BYTES)}"
        key = await self.keys.add(
            ApiKey(
                project_id=project_id,
                mode=mode,
                name=name,
                prefix=plaintext[: len(f"bw_{mode.value}_") + API_KEY_DISPLAY_CHARACTERS],
                key_hash=self.secret_box.keyed_hash(plaintext),
                created_by_id=created_by.id if created_by is not None else None,
                is_active=True,
                created_at=utcnow(),
            )
        )
        return CreatedApiKey(key, plaintext)

    async def authenticate(self, plaintext: str) -> ApiKey:
        """The active key with this plaintext; records its use at most once a minute."""
        match = _API_KEY.fullmatch(plaintext)
        key = (
            await self.keys.get_active_by_hashes(self.secret_box.lookup_hashes(plaintext))
            if match
            else None
        )
        if key is None or match is None or key.mode.value != match.group(1):
            raise Unauthenticated("The API key is not valid or has been deactivated.")
        now = utcnow()
        await self.keys.touch(key, now, not_since=now - ACTIVITY_RESOLUTION)
        return key

    async def list_keys(
        self, viewer: KeyViewer, *, project_id: uuid.UUID | None, limit: int, offset: int
    ) -> tuple[list[ApiKey], int]:
        """Keys of the projects the viewer administers, and their own keys elsewhere."""
        return await self.keys.list_visible(
            viewer, project_id=project_id, limit=limit, offset=offset
        )

    async def deactivate_named(self, project_id: uuid.UUID, name: str) -> None:
        """Deactivate the project's active keys of that name (the demo replaces its key)."""
        await self.keys.deactivate_named(project_id, name, utcnow())

    async def deactivate_key(self, viewer: KeyViewer, key_id: uuid.UUID) -> ApiKey:
        """Deactivate a key its creator or a project admin can see; others get a 404."""
        key = await self.keys.get_visible(key_id, viewer)
        if key is None:
            raise ApiKeyNotFound("No such API key.", details={"keyId": str(key_id)})
        if key.is_active:
            key.is_active = False
            key.deactivated_at = utcnow()
            await self.session.flush()
        return key


class UserDirectory:
    """What other domains may ask of identity: console users by id, and the keys a person
    created (no secrets needed)."""

    def __init__(self, session: AsyncSession) -> None:
        self.users = UserRepository(session)
        self.keys = ApiKeyRepository(session)

    async def get(self, user_id: uuid.UUID) -> User:
        user = await self.users.get(user_id)
        if user is None:
            raise UserNotFound("No such user.")
        return user

    async def deactivate_keys_created_by(self, project_id: uuid.UUID, user_id: uuid.UUID) -> None:
        await self.keys.deactivate_created_by(project_id, user_id, utcnow())
