"""Wire shapes of usage (camelCase; seed 004's daily usage)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from billwarden.core.subjects import SubjectType
from billwarden.kit.schemas import CamelModel, Quantity
from billwarden.kit.subjects import SubjectIdField, SubjectTypeField
from billwarden.usage.service import MAX_BATCH, Ingested, QuotaDecision


class UsageBatch(CamelModel):
    events: list[Any] = Field(
        min_length=1,
        max_length=MAX_BATCH,
        description="1 to 1,000 events: {id, subjectType, subjectId, metric, value, timestamp, "
        "properties}; each checked on its own.",
    )


class EventRefused(CamelModel):
    index: int
    code: str = Field(description="VALIDATION_ERROR, UNKNOWN_METRIC, TIMESTAMP_OUT_OF_RANGE "
                      "or SUBJECT_MISMATCH.")  # fmt: skip
    message: str


class UsageAccepted(CamelModel):
    accepted: int = Field(description="Events counted now.")
    duplicates: int = Field(description="Events already counted (the same id): counted once.")
    errors: list[EventRefused] = Field(description="Events refused, by their index in the batch.")

    @classmethod
    def of(cls, result: Ingested) -> UsageAccepted:
        return cls(
            accepted=result.accepted,
            duplicates=result.duplicates,
            errors=[
                EventRefused(index=e.index, code=e.code, message=e.message) for e in result.errors
            ],
        )


class QuotaFigures(CamelModel):
    limit: Quantity
    used: Quantity
    remaining: Quantity
    period: str = Field(description="day, month or billing_period.")
    resets_at: datetime


class UsageDay(BaseModel):
    """Seed 004's daily usage: `userId` or `organizationId`, `date`, one camelCase field per
    metric the catalog knows (zero-filled), `metrics` (the same under their own names) and
    `quotas`."""

    model_config = ConfigDict(extra="allow")

    date: date
    metrics: dict[str, Quantity]
    quotas: dict[str, QuotaFigures]


class SeriesPoint(CamelModel):
    period: date = Field(description="The day, or the month's first day.")
    value: Quantity


class UsageSeries(CamelModel):
    subject_type: str
    subject_id: str
    granularity: str
    from_: date = Field(alias="from")
    to: date
    series: dict[str, list[SeriesPoint]] = Field(description="Per metric, every period.")


class ConsumeRequest(CamelModel):
    id: str = Field(min_length=1, max_length=255, description="Idempotent: recorded once.")
    subject_type: SubjectTypeField = SubjectType.USER
    subject_id: SubjectIdField = None
    metric: str = Field(min_length=1, max_length=64)
    amount: float = Field(default=1, gt=0, le=1e15)


class ConsumeResult(CamelModel):
    allowed: bool = Field(description="false: over the quota, and nothing was recorded.")
    duplicate: bool = Field(description="This id was recorded before: not recorded again.")
    limit: Quantity | None = Field(description="null: no quota on the metric (nothing to exceed).")
    used: Quantity | None = Field(description="Used in the quota's period, this one included.")
    remaining: Quantity | None
    period: str | None
    resets_at: datetime | None

    @classmethod
    def of(cls, decision: QuotaDecision, duplicate: bool) -> ConsumeResult:
        figures = decision.figures
        return cls(
            allowed=decision.allowed,
            duplicate=duplicate,
            limit=figures.limit if figures else None,
            used=figures.used if figures else None,
            remaining=figures.remaining if figures else None,
            period=figures.period if figures else None,
            resets_at=figures.resets_at if figures else None,
        )


class MeterForwardRead(CamelModel):
    event_name: str = Field(description="The Stripe meter's event name.")
    status: str = Field(description="pending, forwarded or failed.")
    attempts: int
    forwarded_at: datetime | None
    last_error: str | None
    next_attempt_at: datetime | None


class UsageEventRead(CamelModel):
    id: str
    subject_type: str
    subject_id: str
    metric: str
    value: Quantity
    timestamp: datetime
    received_at: datetime
    properties: dict[str, Any] | None
    meter: MeterForwardRead | None = Field(
        description="Its forwarding to a Stripe meter; null when the metric has none."
    )
