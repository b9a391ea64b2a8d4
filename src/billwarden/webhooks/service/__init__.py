"""Receiving Stripe's events into the inbox, and applying them exactly once.

Receiving does no Stripe call and no handler work: verify the signature over the raw body, store
the event (once per project, mode and event id) and answer. Applying happens in the worker
(`webhooks.tasks`), one event per unit of work: the handler's changes and the event's
`processed` mark commit together, so an event is applied once however often it is delivered or
a worker dies.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from billwarden.config import Settings
from billwarden.core.modes import Mode
from billwarden.crypto import SecretBox
from billwarden.db.base import utcnow
from billwarden.db.changes import GenerationCache
from billwarden.projects.exceptions import StripeNotConfigured
from billwarden.projects.stripe_config import StripeConfigService
from billwarden.stripe_gateway import StripeGateway, verify_webhook_signature
from billwarden.webhooks.exceptions import (
    MissingSignature,
    NotAStripeEvent,
    WebhookEndpointUnknown,
    WebhookEventNotFound,
)
from billwarden.webhooks.models import InboxStatus, WebhookEvent
from billwarden.webhooks.repository import WebhookEventRepository
from billwarden.webhooks.service.registry import EventContext, HandlerRegistry

MAX_ERROR_LENGTH = 4000
LATEST_TIMESTAMP = 253402300799  # 9999-12-31T23:59:59Z, the last second a datetime holds


@dataclass(frozen=True)
class StripeAccess:
    """What handlers need to call Stripe: the gateway and the box the keys are sealed in."""

    gateway: StripeGateway
    secret_box: SecretBox


@dataclass(frozen=True)
class InboxPolicy:
    """How the worker retries: capped exponential backoff, then `failed`."""

    max_attempts: int
    retry_base: timedelta
    retry_max: timedelta
    lease: timedelta
    batch_size: int

    @classmethod
    def from_settings(cls, settings: Settings) -> InboxPolicy:
        return cls(
            max_attempts=settings.webhook_max_attempts,
            retry_base=timedelta(seconds=settings.webhook_retry_base_seconds),
            retry_max=timedelta(seconds=settings.webhook_retry_max_seconds),
            lease=timedelta(seconds=settings.worker_lease_seconds),
            batch_size=settings.worker_batch_size,
        )

    def retry_delay(self, attempts: int) -> timedelta:
        delay: timedelta = self.retry_base * (2 ** min(max(0, attempts - 1), 32))
        return min(self.retry_max, delay)


def endpoint_of(project_id: str, mode: str) -> tuple[uuid.UUID, Mode]:
    """The (project, mode) a webhook URL names; a malformed one is as unknown as a missing one."""
    try:
        return uuid.UUID(project_id), Mode(mode)
    except ValueError as exc:
        raise WebhookEndpointUnknown(
            "No webhook endpoint at this URL: it is /api/v1/payments/stripe/webhooks/"
            "{project_id}/test or .../live.",
        ) from exc


def _storable(*texts: object) -> bool:
    # PostgreSQL cannot store a NUL in text; Stripe never sends one
    return not any(isinstance(text, str) and "\x00" in text for text in texts)


def parse_event(payload: bytes) -> dict[str, Any]:
    """The verified body as a Stripe event, or NotAStripeEvent."""
    try:
        event = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise NotAStripeEvent("The body is not JSON.") from exc
    data = event.get("data") if isinstance(event, dict) else None
    valid = (
        isinstance(event, dict)
        and event.get("object") == "event"
        and isinstance(event.get("id"), str)
        and 0 < len(event["id"]) <= 255
        and isinstance(event.get("type"), str)
        and 0 < len(event["type"]) <= 255
        and isinstance(event.get("created"), int)
        and not isinstance(event.get("created"), bool)
        and 0 <= event["created"] <= LATEST_TIMESTAMP
        and isinstance(data, dict)
        and isinstance(data.get("object"), dict)
        and _storable(event["id"], event["type"], data["object"].get("id"))
    )
    if not valid:
        raise NotAStripeEvent(
            "The body is not a Stripe event (object, id, type, created and data.object)."
        )
    return dict(event)


def _secrets_lookup(project: uuid.UUID, mode: Mode) -> tuple[object, ...]:
    return ("webhook_secrets", project, mode)


def cached_secrets(
    cache: GenerationCache | None, project: uuid.UUID, mode: Mode
) -> tuple[int | None, tuple[str, ...] | None]:
    """The (project, mode)'s signing secrets as last read, while no Stripe configuration has
    changed since (db.changes), with the generation to store a fresh read under; None: read
    them."""
    if cache is None:
        return None, None
    generation, secrets = cache.get(_secrets_lookup(project, mode))
    return generation, secrets if isinstance(secrets, tuple) else None


def verified_event(payload: bytes, signature: str, secrets: tuple[str, ...]) -> dict[str, Any]:
    """The delivery's event, once its signature holds for one of `secrets`."""
    verify_webhook_signature(payload, signature, secrets)
    return parse_event(payload)


