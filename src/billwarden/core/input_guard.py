"""Refuse NUL characters anywhere in a request's query string or body.

No billwarden field may hold one, PostgreSQL cannot store one in text, and SQLite would store
it silently: refusing it at the door keeps both backends alike and answers a clear 400.
Webhook routes are exempt: their raw body belongs to Stripe and is verified byte for byte.
"""

from __future__ import annotations

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

EXEMPT_PREFIXES = ("/api/v1/payments/stripe/webhooks/", "/api/stripe/webhook")
_BODY_MARKERS = (b"\x00", b"\\u0000")
_FORM_MARKERS = (b"%00",)


def _has_nul(data: bytes, *, form: bool) -> bool:
    if any(marker in data for marker in _BODY_MARKERS):
        return True
    return form and any(marker in data.lower() for marker in _FORM_MARKERS)


class NulCharacterGuard:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(EXEMPT_PREFIXES):
            await self.app(scope, receive, send)
            return
        if _has_nul(scope.get("query_string", b""), form=True):
            await _refuse(send, "query string")
            return
        content_type = b""
        for name, value in scope["headers"]:
            if name == b"content-type":
                content_type = value.lower()
        form = content_type.startswith(b"application/x-www-form-urlencoded")
        messages: list[Message] = []
        body = bytearray()
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            body.extend(message.get("body", b""))
            if not message.get("more_body", False):
                break
        if _has_nul(bytes(body), form=form):
            await _refuse(send, "body")
            return
        replay = iter(messages)

        async def replay_receive() -> Message:
            try:
                return next(replay)
            except StopIteration:
                return await receive()

        await self.app(scope, replay_receive, send)


async def _refuse(send: Send, where: str) -> None:
    body = orjson.dumps(
        {
            "code": "VALIDATION_ERROR",
            "message": f"The request {where} contains a NUL character, which no field accepts.",
            "details": {"location": where},
        }
    )
    await send(
        {
            "type": "http.response.start",
            "status": 400,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
