"""Wire shapes for the tenant app's webhook endpoints and their delivery log (camelCase)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field, HttpUrl, UrlConstraints

from billwarden.core.modes import Mode
from billwarden.kit.schemas import CamelModel
from billwarden.notifications.models import Delivery, DeliveryStatus, WebhookEndpoint

EventName = Literal[
    "entitlement.updated", "subscription.updated", "payment.succeeded", "payment.failed", "*"
]
EndpointUrl = Annotated[HttpUrl, UrlConstraints(max_length=2048, allowed_schemes=["http", "https"])]


class EndpointCreate(CamelModel):
    url: EndpointUrl
    events: list[EventName] = Field(
        min_length=1,
        max_length=5,
        description="entitlement.updated, subscription.updated, payment.succeeded, "
        "payment.failed, or * for every one.",
    )
    mode: Mode = Mode.TEST


class EndpointRead(CamelModel):
    id: uuid.UUID
    url: str
    events: list[str]
    mode: Mode
    created_at: datetime

    @classmethod
    def of(cls, row: WebhookEndpoint) -> EndpointRead:
        return cls(
            id=row.id,
            url=row.url,
            events=list(row.events),
            mode=row.mode,
            created_at=row.created_at,
        )


class EndpointCreated(EndpointRead):
    secret: str = Field(
        description="The Standard Webhooks signing secret (whsec_...): shown this once."
    )


class DeliveryRead(CamelModel):
    id: uuid.UUID
    endpoint_id: uuid.UUID
    webhook_id: str = Field(description="The webhook-id header: the same on every attempt.")
    event_type: str
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime | None
    last_attempt_at: datetime | None
    last_status_code: int | None
    last_response: str | None
    last_error: str | None
    delivered_at: datetime | None
    created_at: datetime

    @classmethod
    def of(cls, row: Delivery) -> DeliveryRead:
        return cls(
            id=row.id,
            endpoint_id=row.endpoint_id,
            webhook_id=f"msg_{row.message_id.hex}",
            event_type=row.event_type,
            status=row.status,
            attempts=row.attempts,
            next_attempt_at=row.next_attempt_at,
            last_attempt_at=row.last_attempt_at,
            last_status_code=row.last_status_code,
            last_response=row.last_response,
            last_error=row.last_error,
            delivered_at=row.delivered_at,
            created_at=row.created_at,
        )
