"""Wire shapes for entitlements (seed 001's fields, camelCase)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import Field, StringConstraints

from billwarden.core.subjects import SubjectType
from billwarden.entitlements.service import EntitlementView
from billwarden.kit.schemas import CamelModel, Quantity
from billwarden.kit.subjects import SubjectIdField, SubjectTypeField

FeatureName = Annotated[str, StringConstraints(min_length=1, max_length=64)]


class EntitlementRecord(CamelModel):
    id: uuid.UUID | None = Field(description="null for a subject billwarden has no record of.")
    user_external_id: str
    user_email: str | None
    plan: str = Field(description="FREE, PREMIUM_MONTHLY, PREMIUM_YEARLY or CUSTOM.")
    status: str = Field(
        description="NONE, INCOMPLETE, TRIALING, ACTIVE, PAST_DUE, PAUSED, CANCELED, UNPAID or "
        "INCOMPLETE_EXPIRED."
    )
    stripe_customer_id: str | None
    stripe_subscription_id: str | None
    stripe_price_id: str | None
    current_period_start: datetime | None
    current_period_end: datetime | None
    cancel_at_period_end: bool
    last_synced_at: datetime | None
    last_event_id: str | None
    subject_type: SubjectType
    subject_id: str
    features: list[str]
    quotas: dict[str, Any]
    role: str | None
    plans: list[str]


class EntitlementResponse(CamelModel):
    entitlement: EntitlementRecord
    has_premium_access: bool
    features: list[str]
    role: str | None
    plans: list[str]

    @classmethod
    def of(cls, view: EntitlementView) -> EntitlementResponse:
        return cls(**entitlement_fields(view))


def entitlement_fields(view: EntitlementView) -> dict[str, Any]:
    snapshot = view.snapshot
    record = EntitlementRecord(
        id=snapshot.id if snapshot else None,
        user_external_id=view.subject.id,
        user_email=(snapshot.user_email if snapshot else None) or view.subject.email,
        plan=view.plan,
        status=view.status,
        stripe_customer_id=snapshot.stripe_customer_id if snapshot else None,
        stripe_subscription_id=snapshot.stripe_subscription_id if snapshot else None,
        stripe_price_id=snapshot.stripe_price_id if snapshot else None,
        current_period_start=snapshot.current_period_start if snapshot else None,
        current_period_end=snapshot.current_period_end if snapshot else None,
        cancel_at_period_end=snapshot.cancel_at_period_end if snapshot else False,
        last_synced_at=snapshot.last_synced_at if snapshot else None,
        last_event_id=snapshot.last_event_id if snapshot else None,
        subject_type=view.subject.type,
        subject_id=view.subject.id,
        features=view.features,
        quotas=view.quotas,
        role=view.role,
        plans=view.plans,
    )
    return {
        "entitlement": record,
        "has_premium_access": view.has_access,
        "features": view.features,
        "role": view.role,
        "plans": view.plans,
    }


MetricName = Annotated[str, StringConstraints(min_length=1, max_length=64)]


class EntitlementCheck(CamelModel):
    feature: FeatureName | None = None
    metric: MetricName | None = Field(
        default=None, description="Also (or only) check that `amount` more fits its quota."
    )
    amount: float = Field(default=1, gt=0, le=1e15)
    subject_type: SubjectTypeField = SubjectType.USER
    subject_id: SubjectIdField = None


class CheckResult(CamelModel):
    allowed: bool
    reason: str = Field(
        description="granted, no_subscription, status_<status>, feature_not_in_plan or "
        "quota_exceeded."
    )
    entitlement: EntitlementRecord
    limit: Quantity | None = Field(
        default=None, description="With a metric: its quota (null: no quota on it)."
    )
    used: Quantity | None = Field(default=None, description="Used in the quota's current period.")
    remaining: Quantity | None = None
    resets_at: datetime | None = Field(default=None, description="When the period ends.")
