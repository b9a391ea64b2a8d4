"""Queries for console users, sessions, login failures and API keys."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, delete, false, func, or_, select, text, update
from sqlalchemy.orm.attributes import set_committed_value

from billwarden.db.repository import RepositoryBase
from billwarden.identity.models import ApiKey, ConsoleSession, LoginFailure, User


@dataclass(frozen=True)
class KeyViewer:
    """Whose API keys a console user may see: every key of the projects they administer, and the
    keys they created in projects they are still a member of (a superuser sees all)."""

    user: User
    administered: frozenset[uuid.UUID]
    member_of: frozenset[uuid.UUID]


class UserRepository(RepositoryBase[User]):
    model = User

    async def get_by_email(self, email: str) -> User | None:
        return await self.one_or_none(self.select().where(User.email == email))


class ConsoleSessionRepository(RepositoryBase[ConsoleSession]):
    model = ConsoleSession

    async def get_by_hashes(self, token_hashes: Sequence[str]) -> ConsoleSession | None:
        return await self.one_or_none(
            self.select().where(ConsoleSession.token_hash.in_(token_hashes))
        )

    async def record_activity(
        self, console_session: ConsoleSession, at: datetime, idle_expires_at: datetime
    ) -> None:
        """Move the idle expiry on; best effort (a busy database skips it until next time)."""
        written = await self.best_effort(
            update(ConsoleSession)
            .where(ConsoleSession.id == console_session.id)
            .values(last_seen_at=at, idle_expires_at=idle_expires_at)
            .execution_options(synchronize_session=False)
        )
        if written:  # the loaded row says what the database now holds, without a new write
            set_committed_value(console_session, "last_seen_at", at)
            set_committed_value(console_session, "idle_expires_at", idle_expires_at)

    async def revoke_all_for_user(self, user_id: uuid.UUID, at: datetime) -> None:
        await self.session.execute(
            update(ConsoleSession)
            .where(ConsoleSession.user_id == user_id, ConsoleSession.revoked_at.is_(None))
            .values(revoked_at=at)
            .execution_options(synchronize_session="fetch")
        )


class LoginFailureRepository(RepositoryBase[LoginFailure]):
    model = LoginFailure

    async def serialize(self, key_hash: str) -> None:
        """Make concurrent sign-ins for one throttle key run one after another until their
        transactions end, so every attempt sees the failures recorded before it.

        PostgreSQL: an advisory lock on the key. SQLite: take the database's single write lock
        now (an UPDATE that matches nothing still starts the write transaction)."""
        if self.session.get_bind().dialect.name == "postgresql":
            await self.session.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": int(key_hash[:15], 16)}
            )
        else:
            await self.session.execute(
                update(LoginFailure).where(false()).values(scope=LoginFailure.scope)
            )

    async def count_since(
        self, scope: str, key_hashes: Sequence[str], since: datetime
    ) -> tuple[int, datetime | None]:
        """How many failures since `since`, and when the oldest of them happened."""
        row = (
            await self.session.execute(
                select(func.count(LoginFailure.id), func.min(LoginFailure.created_at)).where(
                    LoginFailure.scope == scope,
                    LoginFailure.key_hash.in_(key_hashes),
                    LoginFailure.created_at > since,
                )
            )
        ).one()
        return int(row[0]), row[1]

    async def forget(
        self, scope: str, key_hashes: Sequence[str], before: datetime | None = None
    ) -> None:
        """Delete a key's failures: all of them, or only those older than `before`."""
        statement = delete(LoginFailure).where(
            LoginFailure.scope == scope, LoginFailure.key_hash.in_(key_hashes)
        )
        if before is not None:
            statement = statement.where(LoginFailure.created_at <= before)
        await self.session.execute(statement)


class ApiKeyRepository(RepositoryBase[ApiKey]):
    model = ApiKey

    async def get_active_by_hashes(self, key_hashes: Sequence[str]) -> ApiKey | None:
        return await self.one_or_none(
            self.select().where(ApiKey.key_hash.in_(key_hashes), ApiKey.is_active.is_(True))
        )

    async def touch(self, key: ApiKey, at: datetime, not_since: datetime) -> None:
        """Record use, at most once per interval and best effort: nothing is written while the
        loaded key was used recently, and the UPDATE's condition keeps concurrent requests from
        writing twice."""
        if key.last_used_at is not None and key.last_used_at >= not_since:
            return
        await self.best_effort(
            update(ApiKey)
            .where(
                ApiKey.id == key.id,
                or_(ApiKey.last_used_at.is_(None), ApiKey.last_used_at < not_since),
            )
            .values(last_used_at=at)
            .execution_options(synchronize_session=False)
        )

    async def deactivate_named(self, project_id: uuid.UUID, name: str, at: datetime) -> None:
        await self.session.execute(
            update(ApiKey)
            .where(ApiKey.project_id == project_id, ApiKey.name == name, ApiKey.is_active.is_(True))
            .values(is_active=False, deactivated_at=at)
            .execution_options(synchronize_session="fetch")
        )

    async def deactivate_created_by(
        self, project_id: uuid.UUID, user_id: uuid.UUID, at: datetime
    ) -> None:
        """Deactivate the active keys `user_id` created for the project."""
        await self.session.execute(
            update(ApiKey)
            .where(
                ApiKey.project_id == project_id,
                ApiKey.created_by_id == user_id,
                ApiKey.is_active.is_(True),
            )
            .values(is_active=False, deactivated_at=at)
            .execution_options(synchronize_session="fetch")
        )

    def _visible_to(self, viewer: KeyViewer) -> list[ColumnElement[bool]]:
        if viewer.user.is_superuser:
            return []
        return [
            or_(
                ApiKey.project_id.in_(viewer.administered),
                (ApiKey.created_by_id == viewer.user.id) & ApiKey.project_id.in_(viewer.member_of),
            )
        ]

    async def get_visible(self, key_id: uuid.UUID, viewer: KeyViewer) -> ApiKey | None:
        return await self.one_or_none(
            self.select().where(ApiKey.id == key_id, *self._visible_to(viewer))
        )

    async def list_visible(
        self, viewer: KeyViewer, *, project_id: uuid.UUID | None, limit: int, offset: int
    ) -> tuple[list[ApiKey], int]:
        conditions = self._visible_to(viewer)
        if project_id is not None:
            conditions.append(ApiKey.project_id == project_id)
        total = await self.session.scalar(select(func.count(ApiKey.id)).where(*conditions))
        items = await self.all(
            self.select()
            .where(*conditions)
            .order_by(ApiKey.created_at.desc(), ApiKey.id)
            .limit(limit)
            .offset(offset)
        )
        return items, int(total or 0)
