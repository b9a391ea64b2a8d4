"""Wire shapes of usage (camelCase; seed 004's daily usage)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from billwarden.kit.schemas import CamelModel
from billwarden.usage.service import MAX_BATCH, Ingested


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
    limit: float
    used: float
    remaining: float
    period: str = Field(description="day, month or billing_period.")
    resets_at: datetime


class UsageDay(BaseModel):
    """Seed 004's daily usage: `userId` or `organizationId`, `date`, one camelCase field per
    metric the catalog knows (zero-filled), `metrics` (the same under their own names) and
    `quotas`."""

    model_config = ConfigDict(extra="allow")

    date: date
    metrics: dict[str, float]
    quotas: dict[str, QuotaFigures]


class SeriesPoint(CamelModel):
    period: date = Field(description="The day, or the month's first day.")
    value: float


class UsageSeries(CamelModel):
    subject_type: str
    subject_id: str
    granularity: str
    from_: date = Field(alias="from")
    to: date
    series: dict[str, list[SeriesPoint]] = Field(description="Per metric, every period.")
