"""One row per audited write: repairs and the other admin writes."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from billwarden.db.base import Base, IdMixin, utcnow


class AuditEntry(IdMixin, Base):
    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_project_created", "project_id", "created_at"),)

    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # null for a write outside any project (a console user's own account)
    project_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE")
    )
    mode: Mapped[str | None] = mapped_column(String(4))
    actor_type: Mapped[str] = mapped_column(String(16))  # user | api_key | system
    actor_id: Mapped[str | None] = mapped_column(String(255))
    actor: Mapped[str] = mapped_column(String(320))  # what a reader recognizes: an email, a name
    action: Mapped[str] = mapped_column(String(64))  # e.g. reconciliation.sync_from_stripe
    target_type: Mapped[str] = mapped_column(String(64))
    target_id: Mapped[str] = mapped_column(String(255))
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    reason: Mapped[str | None] = mapped_column(Text)
