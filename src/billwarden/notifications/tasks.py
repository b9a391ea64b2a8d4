"""The notification worker: claims due deliveries and sends each, signed, to its endpoint.

It runs where the inbox worker runs: embedded in `serve` (unless BILLWARDEN_EMBEDDED_WORKER=false)
and in `billwarden worker`. A delivery is claimed under a token and a lease (PostgreSQL: `FOR
UPDATE SKIP LOCKED`), prepared in one short transaction, sent with no transaction open, and its
outcome recorded in another. A worker killed mid-delivery loses nothing: the delivery stays
pending and, once its lease ends, another run sends it (receivers dedupe on `webhook-id`).
"""

from __future__ import annotations

import asyncio
import logging
import uuid

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from billwarden.crypto import SecretBox
from billwarden.db.base import utcnow
from billwarden.db.unit_of_work import unit_of_work
from billwarden.kit.workers import run_until_stopped
from billwarden.notifications.models import DeliveryStatus
from billwarden.notifications.repository import DeliveryRepository
from billwarden.notifications.service import (
    RESPONSE_SNIPPET_CHARS,
    DeliveryPolicy,
    DeliveryService,
    Outcome,
    Outgoing,
)

logger = logging.getLogger("billwarden.notifications")


class NotificationWorker:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        secret_box: SecretBox,
        policy: DeliveryPolicy,
        *,
        poll_seconds: float = 1.0,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.secret_box = secret_box
        self.policy = policy
        self.poll_seconds = poll_seconds
        self.wake = asyncio.Event()
        self.stopping = asyncio.Event()
        self.http: httpx.AsyncClient | None = None

    async def run_once(self) -> int:
        """Claim one batch of due deliveries and send them one by one; how many were claimed.
        When stopping, the claims not started yet are given back at once."""
        token = uuid.uuid4()
        async with unit_of_work(self.sessionmaker) as session:
            claimed = await DeliveryRepository(session).claim_due(
                utcnow(), self.policy.batch_size, self.policy.lease, token
            )
        for position, delivery_id in enumerate(claimed):
            if self.stopping.is_set():
                await self._release(claimed[position:], token)
                break
            await self.deliver_one(delivery_id, token)
        return len(claimed)

    async def deliver_one(self, delivery_id: uuid.UUID, token: uuid.UUID) -> DeliveryStatus | None:
        try:
            async with unit_of_work(self.sessionmaker) as session:
                outgoing = await DeliveryService(session, self.secret_box).prepare(
                    delivery_id, token
                )
            if outgoing is None:
                return None
            outcome = await self._send(outgoing)
            async with unit_of_work(self.sessionmaker) as session:
                return await DeliveryService(session, self.secret_box).record(
                    delivery_id, token, outcome, self.policy
                )
        except Exception:  # the database away: the claim's lease brings the delivery back
            logger.exception("could not deliver notification %s", delivery_id)
            return None

    async def _send(self, outgoing: Outgoing) -> Outcome:
        """POST the notification; the whole exchange is bounded (a receiver trickling its
        answer cannot hold the worker), and only the answer's first bytes are read."""
        try:
            return await asyncio.wait_for(
                self._exchange(outgoing), timeout=self.policy.timeout_seconds * 2
            )
        except TimeoutError:
            return Outcome(None, None, "TimeoutError: the receiver did not answer in time")

    async def _exchange(self, outgoing: Outgoing) -> Outcome:
        try:
            if self.http is not None:
                return await self._post(self.http, outgoing)
            async with self._client() as http:
                return await self._post(http, outgoing)
        except httpx.HTTPError as exc:
            return Outcome(None, None, f"{type(exc).__name__}: {exc}"[:RESPONSE_SNIPPET_CHARS])

    async def _post(self, http: httpx.AsyncClient, outgoing: Outgoing) -> Outcome:
        async with http.stream(
            "POST", outgoing.url, content=outgoing.body, headers=outgoing.headers
        ) as answer:
            head = b""
            async for chunk in answer.aiter_bytes():
                head += chunk
                if len(head) >= RESPONSE_SNIPPET_CHARS:
                    break
        snippet = head[:RESPONSE_SNIPPET_CHARS].decode("utf-8", errors="replace")
        return Outcome(answer.status_code, snippet, None)

    def _client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(timeout=self.policy.timeout_seconds, follow_redirects=False)

    async def _release(self, ids: list[uuid.UUID], token: uuid.UUID) -> None:
        try:
            async with unit_of_work(self.sessionmaker) as session:
                await DeliveryRepository(session).release(ids, token)
        except Exception:  # their leases bring them back anyway
            logger.exception("could not give back %d claimed notifications", len(ids))

    async def run_forever(self) -> None:
        """Send due deliveries until `stopping` is set; sleep between batches until woken."""
        async with self._client() as http:
            self.http = http
            try:
                await self._loop()
            finally:
                self.http = None

    async def _loop(self) -> None:
        await run_until_stopped(
            self.run_once,
            wake=self.wake,
            stopping=self.stopping,
            poll_seconds=self.poll_seconds,
            name="notification worker",
        )
