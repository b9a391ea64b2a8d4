"""A project's catalog versions, and the Stripe prices its lookup keys resolved to per mode."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from billwarden.db.base import Base, IdMixin, TenantMixin, utcnow


class CatalogVersion(IdMixin, Base):
    """One loaded catalog; the highest version of a project is the one in force."""

    __tablename__ = "catalog_versions"
    __table_args__ = (UniqueConstraint("project_id", "version"),)

    project_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    version: Mapped[int]
    document: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # who loaded it (a console user), or null for the command line and start-up
    loaded_by_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )


class CatalogPrice(IdMixin, TenantMixin, Base):
    """The Stripe price a `lookup:<key>` reference stands for in one mode."""

    __tablename__ = "catalog_prices"
    __table_args__ = (UniqueConstraint("project_id", "mode", "lookup_key"),)

    lookup_key: Mapped[str] = mapped_column(String(200))
    price_id: Mapped[str] = mapped_column(String(255))
    resolved_at: Mapped[datetime] = mapped_column(default=utcnow)
