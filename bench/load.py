"""Mixed traffic at a fixed rate against two billwarden processes on PostgreSQL: throughput, p50,
p99 and errors per route, beside a baseline measured in the same run.

On a freshly migrated PostgreSQL database, with a project made with billwarden's own CLI (a
test-mode API key, a Stripe configuration pointing at a `billwarden emulator` process, the
catalog of examples/catalog.toml loaded and pushed to the emulator), `--subjects` users of which
one in three has an active premium plan (an entitlement snapshot, as the webhooks leave it);
two `billwarden serve --workers 1` processes (each with its embedded worker), the emulator for
the checkouts, and a separate load process (this script, `--generate`) sending:

- 30% `GET /api/v1/entitlements/user/{id}` (entitlement read),
- 30% `POST /api/v1/entitlements/check` with a feature (entitlement check),
- 30% `POST /api/v1/entitlements/check` with a feature and a quota (`api_calls`, amount 1),
- 9% `POST /api/v1/usage/events`, a batch of `--batch-size` events (api_calls, tokens) for
  random users, each with a new id,
- 1% `POST /api/v1/payments/stripe/checkout-session` for a user without a plan (premium_monthly:
  a customer made in the emulator on the user's first checkout, then a session each time),

for random users, at `--rate` requests per second for `--seconds`, alternating between the two
servers. The load is open-loop: each request is sent at its time whatever the answers before it
did (from a pool of keep-alive connections, a new one when all are busy), and its latency runs
from that time, so a slow server or a late client shows in the figures instead of slowing the
load down. Before it, not counted: each process reads each user's entitlement once (a running
service has read its active users before), then `--warm-up` seconds of the mix. Baseline: the
same load process, the same rate, the same two servers, `GET /healthz` (billwarden's middleware,
no database) for `--baseline-seconds` before and after the mixed load.

    .venv/bin/python bench/load.py [--seconds 60] [--rate 200] [--subjects 1000]
        [--batch-size 50] [--postgres-url postgresql+asyncpg://...]

The rate, 200 requests/s (17 million a day: a tenant app with tens of thousands of daily users
checking access on every page and API call), is a steady load this 2-CPU machine carries with
room to spare: the mix costs the two servers about 1.3 ms of CPU a request (both together about
a quarter of one CPU at 200/s), PostgreSQL about as much again, the load process 0.15 ms a
request; the rest is left to the neighbours a shared machine has. Open-loop latency is honest
only below saturation: at 300/s the same mix was carried with no error, but the servers' share
of the CPUs was then close enough to what neighbouring test suites left them that p99 measured
their queue (55 to 440 ms over runs at load averages 3 to 4), not the service. Usage batches
hold 50 events (a tenant app flushing its buffer every few seconds), not the 1,000 of
bench/usage.py's throughput test.

Prints, per route and in total: requests, answers per second, p50 and p99 latency, errors (any
non-2xx answer or transport error, by status); p50 and p99 as multiples of the baseline's; the
servers' and the emulator's CPU per second of load; the load process's send lag (how late it
sent; a late client would make the figures its own). Targets: 0 errors, entitlement p99 < 50 ms
(each entitlement route). Exit status: 0 when both are met, 1 when one is missed, 2 when the
bench cannot run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import secrets
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from _common import (
    POSTGRES_ADMIN_URL,
    REQUEST_TIMEOUT_SECONDS,
    AnswerConnection,
    BenchError,
    Call,
    Server,
    billwarden_command,
    billwarden_serve,
    drive,
    free_port,
    machine_facts,
    plain_environment,
    running_server,
    scratch_database,
    server_environment,
)
from sqlalchemy import text

from billwarden import domains
from billwarden.core.modes import Mode
from billwarden.db.engine import create_engine, create_sessionmaker
from billwarden.db.unit_of_work import unit_of_work
from billwarden.entitlements.models import Entitlement

ENTITLEMENT_P99_TARGET_MS = 50.0
PROJECT_SLUG = "bench-load"
SCRIPT = Path(__file__).resolve()
CATALOG = SCRIPT.parent.parent / "examples" / "catalog.toml"
PREMIUM_EVERY = 3  # one user in three has an active premium plan
MAX_CONNECTIONS = 200  # per server, in the load process
# uvicorn closes a keep-alive connection idle for 5 s (billwarden serve keeps its default): the
# load process reuses one idle for less, as HTTP clients' pools do
IDLE_SECONDS = 4.0
WARM_UP_CONNECTIONS = 8
READ = "entitlement read"
CHECK = "entitlement check"
QUOTA = "entitlement check+quota"
USAGE = "usage batch"
CHECKOUT = "checkout"
HEALTHZ = "healthz"
# route: share of the mixed load
MIX = {READ: 0.30, CHECK: 0.30, QUOTA: 0.30, USAGE: 0.09, CHECKOUT: 0.01}
ENTITLEMENT_ROUTES = (READ, CHECK, QUOTA)
ROUTE_PATHS = {
    READ: "GET /api/v1/entitlements/user/{id}",
    CHECK: "POST /api/v1/entitlements/check (feature)",
    QUOTA: "POST /api/v1/entitlements/check (feature, api_calls quota)",
    USAGE: "POST /api/v1/usage/events",
    CHECKOUT: "POST /api/v1/payments/stripe/checkout-session",
    HEALTHZ: "GET /healthz",
}
FEATURES = ["premium", "export"]  # examples/catalog.toml's premium plans
QUOTAS: dict[str, Any] = {"api_calls": {"limit": 10000, "period": "day"}}


def subject_id(number: int) -> str:
    return f"user_{number:06d}"


def is_premium(number: int) -> bool:
    return number % PREMIUM_EVERY == 0


# --- set-up -------------------------------------------------------------------------------------


async def set_up_project(environment: dict[str, str], workdir: Path) -> tuple[str, str]:
    """Migrated, a project, its test-mode Stripe configuration (an emulator account), an API key
    and the catalog (loaded, and pushed to the emulator), all with billwarden's own CLI:
    (project id, API key)."""
    await billwarden_command(environment, "migrate")
    created = await billwarden_command(
        environment, "projects", "create", "--name", "Bench load", "--slug", PROJECT_SLUG
    )
    project = re.search(r"\(([0-9a-f-]{36})\)", created)
    await billwarden_command(
        environment,
        *("projects", "stripe-config", "--project", PROJECT_SLUG, "--mode", "test"),
        *("--secret-key", "sk_test_load" + secrets.token_hex(12)),
    )
    made = await billwarden_command(
        environment, "keys", "create", "--project", PROJECT_SLUG, "--name", "bench"
    )
    key = re.search(r"\bbw_test_\S+", made)
    if project is None or key is None:
        raise BenchError(f"no project id or API key in the CLI's output:\n{created}\n{made}")
    # the example catalog, and a metric of its own for the usage batches
    catalog = workdir / "catalog.toml"
    catalog.write_text(CATALOG.read_text() + '\n[metrics.tokens]\ndescription = "LLM tokens"\n')
    await billwarden_command(
        environment, "catalog", "load", str(catalog), "--project", PROJECT_SLUG
    )
    await billwarden_command(environment, "catalog", "push", "--project", PROJECT_SLUG)
    return project.group(1), key.group(0)


async def seed_snapshots(database_url: str, project_id: str, subjects: int) -> int:
    """Entitlement snapshots of an active premium_monthly plan for one user in PREMIUM_EVERY (the
    others have none: the catalog's free tier); how many."""
    now = datetime.now(UTC)
    domains.metadata()  # every domain's models mapped, so the snapshot's foreign keys resolve
    engine = create_engine(database_url)
    premium = [number for number in range(subjects) if is_premium(number)]
    try:
        async with unit_of_work(create_sessionmaker(engine)) as session:
            session.add_all(
                Entitlement(
                    project_id=uuid.UUID(project_id),
                    mode=Mode.TEST,
                    subject_type="user",
                    subject_id=subject_id(number),
                    user_email=f"{subject_id(number)}@example.com",
                    plan="PREMIUM_MONTHLY",
                    status="ACTIVE",
                    granted=True,
                    stripe_customer_id=f"cus_load{number:06d}",
                    stripe_subscription_id=f"sub_load{number:06d}",
                    stripe_price_id="price_premium_monthly",
                    current_period_start=now,
                    current_period_end=now + timedelta(days=30),
                    cancel_at_period_end=False,
                    features=FEATURES,
                    quotas=QUOTAS,
                    role="premium",
                    plans=["premium_monthly"],
                    last_synced_at=now,
                    last_event_id=f"evt_load{number:06d}",
                )
                for number in premium
            )
        async with engine.connect() as connection:  # the statistics autovacuum would gather
            await connection.execute(text("ANALYZE"))
    finally:
        await engine.dispose()
    return len(premium)


# --- the load process ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """What one run of the load process sends, given to it as JSON."""

    phase: str  # "mixed" or "healthz"
    servers: list[str]
    key: str
    rate: float
    seconds: float
    subjects: int
    batch_size: int
    seed: str
    mix: dict[str, float]


def planned_calls(plan: Plan) -> list[tuple[str, int, bytes]]:
    """Every request of the run, in sending order: (route, server index, bytes on the wire)."""
    rng = random.Random(plan.seed)
    count = round(plan.rate * plan.seconds)
    hosts = [server.removeprefix("http://") for server in plan.servers]
    auth = {"Authorization": f"Bearer {plan.key}"}
    json_auth = {"Content-Type": "application/json", **auth}
    free = [number for number in range(plan.subjects) if not is_premium(number)]
    routes, weights = list(plan.mix), list(plan.mix.values())
    planned: list[tuple[str, int, bytes]] = []
    for number in range(count):
        server = number % len(hosts)
        if plan.phase == HEALTHZ:
            call, route = Call("GET", "/healthz"), HEALTHZ
        else:
            route = rng.choices(routes, weights)[0]
            call = _call(route, rng, plan, free, json_auth, f"{plan.seed}-{number:07d}")
            if route == READ:
                call = Call("GET", call.path, auth)
        planned.append((route, server, call.encode(hosts[server])))
    return planned


def _call(
    route: str,
    rng: random.Random,
    plan: Plan,
    free: list[int],
    headers: dict[str, str],
    request_id: str,
) -> Call:
    subject = subject_id(rng.randrange(plan.subjects))
    if route == READ:
        return Call("GET", f"/api/v1/entitlements/user/{subject}", headers)
    if route in (CHECK, QUOTA):
        body: dict[str, Any] = {"subjectId": subject, "feature": rng.choice(FEATURES)}
        if route == QUOTA:
            body.update(metric="api_calls", amount=1)
        return Call("POST", "/api/v1/entitlements/check", headers, orjson.dumps(body))
    if route == USAGE:
        now = datetime.now(UTC)
        events = []
        for position in range(plan.batch_size):
            metric = rng.choice(("api_calls", "tokens"))
            events.append(
                {
                    "id": f"{request_id}-{position:04d}",
                    "subjectId": subject_id(rng.randrange(plan.subjects)),
                    "metric": metric,
                    "value": 1 if metric == "api_calls" else rng.randint(10, 4000),
                    "timestamp": (now - timedelta(seconds=rng.uniform(0, 60)))
                    .isoformat()
                    .replace("+00:00", "Z"),
                }
            )
        return Call("POST", "/api/v1/usage/events", headers, orjson.dumps({"events": events}))
    body = {"subjectId": subject_id(rng.choice(free)), "purchaseKey": "premium_monthly"}
    return Call("POST", "/api/v1/payments/stripe/checkout-session", headers, orjson.dumps(body))


def _outcome(route: str, status: str, body: bytes) -> str:
    """The status as counted: a 2xx usage answer that refused events is not a success."""
    if route == USAGE and status.startswith("2") and b'"errors":[]' not in body:
        return f"{status} with refused events"
    return status


async def generate(plan: Plan) -> dict[str, Any]:
    """Send the plan's requests open-loop at its rate; per route, every latency and status."""
    planned = planned_calls(plan)
    addresses = [server.removeprefix("http://").rsplit(":", 1) for server in plan.servers]
    # per server: connections waiting for a request, with the time each was last answered
    idle: list[list[tuple[AnswerConnection, float]]] = [[] for _ in addresses]
    limits = [asyncio.Semaphore(MAX_CONNECTIONS) for _ in addresses]
    latencies: dict[str, list[float]] = {}
    statuses: dict[str, Counter[str]] = {}
    lags: list[float] = []
    timeline: list[tuple[str, float, float]] = []  # route, due (from the start), latency
    opened = 0

    async def send(route: str, server: int, request: bytes, due: float) -> None:
        nonlocal opened
        async with limits[server]:
            connection = None
            while idle[server] and connection is None:
                connection, since = idle[server].pop()  # the most recently used first
                if time.perf_counter() - since > IDLE_SECONDS:
                    await connection.close()  # the server may be closing it: not reused
                    connection = None
            if connection is None:
                host, port = addresses[server]
                connection = AnswerConnection(host, int(port))
                opened += 1
            lags.append(time.perf_counter() - due)
            try:
                async with asyncio.timeout(REQUEST_TIMEOUT_SECONDS):
                    status, body = await connection.exchange(request)
                outcome = _outcome(route, status, body)
                idle[server].append((connection, time.perf_counter()))
            except (OSError, TimeoutError, ValueError, asyncio.IncompleteReadError) as error:
                outcome = type(error).__name__
                await connection.close()
        latency = time.perf_counter() - due
        latencies.setdefault(route, []).append(latency)
        timeline.append((route, due - start, latency))
        statuses.setdefault(route, Counter())[outcome] += 1

    client_before = time.process_time()
    tasks: set[asyncio.Task[None]] = set()
    start = time.perf_counter() + 0.1
    for number, (route, server, request) in enumerate(planned):
        due = start + number / plan.rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(send(route, server, request, due))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    sent = time.perf_counter() - start
    if tasks:
        await asyncio.wait(set(tasks))
    elapsed = time.perf_counter() - start
    for connections in idle:
        for connection, _ in connections:
            await connection.close()
    lags.sort()
    return {
        "sent_seconds": sent,
        "elapsed": elapsed,
        "client_cpu": time.process_time() - client_before,
        "connections": opened,
        "lag_p50_ms": statistics.median(lags) * 1000 if lags else 0.0,
        "lag_p99_ms": lags[min(len(lags) - 1, int(len(lags) * 0.99))] * 1000 if lags else 0.0,
        "timeline": timeline,
        "routes": {
            route: {"latencies": latencies[route], "statuses": dict(statuses[route])}
            for route in latencies
        },
    }


def run_generator(plan_path: Path, result_path: Path) -> None:
    """The load process: read the plan, send it, write what it measured."""
    plan = Plan(**json.loads(plan_path.read_text()))
    try:
        import uvloop  # what uvicorn uses too; the client's own CPU per request is lower

        runner: Any = uvloop.run
    except ImportError:
        runner = asyncio.run
    result = runner(generate(plan))
    result_path.write_text(json.dumps(result))


# --- one phase, seen from the bench -------------------------------------------------------------


@dataclass
class RouteFigures:
    requests: int
    latencies: list[float]
    statuses: Counter[str]

    @property
    def succeeded(self) -> int:
        return sum(count for status, count in self.statuses.items() if status.isdigit() and
                   status.startswith("2"))  # fmt: skip

    @property
    def errors(self) -> int:
        return self.requests - self.succeeded

    def percentile_ms(self, share: float) -> float:
        ordered = sorted(self.latencies)
        if not ordered:
            return 0.0
        return ordered[min(len(ordered) - 1, int(len(ordered) * share))] * 1000

    @property
    def p50_ms(self) -> float:
        return statistics.median(self.latencies) * 1000 if self.latencies else 0.0

    @property
    def p99_ms(self) -> float:
        return self.percentile_ms(0.99)


@dataclass
class Phase:
    name: str
    seconds: float  # the sending time
    elapsed: float  # until the last answer
    routes: dict[str, RouteFigures]
    server_cpu: list[float | None]
    emulator_cpu: float | None
    client_cpu: float
    connections: int
    lag_p50_ms: float
    lag_p99_ms: float
    load_average: tuple[float, float, float] = field(default=(0.0, 0.0, 0.0))
    timeline: list[tuple[str, float, float]] = field(default_factory=list)

    def total(self) -> RouteFigures:
        latencies = [latency for route in self.routes.values() for latency in route.latencies]
        statuses: Counter[str] = Counter()
        for route in self.routes.values():
            statuses.update(route.statuses)
        return RouteFigures(len(latencies), latencies, statuses)


async def run_phase(
    name: str,
    plan: Plan,
    servers: list[Server],
    emulator: Server,
    workdir: Path,
) -> Phase:
    """Run the load process for one plan; the servers' and emulator's CPU around it."""
    plan_path = workdir / f"plan-{name}.json"
    result_path = workdir / f"result-{name}.json"
    plan_path.write_text(json.dumps(plan.__dict__))
    command = [sys.executable, str(SCRIPT), "--generate", str(plan_path), str(result_path)]
    before = [server.cpu_seconds() for server in servers]
    emulator_before = emulator.cpu_seconds()
    process = await asyncio.create_subprocess_exec(*command, env=plain_environment())
    if await process.wait() != 0 or not result_path.exists():
        raise BenchError(f"the load process for {name} failed ({process.returncode})")
    after = [server.cpu_seconds() for server in servers]
    emulator_after = emulator.cpu_seconds()
    result = json.loads(result_path.read_text())
    routes = {
        route: RouteFigures(
            len(figures["latencies"]), figures["latencies"], Counter(figures["statuses"])
        )
        for route, figures in result["routes"].items()
    }
    return Phase(
        name=name,
        seconds=result["sent_seconds"],
        elapsed=result["elapsed"],
        routes=routes,
        server_cpu=[
            None if first is None or last is None else last - first
            for first, last in zip(before, after, strict=True)
        ],
        emulator_cpu=(
            None
            if emulator_before is None or emulator_after is None
            else emulator_after - emulator_before
        ),
        client_cpu=result["client_cpu"],
        connections=result["connections"],
        lag_p50_ms=result["lag_p50_ms"],
        lag_p99_ms=result["lag_p99_ms"],
        load_average=os.getloadavg(),
        timeline=result["timeline"],
    )


# --- report -------------------------------------------------------------------------------------


def route_line(name: str, figures: RouteFigures, phase: Phase, baseline: RouteFigures) -> str:
    line = (
        f"{name:<24} {figures.requests:>6} req  {figures.succeeded / phase.elapsed:7.1f} /s  "
        f"p50 {figures.p50_ms:6.2f} ms ({figures.p50_ms / max(baseline.p50_ms, 1e-9):4.1f}x)  "
        f"p99 {figures.p99_ms:7.2f} ms ({figures.p99_ms / max(baseline.p99_ms, 1e-9):4.1f}x)  "
        f"errors {figures.errors}"
    )
    if figures.errors:
        line += " (" + ", ".join(
            f"{count} x {status}" for status, count in sorted(figures.statuses.items())
            if not (status.isdigit() and status.startswith("2"))
        ) + ")"  # fmt: skip
    return line


def phase_lines(phase: Phase, baseline: RouteFigures) -> list[str]:
    total = phase.total()
    lines = [
        route_line(route, phase.routes[route], phase, baseline)
        for route in [*MIX, HEALTHZ]
        if route in phase.routes
    ]
    if len(phase.routes) > 1:
        lines.append(route_line("total", total, phase, baseline))
    cpu = [
        f"{value / phase.elapsed:.2f}" if value is not None else "?" for value in phase.server_cpu
    ]
    emulator = (
        f"{phase.emulator_cpu / phase.elapsed:.2f}" if phase.emulator_cpu is not None else "?"
    )
    known = [value for value in phase.server_cpu if value is not None]
    per_request = sum(known) / max(total.requests, 1) * 1000 if known else 0.0
    client = phase.client_cpu / max(total.requests, 1) * 1000
    lines.append(
        f"{'':<24} {phase.seconds:.1f} s sent, last answer at {phase.elapsed:.1f} s; CPU per "
        f"second: servers {' + '.join(cpu)} ({per_request:.2f} ms a request), emulator "
        f"{emulator}, load process {phase.client_cpu / phase.elapsed:.2f} ({client:.2f} ms a "
        f"request); send lag p50 {phase.lag_p50_ms:.2f} ms, p99 {phase.lag_p99_ms:.2f} ms; "
        f"{phase.connections} connections; load average "
        + ", ".join(f"{value:.2f}" for value in phase.load_average)
    )
    return lines


def verdicts(mixed: Phase) -> tuple[list[str], bool]:
    lines = []
    total = mixed.total()
    errors_met = total.errors == 0
    lines.append(f"errors: {total.errors} (target 0: {'met' if errors_met else 'MISSED'})")
    p99_met = True
    for route in ENTITLEMENT_ROUTES:
        figures = mixed.routes.get(route)
        if figures is None:
            continue
        met = figures.p99_ms < ENTITLEMENT_P99_TARGET_MS
        p99_met = p99_met and met
        lines.append(
            f"{route} p99: {figures.p99_ms:.1f} ms (target < {ENTITLEMENT_P99_TARGET_MS:.0f} ms: "
            f"{'met' if met else 'MISSED'})"
        )
    return lines, errors_met and p99_met


# --- the run ------------------------------------------------------------------------------------


def emulator_command(port: int) -> list[str]:
    return [
        *(sys.executable, "-m", "billwarden", "emulator", "--host", "127.0.0.1"),
        *("--port", str(port)),
    ]


async def main_async(args: argparse.Namespace) -> int:
    print(await machine_facts(args.postgres_url))
    print(
        f"{args.rate:.0f} requests/s open-loop for {args.seconds:.0f} s over two `billwarden "
        f"serve` processes (after each read each user once, and {args.warm_up:.0f} s of the "
        f"mix); {args.subjects} users, 1 in {PREMIUM_EVERY} premium; usage batches of "
        f"{args.batch_size} events; baseline: GET /healthz at the same rate, "
        f"{args.baseline_seconds:.0f} s before and after; the mix:"
    )
    for route, share in args.mix.items():
        print(f"  {share:>4.0%} {route:<24} {ROUTE_PATHS[route]}")
    with tempfile.TemporaryDirectory(prefix="billwarden-bench-") as directory:
        workdir = Path(directory)
        async with scratch_database("postgresql", args.postgres_url, workdir) as database:
            port = free_port()
            async with running_server(
                "emulator",
                emulator_command(port),
                plain_environment(),
                port,
                "/_emulator/health",
                workdir,
            ) as emulator:
                environment = server_environment(database.url, secrets.token_urlsafe(48))
                environment["BILLWARDEN_STRIPE_API_BASE"] = emulator.url
                started = time.perf_counter()
                project_id, key = await set_up_project(environment, workdir)
                premium = await seed_snapshots(database.url, project_id, args.subjects)
                print(
                    f"set-up: CLI (migrate, project, stripe-config, key, catalog load and push) "
                    f"and {premium} premium snapshots in {time.perf_counter() - started:.1f} s"
                )
                return await run_load(args, environment, key, emulator, workdir)


async def run_load(
    args: argparse.Namespace,
    environment: dict[str, str],
    key: str,
    emulator: Server,
    workdir: Path,
) -> int:
    ports = [free_port(), free_port()]
    async with (
        running_server(
            "billwarden-a", billwarden_serve(ports[0]), environment, ports[0], "/readyz", workdir
        ) as first,
        running_server(
            "billwarden-b", billwarden_serve(ports[1]), environment, ports[1], "/readyz", workdir
        ) as second,
    ):
        servers = [first, second]
        urls = [server.url for server in servers]
        # a running service has read its active users before: each process reads each user once
        reads = [
            Call(
                "GET",
                f"/api/v1/entitlements/user/{subject_id(number)}",
                {"Authorization": f"Bearer {key}"},
            )
            for number in range(args.subjects)
        ]
        for server in servers:
            warmed = await drive(server, reads, WARM_UP_CONNECTIONS)
            if warmed.failures:
                raise BenchError(f"{server.name} answered {dict(warmed.statuses)} to the warm-up")
        seed = secrets.token_hex(4)

        def plan(phase: str, seconds: float, name: str) -> Plan:
            return Plan(
                phase, urls, key, args.rate, seconds, args.subjects, args.batch_size,
                f"{seed}-{name}", args.mix,
            )  # fmt: skip

        await run_phase("warm-up", plan("mixed", args.warm_up, "warm"), servers, emulator, workdir)
        before = await run_phase(
            "baseline", plan(HEALTHZ, args.baseline_seconds, "b1"), servers, emulator, workdir
        )
        mixed = await run_phase(
            "mixed", plan("mixed", args.seconds, "mixed"), servers, emulator, workdir
        )
        if args.timeline is not None:
            args.timeline.write_text(json.dumps(mixed.timeline))
        after = await run_phase(
            "baseline-after", plan(HEALTHZ, args.baseline_seconds, "b2"), servers, emulator, workdir
        )
    # the two baseline runs together: the neighbours' noise in either is averaged in
    first, last = before.routes[HEALTHZ], after.routes[HEALTHZ]
    latencies = first.latencies + last.latencies
    baseline = RouteFigures(len(latencies), latencies, first.statuses + last.statuses)
    print("baseline, before (multiples: of both baseline runs together):")
    for line in phase_lines(before, baseline):
        print(f"  {line}")
    print(f"mixed load ({args.rate:.0f}/s; p50 and p99 also as multiples of the baseline's):")
    for line in phase_lines(mixed, baseline):
        print(f"  {line}")
    print("baseline, after:")
    for line in phase_lines(after, baseline):
        print(f"  {line}")
    print(
        f"baseline, both runs: p50 {baseline.p50_ms:.2f} ms, p99 {baseline.p99_ms:.2f} ms, "
        f"errors {baseline.errors}"
    )
    for server in servers:
        for line in server.log_summary():
            print(f"{server.name} logged {line}")
    lines, met = verdicts(mixed)
    for line in lines:
        print(line)
    print("targets: " + ("met" if met else "MISSED"))
    return 0 if met else 1


MIX_NAMES = {"read": READ, "check": CHECK, "quota": QUOTA, "usage": USAGE, "checkout": CHECKOUT}


def parse_mix(value: str) -> dict[str, float]:
    mix: dict[str, float] = {}
    for part in value.split(","):
        name, _, share = part.partition("=")
        if name.strip() not in MIX_NAMES:
            raise argparse.ArgumentTypeError(f"routes: {', '.join(MIX_NAMES)}; got {name!r}")
        mix[MIX_NAMES[name.strip()]] = float(share)
    if not mix or sum(mix.values()) <= 0:
        raise argparse.ArgumentTypeError("give at least one route a share above 0")
    return mix


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="seconds of mixed load")
    parser.add_argument("--rate", type=float, default=200.0, help="requests per second, in all")
    parser.add_argument("--subjects", type=int, default=1000, help="users (1 in 3 premium)")
    parser.add_argument("--batch-size", type=int, default=50, help="events per usage batch")
    parser.add_argument("--warm-up", type=float, default=10.0, help="seconds of uncounted load")
    parser.add_argument(
        "--baseline-seconds", type=float, default=10.0, help="seconds of /healthz, twice"
    )
    parser.add_argument(
        "--postgres-url",
        default=POSTGRES_ADMIN_URL,
        help="SQLAlchemy URL of a PostgreSQL database on a server where the bench may create "
        "and drop bench_* databases",
    )
    parser.add_argument(
        "--mix",
        type=parse_mix,
        default=dict(MIX),
        help="route shares, e.g. 'read=0.3,check=0.3,quota=0.3,usage=0.09,checkout=0.01' "
        "(default); a route left out is not sent",
    )
    parser.add_argument("--timeline", type=Path, help="write every request's figures here (JSON)")
    # the load process, run by this script in a process of its own
    parser.add_argument("--generate", nargs=2, metavar=("PLAN", "RESULT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.generate is not None:
        run_generator(Path(args.generate[0]), Path(args.generate[1]))
        return
    try:
        sys.exit(asyncio.run(main_async(args)))
    except BenchError as error:
        print(f"ERROR: {error}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted: its servers were stopped and its database removed", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main()
