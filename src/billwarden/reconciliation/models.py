"""Reconciliation runs and the records of each: stored, so the console reads the last run without
calling Stripe."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text, text
from sqlalchemy import Enum as SAEnum
from sqlalchemy.orm import Mapped, mapped_column

from billwarden.db.base import Base, IdMixin, TenantMixin, utcnow


class RunStatus(StrEnum):
    QUEUED = "queued"  # asked for: a worker (or the command that asked) runs it
    RUNNING = "running"
    FINISHED = "finished"
    FAILED = "failed"  # stopped by an error (the database away); its records are not kept


ACTIVE_RUN = ("queued", "running")


def run_status_type() -> SAEnum:
    return SAEnum(
        RunStatus,
        native_enum=False,
        create_constraint=True,
        length=8,
        name="reconcile_run_status",
        values_callable=lambda statuses: [status.value for status in statuses],
    )


class ReconcileRun(IdMixin, TenantMixin, Base):
    __tablename__ = "reconcile_runs"
    __table_args__ = (
        # one run per project and mode at a time, across processes
        Index(
            "uq_reconcile_runs_active",
            "project_id",
            "mode",
            unique=True,
            sqlite_where=text("status IN ('queued', 'running')"),
            postgresql_where=text("status IN ('queued', 'running')"),
        ),
        Index("ix_reconcile_runs_latest", "project_id", "mode", "requested_at"),
    )

    status: Mapped[RunStatus] = mapped_column(run_status_type())
    trigger: Mapped[str] = mapped_column(String(16))  # api | cli | schedule
    requested_by: Mapped[str] = mapped_column(String(320))
    requested_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    # the runner's claim: another process takes the run over once it has lapsed
    claimed_until: Mapped[datetime | None]
    claim_token: Mapped[uuid.UUID | None]
    # whether Stripe could be read to the end; false: the records compare the database only
    stripe_available: Mapped[bool | None]
    stripe_error: Mapped[str | None] = mapped_column(Text)
    subscriptions_seen: Mapped[int] = mapped_column(default=0)
    total: Mapped[int] = mapped_column(default=0)
    in_sync: Mapped[int] = mapped_column(default=0)
    mismatched: Mapped[int] = mapped_column(default=0)
    reasons: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)  # reason -> records
    repaired: Mapped[int] = mapped_column(default=0)  # by the run itself (auto repair)
    error: Mapped[str | None] = mapped_column(Text)


class ReconcileRecord(IdMixin, TenantMixin, Base):
    """One subject (its snapshot and subscriptions), or one Stripe subscription of no known
    subject, as a run found it."""

    __tablename__ = "reconcile_records"
    __table_args__ = (Index("ix_reconcile_records_run", "run_id", "in_sync"),)

    run_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("reconcile_runs.id", ondelete="CASCADE"))
    entitlement_id: Mapped[uuid.UUID | None]
    subject_type: Mapped[str | None] = mapped_column(String(20))
    subject_id: Mapped[str | None] = mapped_column(String(255))
    subscription_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    in_sync: Mapped[bool]
    reasons: Mapped[list[str]] = mapped_column(JSON, default=list)
    # ",status_mismatch,price_mismatch,": filtered by reason with LIKE on both databases
    reason_codes: Mapped[str] = mapped_column(String(400), default="")
    local: Mapped[dict[str, Any]] = mapped_column(JSON)
    stripe: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # [{"reason", "target", "field", "local", "expected"}]: what differs, field by field
    differences: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    checked_at: Mapped[datetime] = mapped_column(default=utcnow)
