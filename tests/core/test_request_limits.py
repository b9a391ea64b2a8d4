"""Requests too large to be honest are refused at the door, before anything buffers them, and a
405 names every method its path serves."""

from __future__ import annotations

import json
import tracemalloc
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from billwarden.app import create_app
from billwarden.config import Settings
from billwarden.core.request_guard import RequestGuard
from billwarden.domains import raw_body_prefixes
from billwarden_emulator.testing import serving

MIB = 1024 * 1024
DEFAULT_LIMIT = MIB
HEADER_COUNT_LIMIT = 100
HEADER_BYTES_LIMIT = 64 * 1024
CHUNK = b"x" * (64 * 1024)
LOGIN = "/api/v1/auth/login"
WEBHOOK_PATHS = (f"/api/v1/payments/stripe/webhooks/{uuid.uuid4()}/test", "/api/stripe/webhook")


def assert_envelope(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body: dict[str, Any] = response.json()
    assert set(body) == {"code", "message", "details"}
    assert body["code"] == code
    assert isinstance(body["message"], str) and body["message"]
    return body


async def _chunks(total: int, pulled: list[int] | None = None) -> AsyncIterator[bytes]:
    """`total` bytes in 64 KiB chunks (no Content-Length: sent chunked), counting what is read."""
    sent = 0
    while sent < total:
        chunk = CHUNK[: total - sent]
        sent += len(chunk)
        if pulled is not None:
            pulled[0] = sent
        yield chunk


# -- the middleware alone, around an app that echoes the body it received ----------------------


async def _echo(scope: Scope, receive: Receive, send: Send) -> None:
    body = bytearray()
    while True:
        message = await receive()
        body.extend(message.get("body", b""))
        if not message.get("more_body", False):
            break
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": bytes(body)})


@dataclass
class Outcome:
    status: int
    headers: dict[bytes, bytes]
    body: bytes
    pulled: int  # request body bytes taken from the server

    @property
    def code(self) -> str:
        """The error code of the envelope the guard answered."""
        return str(json.loads(self.body)["code"])


async def _drive(
    app: ASGIApp,
    *,
    path: str = "/probe",
    headers: Sequence[tuple[bytes, bytes]] = (),
    chunks: Sequence[bytes] = (b"",),
) -> Outcome:
    """Call `app` as a server would, feeding `chunks` as the request body."""
    pulled = 0
    index = 0

    async def receive() -> Message:
        nonlocal pulled, index
        if index >= len(chunks):
            return {"type": "http.disconnect"}
        chunk = chunks[index]
        index += 1
        pulled += len(chunk)
        return {"type": "http.request", "body": chunk, "more_body": index < len(chunks)}

    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    scope: Scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": list(headers),
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    await app(scope, receive, send)
    start = sent[0]
    return Outcome(
        status=start["status"],
        headers=dict(start["headers"]),
        body=b"".join(message.get("body", b"") for message in sent[1:]),
        pulled=pulled,
    )


def _guard(limit: int = 2048, **kwargs: Any) -> RequestGuard:
    return RequestGuard(_echo, max_body_bytes=limit, **kwargs)


class TestBodyLimitInTheGuard:
    async def test_body_at_the_limit_reaches_the_app_whole(self) -> None:
        outcome = await _drive(_guard(2048), chunks=[b"a" * 1000, b"b" * 1048])
        assert outcome.status == 200
        assert outcome.body == b"a" * 1000 + b"b" * 1048

    async def test_declared_length_over_the_limit_is_refused_before_reading(self) -> None:
        outcome = await _drive(
            _guard(2048), headers=[(b"content-length", b"104857600")], chunks=[CHUNK]
        )
        assert outcome.status == 413
        assert outcome.code == "PAYLOAD_TOO_LARGE"
        assert outcome.pulled == 0
        assert outcome.headers[b"content-type"] == b"application/json"

    async def test_declared_length_at_the_limit_is_read(self) -> None:
        outcome = await _drive(
            _guard(2048), headers=[(b"content-length", b"2048")], chunks=[b"a" * 2048]
        )
        assert outcome.status == 200

    async def test_chunked_body_growing_past_the_limit_stops_being_read(self) -> None:
        outcome = await _drive(_guard(2048), chunks=[b"a" * 1024, b"a" * 1024, b"a", CHUNK])
        assert outcome.status == 413
        assert outcome.code == "PAYLOAD_TOO_LARGE"
        assert outcome.pulled == 2049

    async def test_raw_body_prefixes_skip_the_nul_check_only(self) -> None:
        guard = _guard(2048, raw_body_prefixes=["/raw/"])
        kept = await _drive(guard, path="/raw/hook", chunks=[b'{"a": "\x00"}'])
        assert kept.status == 200
        assert kept.body == b'{"a": "\x00"}'
        refused = await _drive(guard, path="/raw/hook", chunks=[b"a" * 2049])
        assert refused.status == 413
        assert refused.code == "PAYLOAD_TOO_LARGE"
        checked = await _drive(guard, path="/api/stripe/webhook", chunks=[b"\x00"])
        assert checked.status == 400
        assert checked.code == "VALIDATION_ERROR"

    async def test_the_domains_raw_body_paths_are_stripes_webhook_routes(self) -> None:
        guard = _guard(2048, raw_body_prefixes=raw_body_prefixes())
        path = f"/api/v1/payments/stripe/webhooks/{uuid.uuid4()}/live"
        outcome = await _drive(guard, path=path, chunks=[b"\x00"])
        assert outcome.status == 200, path
        too_large = await _drive(guard, path=path, chunks=[b"a" * 2049])
        assert too_large.status == 413
        assert too_large.code == "PAYLOAD_TOO_LARGE"
        with_nul = await _drive(guard, path="/api/v1/projects", chunks=[b"\x00"])
        assert with_nul.status == 400
        assert with_nul.code == "VALIDATION_ERROR"


class TestHeaderLimitsInTheGuard:
    async def test_header_count_at_the_limit_passes(self) -> None:
        outcome = await _drive(_guard(), headers=[(b"x-h", b"1")] * HEADER_COUNT_LIMIT)
        assert outcome.status == 200

    async def test_one_header_over_the_count_is_431(self) -> None:
        outcome = await _drive(_guard(), headers=[(b"x-h", b"1")] * (HEADER_COUNT_LIMIT + 1))
        assert outcome.status == 431
        assert outcome.code == "REQUEST_HEADERS_TOO_LARGE"
        assert outcome.pulled == 0

    async def test_header_bytes_at_the_limit_pass(self) -> None:
        headers = [(b"x-pad", b"a" * (HEADER_BYTES_LIMIT - len(b"x-pad")))]
        assert (await _drive(_guard(), headers=headers)).status == 200

    async def test_one_header_byte_over_the_limit_is_431(self) -> None:
        headers = [(b"x-pad", b"a" * (HEADER_BYTES_LIMIT - len(b"x-pad") + 1))]
        outcome = await _drive(_guard(), headers=headers)
        assert outcome.status == 431
        assert outcome.code == "REQUEST_HEADERS_TOO_LARGE"

    async def test_webhook_routes_are_held_to_the_header_limits(self) -> None:
        headers = [(b"x-h", b"1")] * (HEADER_COUNT_LIMIT + 1)
        for path in WEBHOOK_PATHS:
            outcome = await _drive(_guard(), path=path, headers=headers)
            assert outcome.status == 431, path
            assert outcome.code == "REQUEST_HEADERS_TOO_LARGE", path


# -- the whole app ------------------------------------------------------------------------------


class TestBodyLimitOnTheApp:
    async def test_large_sign_in_body_is_413_with_the_limit(
        self, client: httpx.AsyncClient
    ) -> None:
        response = await client.post(
            LOGIN,
            content=b"{" + b" " * DEFAULT_LIMIT + b"}",
            headers={"content-type": "application/json"},
        )
        body = assert_envelope(response, 413, "PAYLOAD_TOO_LARGE")
        assert body["details"] == {"limitBytes": DEFAULT_LIMIT}

    async def test_sign_in_body_of_exactly_the_limit_reaches_the_route(
        self, client: httpx.AsyncClient
    ) -> None:
        payload = b'{"email": "nobody@example.test", "password": "secret!"}'
        response = await client.post(
            LOGIN,
            content=payload + b" " * (DEFAULT_LIMIT - len(payload)),
            headers={"content-type": "application/json"},
        )
        assert response.status_code == 401
        assert response.json()["code"] == "INVALID_CREDENTIALS"

    async def test_chunked_body_is_read_no_further_than_the_limit(
        self, client: httpx.AsyncClient
    ) -> None:
        pulled = [0]
        response = await client.post(
            LOGIN,
            content=_chunks(50 * MIB, pulled),
            headers={"content-type": "application/json"},
        )
        assert_envelope(response, 413, "PAYLOAD_TOO_LARGE")
        assert pulled[0] <= DEFAULT_LIMIT + len(CHUNK)

    async def test_streaming_50_mib_keeps_memory_small(self, client: httpx.AsyncClient) -> None:
        tracemalloc.start()
        try:
            response = await client.post(
                LOGIN, content=_chunks(50 * MIB), headers={"content-type": "application/json"}
            )
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert peak < 8 * MIB, f"peak {peak / MIB:.1f} MiB"
        assert response.status_code == 413
        assert response.json()["code"] == "PAYLOAD_TOO_LARGE"

    @pytest.mark.parametrize("path", WEBHOOK_PATHS)
    async def test_webhook_routes_are_limited_too(
        self, client: httpx.AsyncClient, path: str
    ) -> None:
        response = await client.post(path, content=b"a" * (DEFAULT_LIMIT + 1))
        assert_envelope(response, 413, "PAYLOAD_TOO_LARGE")

    async def test_the_setting_sets_the_limit(
        self, settings: Settings, engine: AsyncEngine
    ) -> None:
        app = create_app(
            settings.model_copy(update={"max_body_bytes": 4096}),
            engine=engine,
            configure_logs=False,
        )
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            response = await http.post(LOGIN, content=b"a" * 4097)
        body = assert_envelope(response, 413, "PAYLOAD_TOO_LARGE")
        assert body["details"] == {"limitBytes": 4096}


class TestMaxBodyBytesSetting:
    def test_defaults_to_one_mebibyte(self) -> None:
        assert Settings().max_body_bytes == DEFAULT_LIMIT

    def test_read_from_the_environment(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("BILLWARDEN_MAX_BODY_BYTES", "4096")
        assert Settings().max_body_bytes == 4096

    def test_below_one_kibibyte_is_refused(self) -> None:
        with pytest.raises(ValidationError):
            Settings(max_body_bytes=1023)


class TestHeaderLimitsOnTheApp:
    async def test_too_many_headers_is_431(self, client: httpx.AsyncClient) -> None:
        headers = {f"x-filler-{i}": "1" for i in range(HEADER_COUNT_LIMIT)}
        response = await client.get("/healthz", headers=headers)
        assert_envelope(response, 431, "REQUEST_HEADERS_TOO_LARGE")

    async def test_too_many_header_bytes_is_431(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/healthz", headers={"x-filler": "a" * HEADER_BYTES_LIMIT})
        assert_envelope(response, 431, "REQUEST_HEADERS_TOO_LARGE")

    async def test_ordinary_headers_pass(self, client: httpx.AsyncClient) -> None:
        headers = {f"x-filler-{i}": "1" for i in range(50)}
        assert (await client.get("/healthz", headers=headers)).status_code == 200


# -- over real HTTP: uvicorn's parser lets these through, the guard must not ------------------


def _served(app: FastAPI) -> AbstractContextManager[str]:
    """Serve `app` with uvicorn (the parser `serve` uses) in a background thread."""
    return serving(app, lifespan="off")


class TestOverRealHttp:
    async def test_oversized_requests_are_refused_and_the_server_stays_up(
        self, settings: Settings
    ) -> None:
        # its own engine, never connected: nothing here reaches the database
        app = create_app(settings, configure_logs=False)
        try:
            with _served(app) as url:
                async with httpx.AsyncClient(base_url=url, timeout=30) as http:
                    huge_header = await http.get("/healthz", headers={"x-filler": "a" * MIB})
                    many_headers = await http.get(
                        "/healthz", headers=[(f"x-filler-{i}", "1") for i in range(5000)]
                    )
                    big_body = await http.post(LOGIN, content=b"a" * (2 * MIB))
                    big_chunked = await http.post(LOGIN, content=_chunks(2 * MIB))
                    after = await http.get("/healthz")
        finally:
            await app.state.engine.dispose()
        assert_envelope(huge_header, 431, "REQUEST_HEADERS_TOO_LARGE")
        assert_envelope(many_headers, 431, "REQUEST_HEADERS_TOO_LARGE")
        body = assert_envelope(big_body, 413, "PAYLOAD_TOO_LARGE")
        assert body["details"] == {"limitBytes": DEFAULT_LIMIT}
        assert_envelope(big_chunked, 413, "PAYLOAD_TOO_LARGE")
        assert after.status_code == 200


# -- 405: Allow names every method the path serves ----------------------------------------------

PROJECT_ID = "8b0f6a1e-6f0c-4f57-9d0e-3f1b9f3c2a11"
ALLOWED = [  # HEAD wherever GET: every read route answers it like GET
    (f"/api/v1/projects/{PROJECT_ID}", ["GET", "HEAD", "PATCH"]),
    ("/api/v1/projects", ["GET", "HEAD", "POST"]),
    (f"/api/v1/payments/stripe/projects/{PROJECT_ID}/config", ["DELETE", "GET", "HEAD", "PUT"]),
    ("/healthz", ["GET", "HEAD"]),
    (f"/api/v1/projects/{PROJECT_ID}/members/{PROJECT_ID}", ["DELETE", "PATCH"]),  # no read
]
METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")


class TestMethodNotAllowed:
    @pytest.mark.parametrize(("path", "allowed"), ALLOWED)
    async def test_options_lists_every_method_of_the_path(
        self, client: httpx.AsyncClient, path: str, allowed: list[str]
    ) -> None:
        response = await client.options(path)
        body = assert_envelope(response, 405, "METHOD_NOT_ALLOWED")
        assert body["message"] == f"OPTIONS is not allowed on {path}."
        assert response.headers["allow"] == ", ".join(allowed)

    @pytest.mark.parametrize(("path", "allowed"), ALLOWED)
    async def test_allow_is_exactly_what_the_path_serves(
        self, client: httpx.AsyncClient, path: str, allowed: list[str]
    ) -> None:
        for method in METHODS:
            response = await client.request(method, path)
            if method in allowed:
                assert response.status_code != 405, method
            else:
                assert response.status_code == 405, method
                if method != "HEAD":  # an answer to HEAD has no body to carry the code
                    assert response.json()["code"] == "METHOD_NOT_ALLOWED", method
                assert response.headers["allow"] == ", ".join(allowed), method

    async def test_head_is_listed_where_a_route_serves_it(self, client: httpx.AsyncClient) -> None:
        assert (await client.head("/docs")).status_code == 200
        response = await client.post("/docs")
        assert_envelope(response, 405, "METHOD_NOT_ALLOWED")
        assert response.headers["allow"] == "GET, HEAD"
