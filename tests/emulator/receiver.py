"""A real local HTTP server that records webhook deliveries, for tests of the emulator.

    with WebhookReceiver() as receiver:
        receiver.respond_with([500, 200])  # then `default_status` (200) once the script runs out
        ...register receiver.url as an endpoint, trigger events...
        await receiver.wait_for_async(2, timeout=5)  # sender runs in the test's event loop
        receiver.wait_for(2, timeout=5)  # sender runs in another thread or process
        headers, body = receiver.requests[0]

Header names in `requests` are lower-cased. Use `wait_for_async` whenever the emulator shares the
test's event loop: the blocking `wait_for` would stall the very loop that sends the webhooks.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import deque
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

import orjson

ReceivedRequest = tuple[dict[str, str], bytes]


class WebhookReceiver:
    """Records every POST it receives and answers with scripted statuses (default 200)."""

    def __init__(self, *, default_status: int = 200) -> None:
        self.default_status = default_status
        self.requests: list[ReceivedRequest] = []
        self.paths: list[str] = []
        self._script: deque[int] = deque()
        self._response_delay = 0.0
        self._condition = threading.Condition()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # Lifecycle

    def __enter__(self) -> WebhookReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                status, delay = receiver._record(
                    self.path, {key.lower(): value for key, value in self.headers.items()}, body
                )
                if delay:
                    time.sleep(delay)
                # The sender may have timed out and hung up meanwhile.
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.send_response(status)
                    if 300 <= status < 400:
                        self.send_header("Location", "/moved")
                    self.send_header("Content-Length", "0")
                    self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep test output quiet

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("WebhookReceiver is not running; use it as a context manager")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/webhooks"

    # Scripting

    def respond_with(self, statuses: Iterable[int]) -> None:
        """Answer the next requests with these statuses, in order; then `default_status`."""
        with self._condition:
            self._script.extend(statuses)

    def respond_slowly(self, seconds: float) -> None:
        """Wait this long before answering every request (to provoke sender timeouts)."""
        with self._condition:
            self._response_delay = seconds

    # Reading

    def _record(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, float]:
        with self._condition:
            self.requests.append((headers, body))
            self.paths.append(path)
            status = self._script.popleft() if self._script else self.default_status
            self._condition.notify_all()
            return status, self._response_delay

    @property
    def bodies(self) -> list[bytes]:
        with self._condition:
            return [body for _, body in self.requests]

    def events(self) -> list[dict[str, Any]]:
        """The received bodies parsed as JSON (unverified)."""
        return [orjson.loads(body) for body in self.bodies]

    def event_ids(self) -> list[str]:
        return [str(event["id"]) for event in self.events()]

    def wait_for(self, count: int, timeout: float = 5.0) -> list[ReceivedRequest]:
        """Block until `count` requests arrived; raise TimeoutError with what did arrive."""
        deadline = time.monotonic() + timeout
        with self._condition:
            while len(self.requests) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(self._timeout_message(count, timeout))
                self._condition.wait(remaining)
            return list(self.requests)

    # Same signature as wait_for on purpose, so tests can switch between the two.
    async def wait_for_async(self, count: int, timeout: float = 5.0) -> list[ReceivedRequest]:  # noqa: ASYNC109
        """`wait_for` without blocking the event loop the sender may be running on."""
        deadline = time.monotonic() + timeout
        while True:
            with self._condition:
                if len(self.requests) >= count:
                    return list(self.requests)
            if time.monotonic() >= deadline:
                raise TimeoutError(self._timeout_message(count, timeout))
            await asyncio.sleep(0.01)

    def _timeout_message(self, count: int, timeout: float) -> str:
        return f"expected {count} webhook request(s) within {timeout}s, got {len(self.requests)}"
