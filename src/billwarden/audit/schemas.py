"""Wire shapes of the audit log."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from billwarden.audit.models import AuditEntry
from billwarden.kit.schemas import CamelModel


class AuditEntryRead(CamelModel):
    id: uuid.UUID
    created_at: datetime
    project_id: uuid.UUID | None
    mode: str | None
    actor_type: str
    actor_id: str | None
    actor: str
    action: str
    target_type: str
    target_id: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    reason: str | None

    @classmethod
    def of(cls, row: AuditEntry) -> AuditEntryRead:
        return cls(
            id=row.id,
            created_at=row.created_at,
            project_id=row.project_id,
            mode=row.mode,
            actor_type=row.actor_type,
            actor_id=row.actor_id,
            actor=row.actor,
            action=row.action,
            target_type=row.target_type,
            target_id=row.target_id,
            before=row.before,
            after=row.after,
            reason=row.reason,
        )
