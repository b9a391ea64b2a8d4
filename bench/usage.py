"""Usage events ingested and consumes answered per second by one billwarden process, beside a bare
ingest baseline.

For each database (SQLite, then PostgreSQL), freshly migrated, with a project, a test-mode API
key and a catalog (three metrics without a quota, and `credits` with a free-tier daily quota)
made with billwarden's own CLI:

- ingest, baseline: a bare FastAPI endpoint (below), served by uvicorn in one process with
  billwarden's own engine settings (same database, driver, pool and SQLite durability), that
  parses the same 1,000-event JSON batch and stores its events with one multi-row INSERT: no
  dedupe, no counters, the least a server must do;
- ingest, billwarden: `billwarden serve --workers 1`, POST /api/v1/usage/events, the same batches:
  `--subjects` users, three metrics, about 5% of the events re-sent (ids sent in an earlier
  batch, or twice in one batch, with the same content), timestamps spread over the last three
  days. Afterwards the counters are checked against what was sent: the sum of `usage_counters`
  per granularity (day, month) and every counter must equal the sum of the distinct events'
  values, `usage_events` must hold each distinct id once, and the answers' `accepted` and
  `duplicates` must add up to the distinct and re-sent events;
- consume, billwarden: POST /api/v1/usage/consume, one event (`amount` 1) per call, round-robin
  over `--consume-subjects` users whose `credits` quota is `--quota` a day and who each get more
  calls than that: allowed and refused both happen, and the number allowed must be exactly the
  quota per subject (and the `credits` counters must say the same). No baseline: printed as a
  rate.

all driven by the same client (keep-alive HTTP/1.1 connections, each sending its next request as
soon as the previous one is answered).

    .venv/bin/python bench/usage.py [--batches 40] [--concurrency 4] [--subjects 1000]
        [--consumes 2000] [--consume-concurrency 16] [--consume-subjects 20] [--quota 25]
        [--databases sqlite,postgresql] [--postgres-url postgresql+asyncpg://...]

Prints batches and events per second, p50/p99 latency per batch and the server's CPU time per
batch for both, billwarden's events/s as a share of the baseline's, and on PostgreSQL the product
target (>= 20,000 events/s with one server process: met or MISSED). The exit status is 0 even when
the target is missed, 1 when an answer or a count is wrong (a counter that is not the sum of its
events, an error answer, an allowed count that is not the quota), 2 when the bench cannot run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import re
import secrets
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import uvicorn
from _common import (
    REQUEST_TIMEOUT_SECONDS,
    AnswerConnection,
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
    free_port,
    machine_facts,
    plain_environment,
    running_server,
    scratch_database,
    server_environment,
)
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy import JSON, Column, Float, MetaData, String, Table, Uuid, text

from billwarden.db.base import UTCDateTime
from billwarden.db.engine import create_engine

TARGET_EVENTS_PER_SECOND = 20_000.0  # PostgreSQL, one server process
TARGETED = "postgresql"
BATCH_SIZE = 1000  # billwarden's largest batch
DUPLICATE_SHARE = 0.05  # of each batch's events: ids sent before, re-sent
SPREAD_SECONDS = 3 * 86400  # timestamps over the last three days
WARM_UP_BATCHES = 2
WARM_UP_CONSUMES = 10
PROJECT_SLUG = "bench-usage"
SCRIPT = Path(__file__).resolve()
BASELINE_PATH = "/baseline/usage/events"
INGEST_PATH = "/api/v1/usage/events"
CONSUME_PATH = "/api/v1/usage/consume"
# metric: the range of an event's value (whole numbers, so sums are exact)
METRICS = {"api_calls": (1, 5), "tokens": (1, 4000), "storage_mb": (1, 100)}
CONSUME_METRIC = "credits"

baseline_metadata = MetaData()
baseline_events = Table(
    "bench_baseline_usage_events",
    baseline_metadata,
    Column("id", Uuid, primary_key=True),
    Column("project_id", Uuid, nullable=False),
    Column("mode", String(4), nullable=False),
    Column("event_id", String(255), nullable=False),
    Column("subject_type", String(20), nullable=False),
    Column("subject_id", String(255), nullable=False),
    Column("metric", String(64), nullable=False),
    Column("value", Float, nullable=False),
    Column("timestamp", UTCDateTime, nullable=False),
    Column("properties", JSON),
    Column("received_at", UTCDateTime, nullable=False),
)


def catalog_toml(quota: int) -> str:
    """The bench's catalog: the ingested metrics, and a daily free-tier quota on `credits`."""
    tables = "".join(f"[metrics.{name}]\n" for name in METRICS)
    return (
        f"{tables}[metrics.{CONSUME_METRIC}]\n\n[free]\nfeatures = []\n"
        f'quotas = {{ {CONSUME_METRIC} = {{ limit = {quota}, period = "day" }} }}\n'
    )


