"""Signed Stripe events accepted per second by one billwarden process, beside a bare baseline.

For each database (SQLite, then PostgreSQL), freshly migrated, with a project whose test-mode
Stripe configuration and webhook signing secret are made with billwarden's own CLI:

- baseline: a bare FastAPI endpoint (below), served by uvicorn in one process, that verifies the
  same `Stripe-Signature` with the same secret and inserts the raw event into a table of the same
  database, with the same driver and durability (SQLite: WAL, synchronous=FULL);
- billwarden: `billwarden serve --workers 1`, POST /api/v1/payments/stripe/webhooks/{project}/test,
  its embedded worker applying the events as they arrive; then the time from the first send until
  every event is applied (no `pending` row left in webhook_events);
- billwarden, intake: the same with BILLWARDEN_EMBEDDED_WORKER=false, to tell what storing costs
  from what applying in the same process costs;

all driven by the same client: `--concurrency` keep-alive connections sending `--events` events
with distinct ids. The events are `customer.updated` for customers billwarden never mapped: the
handler looks the customer up and changes nothing, with no Stripe call, so the applied time
measures the inbox and its worker.

    .venv/bin/python bench/webhooks.py [--events 1000] [--concurrency 16]
        [--databases sqlite,postgresql] [--postgres-url postgresql+asyncpg://...]

Prints events/s, p50/p99 latency and the server's CPU time per event for each, and billwarden's
accepted events/s as a share of the baseline's beside the target (>= 50%). A missed target says
MISSED, and 503s (billwarden's documented answer to a busy database, which Stripe retries) are
counted and printed; the exit status is non-zero only when something failed: a server or command,
any other error answer, or an accepted event that was not processed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import hmac
import re
import secrets
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import stripe
import uvicorn
from _common import (
    BenchError,
    Call,
    Database,
    Load,
    Server,
    add_common_options,
    billwarden_command,
    billwarden_serve,
    chosen_databases,
    describe,
    drive,
    free_port,
    machine_facts,
    plain_environment,
    running_server,
    scratch_database,
    server_environment,
    verdict,
)
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy import Column, DateTime, MetaData, String, Table, Text, event, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

TARGET = 0.50  # billwarden's accepted events/s as a share of the baseline's
WARM_UP_EVENTS = 50
APPLIED_TIMEOUT_SECONDS = 300.0
SIGNATURE_TOLERANCE_SECONDS = 300  # as billwarden's
PROJECT_SLUG = "bench-webhooks"
SCRIPT = Path(__file__).resolve()
BASELINE_PATH = "/baseline/webhooks"

baseline_metadata = MetaData()
baseline_events = Table(
    "bench_baseline_events",
    baseline_metadata,
    Column("id", String(36), primary_key=True),
    Column("event_id", String(255), nullable=False, unique=True),
    Column("event_type", String(255), nullable=False),
    Column("payload", Text, nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
)


# --- the baseline server ------------------------------------------------------------------------


def _sqlite_durability(dbapi_connection: Any, _: Any) -> None:
    # as billwarden's engine: an acknowledged row is on disk
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.close()


def baseline_engine(database_url: str) -> AsyncEngine:
    if database_url.startswith("sqlite"):
        engine = create_async_engine(database_url)
        event.listen(engine.sync_engine, "connect", _sqlite_durability)
        return engine
    return create_async_engine(database_url, pool_size=10)  # billwarden's default pool size


def baseline_app(database_url: str, secret: str) -> FastAPI:
    """Verify the signature over the raw body, store the event once, answer."""
    engine = baseline_engine(database_url)
    insert = postgresql.insert if database_url.startswith("postgresql") else sqlite.insert

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        async with engine.begin() as connection:
            await connection.run_sync(baseline_metadata.create_all)
        yield
        await engine.dispose()

    app = FastAPI(lifespan=lifespan, openapi_url=None, docs_url=None, redoc_url=None)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post(BASELINE_PATH)
    async def receive(request: Request) -> JSONResponse:
        payload = (await request.body()).decode()
        try:
            stripe.WebhookSignature.verify_header(
                payload,
                request.headers.get("Stripe-Signature", ""),
                secret,
                tolerance=SIGNATURE_TOLERANCE_SECONDS,
            )
        except stripe.SignatureVerificationError:
            return JSONResponse({"error": "signature"}, status_code=400)
        stripe_event = orjson.loads(payload)
        async with engine.begin() as connection:
            await connection.execute(
                insert(baseline_events)
                .values(
                    id=str(uuid.uuid4()),
                    event_id=stripe_event["id"],
                    event_type=stripe_event["type"],
                    payload=payload,
                    received_at=datetime.now(UTC),
                )
                .on_conflict_do_nothing(index_elements=["event_id"])
            )
        return JSONResponse({"received": True})

    return app


def serve_baseline(port: int, database_url: str, secret: str) -> None:
    """Served as billwarden serves itself: uvicorn, one process, no server header."""
    uvicorn.run(
        baseline_app(database_url, secret),
        host="127.0.0.1",
        port=port,
        workers=1,
        log_config=None,
        log_level="warning",
        access_log=False,
        server_header=False,
        proxy_headers=False,
    )


# --- events -------------------------------------------------------------------------------------


def signature_header(payload: bytes, secret: str, timestamp: int) -> str:
    """Stripe's scheme: t=<unix>,v1=<HMAC-SHA256(secret, "<t>.<body>") in hex>."""
    signed = f"{timestamp}.".encode() + payload
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def customer_updated(event_id: str, customer_id: str, created: int) -> bytes:
    """A `customer.updated` event shaped as Stripe sends one (about 1.3 KB)."""
    return orjson.dumps(
        {
            "id": event_id,
            "object": "event",
            "api_version": "2025-09-30.clover",
            "created": created,
            "type": "customer.updated",
            "livemode": False,
            "pending_webhooks": 1,
            "request": {"id": f"req_{event_id[-12:]}", "idempotency_key": None},
            "data": {
                "object": {
                    "id": customer_id,
                    "object": "customer",
                    "address": None,
                    "balance": 0,
                    "created": created - 86400,
                    "currency": "usd",
                    "default_source": None,
                    "delinquent": False,
                    "description": None,
                    "email": f"{customer_id}@example.com",
                    "invoice_prefix": customer_id[-8:].upper(),
                    "invoice_settings": {
                        "custom_fields": None,
                        "default_payment_method": None,
                        "footer": None,
                        "rendering_options": None,
                    },
                    "livemode": False,
                    "metadata": {"source": "bench"},
                    "name": "Bench Customer",
                    "phone": None,
                    "preferred_locales": ["en"],
                    "shipping": None,
                    "tax_exempt": "none",
                    "test_clock": None,
                },
                "previous_attributes": {"email": f"old-{customer_id}@example.com"},
            },
        }
    )