def inbox_row(
    project: uuid.UUID, mode: Mode, event: dict[str, Any], payload: bytes
) -> dict[str, Any]:
    """The inbox row of a verified event: pending, due now, the raw body kept as sent."""
    object_id = event["data"]["object"].get("id")
    now = utcnow()
    return {
        "project_id": project,
        "mode": mode,
        "event_id": event["id"],
        "event_type": event["type"],
        "object_id": object_id[:255] if isinstance(object_id, str) else None,
        "event_created": datetime.fromtimestamp(event["created"], UTC),
        "payload": payload.decode("utf-8"),
        "received_at": now,
        "status": InboxStatus.PENDING,
        "attempts": 0,
        "next_attempt_at": now,
    }


# how far back Stripe keeps events for `GET /v1/events`
STRIPE_EVENT_RETENTION = timedelta(days=30)


@dataclass(frozen=True)
class CaughtUp:
    seen: int  # Stripe's events in the window
    stored: int  # of those, the ones the inbox lacked (now pending, applied by the worker)


StoreEvents = Callable[[uuid.UUID, Mode, list[tuple[dict[str, Any], bytes]]], Awaitable[int]]


def store_in(session: AsyncSession) -> StoreEvents:
    """Store a page of events in `session`'s transaction; how many the inbox lacked."""

    async def store(
        project_id: uuid.UUID, mode: Mode, events: list[tuple[dict[str, Any], bytes]]
    ) -> int:
        inbox = WebhookEventRepository(session)
        stored = 0
        for event, payload in events:
            stored += int(await inbox.insert_if_new(inbox_row(project_id, mode, event, payload)))
        return stored

    return store


async def catch_up(
    stripe: StripeAccess,
    secret_key: str,
    project_id: uuid.UUID,
    mode: Mode,
    since: datetime,
    store: StoreEvents,
) -> CaughtUp:
    """Store every event Stripe kept since `since` (at most 30 days back) that the inbox lacks,
    as a delivery would, a page at a time through `store` (no transaction needs to stay open
    while Stripe is read): the worker then applies them through the normal path, and events
    already stored are left as they are, so nothing is applied twice."""
    earliest = utcnow() - STRIPE_EVENT_RETENTION
    params: dict[str, Any] = {
        "limit": 100,
        "created": {"gte": int(max(since, earliest).timestamp())},
    }
    seen = stored = 0
    while True:
        page = await stripe.gateway.list_page(project_id, mode, secret_key, "/v1/events", params)
        events = [event for event in page["data"] if isinstance(event, dict)]
        parsed = []
        for event in events:
            payload = orjson.dumps(event)
            try:
                parsed.append((parse_event(payload), payload))
            except NotAStripeEvent:
                continue
        seen += len(parsed)
        stored += await store(project_id, mode, parsed)
        if not page.get("has_more") or not events:
            return CaughtUp(seen, stored)
        params = {**params, "starting_after": events[-1]["id"]}