# --- the baseline server ------------------------------------------------------------------------


def baseline_app(database_url: str) -> FastAPI:
    """Parse the batch, store every event (duplicates too) with one multi-row INSERT, answer."""
    engine = create_engine(database_url)  # billwarden's engine: same pool and SQLite pragmas
    # a batch as one multi-row INSERT ... VALUES (...), (...) whose SQL is compiled once, as
    # SQLAlchemy sends billwarden's INSERT ... RETURNING (without this, an executemany without
    # RETURNING is the driver's: one statement per row)
    engine.sync_engine.dialect.use_insertmanyvalues_wo_returning = True
    project_id = uuid.uuid4()

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
        batch = orjson.loads(await request.body())["events"]
        now = datetime.now(UTC)
        rows = [
            {
                "id": uuid.uuid4(),
                "project_id": project_id,
                "mode": "test",
                "event_id": raw["id"],
                "subject_type": raw.get("subjectType", "user"),
                "subject_id": raw["subjectId"],
                "metric": raw["metric"],
                "value": float(raw.get("value", 1)),
                "timestamp": datetime.fromisoformat(raw["timestamp"]),
                "properties": raw.get("properties"),
                "received_at": now,
            }
            for raw in batch
        ]
        async with engine.begin() as connection:
            await connection.execute(baseline_events.insert(), rows)
        return JSONResponse({"accepted": len(rows), "duplicates": 0, "errors": []}, 202)

    return app


def serve_baseline(port: int, database_url: str) -> None:
    """Served as billwarden serves itself: uvicorn, one process, no server header."""
    uvicorn.run(
        baseline_app(database_url),
        host="127.0.0.1",
        port=port,
        workers=1,
        log_config=None,
        log_level="warning",
        access_log=False,
        server_header=False,
        proxy_headers=False,
    )


# --- the load, answers kept ---------------------------------------------------------------------


async def drive_answers(
    server: Server, calls: Sequence[Call], concurrency: int
) -> tuple[Load, list[tuple[str, bytes]]]:
    """As `_common.drive`: `calls` from `concurrency` keep-alive connections at once; with every
    answer's status and body, in the calls' order."""
    host, port = server.url.removeprefix("http://").rsplit(":", 1)
    requests = iter(list(enumerate(call.encode(f"{host}:{port}") for call in calls)))
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    answers: list[tuple[str, bytes]] = [("unsent", b"")] * len(calls)

    async def sender() -> None:
        connection = AnswerConnection(host, int(port))
        try:
            for index, request in requests:  # one shared iterator: each call is sent once
                started = time.perf_counter()
                try:
                    async with asyncio.timeout(REQUEST_TIMEOUT_SECONDS):
                        status, body = await connection.exchange(request)
                except (OSError, TimeoutError, ValueError, asyncio.IncompleteReadError) as error:
                    status, body = type(error).__name__, b""
                    await connection.close()
                latencies.append(time.perf_counter() - started)
                statuses[status] += 1
                answers[index] = (status, body)
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
    return Load(len(calls), elapsed, latencies, statuses, cpu, client_cpu), answers


