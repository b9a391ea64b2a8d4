"""The rules of notifications: endpoints (their secrets shown once), the outbox written in the
caller's transaction, and what each delivery attempt sends and records."""

from __future__ import annotations

import base64
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncSession
from standardwebhooks.webhooks import Webhook

from billwarden.config import Settings
from billwarden.core.modes import Mode
from billwarden.crypto import SecretBox
from billwarden.db.base import utcnow
from billwarden.notifications.exceptions import (
    NotificationDeliveryNotFound,
    NotificationEndpointNotFound,
)
from billwarden.notifications.models import (
    Delivery,
    DeliveryStatus,
    OutboxMessage,
    WebhookEndpoint,
)
from billwarden.notifications.repository import (
    DeliveryRepository,
    EndpointRepository,
    OutboxRepository,
)

SECRET_PREFIX = "whsec_"  # noqa: S105 (the Standard Webhooks secret prefix)
SECRET_BYTES = 32
# how much of an endpoint's answer the delivery log keeps
RESPONSE_SNIPPET_CHARS = 1000


@dataclass(frozen=True)
class DeliveryPolicy:
    """How the worker sends: a timeout per attempt, capped exponential backoff, then `failed`."""

    max_attempts: int
    retry_base: timedelta
    retry_max: timedelta
    timeout_seconds: float
    lease: timedelta
    batch_size: int

    @classmethod
    def from_settings(cls, settings: Settings) -> DeliveryPolicy:
        return cls(
            max_attempts=settings.notification_max_attempts,
            retry_base=timedelta(seconds=settings.notification_retry_base_seconds),
            retry_max=timedelta(seconds=settings.notification_retry_max_seconds),
            timeout_seconds=settings.notification_timeout_seconds,
            lease=timedelta(seconds=settings.worker_lease_seconds),
            batch_size=settings.worker_batch_size,
        )

    def backoff(self, attempts: int) -> timedelta:
        """The wait after the `attempts`-th failed attempt: base, doubling, at most the cap."""
        seconds = self.retry_base.total_seconds() * 2 ** min(max(attempts - 1, 0), 40)
        return min(timedelta(seconds=seconds), self.retry_max)


def new_secret() -> str:
    """A Standard Webhooks signing secret: `whsec_` and 32 random bytes in base64."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def message_id(message: OutboxMessage) -> str:
    """The `webhook-id` of a message: the same for every attempt and every endpoint."""
    return f"msg_{message.id.hex}"


def json_safe(data: dict[str, Any]) -> dict[str, Any]:
    """`data` as JSON has it (datetimes as ISO 8601 strings, UUIDs as strings)."""
    result: dict[str, Any] = orjson.loads(orjson.dumps(data))
    return result


class Outbox:
    """Notifications written in the caller's transaction: one exists iff the change commits."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def emit(
        self, project_id: uuid.UUID, mode: Mode, event_type: str, data: dict[str, Any]
    ) -> OutboxMessage | None:
        """One message and a delivery per endpoint of the project and mode that receives
        `event_type`; nothing at all when no endpoint does (nothing to send, nothing kept)."""
        endpoints = await EndpointRepository(self.session).subscribed(project_id, mode, event_type)
        if not endpoints:
            return None
        now = utcnow()
        message = OutboxMessage(
            id=uuid.uuid4(),
            project_id=project_id,
            mode=mode,
            event_type=event_type,
            body={"type": event_type, "timestamp": now.isoformat(), "data": json_safe(data)},
            created_at=now,
        )
        self.session.add(message)
        await self.session.flush()  # before its deliveries, which refer to it
        for endpoint in endpoints:
            self.session.add(
                Delivery(
                    endpoint_id=endpoint.id,
                    message_id=message.id,
                    event_type=event_type,
                    status=DeliveryStatus.PENDING,
                    attempts=0,
                    next_attempt_at=now,
                    created_at=now,
                )
            )
        await self.session.flush()
        return message


