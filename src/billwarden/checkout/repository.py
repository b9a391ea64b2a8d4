"""Queries for the checkout sessions billwarden knows."""

from __future__ import annotations

import uuid

from billwarden.checkout.models import CheckoutSession
from billwarden.core.modes import Mode
from billwarden.db.repository import RepositoryBase


class CheckoutSessionRepository(RepositoryBase[CheckoutSession]):
    model = CheckoutSession

    async def by_stripe_id(
        self, project_id: uuid.UUID, mode: Mode, stripe_session_id: str, *, fresh: bool = False
    ) -> CheckoutSession | None:
        return await self.one_or_none(
            self.select().where(
                CheckoutSession.project_id == project_id,
                CheckoutSession.mode == mode,
                CheckoutSession.stripe_session_id == stripe_session_id,
            ),
            fresh=fresh,
        )