# --- the events ---------------------------------------------------------------------------------


@dataclass
class EventMix:
    """The batches sent, and what billwarden should count from them: each distinct event once."""

    batches: list[bytes] = field(default_factory=list)
    distinct: dict[str, dict[str, Any]] = field(default_factory=dict)
    resent: int = 0

    def expected_counters(self) -> dict[tuple[str, str, str, str, date], float]:
        """(subject, metric, granularity, period start) -> the sum of its distinct events."""
        sums: dict[tuple[str, str, str, str, date], float] = defaultdict(float)
        for event in self.distinct.values():
            day = datetime.fromisoformat(event["timestamp"]).astimezone(UTC).date()
            who = ("user", event["subjectId"], event["metric"])
            sums[(*who, "day", day)] += event["value"]
            sums[(*who, "month", day.replace(day=1))] += event["value"]
        return dict(sums)


def event_mix(run: str, batches: int, subjects: int, concurrency: int) -> EventMix:
    """`batches` batches of BATCH_SIZE events: new events for random subjects and metrics, and
    DUPLICATE_SHARE of re-sent ones, taken from batches sent well before (2 x `concurrency`
    batches back: as a client retrying after a timeout), or from earlier in the same batch for
    the first batches."""
    rng = random.Random(run)
    now = datetime.now(UTC)
    mix = EventMix()
    sent: list[list[dict[str, Any]]] = []
    per_batch = int(BATCH_SIZE * DUPLICATE_SHARE)
    metrics = list(METRICS)
    for number in range(batches):
        fresh: list[dict[str, Any]] = []
        for position in range(BATCH_SIZE - per_batch):
            metric = rng.choice(metrics)
            low, high = METRICS[metric]
            moment = now - timedelta(seconds=rng.uniform(0, SPREAD_SECONDS))
            event: dict[str, Any] = {
                "id": f"{run}-{number:05d}-{position:04d}",
                "subjectType": "user",
                "subjectId": f"user_{rng.randrange(subjects):06d}",
                "metric": metric,
                "value": rng.randint(low, high),
                "timestamp": moment.isoformat().replace("+00:00", "Z"),
            }
            if rng.random() < 0.5:
                event["properties"] = {"route": f"/v1/{rng.choice(['search', 'items', 'chat'])}"}
            fresh.append(event)
            mix.distinct[event["id"]] = event
        older = [event for batch in sent[: max(0, number - 2 * concurrency)] for event in batch]
        resent = rng.sample(older or fresh, per_batch)
        mix.resent += per_batch
        events = fresh + resent  # re-sent from this batch: after their first sending
        if older:
            rng.shuffle(events)
        sent.append(fresh)
        mix.batches.append(orjson.dumps({"events": events}))
    return mix


def batch_calls(path: str, bodies: Sequence[bytes], headers: dict[str, str]) -> list[Call]:
    return [
        Call("POST", path, {"Content-Type": "application/json", **headers}, body) for body in bodies
    ]


def consume_calls(
    run: str, first: int, count: int, subjects: Sequence[str], headers: dict[str, str]
) -> list[Call]:
    """`count` consumes of 1 `credits`, distinct ids, round-robin over `subjects`."""
    return [
        Call(
            "POST",
            CONSUME_PATH,
            {"Content-Type": "application/json", **headers},
            orjson.dumps(
                {
                    "id": f"{run}-consume-{number:06d}",
                    "subjectId": subjects[number % len(subjects)],
                    "metric": CONSUME_METRIC,
                    "amount": 1,
                }
            ),
        )
        for number in range(first, first + count)
    ]


# --- set-up -------------------------------------------------------------------------------------


