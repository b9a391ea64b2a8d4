"""Console users, their server-side sessions, login failures (for throttling) and API keys."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from billwarden.db.base import Base, IdMixin, TenantMixin, TimestampMixin, utcnow


class User(IdMixin, TimestampMixin, Base):
    """A console user: a developer, an admin or a support person."""

    __tablename__ = "users"

    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    is_superuser: Mapped[bool] = mapped_column(default=False)
    is_active: Mapped[bool] = mapped_column(default=True)
    # developer JWTs carry this value; a password change makes older tokens unusable
    password_changed_at: Mapped[datetime] = mapped_column(default=utcnow)


class ConsoleSession(IdMixin, Base):
    """A signed-in browser. Only a keyed hash of the cookie's token is stored."""

    __tablename__ = "console_sessions"

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    idle_expires_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class LoginFailure(IdMixin, Base):
    """One refused login, counted per email and per client address within a window."""

    __tablename__ = "login_failures"
    __table_args__ = (Index("ix_login_failures_lookup", "scope", "key_hash", "created_at"),)

    scope: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ApiKey(IdMixin, TenantMixin, Base):
    """A project API key for one mode. The plaintext is shown once; a keyed hash is stored."""

    __tablename__ = "api_keys"

    name: Mapped[str] = mapped_column(String(200))
    prefix: Mapped[str] = mapped_column(String(32))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_by_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    is_active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]
    deactivated_at: Mapped[datetime | None]
