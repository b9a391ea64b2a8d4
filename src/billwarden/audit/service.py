"""Writing the audit log, in the transaction of the write it describes (so a write is never
without its entry, nor an entry without its write)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from billwarden.audit.models import AuditEntry
from billwarden.audit.repository import AuditRepository
from billwarden.core.modes import Mode
from billwarden.identity.models import User

MAX_REASON_LENGTH = 2000


@dataclass(frozen=True)
class Actor:
    """Who made a change: a console user, an end user with an admin role (the seeds' admin
    routes), an API key, or billwarden itself (a scheduled run, a command)."""

    kind: str  # user | end_user | api_key | system
    id: str | None
    label: str

    @classmethod
    def user(cls, user: User) -> Actor:
        return cls("user", str(user.id), user.email)

    @classmethod
    def end_user(cls, sub: str, email: str | None) -> Actor:
        return cls("end_user", sub[:255], f"end user {email or sub}")

    @classmethod
    def system(cls, label: str) -> Actor:
        return cls("system", None, label)


class AuditLog:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.entries = AuditRepository(session)

    async def record(
        self,
        actor: Actor,
        action: str,
        *,
        target_type: str,
        target_id: str,
        project_id: uuid.UUID | None,
        mode: Mode | None = None,
        before: dict[str, Any] | None = None,
        after: dict[str, Any] | None = None,
        reason: str | None = None,
    ) -> AuditEntry:
        return await self.entries.add(
            AuditEntry(
                project_id=project_id,
                mode=mode.value if mode is not None else None,
                actor_type=actor.kind,
                actor_id=actor.id,
                actor=actor.label[:320],
                action=action,
                target_type=target_type,
                target_id=target_id[:255],
                before=before,
                after=after,
                reason=reason[:MAX_REASON_LENGTH] if reason else None,
            )
        )

    async def list_entries(
        self,
        project_id: uuid.UUID,
        *,
        action: str | None,
        target_id: str | None,
        limit: int,
        offset: int,
    ) -> tuple[list[AuditEntry], int]:
        return await self.entries.list_entries(
            project_id, action=action, target_id=target_id, limit=limit, offset=offset
        )


async def audit(
    session: AsyncSession,
    user: User | Actor,
    action: str,
    *,
    project_id: uuid.UUID | None,
    target_type: str,
    target_id: object,
    mode: Mode | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> None:
    """An admin write (a console user's, or an `Actor`'s), in the caller's transaction.
    `before` and `after` hold what a reader needs to see the change, never a secret (hints and
    counts instead)."""
    await AuditLog(session).record(
        user if isinstance(user, Actor) else Actor.user(user),
        action,
        target_type=target_type,
        target_id=str(target_id),
        project_id=project_id,
        mode=mode,
        before=before,
        after=after,
    )