async def set_up_project(environment: dict[str, str], workdir: Path, quota: int) -> str:
    """A project, a test-mode API key and the bench's catalog, made with billwarden's own CLI;
    the key."""
    await billwarden_command(environment, "migrate")
    created = await billwarden_command(
        environment, "projects", "create", "--name", "Bench usage", "--slug", PROJECT_SLUG
    )
    made = await billwarden_command(
        environment, "keys", "create", "--project", PROJECT_SLUG, "--name", "bench"
    )
    key = re.search(r"\bbw_test_\S+", made)
    if key is None:
        raise BenchError(f"no API key in the CLI's output:\n{created}\n{made}")
    catalog = workdir / "catalog.toml"
    catalog.write_text(catalog_toml(quota))
    await billwarden_command(
        environment, "catalog", "load", str(catalog), "--project", PROJECT_SLUG
    )
    return key.group(0)


# --- measuring ----------------------------------------------------------------------------------


@dataclass
class Ingest:
    load: Load
    answers: list[tuple[str, bytes]]
    server: Server

    @property
    def events_per_second(self) -> float:
        return self.load.succeeded * BATCH_SIZE / self.load.elapsed


async def ingest_baseline(database: Database, mix: EventMix, args: argparse.Namespace) -> Ingest:
    port = free_port()
    command = [sys.executable, str(SCRIPT), "--serve-baseline", str(port)]
    command += ["--baseline-database-url", database.url]
    async with running_server(
        "baseline", command, plain_environment(), port, "/healthz", args.workdir
    ) as server:
        calls = batch_calls(BASELINE_PATH, mix.batches, {})
        await drive_answers(server, calls[:WARM_UP_BATCHES], 1)
        load, answers = await drive_answers(server, calls[WARM_UP_BATCHES:], args.concurrency)
        return Ingest(load, answers, server)


@dataclass
class Consume:
    load: Load
    allowed: Counter[str]  # per subject, in the timed calls
    refused: int
    wrong: list[str]  # answers that are not what a consume answers


async def load_billwarden(
    environment: dict[str, str], key: str, mix: EventMix, run: str, args: argparse.Namespace
) -> tuple[Ingest, Consume]:
    """Ingest the batches (the first WARM_UP_BATCHES one at a time, untimed), then consume."""
    port = free_port()
    headers = {"Authorization": f"Bearer {key}"}
    async with running_server(
        "billwarden", billwarden_serve(port), environment, port, "/readyz", args.workdir
    ) as server:
        calls = batch_calls(INGEST_PATH, mix.batches, headers)
        _, warm_answers = await drive_answers(server, calls[:WARM_UP_BATCHES], 1)
        load, answers = await drive_answers(server, calls[WARM_UP_BATCHES:], args.concurrency)
        ingest = Ingest(load, warm_answers + answers, server)

        await drive_answers(
            server, consume_calls(run, 0, WARM_UP_CONSUMES, ["warm_up"], headers), 1
        )
        subjects = [f"consumer_{number:04d}" for number in range(args.consume_subjects)]
        consumes = consume_calls(run, WARM_UP_CONSUMES, args.consumes, subjects, headers)
        load, answers = await drive_answers(server, consumes, args.consume_concurrency)
    allowed: Counter[str] = Counter()
    refused = 0
    wrong: list[str] = []
    for call, (status, body) in zip(consumes, answers, strict=False):
        answer = orjson.loads(body) if status == "200" else None
        if not isinstance(answer, dict) or answer.get("duplicate") is not False:
            wrong.append(f"{status} {body[:200]!r}")
        elif answer.get("allowed") is True:
            allowed[orjson.loads(call.content)["subjectId"]] += 1
        else:
            refused += 1
    return ingest, Consume(load, allowed, refused, wrong)


