"""HTTP routes for Stripe's webhooks (raw body, signed) and the inbox's admin view and replay."""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable
from datetime import UTC
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, BackgroundTasks, FastAPI, Header, Query, Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from billwarden.audit.service import audit
from billwarden.auth import CurrentConsoleUser, admin_access
from billwarden.core.modes import Mode
from billwarden.db.base import utcnow
from billwarden.db.changes import GenerationCache
from billwarden.db.unit_of_work import DbSession, unit_of_work
from billwarden.errors import error_responses
from billwarden.kit.schemas import Page, Pages
from billwarden.kit.state import AppReadCache, AppSecretBox
from billwarden.projects.exceptions import ProjectNotFound
from billwarden.projects.stripe_config import StripeConfigService
from billwarden.projects.stripe_endpoints import STRIPE_WEBHOOK_PREFIX
from billwarden.webhooks.exceptions import WebhookEventNotFound
from billwarden.webhooks.models import InboxStatus, WebhookEvent
from billwarden.webhooks.repository import WebhookEventRepository
from billwarden.webhooks.schemas import CatchUpRequest, CaughtUpRead, Received, WebhookEventRead
from billwarden.webhooks.service import (
    STRIPE_EVENT_RETENTION,
    InboxService,
    StripeAccess,
    cached_secrets,
    catch_up,
    endpoint_of,
    inbox_row,
    store_in,
    verified_event,
)

# Stripe's body is verified byte for byte: the request guard leaves it as sent
RAW_BODY_PREFIXES = (STRIPE_WEBHOOK_PREFIX,)

logger = logging.getLogger("billwarden.webhooks")
router = APIRouter(tags=["webhooks"])
admin_router = APIRouter(prefix="/api/v1/admin/webhook-events", tags=["webhooks"])
routers = [router, admin_router]


async def _wake_worker(app: FastAPI) -> None:
    # async: runs on the event loop, where the worker's Event lives
    wake_inbox_worker(app)


def wake_inbox_worker(app: Any) -> None:
    """Tell the embedded worker (if any) that an event was stored."""
    worker = getattr(app.state, "inbox_worker", None)
    if worker is not None:
        worker.wake.set()


STRIPE_EVENTS_PATH = STRIPE_WEBHOOK_PREFIX + "{project_id}/{mode}"


@router.post(
    STRIPE_EVENTS_PATH,
    response_model=Received,
    responses=error_responses(400, 404, 413, 503),
    summary="Stripe's events for a project and mode: stored durably, then acknowledged",
)
async def receive_stripe_event(
    project_id: str,
    mode: str,
    request: Request,
    session: DbSession,
    secret_box: AppSecretBox,
    cache: AppReadCache,
    background: BackgroundTasks,
    stripe_signature: Annotated[str | None, Header(alias="Stripe-Signature")] = None,
) -> Received:
    """200 only once the event is committed (a storage failure answers 503, so Stripe retries);
    a duplicate answers 200 and changes nothing. Missing signature: 400 VALIDATION_ERROR; a
    signature that matches no signing secret of the mode, or is over 300 s old: 400
    STRIPE_SIGNATURE_INVALID; not an event: 400 NOT_A_STRIPE_EVENT."""
    payload = await request.body()
    stored = await InboxService(session).receive(
        secret_box, project_id, mode, payload, stripe_signature, cache
    )
    if stored:
        background.add_task(_wake_worker, request.app)  # after the commit and the answer
    return Received()


def _read(row: WebhookEvent) -> WebhookEventRead:
    payload: dict[str, Any] = orjson.loads(row.payload)
    return WebhookEventRead(
        id=row.id,
        project_id=row.project_id,
        mode=row.mode,
        event_id=row.event_id,
        type=row.event_type,
        object_id=row.object_id,
        created=row.event_created,
        received_at=row.received_at,
        status=row.status,
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at,
        processed_at=row.processed_at,
        last_error=row.last_error,
        payload=payload,
    )


@admin_router.get(
    "",
    response_model=Page[WebhookEventRead],
    responses=error_responses(400, 401, 403, 404),
    summary="The project's webhook inbox, newest first (project admins)",
)
async def list_webhook_events(
    user: CurrentConsoleUser,
    session: DbSession,
    pages: Pages,
    project_id: Annotated[uuid.UUID, Query(alias="projectId")],
    mode: Mode | None = None,
    status: InboxStatus | None = None,
    event_type: Annotated[str | None, Query(alias="type", max_length=255)] = None,
) -> Page[WebhookEventRead]:
    access = await admin_access(session, user, project_id)
    rows, total = await InboxService(session).list_events(
        access.project.id, mode=mode, status=status, event_type=event_type, **pages.window
    )
    return Page[WebhookEventRead].of(rows, total, pages, _read)


