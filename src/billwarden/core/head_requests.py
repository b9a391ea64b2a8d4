"""HEAD answers exactly as GET would, without the body.

FastAPI registers a GET route for GET only, so HEAD would answer 405. Rather than doubling every
read route (and the OpenAPI document), this layer hands the app a copy of the request that says
GET, then sends the answer's status and headers (Content-Type and Content-Length included) and
drops its body. Authentication, authorization, errors and redirects are GET's by construction;
CSRF does not apply (both methods are safe). Metrics keep the method HEAD and the route template
GET matched. The server sees the original HEAD scope, so it expects no body on the wire.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

# what routing writes into the scope that the layers outside this one read (metrics: the route)
_ROUTING_KEYS = ("route", "endpoint", "path_params")


class HeadAsGet:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return
        as_get = {**scope, "method": "GET"}

        async def send_without_body(message: Message) -> None:
            if message["type"] == "http.response.body":
                if message.get("more_body", False):
                    return
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        try:
            await self.app(as_get, receive, send_without_body)
        finally:
            for key in _ROUTING_KEYS:
                if key in as_get:
                    scope[key] = as_get[key]