async def check_counts(database: Database, mix: EventMix, ingest: Ingest) -> list[str]:
    """What is wrong in the database and the answers after the ingest (nothing: [])."""
    problems: list[str] = []
    accepted = duplicates = 0
    for status, body in ingest.answers:
        answer = orjson.loads(body) if status == "202" else None
        if not isinstance(answer, dict) or answer.get("errors"):
            problems.append(f"ingest answered {status} {body[:300]!r}")
            continue
        accepted += answer["accepted"]
        duplicates += answer["duplicates"]
    if (accepted, duplicates) != (len(mix.distinct), mix.resent):
        problems.append(
            f"answers: {accepted} accepted, {duplicates} duplicates; sent "
            f"{len(mix.distinct)} distinct events and {mix.resent} re-sent"
        )
    expected = mix.expected_counters()
    engine = create_engine(database.url)
    try:
        async with engine.connect() as connection:
            stored = await connection.scalar(
                text(
                    "SELECT count(*) FROM usage_events WHERE metric IN "
                    "('api_calls', 'tokens', 'storage_mb')"
                )
            )
            rows = await connection.execute(
                text(
                    "SELECT subject_id, metric, granularity, period_start, value "
                    "FROM usage_counters WHERE metric IN ('api_calls', 'tokens', 'storage_mb')"
                )
            )
            found = {
                (
                    "user",
                    subject,
                    metric,
                    granularity,
                    start if isinstance(start, date) else date.fromisoformat(str(start)),
                ): float(value)
                for subject, metric, granularity, start, value in rows
            }
    finally:
        await engine.dispose()
    if stored != len(mix.distinct):
        problems.append(f"usage_events holds {stored} events; {len(mix.distinct)} distinct sent")
    for granularity in ("day", "month"):
        want = sum(value for key, value in expected.items() if key[3] == granularity)
        got = sum(value for key, value in found.items() if key[3] == granularity)
        if want != got:
            problems.append(f"{granularity} counters add up to {got:.0f}, the events to {want:.0f}")
    differing = [
        key for key in expected.keys() | found.keys() if expected.get(key) != found.get(key)
    ]
    if differing:
        key = sorted(differing)[0]
        problems.append(
            f"{len(differing)} of {len(expected)} counters differ from their events' sum, e.g. "
            f"{key}: {found.get(key)} stored, {expected.get(key)} sent"
        )
    return problems


async def consume_counters(database: Database) -> float:
    """The `credits` day counters' sum (every allowed consume, warm-up included)."""
    engine = create_engine(database.url)
    try:
        async with engine.connect() as connection:
            total = await connection.scalar(
                text(
                    "SELECT coalesce(sum(value), 0) FROM usage_counters "
                    "WHERE metric = :metric AND granularity = 'day'"
                ),
                {"metric": CONSUME_METRIC},
            )
    finally:
        await engine.dispose()
    return float(total or 0)


