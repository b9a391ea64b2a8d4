"""The meter forwarder: sends the outbox's usage events to Stripe's meter events.

It runs where the other workers run: embedded in `serve` and in `billwarden worker`. A batch is
claimed under a token and a lease (PostgreSQL skips rows another worker holds), each event is
sent with no transaction open, and its outcome recorded in a short one. Stripe counts an
`identifier` once, and the identifier is the event's id: a worker killed after sending and
before recording sends again, and Stripe does not count it twice.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from billwarden.config import Settings
from billwarden.core.modes import Mode
from billwarden.crypto import SecretBox
from billwarden.db.base import utcnow
from billwarden.db.unit_of_work import unit_of_work
from billwarden.errors import BillwardenError
from billwarden.kit.workers import run_until_stopped
from billwarden.projects.exceptions import StripeNotConfigured
from billwarden.projects.stripe_config import StripeConfigService
from billwarden.stripe_gateway import StripeGateway, StripeGatewayError
from billwarden.subscriptions.models import Customer
from billwarden.usage.models import MeterForward
from billwarden.usage.repository import ForwardRepository

logger = logging.getLogger("billwarden.usage")
MAX_IDENTIFIER = 100  # Stripe's limit on a meter event's identifier


def identifier_of(event_id: str) -> str:
    """The meter event's identifier: the usage event's id, or its digest when too long."""
    if len(event_id) <= MAX_IDENTIFIER:
        return event_id
    return "bw_" + hashlib.sha256(event_id.encode()).hexdigest()


@dataclass(frozen=True)
class ForwardPolicy:
    max_attempts: int
    retry_base: timedelta
    retry_max: timedelta
    lease: timedelta
    batch_size: int

    @classmethod
    def from_settings(cls, settings: Settings) -> ForwardPolicy:
        return cls(
            max_attempts=settings.notification_max_attempts,
            retry_base=timedelta(seconds=settings.notification_retry_base_seconds),
            retry_max=timedelta(seconds=settings.notification_retry_max_seconds),
            lease=timedelta(seconds=settings.worker_lease_seconds),
            batch_size=max(settings.worker_batch_size, 100),
        )

    def retry_delay(self, attempts: int) -> timedelta:
        delay: timedelta = self.retry_base * (2 ** min(max(0, attempts - 1), 32))
        return min(self.retry_max, delay)


class MeterForwarder:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        gateway: StripeGateway,
        secret_box: SecretBox,
        policy: ForwardPolicy,
        *,
        poll_seconds: float = 1.0,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.gateway = gateway
        self.secret_box = secret_box
        self.policy = policy
        self.poll_seconds = poll_seconds
        self.wake = asyncio.Event()
        self.stopping = asyncio.Event()

    async def run_once(self) -> int:
        """Claim one batch of due events and send them one by one; how many were claimed."""
        token = uuid.uuid4()
        async with unit_of_work(self.sessionmaker) as session:
            claimed = await ForwardRepository(session).claim_due(
                utcnow(), self.policy.batch_size, self.policy.lease, token
            )
            # what sending needs, read while the claim's transaction is open
            plans = [await self._plan(session, row) for row in claimed]
        for row, (secret_key, customer, problem) in zip(claimed, plans, strict=True):
            if self.stopping.is_set():
                break  # the rest wait for their lease to end
            error = problem
            if error is None and secret_key is not None and customer is not None:
                try:
                    await self.gateway.send_meter_event(
                        row.project_id,
                        row.mode,
                        secret_key,
                        event_name=row.event_name,
                        customer=customer,
                        value=row.value,
                        identifier=identifier_of(row.event_id),
                        timestamp=int(row.timestamp.timestamp()),
                    )
                except StripeGatewayError as exc:
                    # Stripe refuses an identifier it counted already: sent by an earlier try
                    if not (exc.status_code == 400 and "identifier" in exc.message.lower()):
                        error = exc.message
                except BillwardenError as exc:
                    error = exc.message
            await self._record(row.id, token, error)
        return len(claimed)

    async def _plan(
        self, session: AsyncSession, row: MeterForward
    ) -> tuple[str | None, str | None, str | None]:
        """(the mode's secret key, the subject's Stripe customer, why it cannot be sent)."""
        try:
            credentials = await StripeConfigService(session, self.secret_box).get_credentials(
                row.project_id, Mode(row.mode)
            )
        except StripeNotConfigured:
            return None, None, f"No {row.mode}-mode Stripe configuration."
        customer = await session.scalar(
            select(Customer.stripe_customer_id).where(
                Customer.project_id == row.project_id,
                Customer.mode == row.mode,
                Customer.subject_type == row.subject_type,
                Customer.subject_id == row.subject_id,
                Customer.deleted.is_(False),
            )
        )
        if customer is None:
            return None, None, "The subject has no Stripe customer yet (it has not checked out)."
        return credentials.secret_key, customer, None

    async def _record(self, forward_id: uuid.UUID, token: uuid.UUID, error: str | None) -> None:
        try:
            async with unit_of_work(self.sessionmaker) as session:
                row = await ForwardRepository(session).held(forward_id, token)
                if row is None:
                    return  # taken over after our lease ended: its outcome is theirs
                row.claimed_until = None
                row.claim_token = None
                if error is None:
                    row.status = "forwarded"
                    row.forwarded_at = utcnow()
                    row.last_error = None
                    row.next_attempt_at = None
                elif row.attempts >= self.policy.max_attempts:
                    row.status = "failed"
                    row.last_error = error[:2000]
                    row.next_attempt_at = None
                else:
                    row.last_error = error[:2000]
                    row.next_attempt_at = utcnow() + self.policy.retry_delay(row.attempts)
        except Exception:  # the database away: the lease brings the event back
            logger.exception("could not record the forwarding of usage event %s", forward_id)

    async def run_forever(self) -> None:
        await run_until_stopped(
            self.run_once,
            wake=self.wake,
            stopping=self.stopping,
            poll_seconds=self.poll_seconds,
            name="meter forwarder",
        )
