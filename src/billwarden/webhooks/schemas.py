"""Wire shapes of the webhook routes (camelCase)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from billwarden.core.modes import Mode
from billwarden.kit.schemas import CamelModel
from billwarden.webhooks.models import InboxStatus


class Received(CamelModel):
    received: Literal[True] = True


class WebhookEventRead(CamelModel):
    id: uuid.UUID
    project_id: uuid.UUID
    mode: Mode
    event_id: str
    type: str
    object_id: str | None
    created: datetime = Field(description="When Stripe created the event.")
    received_at: datetime
    status: InboxStatus
    attempts: int
    next_attempt_at: datetime | None
    processed_at: datetime | None
    last_error: str | None
    payload: dict[str, Any] = Field(description="The event as Stripe sent it.")


class CatchUpRequest(CamelModel):
    project_id: uuid.UUID
    mode: Mode = Mode.TEST
    since: datetime | None = Field(
        default=None, description="Events created at or after; default and earliest: 30 days ago."
    )


class CaughtUpRead(CamelModel):
    seen: int = Field(description="Stripe's events in the window.")
    stored: int = Field(description="The ones the inbox lacked: stored now, applied by the worker.")