@admin_router.post(
    "/catch-up",
    response_model=CaughtUpRead,
    responses=error_responses(400, 401, 403, 404, 409, 502),
    summary="Store the events Stripe kept that the inbox lacks (project admins)",
)
async def catch_up_events(
    body: CatchUpRequest,
    request: Request,
    user: CurrentConsoleUser,
    session: DbSession,
    background: BackgroundTasks,
) -> CaughtUpRead:
    """After the webhook endpoint was down: pages Stripe's `/v1/events` (it keeps 30 days) and
    stores each event the inbox lacks, which the worker then applies as if delivered."""
    access = await admin_access(session, user, body.project_id)
    since = body.since or utcnow() - STRIPE_EVENT_RETENTION
    if since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    state = request.app.state
    credentials = await StripeConfigService(session, state.secret_box).get_credentials(
        access.project.id, body.mode
    )
    # in this request's transaction (on SQLite the writer is held from the request's start)
    caught = await catch_up(
        StripeAccess(state.stripe_gateway, state.secret_box),
        credentials.secret_key,
        access.project.id,
        body.mode,
        since,
        store_in(session),
    )
    await audit(
        session,
        user,
        "webhooks.caught_up",
        project_id=access.project.id,
        target_type="project",
        target_id=access.project.id,
        mode=body.mode,
        after={"since": since.isoformat(), "seen": caught.seen, "stored": caught.stored},
    )
    if caught.stored:
        background.add_task(_wake_worker, request.app)
    return CaughtUpRead(seen=caught.seen, stored=caught.stored)


@admin_router.post(
    "/{event_row_id}/replay",
    response_model=WebhookEventRead,
    responses=error_responses(400, 401, 403, 404),
    summary="Apply a stored event again (project admins)",
)
async def replay_webhook_event(
    event_row_id: uuid.UUID,
    request: Request,
    user: CurrentConsoleUser,
    session: DbSession,
    background: BackgroundTasks,
) -> WebhookEventRead:
    service = InboxService(session)
    row = await service.get(event_row_id)
    try:
        await admin_access(session, user, row.project_id)
    except ProjectNotFound as exc:
        # an event of a project the caller cannot see is as unknown as a missing one
        raise WebhookEventNotFound(
            "No such webhook event.", details={"id": str(event_row_id)}
        ) from exc
    before = row.status.value
    row = await service.replay(event_row_id)
    await audit(
        session,
        user,
        "webhooks.event_replayed",
        project_id=row.project_id,
        target_type="webhook_event",
        target_id=row.id,
        mode=row.mode,
        before={"eventId": row.event_id, "status": before},
        after={"status": row.status.value},
    )
    background.add_task(_wake_worker, request.app)
    return _read(row)


_EVENTS_PATH = re.compile(re.escape(STRIPE_WEBHOOK_PREFIX) + r"([^/]+)/([^/]+)")
_RECEIVED = orjson.dumps({"received": True})


class _Template:
    path = STRIPE_EVENTS_PATH  # what the metrics label the request with, as for a routed one


class StripeIntake:
    """Stripe's deliveries on their hot path. A delivery whose endpoint's signing secrets are in
    the read cache (db.changes), whose signature holds and whose body is an event is stored in a
    unit of work of its own and acknowledged here, without routing or dependencies, and the
    verification runs before the unit of work, so SQLite's writer is held only to insert and
    commit. Everything else (a cache miss, every refusal, a storage error) goes on to the route
    with the body replayed: it answers in the error envelope, and a duplicate is still stored
    once. Innermost: the request guard, security headers, metrics and request id wrap it."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        cache: GenerationCache,
        sessionmaker: async_sessionmaker[AsyncSession],
        stored: Callable[[], None],
    ) -> None:
        self.app = app
        self.cache = cache
        self.sessionmaker = sessionmaker
        self.stored = stored  # wakes the embedded worker
        self.template = _Template()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        match = _EVENTS_PATH.fullmatch(scope["path"])
        if match is None:
            await self.app(scope, receive, send)
            return
        payload, complete = await _read_body(receive)
        if complete and await self._store(scope, match.group(1), match.group(2), payload):
            scope["route"] = self.template
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(_RECEIVED)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": _RECEIVED})
            self.stored()
            return
        await self.app(scope, _replay(payload, complete, receive), send)

    async def _store(self, scope: Scope, project_id: str, mode: str, payload: bytes) -> bool:
        """Whether the delivery is stored (or was already); False: the route decides."""
        signature = _header(scope, b"stripe-signature")
        if not signature:
            return False
        try:
            project, endpoint_mode = endpoint_of(project_id, mode)
            _, secrets = cached_secrets(self.cache, project, endpoint_mode)
            if secrets is None:
                return False
            event = verified_event(payload, signature, secrets)
        except Exception:  # every refusal is the route's to answer, in the envelope
            return False
        try:
            async with unit_of_work(self.sessionmaker) as session:
                await WebhookEventRepository(session).insert_if_new(
                    inbox_row(project, endpoint_mode, event, payload)
                )
        except Exception:  # the route tries again, and answers 503 if storing still fails
            logger.warning("storing a Stripe event failed; the route tries again", exc_info=True)
            return False
        return True


async def _read_body(receive: Receive) -> tuple[bytes, bool]:
    """The request's body, and False when the client went away before sending all of it."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks), False
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks), True


def _replay(payload: bytes, complete: bool, receive: Receive) -> Receive:
    """`receive` for the route: the body already read, then whatever comes next."""
    pending = complete or bool(payload)

    async def replayed() -> Message:
        nonlocal pending
        if pending:
            pending = False
            return {"type": "http.request", "body": payload, "more_body": not complete}
        return await receive()

    return replayed


def _header(scope: Scope, name: bytes) -> str | None:
    headers: list[tuple[bytes, bytes]] = scope["headers"]
    for key, value in headers:
        if key == name:
            return value.decode("latin-1")
    return None
