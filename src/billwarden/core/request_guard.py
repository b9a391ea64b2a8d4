"""The door every request passes: size limits first, then no NUL characters.

Limits, on every route (sign-in and the Stripe webhooks included): more than MAX_HEADER_COUNT
header lines, or more than MAX_HEADER_BYTES of header names and values together, answer 431; a
body larger than `max_body_bytes` answers 413, at once when its Content-Length says so, otherwise
as soon as it grows past the limit, reading no further. uvicorn's httptools parser accepts
megabytes of headers and bodies of any size, so these checks are the ones billwarden relies on.

NUL characters anywhere in a request's query string or body answer 400: no billwarden field may
hold one, PostgreSQL cannot store one in text, and SQLite would store it silently: refusing it at
the door keeps both backends alike and answers a clear 400. Webhook routes are exempt from this
check only (`raw_body_prefixes`, which the domains declare): their raw body belongs to Stripe and
is verified byte for byte.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_HEADER_COUNT = 100
MAX_HEADER_BYTES = 64 * 1024
_BODY_MARKERS = (b"\x00", b"\\u0000")
_FORM_MARKERS = (b"%00",)


def _has_nul(data: bytes, *, form: bool) -> bool:
    if any(marker in data for marker in _BODY_MARKERS):
        return True
    return form and any(marker in data.lower() for marker in _FORM_MARKERS)


def _headers_too_large(headers: Sequence[tuple[bytes, bytes]]) -> bool:
    if len(headers) > MAX_HEADER_COUNT:
        return True
    return sum(len(name) + len(value) for name, value in headers) > MAX_HEADER_BYTES


def _declared_length_exceeds(headers: Sequence[tuple[bytes, bytes]], limit: int) -> bool:
    """True when a Content-Length header declares more than `limit` bytes. A malformed one is
    left to the server, which refuses it; the limit still holds while the body is read."""
    for name, value in headers:
        if name != b"content-length":
            continue
        digits = value.strip().lstrip(b"0") or b"0"
        # compare lengths first: int() refuses strings of more than a few thousand digits
        if digits.isdigit() and (len(digits) > len(str(limit)) or int(digits) > limit):
            return True
    return False


class RequestGuard:
    """Pure ASGI middleware enforcing the limits above, then refusing NUL characters outside
    `raw_body_prefixes`. The body is read (up to the limit) before the app runs, then replayed."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        raw_body_prefixes: Sequence[str] = (),
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.raw_body_prefixes = tuple(raw_body_prefixes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        if _headers_too_large(headers):
            await _refuse_headers(send)
            return
        if _declared_length_exceeds(headers, self.max_body_bytes):
            await _refuse_body(send, self.max_body_bytes)
            return
        check_nul = not scope["path"].startswith(self.raw_body_prefixes)
        if check_nul and _has_nul(scope.get("query_string", b""), form=True):
            await _refuse_nul(send, "query string")
            return
        messages: list[Message] = []
        body = bytearray()
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            body.extend(message.get("body", b""))
            if len(body) > self.max_body_bytes:
                await _refuse_body(send, self.max_body_bytes)
                return
            if not message.get("more_body", False):
                break
        if check_nul:
            content_type = b""
            for name, value in headers:
                if name == b"content-type":
                    content_type = value.lower()
            form = content_type.startswith(b"application/x-www-form-urlencoded")
            if _has_nul(bytes(body), form=form):
                await _refuse_nul(send, "body")
                return
        del body  # the app gets the messages: no second copy held while it runs
        replay = iter(messages)

        async def replay_receive() -> Message:
            try:
                return next(replay)
            except StopIteration:
                return await receive()

        await self.app(scope, replay_receive, send)


async def _refuse_headers(send: Send) -> None:
    await _refuse(
        send,
        431,
        "REQUEST_HEADERS_TOO_LARGE",
        f"The request headers are too large: at most {MAX_HEADER_COUNT} headers and "
        f"{MAX_HEADER_BYTES} bytes of names and values are accepted.",
        {"limitCount": MAX_HEADER_COUNT, "limitBytes": MAX_HEADER_BYTES},
    )


async def _refuse_body(send: Send, limit: int) -> None:
    await _refuse(
        send,
        413,
        "PAYLOAD_TOO_LARGE",
        f"The request body is larger than the limit of {limit} bytes.",
        {"limitBytes": limit},
    )


async def _refuse_nul(send: Send, where: str) -> None:
    await _refuse(
        send,
        400,
        "VALIDATION_ERROR",
        f"The request {where} contains a NUL character, which no field accepts.",
        {"location": where},
    )


async def _refuse(
    send: Send, status: int, code: str, message: str, details: dict[str, Any]
) -> None:
    body = orjson.dumps({"code": code, "message": message, "details": details})
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