def signed_events(path: str, run: str, first: int, count: int, secret: str) -> list[Call]:
    """`count` distinct events, signed now (well inside the 300 s tolerance)."""
    now = int(time.time())
    calls = []
    for number in range(first, first + count):
        payload = customer_updated(f"evt_bench_{run}_{number:06d}", f"cus_bench_{number:06d}", now)
        headers = {
            "Content-Type": "application/json",
            "Stripe-Signature": signature_header(payload, secret, now),
        }
        calls.append(Call("POST", path, headers, payload))
    return calls


# --- measuring ----------------------------------------------------------------------------------


async def inbox_statuses(engine: AsyncEngine) -> Counter[str]:
    async with engine.connect() as connection:
        rows = await connection.execute(
            text("SELECT status, count(*) FROM webhook_events GROUP BY status")
        )
        return Counter({str(status): int(count) for status, count in rows})


async def wait_applied(engine: AsyncEngine) -> float:
    """Poll until no inbox row is `pending`; the perf_counter time it was first seen so."""
    deadline = time.monotonic() + APPLIED_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        async with engine.connect() as connection:
            pending = await connection.scalar(
                text("SELECT count(*) FROM webhook_events WHERE status = 'pending'")
            )
        if pending == 0:
            return time.perf_counter()
        await asyncio.sleep(0.02)
    raise BenchError(f"events still pending after {APPLIED_TIMEOUT_SECONDS:.0f} s")