class InboxService:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.events = WebhookEventRepository(session)

    async def receive(
        self,
        secret_box: SecretBox,
        project_id: str,
        mode: str,
        payload: bytes,
        signature: str | None,
        cache: GenerationCache | None = None,
    ) -> bool:
        """Verify and store one delivery; whether the event was new (a duplicate changes
        nothing). The caller acknowledges only after this unit of work commits. The signing
        secrets come from `cache` while no Stripe configuration has changed (db.changes)."""
        if not signature:
            raise MissingSignature("Missing Stripe-Signature header.")
        project, endpoint_mode = endpoint_of(project_id, mode)
        generation, secrets = cached_secrets(cache, project, endpoint_mode)
        if secrets is None:
            try:
                credentials = await StripeConfigService(self.session, secret_box).get_credentials(
                    project, endpoint_mode
                )
            except StripeNotConfigured as exc:
                raise WebhookEndpointUnknown(
                    f"No {endpoint_mode.value}-mode Stripe configuration for this project, so no "
                    "webhook endpoint here.",
                ) from exc
            secrets = credentials.webhook_secrets
            if cache is not None:
                cache.put(_secrets_lookup(project, endpoint_mode), generation, secrets)
        event = verified_event(payload, signature, secrets)
        return await self.events.insert_if_new(inbox_row(project, endpoint_mode, event, payload))

    async def list_events(
        self,
        project_id: uuid.UUID,
        *,
        mode: Mode | None,
        status: InboxStatus | None,
        event_type: str | None,
        limit: int,
        offset: int,
    ) -> tuple[list[WebhookEvent], int]:
        return await self.events.list_events(
            project_id, mode=mode, status=status, event_type=event_type, limit=limit, offset=offset
        )

    async def get(self, event_row_id: uuid.UUID) -> WebhookEvent:
        row = await self.events.get(event_row_id)
        if row is None:
            raise WebhookEventNotFound("No such webhook event.", details={"id": str(event_row_id)})
        return row

    async def replay(self, event_row_id: uuid.UUID) -> WebhookEvent:
        """Apply the stored event again, whatever became of it, with a fresh set of attempts
        (the raw event is kept forever, so this works long after Stripe has forgotten it). An
        application in progress finishes first: the row is locked."""
        row = await self.events.lock(event_row_id)
        if row is None:
            raise WebhookEventNotFound("No such webhook event.", details={"id": str(event_row_id)})
        row.status = InboxStatus.PENDING
        row.attempts = 0
        row.next_attempt_at = utcnow()
        row.claimed_until = None
        row.claim_token = None
        row.last_error = None
        await self.session.flush()
        return row

    async def apply(
        self,
        event_row_id: uuid.UUID,
        token: uuid.UUID,
        registry: HandlerRegistry,
        stripe: StripeAccess,
    ) -> InboxStatus | None:
        """Run the event's handler in this unit of work and mark the outcome with it, if the
        event is still ours (`token`) and pending; None otherwise. The row stays locked while the
        handler runs, so a worker taking over an expired claim, or a replay, waits and then sees
        the outcome."""
        row = await self.events.lock(event_row_id)
        if row is None or row.status is not InboxStatus.PENDING or row.claim_token != token:
            return None
        # the row stays locked while the handler runs: a worker whose claim query meets it skips
        # it (PostgreSQL) or waits (SQLite), so an expired lease never lets two apply it
        handler = registry.handler_for(row.event_type)
        if handler is not None:
            event = orjson.loads(row.payload)
            await handler(
                EventContext(
                    self.session, row.project_id, row.mode, event, stripe.gateway, stripe.secret_box
                )
            )
        row.status = InboxStatus.PROCESSED if handler is not None else InboxStatus.IGNORED
        row.processed_at = utcnow()
        row.claimed_until = None
        row.claim_token = None
        row.last_error = None
        await self.session.flush()
        return row.status

    async def record_failure(
        self, event_row_id: uuid.UUID, token: uuid.UUID, error: BaseException, policy: InboxPolicy
    ) -> InboxStatus | None:
        """After a failed attempt (whose changes were rolled back): retry later, or give up. Only
        the claim's holder records it, and never over an outcome already recorded."""
        row = await self.events.lock(event_row_id)
        if row is None or row.status is not InboxStatus.PENDING or row.claim_token != token:
            return None
        row.last_error = describe(error)
        row.claimed_until = None
        row.claim_token = None
        if row.attempts >= policy.max_attempts:
            row.status = InboxStatus.FAILED
            row.next_attempt_at = None
        else:
            row.next_attempt_at = utcnow() + policy.retry_delay(row.attempts)
        await self.session.flush()
        return row.status


def describe(error: BaseException) -> str:
    """What an admin sees of a failure: the error's type and message, without SQL parameters."""
    message = str(getattr(error, "orig", None) or error)
    return f"{type(error).__name__}: {message}"[:MAX_ERROR_LENGTH]