class EndpointService:
    def __init__(self, session: AsyncSession, secret_box: SecretBox) -> None:
        self.session = session
        self.secret_box = secret_box
        self.endpoints = EndpointRepository(session)
        self.log = DeliveryRepository(session)

    async def create(
        self, project_id: uuid.UUID, mode: Mode, url: str, events: list[str]
    ) -> tuple[WebhookEndpoint, str]:
        """A new endpoint and its signing secret (the one time it is seen in clear)."""
        secret = new_secret()
        endpoint = WebhookEndpoint(
            project_id=project_id,
            mode=mode,
            url=url,
            events=sorted(set(events)),
            secret_ciphertext=self.secret_box.encrypt(secret),
            created_at=utcnow(),
        )
        self.session.add(endpoint)
        await self.session.flush()
        return endpoint, secret

    async def of_project(
        self, project_id: uuid.UUID, *, limit: int, offset: int
    ) -> tuple[list[WebhookEndpoint], int]:
        return await self.endpoints.of_project(project_id, limit=limit, offset=offset)

    async def get(self, project_id: uuid.UUID, endpoint_id: uuid.UUID) -> WebhookEndpoint:
        endpoint = await self.endpoints.in_project(project_id, endpoint_id)
        if endpoint is None:
            raise NotificationEndpointNotFound(
                "No such webhook endpoint.", details={"id": str(endpoint_id)}
            )
        return endpoint

    async def delete(self, project_id: uuid.UUID, endpoint_id: uuid.UUID) -> None:
        """The endpoint and its delivery log; nothing more is sent to it."""
        endpoint = await self.get(project_id, endpoint_id)
        await self.session.delete(endpoint)
        await self.session.flush()

    async def deliveries(
        self, project_id: uuid.UUID, endpoint_id: uuid.UUID, *, limit: int, offset: int
    ) -> tuple[list[Delivery], int]:
        endpoint = await self.get(project_id, endpoint_id)
        return await self.log.of_endpoint(endpoint.id, limit=limit, offset=offset)

    async def retry(
        self, project_id: uuid.UUID, endpoint_id: uuid.UUID, delivery_id: uuid.UUID
    ) -> Delivery:
        """Send the delivery again (delivered or failed alike), with every attempt again."""
        endpoint = await self.get(project_id, endpoint_id)
        delivery = await self.log.of_endpoint_locked(endpoint.id, delivery_id)
        if delivery is None:
            raise NotificationDeliveryNotFound(
                "No such delivery.", details={"id": str(delivery_id)}
            )
        delivery.status = DeliveryStatus.PENDING
        delivery.attempts = 0
        delivery.next_attempt_at = utcnow()
        delivery.claimed_until = None
        delivery.claim_token = None
        await self.session.flush()
        return delivery


@dataclass(frozen=True)
class Outgoing:
    """One attempt, ready to send: nothing in it needs the database."""

    delivery_id: uuid.UUID
    url: str
    body: bytes
    headers: dict[str, str]


@dataclass(frozen=True)
class Outcome:
    status_code: int | None
    response: str | None
    error: str | None

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class DeliveryService:
    """What the worker does with the database: prepare an attempt, record its outcome."""

    def __init__(self, session: AsyncSession, secret_box: SecretBox) -> None:
        self.session = session
        self.secret_box = secret_box
        self.deliveries = DeliveryRepository(session)

    async def prepare(self, delivery_id: uuid.UUID, token: uuid.UUID) -> Outgoing | None:
        """The signed request of the attempt `token` claimed; None when the claim is no longer
        ours (retried by hand, taken over) or the endpoint is gone."""
        delivery = await self.deliveries.held(delivery_id, token)
        if delivery is None:
            return None
        endpoint = await EndpointRepository(self.session).get(delivery.endpoint_id)
        message = await OutboxRepository(self.session).get(delivery.message_id)
        if endpoint is None or message is None:
            return None
        body = orjson.dumps(message.body)
        headers = sign(self.secret_box.decrypt(endpoint.secret_ciphertext), message, body)
        return Outgoing(delivery.id, endpoint.url, body, headers)

    async def record(
        self, delivery_id: uuid.UUID, token: uuid.UUID, outcome: Outcome, policy: DeliveryPolicy
    ) -> DeliveryStatus | None:
        """The attempt's outcome, when the claim is still ours: delivered, due again after the
        backoff, or failed after the last attempt."""
        delivery = await self.deliveries.held(delivery_id, token)
        if delivery is None:
            return None
        now = utcnow()
        delivery.last_attempt_at = now
        delivery.last_status_code = outcome.status_code
        delivery.last_response = outcome.response
        delivery.last_error = outcome.error
        delivery.claimed_until = None
        delivery.claim_token = None
        if outcome.delivered:
            delivery.status = DeliveryStatus.DELIVERED
            delivery.delivered_at = now
            delivery.next_attempt_at = None
        elif delivery.attempts >= policy.max_attempts:
            delivery.status = DeliveryStatus.FAILED
            delivery.next_attempt_at = None
        else:
            delivery.next_attempt_at = now + policy.backoff(delivery.attempts)
        await self.session.flush()
        return delivery.status


def sign(
    secret: str, message: OutboxMessage, body: bytes, now: datetime | None = None
) -> dict[str, str]:
    """The Standard Webhooks headers of one attempt (its timestamp is the attempt's)."""
    sent_at = now or utcnow()
    webhook_id = message_id(message)
    signature = Webhook(secret).sign(webhook_id, sent_at, body.decode())
    return {
        "content-type": "application/json",
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(sent_at.timestamp())),
        "webhook-signature": signature,
    }
