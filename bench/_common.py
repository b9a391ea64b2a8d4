"""What bench/webhooks.py and bench/entitlements.py share: a scratch database per run (a SQLite
file, or a PostgreSQL database created and dropped), server processes that are always stopped,
billwarden's own CLI for set-up, a concurrent HTTP load, and the lines they print.

The machine is shared and noisy: every figure is printed beside a baseline measured in the same
run, with the server process's CPU time per request, which depends less than wall time on what
else is running.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import re
import secrets
import signal
import socket
import statistics
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

DATABASES = ("sqlite", "postgresql")
POSTGRES_ADMIN_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
READY_SECONDS = 60.0
STOP_SECONDS = 15.0
REQUEST_TIMEOUT_SECONDS = 30.0
# variables that would change what a billwarden process does (single-tenant mode, another
# database): the servers get the bench's settings only
_INHERITED_OUT = ("STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET", "STRIPE_ALLOWED_PRICE_IDS")


class BenchError(Exception):
    """The bench itself could not run (a server did not start, a command failed)."""


# --- options and machine facts ----------------------------------------------------------------


def add_common_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--databases",
        default=",".join(DATABASES),
        help="comma-separated: sqlite, postgresql (default: both)",
    )
    parser.add_argument(
        "--postgres-url",
        default=POSTGRES_ADMIN_URL,
        help="SQLAlchemy URL of a PostgreSQL database on a server where the bench may create "
        "and drop bench_* databases",
    )


def chosen_databases(value: str) -> list[str]:
    chosen = [name.strip() for name in value.split(",") if name.strip()]
    unknown = [name for name in chosen if name not in DATABASES]
    if unknown or not chosen:
        raise SystemExit(f"--databases takes {', '.join(DATABASES)}; got {value!r}")
    return chosen


async def machine_facts(postgres_url: str | None) -> str:
    """CPU count, load, OS, Python and (when used) the PostgreSQL server's version."""
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    facts = (
        f"machine: {os.cpu_count()} CPUs (load {load}), {platform.system()} "
        f"{platform.release()}, Python {platform.python_version()}"
    )
    if postgres_url is not None:
        engine = create_async_engine(postgres_url)
        try:
            async with engine.connect() as connection:
                version = await connection.scalar(text("SHOW server_version"))
        finally:
            await engine.dispose()
        facts += f", PostgreSQL {version}"
    return facts


# --- databases ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Database:
    kind: str  # sqlite | postgresql
    url: str  # SQLAlchemy async URL, as BILLWARDEN_DATABASE_URL takes it