async def load_baseline(
    database: Database, secret: str, run: str, args: argparse.Namespace
) -> Load:
    port = free_port()
    command = [
        *(sys.executable, str(SCRIPT), "--serve-baseline", str(port)),
        *("--baseline-database-url", database.url, "--baseline-secret", secret),
    ]
    async with running_server(
        "baseline", command, plain_environment(), port, "/healthz", args.workdir
    ) as server:
        warm_up = signed_events(BASELINE_PATH, run, 0, WARM_UP_EVENTS, secret)
        await drive(server, warm_up, 4)
        calls = signed_events(BASELINE_PATH, run, WARM_UP_EVENTS, args.events, secret)
        return await drive(server, calls, args.concurrency)


@dataclass
class BillwardenRun:
    load: Load
    applied_seconds: float  # from the first send until no event is pending
    inbox: Counter[str]  # the inbox's statuses afterwards
    accepted: int  # events answered 2xx, warm-up included: each should be processed
    server: Server


async def load_billwarden(
    database: Database,
    environment: dict[str, str],
    path: str,
    secret: str,
    run: str,
    args: argparse.Namespace,
) -> BillwardenRun:
    """`billwarden serve` with its embedded worker: the load, and how long until every event it
    accepted was applied."""
    port = free_port()
    observer = create_async_engine(database.url)
    try:
        async with running_server(
            "billwarden", billwarden_serve(port), environment, port, "/readyz", args.workdir
        ) as server:
            warm_up = await drive(server, signed_events(path, run, 0, WARM_UP_EVENTS, secret), 4)
            await wait_applied(observer)
            calls = signed_events(path, run, WARM_UP_EVENTS, args.events, secret)
            started = time.perf_counter()
            load = await drive(server, calls, args.concurrency)
            applied = await wait_applied(observer) - started
            inbox = await inbox_statuses(observer)
            return BillwardenRun(load, applied, inbox, warm_up.succeeded + load.succeeded, server)
    finally:
        await observer.dispose()


async def load_intake_only(
    environment: dict[str, str], path: str, secret: str, run: str, args: argparse.Namespace
) -> tuple[Load, Server]:
    """The same load on `billwarden serve` with BILLWARDEN_EMBEDDED_WORKER=false: what storing
    costs without applying in the same process (run last: its events stay pending)."""
    port = free_port()
    environment = {**environment, "BILLWARDEN_EMBEDDED_WORKER": "false"}
    first = WARM_UP_EVENTS + args.events
    async with running_server(
        "billwarden-intake", billwarden_serve(port), environment, port, "/readyz", args.workdir
    ) as server:
        await drive(server, signed_events(path, run, first, WARM_UP_EVENTS, secret), 4)
        calls = signed_events(path, run, first + WARM_UP_EVENTS, args.events, secret)
        return await drive(server, calls, args.concurrency), server


async def set_up_project(environment: dict[str, str], secret: str) -> str:
    """A project with a test-mode Stripe configuration and signing secret, made with billwarden's
    own CLI; its webhook path."""
    await billwarden_command(environment, "migrate")
    created = await billwarden_command(
        environment, "projects", "create", "--name", "Bench webhooks", "--slug", PROJECT_SLUG
    )
    found = re.search(r"\(([0-9a-f-]{36})\)", created)
    if found is None:
        raise BenchError(f"no project id in `billwarden projects create`'s output:\n{created}")
    await billwarden_command(
        environment,
        *("projects", "stripe-config", "--project", PROJECT_SLUG, "--mode", "test"),
        *("--secret-key", f"sk_test_{secrets.token_hex(12)}", "--webhook-secret", secret),
    )
    return f"/api/v1/payments/stripe/webhooks/{found.group(1)}/test"


