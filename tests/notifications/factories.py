"""Notification endpoints made through the service, and a receiver standing in for a tenant app."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncSession
from standardwebhooks.webhooks import Webhook
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from billwarden.core.modes import Mode
from billwarden.crypto import SecretBox
from billwarden.notifications.models import WebhookEndpoint
from billwarden.notifications.service import EndpointService
from billwarden_emulator.testing import serving


class Endpoints:
    def __init__(self, session: AsyncSession, secret_box: SecretBox) -> None:
        self.session = session
        self.secret_box = secret_box

    async def endpoint(
        self,
        project_id: uuid.UUID,
        url: str = "https://app.example.test/hooks",
        events: list[str] | None = None,
        mode: Mode = Mode.TEST,
    ) -> tuple[WebhookEndpoint, str]:
        return await EndpointService(self.session, self.secret_box).create(
            project_id, mode, url, events or ["*"]
        )


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes

    @property
    def id(self) -> str:
        return self.headers["webhook-id"]

    @property
    def json(self) -> dict[str, Any]:
        result: dict[str, Any] = orjson.loads(self.body)
        return result


@dataclass
class Receiver:
    """A tenant app's webhook route: records every request, answers the statuses queued in
    `answers` first (then 200); `hang` seconds of silence before answering the first request."""

    answers: list[int] = field(default_factory=list)
    hang: float = 0.0
    requests: list[Received] = field(default_factory=list)
    url: str = ""

    def app(self) -> Starlette:
        async def hook(request: Request) -> PlainTextResponse:
            self.requests.append(Received(dict(request.headers), await request.body()))
            if self.hang and len(self.requests) == 1:
                await asyncio.sleep(self.hang)
            status = self.answers.pop(0) if self.answers else 200
            return PlainTextResponse("boom" if status >= 500 else "ok", status_code=status)

        return Starlette(routes=[Route("/hooks", hook, methods=["POST"])])

    def verified(self, secret: str) -> list[dict[str, Any]]:
        """Every request's body, each verified with the Standard Webhooks library."""
        webhook = Webhook(secret)
        return [webhook.verify(received.body, received.headers) for received in self.requests]

    def of_type(self, event_type: str) -> list[Received]:
        return [r for r in self.requests if r.json["type"] == event_type]


@contextmanager
def receiving(receiver: Receiver) -> Iterator[Receiver]:
    with serving(receiver.app()) as url:
        receiver.url = f"{url}/hooks"
        yield receiver