@contextlib.asynccontextmanager
async def scratch_database(kind: str, postgres_url: str, workdir: Path) -> AsyncIterator[Database]:
    """A new empty database for one run: a SQLite file in `workdir` (which the caller removes),
    or a PostgreSQL database dropped afterwards however the run ends."""
    if kind == "sqlite":
        yield Database(kind, f"sqlite+aiosqlite:///{workdir / 'bench.db'}")
        return
    name = f"bench_{secrets.token_hex(6)}"
    admin = create_async_engine(postgres_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        async with admin.connect() as connection:
            await connection.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            url = make_url(postgres_url).set(database=name)
            yield Database(kind, url.render_as_string(hide_password=False))
        finally:
            async with admin.connect() as connection:
                await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        await admin.dispose()


# --- processes ----------------------------------------------------------------------------------


def plain_environment() -> dict[str, str]:
    """This process's environment without anything that configures billwarden."""
    return {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("BILLWARDEN_") and name not in _INHERITED_OUT
    }


def server_environment(database_url: str, secret_key: str) -> dict[str, str]:
    """The environment of billwarden's processes: this run's database and key, quiet logs, and a
    Stripe address that refuses at once (nothing here should call Stripe)."""
    environment = plain_environment()
    environment.update(
        BILLWARDEN_DATABASE_URL=database_url,
        BILLWARDEN_SECRET_KEY=secret_key,
        BILLWARDEN_LOG_LEVEL="WARNING",
        BILLWARDEN_STRIPE_API_BASE="http://127.0.0.1:9",
    )
    return environment


async def billwarden_command(environment: dict[str, str], *arguments: str) -> str:
    """Run `billwarden <arguments>` (its own CLI) and return what it printed."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "billwarden",
        *arguments,
        env=environment,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    printed = output.decode(errors="replace")
    if process.returncode != 0:
        raise BenchError(f"billwarden {arguments[0]} failed ({process.returncode}):\n{printed}")
    return printed


def billwarden_serve(port: int) -> list[str]:
    """`billwarden serve`, one process, on the migrated database (no migration at start)."""
    return [
        *(sys.executable, "-m", "billwarden", "serve", "--host", "127.0.0.1"),
        *("--port", str(port), "--workers", "1", "--no-migrate"),
    ]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Server:
    name: str
    pid: int
    url: str
    log: Path

    def cpu_seconds(self) -> float | None:
        """User plus system CPU time the process has used so far (Linux; None elsewhere)."""
        try:
            fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        # after the command name: state is field 3, utime 14 and stime 15
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def log_lines(self) -> list[str]:
        return [line for line in self.log.read_text(errors="replace").splitlines() if line]

    def log_summary(self) -> list[str]:
        """What the process logged, counted by level, logger, message and the exception's last
        line (billwarden logs JSON; other lines are counted as they are)."""
        seen: Counter[str] = Counter()
        for line in self.log_lines():
            try:
                record = json.loads(line)
            except ValueError:
                seen[line[:200]] += 1
                continue
            if not isinstance(record, dict):
                seen[line[:200]] += 1
                continue
            message = re.sub(r"[0-9a-f-]{32,36}", "<id>", str(record.get("message", "")))
            summary = f"{record.get('level')} {record.get('logger')}: {message}"
            exception = [
                frame
                for frame in str(record.get("exception") or "").strip().splitlines()
                if frame.strip() and not frame.startswith("(Background on this error")
            ]
            if exception:
                summary += f" ({exception[-1].strip()[:200]})"
            seen[summary] += 1
        return [f"{count} x {summary}" for summary, count in seen.most_common()]


@contextlib.asynccontextmanager
async def running_server(
    name: str,
    command: Sequence[str],
    environment: dict[str, str],
    port: int,
    ready_path: str,
    workdir: Path,
) -> AsyncIterator[Server]:
    """Start a server process, wait until `ready_path` answers 200, stop it afterwards (SIGTERM,
    then SIGKILL), whatever happens in between."""
    log = workdir / f"{name}-{port}.log"
    with log.open("wb") as output:
        process = await asyncio.create_subprocess_exec(
            *command,
            env=environment,
            cwd=workdir,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=output,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,  # a Ctrl-C reaches the bench, which then stops it
        )
    server = Server(name, process.pid, f"http://127.0.0.1:{port}", log)
    try:
        await _wait_ready(server, process, ready_path)
        yield server
    finally:
        await _stop(process)


async def _wait_ready(server: Server, process: asyncio.subprocess.Process, path: str) -> None:
    deadline = time.monotonic() + READY_SECONDS
    async with httpx.AsyncClient(base_url=server.url, trust_env=False, timeout=2.0) as client:
        while time.monotonic() < deadline:
            if process.returncode is not None:
                break
            with contextlib.suppress(httpx.TransportError):
                if (await client.get(path)).status_code == 200:
                    return
            await asyncio.sleep(0.1)
    tail = "\n".join(server.log_lines()[-30:])
    raise BenchError(f"{server.name} did not become ready at {server.url}{path}:\n{tail}")


async def _stop(process: asyncio.subprocess.Process) -> None:
    if process.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(process.wait(), STOP_SECONDS)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()


# --- load ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    content: bytes = b""

    def encode(self, host: str) -> bytes:
        """The request as sent on the wire (HTTP/1.1, keep-alive)."""
        lines = [
            f"{self.method} {self.path} HTTP/1.1",
            f"Host: {host}",
            f"Content-Length: {len(self.content)}",
            *(f"{name}: {value}" for name, value in self.headers.items()),
        ]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + self.content


class AnswerConnection:
    """One keep-alive HTTP/1.1 connection, one request at a time, the answer read whole: its
    status and body (as `_Connection` below, which drops the body; for the benches that check
    what the answers say: usage, load)."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def exchange(self, request: bytes) -> tuple[str, bytes]:
        if self.reader is None or self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        self.writer.write(request)
        head = (await self.reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        status_line, *header_lines = head.split("\r\n")
        headers = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip().lower()
        if headers.get("transfer-encoding") == "chunked":
            body = b""
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                if size == 0:
                    while await self.reader.readuntil(b"\r\n") != b"\r\n":
                        pass  # trailers, up to the empty line
                    break
                body += (await self.reader.readexactly(size + 2))[:-2]
        else:
            body = await self.reader.readexactly(int(headers.get("content-length", "0")))
        if headers.get("connection") == "close":
            await self.close()
        return status_line.split(" ", 2)[1], body

    async def close(self) -> None:
        writer, self.reader, self.writer = self.writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


class _Connection:
    """One keep-alive HTTP/1.1 connection, one request at a time.

    The load is sent with this rather than httpx: on the two-CPU machine this was written on,
    httpx's AsyncClient spent about 1 ms of CPU per request (2 ms with 16 at once), more than the
    baselines' servers, so the client, not the server, set the rates; this costs about 0.1 ms.
    """

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def exchange(self, request: bytes) -> str:
        """Send one request and read its whole answer; the answer's status code."""
        if self.reader is None or self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        self.writer.write(request)
        head = (await self.reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        status_line, *header_lines = head.split("\r\n")
        status = status_line.split(" ", 2)[1]
        headers = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip().lower()
        if headers.get("transfer-encoding") == "chunked":
            await self._skip_chunks(self.reader)
        else:
            await self.reader.readexactly(int(headers.get("content-length", "0")))
        if headers.get("connection") == "close":
            await self.close()
        return status

    @staticmethod
    async def _skip_chunks(reader: asyncio.StreamReader) -> None:
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                while await reader.readuntil(b"\r\n") != b"\r\n":
                    pass  # trailers, up to the empty line
                return
            await reader.readexactly(size + 2)

    async def close(self) -> None:
        writer, self.reader, self.writer = self.writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


@dataclass
class Load:
    """What a batch of calls measured: wall time, each call's latency, the answers' statuses and
    the server's CPU time."""

    calls: int
    elapsed: float
    latencies: list[float]
    statuses: Counter[str]
    cpu: float | None
    client_cpu: float

    @property
    def succeeded(self) -> int:
        return sum(count for status, count in self.statuses.items() if status.startswith("2"))

    @property
    def success_rate(self) -> float:
        """2xx answers per second (a refused call took time but is not counted)."""
        return self.succeeded / self.elapsed

    @property
    def p50_ms(self) -> float:
        return statistics.median(self.latencies) * 1000

    @property
    def p99_ms(self) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000

    @property
    def cpu_ms_per_call(self) -> float | None:
        return None if self.cpu is None else self.cpu / self.calls * 1000

    @property
    def failures(self) -> int:
        return self.calls - self.succeeded

    @property
    def busy(self) -> int:
        """503 answers: billwarden's documented answer to a busy database (Stripe retries)."""
        return self.statuses.get("503", 0)

    @property
    def unexpected(self) -> int:
        """Answers that are neither a success nor a 503: errors the bench fails on."""
        return self.failures - self.busy


async def drive(server: Server, calls: Sequence[Call], concurrency: int) -> Load:
    """Send `calls` from `concurrency` keep-alive connections at once, each sending its next call
    as soon as the previous one is answered."""
    host, port = server.url.removeprefix("http://").rsplit(":", 1)
    requests = iter([call.encode(f"{host}:{port}") for call in calls])
    latencies: list[float] = []
    statuses: Counter[str] = Counter()

    async def sender() -> None:
        connection = _Connection(host, int(port))
        try:
            for request in requests:  # the senders share one iterator: each call is sent once
                started = time.perf_counter()
                try:
                    async with asyncio.timeout(REQUEST_TIMEOUT_SECONDS):
                        statuses[await connection.exchange(request)] += 1
                except (OSError, TimeoutError, ValueError, asyncio.IncompleteReadError) as error:
                    statuses[type(error).__name__] += 1
                    await connection.close()
                latencies.append(time.perf_counter() - started)
        finally:
            await connection.close()

    cpu_before = server.cpu_seconds()
    client_before = time.process_time()
    started = time.perf_counter()
    await asyncio.gather(*(sender() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    client_cpu = time.process_time() - client_before
    cpu_after = server.cpu_seconds()
    cpu = None if cpu_before is None or cpu_after is None else cpu_after - cpu_before
    return Load(len(calls), elapsed, latencies, statuses, cpu, client_cpu)


# --- report -------------------------------------------------------------------------------------


def describe(load: Load, unit: str) -> str:
    """Calls, successes per second, p50 and p99, CPU per call (server and client), and every
    answer when some were not successes."""
    cpu = load.cpu_ms_per_call
    line = (
        f"{load.calls:>6} {unit}  {load.success_rate:>7.0f} /s  "
        f"p50 {load.p50_ms:6.2f} ms  p99 {load.p99_ms:7.2f} ms"
    )
    if cpu is not None:
        line += f"  server CPU {cpu:5.2f} ms/{unit.rstrip('s')}"
    line += f"  client CPU {load.client_cpu / load.calls * 1000:5.2f} ms"
    if load.failures:
        failed = ", ".join(f"{count} x {status}" for status, count in sorted(load.statuses.items()))
        line += f"  ANSWERS: {failed}"
    return line


def verdict(name: str, measured: float, baseline: float, target: float) -> str:
    """`name`: measured/baseline as a percentage beside the target, MISSED when below it."""
    share = measured / baseline if baseline > 0 else 0.0
    outcome = "met" if share >= target else "MISSED"
    return f"{name}: {share:.0%} of baseline (target >= {target:.0%}: {outcome})"
