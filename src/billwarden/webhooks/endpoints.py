"""HTTP routes for Stripe's webhooks (raw body, signed) and the inbox's admin view and replay."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, BackgroundTasks, FastAPI, Header, Query, Request

from billwarden.auth import CurrentConsoleUser, admin_access
from billwarden.core.modes import Mode
from billwarden.db.unit_of_work import DbSession
from billwarden.errors import error_responses
from billwarden.kit.schemas import Page, Pages
from billwarden.kit.state import AppReadCache, AppSecretBox
from billwarden.projects.exceptions import ProjectNotFound
from billwarden.projects.stripe_endpoints import STRIPE_WEBHOOK_PREFIX
from billwarden.webhooks.exceptions import WebhookEventNotFound
from billwarden.webhooks.models import InboxStatus, WebhookEvent
from billwarden.webhooks.schemas import Received, WebhookEventRead
from billwarden.webhooks.service import InboxService

# Stripe's body is verified byte for byte: the request guard leaves it as sent
RAW_BODY_PREFIXES = (STRIPE_WEBHOOK_PREFIX,)

router = APIRouter(tags=["webhooks"])
admin_router = APIRouter(prefix="/api/v1/admin/webhook-events", tags=["webhooks"])
routers = [router, admin_router]


async def _wake_worker(app: FastAPI) -> None:
    # async: runs on the event loop, where the worker's Event lives
    worker = getattr(app.state, "inbox_worker", None)
    if worker is not None:
        worker.wake.set()


@router.post(
    STRIPE_WEBHOOK_PREFIX + "{project_id}/{mode}",
    response_model=Received,
    responses=error_responses(400, 404, 503),
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
    row = await service.replay(event_row_id)
    background.add_task(_wake_worker, request.app)
    return _read(row)