async def bench_database(kind: str, args: argparse.Namespace) -> bool:
    """Measure one database and print its lines; whether every answer and count was right."""
    run = secrets.token_hex(4)
    mix = event_mix(run, WARM_UP_BATCHES + args.batches, args.subjects, args.concurrency)
    async with scratch_database(kind, args.postgres_url, args.workdir) as database:
        environment = server_environment(database.url, secrets.token_urlsafe(48))
        key = await set_up_project(environment, args.workdir, args.quota)
        baseline = await ingest_baseline(database, mix, args)
        ingest, consume = await load_billwarden(environment, key, mix, run, args)
        problems = await check_counts(database, mix, ingest)
        credits = await consume_counters(database)

    for name, measured in (("baseline  ", baseline), ("billwarden", ingest)):
        line = describe(measured.load, "batches").replace("ms/batche ", "ms/batch ")
        print(f"{kind:<10} ingest   {name}  {line}")
    rate, base = ingest.events_per_second, baseline.events_per_second
    line = (
        f"{kind:<10} ingest   events/s: billwarden {rate:,.0f}, baseline {base:,.0f} "
        f"({rate / base if base else 0:.0%} of baseline); "
    )
    if kind == TARGETED:
        outcome = "met" if rate >= TARGET_EVENTS_PER_SECOND else "MISSED"
        line += f"target >= {TARGET_EVENTS_PER_SECOND:,.0f} events/s: {outcome}"
    else:
        line += "no target"
    print(line)
    print(
        f"{kind:<10} ingest   counters: {len(mix.distinct)} distinct events "
        f"(+{mix.resent} re-sent) over {len(mix.expected_counters())} day and month counters: "
        + ("all equal to their events' sums" if not problems else "WRONG")
    )
    for problem in problems:
        print(f"{kind:<10} ERROR: {problem}")

    print(f"{kind:<10} consume  billwarden  {describe(consume.load, 'calls')}")
    calls: Counter[str] = Counter(
        f"consumer_{number % args.consume_subjects:04d}" for number in range(args.consumes)
    )
    expected = {subject: min(args.quota, count) for subject, count in calls.items()}
    per_subject = sorted(set(consume.allowed.values())) or [0]
    allowed = sum(consume.allowed.values())
    exact = not consume.wrong and all(
        consume.allowed[subject] == count for subject, count in expected.items()
    )
    print(
        f"{kind:<10} consume  {allowed} allowed, {consume.refused} refused, "
        f"{per_subject[0]}..{per_subject[-1]} allowed per subject for a quota of {args.quota} "
        f"a day: " + ("exact" if exact else f"WRONG (expected {sum(expected.values())})")
    )
    warm_up_allowed = min(args.quota, WARM_UP_CONSUMES)
    counted = credits == allowed + warm_up_allowed
    if not counted:
        print(
            f"{kind:<10} ERROR: the {CONSUME_METRIC} counters hold {credits:.0f}; "
            f"{allowed + warm_up_allowed} consumes were allowed"
        )
    for wrong in consume.wrong[:5]:
        print(f"{kind:<10} ERROR: consume answered {wrong}")
    for name, process in (("baseline", baseline.server), ("billwarden", ingest.server)):
        for line in process.log_summary():
            print(f"{kind:<10} {name} logged {line}")
    unexpected = baseline.load.failures + ingest.load.failures + consume.load.failures
    return not problems and exact and counted and not unexpected


async def main_async(args: argparse.Namespace) -> int:
    databases = chosen_databases(args.databases)
    postgres = args.postgres_url if "postgresql" in databases else None
    print(await machine_facts(postgres))
    print(
        f"ingest: {args.batches} batches of {BATCH_SIZE} events (+{WARM_UP_BATCHES} warm-up) per "
        f"server, {args.subjects} subjects, {len(METRICS)} metrics, {DUPLICATE_SHARE:.0%} re-sent, "
        f"timestamps over the last {SPREAD_SECONDS // 86400} days, {args.concurrency} connections; "
        f"consume: {args.consumes} calls over {args.consume_subjects} subjects (quota "
        f"{args.quota} a day each), {args.consume_concurrency} connections; one server process"
    )
    healthy = True
    for kind in databases:
        with tempfile.TemporaryDirectory(prefix="billwarden-bench-") as directory:
            args.workdir = Path(directory)
            healthy = await bench_database(kind, args) and healthy
    if not healthy:
        print("FAILED: an answer or a count was wrong (see above)")
    return 0 if healthy else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=40, help="timed ingest batches per server")
    parser.add_argument("--concurrency", type=int, default=4, help="ingest connections")
    parser.add_argument("--subjects", type=int, default=1000, help="subjects of the events")
    parser.add_argument("--consumes", type=int, default=2000, help="timed consume calls")
    parser.add_argument("--consume-concurrency", type=int, default=16, help="consume connections")
    parser.add_argument("--consume-subjects", type=int, default=20, help="subjects consuming")
    parser.add_argument("--quota", type=int, default=25, help="credits a day per subject")
    add_common_options(parser)
    # the baseline server, run by this script in a process of its own
    parser.add_argument("--serve-baseline", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--baseline-database-url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_baseline is not None:
        serve_baseline(args.serve_baseline, args.baseline_database_url)
        return
    if args.consumes <= args.quota * args.consume_subjects:
        parser.error("--consumes must exceed --quota x --consume-subjects (some must be refused)")
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