async def bench_database(kind: str, args: argparse.Namespace) -> bool:
    """Measure one database and print its lines; whether it ran clean: no answer other than a
    success or a 503, and every accepted event processed."""
    run = secrets.token_hex(4)
    secret = f"whsec_{secrets.token_hex(16)}"
    async with scratch_database(kind, args.postgres_url, args.workdir) as database:
        environment = server_environment(database.url, secrets.token_urlsafe(48))
        path = await set_up_project(environment, secret)
        baseline = await load_baseline(database, secret, run, args)
        measured = await load_billwarden(database, environment, path, secret, run, args)
        intake, intake_server = await load_intake_only(environment, path, secret, run, args)
    inbox = ", ".join(f"{count} {status}" for status, count in sorted(measured.inbox.items()))
    print(f"{kind:<10} baseline           {describe(baseline, 'events')}")
    print(f"{kind:<10} billwarden         {describe(measured.load, 'events')}")
    print(
        f"{kind:<10} billwarden         all applied {measured.applied_seconds:6.2f} s after the "
        f"first send ({args.events / measured.applied_seconds:.0f} events/s end to end; "
        f"inbox: {inbox})"
    )
    print(f"{kind:<10} billwarden, intake {describe(intake, 'events')}  (embedded worker off)")
    accepted = verdict(
        "accepted events/s", measured.load.success_rate, baseline.success_rate, TARGET
    )
    intake_share = intake.success_rate / baseline.success_rate
    print(f"{kind:<10} {accepted}; intake alone (worker off): {intake_share:.0%}")
    for name, process in (("billwarden", measured.server), ("billwarden, intake", intake_server)):
        for line in process.log_summary():
            print(f"{kind:<10} {name} logged {line}")
    busy = measured.load.busy + intake.busy
    if busy:
        print(
            f"{kind:<10} NOTE: billwarden answered 503 (busy database) to {busy} event(s); "
            "Stripe would retry them, they are not counted as accepted"
        )
    all_processed = measured.inbox == Counter({"processed": measured.accepted})
    if not all_processed:
        print(f"{kind:<10} ERROR: {measured.accepted} events accepted, inbox: {inbox}")
    return all_processed and not any(load.unexpected for load in (baseline, measured.load, intake))


async def main_async(args: argparse.Namespace) -> int:
    databases = chosen_databases(args.databases)
    postgres = args.postgres_url if "postgresql" in databases else None
    print(await machine_facts(postgres))
    print(
        f"{args.events} customer.updated events (+{WARM_UP_EVENTS} warm-up) per server, "
        f"{args.concurrency} concurrent keep-alive connections, one server process each"
    )
    healthy = True
    for kind in databases:
        with tempfile.TemporaryDirectory(prefix="billwarden-bench-") as directory:
            args.workdir = Path(directory)
            healthy = await bench_database(kind, args) and healthy
    if not healthy:
        print("FAILED: an answer was neither a success nor a 503, or an accepted event was not")
        print("processed (see above)")
    return 0 if healthy else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1000, help="timed events per server")
    parser.add_argument("--concurrency", type=int, default=16, help="concurrent connections")
    add_common_options(parser)
    # the baseline server, run by this script in a process of its own
    parser.add_argument("--serve-baseline", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--baseline-database-url", help=argparse.SUPPRESS)
    parser.add_argument("--baseline-secret", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_baseline is not None:
        serve_baseline(args.serve_baseline, args.baseline_database_url, args.baseline_secret)
        return
    try:
        sys.exit(asyncio.run(main_async(args)))
    except BenchError as error:
        print(f"ERROR: {error}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted: its servers were stopped and its databases removed", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main()
