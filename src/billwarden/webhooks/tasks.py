"""The inbox worker: claims due events and applies each in its own unit of work.

`billwarden worker` runs it as a process (several may share one PostgreSQL: claims skip locked
rows), and `serve` runs one in-process unless BILLWARDEN_EMBEDDED_WORKER=false, woken as soon as
an event is stored. A worker killed mid-event loses nothing: the event stays pending, and once
its claim's lease ends another run applies it.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from billwarden.db.base import utcnow
from billwarden.db.unit_of_work import unit_of_work
from billwarden.kit.workers import run_until_stopped
from billwarden.webhooks.models import InboxStatus
from billwarden.webhooks.repository import WebhookEventRepository
from billwarden.webhooks.service import InboxPolicy, InboxService, StripeAccess
from billwarden.webhooks.service.registry import HandlerRegistry

logger = logging.getLogger("billwarden.webhooks")
GIVE_WAY_SECONDS = 0.05
GIVE_WAY_STEP_SECONDS = 0.005


class InboxWorker:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        registry: HandlerRegistry,
        policy: InboxPolicy,
        stripe: StripeAccess,
        *,
        poll_seconds: float = 1.0,
        busy: Callable[[], bool] | None = None,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.registry = registry
        self.policy = policy
        self.stripe = stripe
        # embedded in `serve`: whether requests are in flight; the worker then gives way
        self.busy = busy
        self.poll_seconds = poll_seconds
        self.wake = asyncio.Event()
        self.stopping = asyncio.Event()

    async def run_once(self) -> int:
        """Claim one batch of due events and apply them one by one; how many were claimed. When
        stopping, the claims not started yet are given back at once."""
        token = uuid.uuid4()
        async with unit_of_work(self.sessionmaker) as session:
            claimed = await WebhookEventRepository(session).claim_due(
                utcnow(), self.policy.batch_size, self.policy.lease, token
            )
        for position, event_row_id in enumerate(claimed):
            if self.stopping.is_set():
                await self._release(claimed[position:], token)
                break
            await self._give_way()
            await self.apply_one(event_row_id, token)
        return len(claimed)

    async def _give_way(self) -> None:
        """In `serve`, answering requests (acknowledging Stripe first of all) comes before
        applying: while requests are in flight, wait for a gap, at most GIVE_WAY_SECONDS."""
        if self.busy is None:
            return
        waited = 0.0
        while self.busy() and waited < GIVE_WAY_SECONDS and not self.stopping.is_set():
            await asyncio.sleep(GIVE_WAY_STEP_SECONDS)
            waited += GIVE_WAY_STEP_SECONDS

    async def apply_one(self, event_row_id: uuid.UUID, token: uuid.UUID) -> InboxStatus | None:
        try:
            async with unit_of_work(self.sessionmaker) as session:
                return await InboxService(session).apply(
                    event_row_id, token, self.registry, self.stripe
                )
        except Exception as exc:  # any handler failure is recorded, never fatal to the worker
            logger.warning("webhook event %s failed: %s", event_row_id, type(exc).__name__)
            try:
                async with unit_of_work(self.sessionmaker) as session:
                    return await InboxService(session).record_failure(
                        event_row_id, token, exc, self.policy
                    )
            except Exception:  # the database is away: the claim's lease brings the event back
                logger.exception("could not record the failure of webhook event %s", event_row_id)
                return None

    async def _release(self, ids: list[uuid.UUID], token: uuid.UUID) -> None:
        try:
            async with unit_of_work(self.sessionmaker) as session:
                await WebhookEventRepository(session).release(ids, token)
        except Exception:  # their leases bring them back anyway
            logger.exception("could not give back %d claimed webhook events", len(ids))

    async def run_forever(self) -> None:
        """Apply due events until `stopping` is set; sleep between batches until woken."""
        await run_until_stopped(
            self.run_once,
            wake=self.wake,
            stopping=self.stopping,
            poll_seconds=self.poll_seconds,
            name="inbox worker",
        )
