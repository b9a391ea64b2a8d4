"""Entitlement snapshots made directly, for tests of the reads (the engine has its own tests)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from billwarden.core.modes import Mode
from billwarden.core.subjects import Subject
from billwarden.entitlements.models import Entitlement


@dataclass
class Snapshots:
    session: AsyncSession

    async def granted(
        self,
        project_id: uuid.UUID,
        subject: Subject,
        *,
        features: tuple[str, ...] = ("premium", "export"),
        mode: Mode = Mode.TEST,
    ) -> Entitlement:
        row = Entitlement(
            project_id=project_id,
            mode=mode,
            subject_type=subject.type.value,
            subject_id=subject.id,
            user_email=subject.email,
            plan="PREMIUM_MONTHLY",
            status="ACTIVE",
            granted=True,
            stripe_customer_id="cus_snapshot",
            stripe_subscription_id="sub_snapshot",
            stripe_price_id="price_snapshot",
            cancel_at_period_end=False,
            features=list(features),
            quotas={},
            role="premium",
            plans=["premium_monthly"],
        )
        self.session.add(row)
        await self.session.flush()
        return row
