"""Wire shapes of reconciliation (seed 001's fields, camelCase)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import Field

from billwarden.core.modes import Mode
from billwarden.kit.schemas import CamelModel
from billwarden.reconciliation.models import ReconcileRecord, ReconcileRun


class RunRead(CamelModel):
    id: uuid.UUID
    project_id: uuid.UUID
    mode: Mode
    status: str = Field(description="queued, running, finished or failed.")
    trigger: str = Field(description="api, cli or schedule.")
    requested_by: str
    requested_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    stripe_available: bool | None
    stripe_error: str | None
    subscriptions_seen: int = Field(description="Stripe's subscriptions read so far.")
    total: int
    in_sync: int
    mismatched: int
    reasons: dict[str, int] = Field(description="Records per reason.")
    repaired: int = Field(description="Records the run repaired by itself (scheduled runs).")
    error: str | None

    @classmethod
    def of(cls, run: ReconcileRun) -> RunRead:
        return cls(
            id=run.id,
            project_id=run.project_id,
            mode=run.mode,
            status=run.status.value,
            trigger=run.trigger,
            requested_by=run.requested_by,
            requested_at=run.requested_at,
            started_at=run.started_at,
            finished_at=run.finished_at,
            stripe_available=run.stripe_available,
            stripe_error=run.stripe_error,
            subscriptions_seen=run.subscriptions_seen,
            total=run.total,
            in_sync=run.in_sync,
            mismatched=run.mismatched,
            reasons=dict(run.reasons),
            repaired=run.repaired,
            error=run.error,
        )


class SubjectRead(CamelModel):
    type: str
    id: str


class RecordRead(CamelModel):
    entitlement_id: uuid.UUID | None = Field(
        description="The subject's snapshot; null for a Stripe subscription of no known subject."
    )
    subject: SubjectRead | None
    subscription_ids: list[str]
    in_sync: bool
    mismatch_reasons: list[str]
    local: dict[str, Any] = Field(
        description="The snapshot (`entitlement`), what the mirror derives (`expected`) and "
        "the mirror's `subscriptions`."
    )
    stripe: dict[str, Any] | None = Field(
        description="Stripe's `subscriptions`; null when Stripe could not be read."
    )
    differences: list[dict[str, Any]] = Field(
        description="Field by field: reason, target, field, local and expected values."
    )
    checked_at: datetime

    @classmethod
    def of(cls, row: ReconcileRecord) -> RecordRead:
        subject = (
            SubjectRead(type=row.subject_type, id=row.subject_id)
            if row.subject_type and row.subject_id
            else None
        )
        return cls(
            entitlement_id=row.entitlement_id,
            subject=subject,
            subscription_ids=list(row.subscription_ids),
            in_sync=row.in_sync,
            mismatch_reasons=list(row.reasons),
            local=row.local,
            stripe=row.stripe,
            differences=list(row.differences),
            checked_at=row.checked_at,
        )


class Summary(CamelModel):
    total: int
    in_sync: int
    mismatched: int


class Reconciliation(CamelModel):
    stripe_available: bool | None = Field(
        description="Whether the run could read Stripe to the end (null: no run yet)."
    )
    summary: Summary
    records: list[RecordRead] = Field(description="Mismatched first; filtered and paged.")
    matching: int = Field(description="Records matching the filters (for paging).")
    run: RunRead | None = Field(description="The last finished run the records come from.")
    active_run: RunRead | None = Field(description="A run queued or under way, if any.")


class RepairRequest(CamelModel):
    entitlement_id: uuid.UUID | None = Field(
        default=None, description="The record's entitlement (its subject)."
    )
    subscription_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=255,
        description="For a record of no known subject: one of its subscriptions.",
    )
    action: str = Field(
        min_length=1, max_length=64, description="sync_from_stripe, reset_to_free or recompute."
    )
    reason: str | None = Field(default=None, max_length=2000, description="Kept in the audit log.")


class RepairResult(CamelModel):
    record: RecordRead
    summary: Summary


class RunRequest(CamelModel):
    project_id: uuid.UUID
    mode: Mode = Mode.TEST
