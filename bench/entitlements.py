"""Entitlement reads per second (p50, p99) by one billwarden process, beside a bare baseline.

For each database (SQLite, then PostgreSQL), freshly migrated: a project and a test-mode API key
are made with billwarden's own CLI, and `--subjects` users get an entitlement snapshot (rows of
`billwarden.entitlements.models.Entitlement`: an active premium plan); then

- billwarden: `billwarden serve --workers 1`, GET /api/v1/entitlements/user/{id} with
  `Authorization: Bearer bw_test_...`, for subjects with a snapshot read before ("hot": a tenant
  app checking its active users again and again, answered from the read cache after a warm-up
  that reads each subject once; the target applies here) and for a new subject every read
  ("cold": each the first read of its subject, from the database: the snapshot is looked for,
  then the catalog's free tier; printed beside its baseline, no target);
- baseline: a bare FastAPI endpoint (below) at the same path returning a dict from memory, served
  by uvicorn, one process;

both driven by the same client (`--concurrency` keep-alive connections, `--reads` reads per path).

    .venv/bin/python bench/entitlements.py [--reads 1500] [--concurrency 8] [--subjects 500]
        [--databases sqlite,postgresql] [--postgres-url postgresql+asyncpg://...]

Prints reads/s, p50/p99 latency and the server's CPU time per read for both, and billwarden's rate
as a share of the baseline's beside the target (>= 70%). A missed target says MISSED, and 503s (a
busy database) are counted and printed; the exit status is non-zero only when something failed: a
server or command, any other error answer, or a first answer that is not the entitlement seeded.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import secrets
import sys
import tempfile
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from _common import (
    BenchError,
    Call,
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
from fastapi import FastAPI

from billwarden import domains
from billwarden.core.modes import Mode
from billwarden.db.engine import create_engine, create_sessionmaker
from billwarden.db.unit_of_work import unit_of_work
from billwarden.entitlements.models import Entitlement

TARGET = 0.70  # billwarden's reads/s as a share of the baseline's
WARM_UP_READS = 100
PROJECT_SLUG = "bench-entitlements"
SCRIPT = Path(__file__).resolve()
FEATURES = ["api", "exports", "priority_support", "sso"]
QUOTAS: dict[str, Any] = {"api_calls": {"limit": 100000, "period": "month"}}
PATHS = ("hot", "cold")
TARGETED = "hot"


def subject_id(number: int) -> str:
    return f"user_{number:06d}"


def unknown_subject_id(number: int) -> str:
    return f"stranger_{number:06d}"


# --- the baseline server ------------------------------------------------------------------------


def entitlement_answer(subject: str, *, premium: bool) -> dict[str, Any]:
    """What billwarden answers for a subject, in its shape (camelCase), built once."""
    now = datetime.now(UTC)
    features = FEATURES if premium else []
    plans = ["pro_monthly"] if premium else []
    return {
        "entitlement": {
            "id": str(uuid.uuid4()) if premium else None,
            "userExternalId": subject,
            "userEmail": f"{subject}@example.com" if premium else None,
            "plan": "PREMIUM_MONTHLY" if premium else "FREE",
            "status": "ACTIVE" if premium else "NONE",
            "stripeCustomerId": f"cus_{subject}" if premium else None,
            "stripeSubscriptionId": f"sub_{subject}" if premium else None,
            "stripePriceId": "price_pro_monthly" if premium else None,
            "currentPeriodStart": now.isoformat() if premium else None,
            "currentPeriodEnd": (now + timedelta(days=30)).isoformat() if premium else None,
            "cancelAtPeriodEnd": False,
            "lastSyncedAt": now.isoformat() if premium else None,
            "lastEventId": f"evt_{subject}" if premium else None,
            "subjectType": "user",
            "subjectId": subject,
            "features": features,
            "quotas": QUOTAS if premium else {},
            "role": "member" if premium else None,
            "plans": plans,
        },
        "hasPremiumAccess": premium,
        "features": features,
        "role": "member" if premium else None,
        "plans": plans,
    }


def baseline_app(subjects: int) -> FastAPI:
    """The same route, answered from a dict in memory: no key check, no database."""
    answers = {
        subject_id(number): entitlement_answer(subject_id(number), premium=True)
        for number in range(subjects)
    }
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/api/v1/entitlements/{subject_type}/{subject}")
    async def entitlement(subject_type: str, subject: str) -> dict[str, Any]:
        found = answers.get(subject)
        return found if found is not None else entitlement_answer(subject, premium=False)

    return app


def serve_baseline(port: int, subjects: int) -> None:
    """Served as billwarden serves itself: uvicorn, one process, no server header."""
    uvicorn.run(
        baseline_app(subjects),
        host="127.0.0.1",
        port=port,
        workers=1,
        log_config=None,
        log_level="warning",
        access_log=False,
        server_header=False,
        proxy_headers=False,
    )


# --- set-up -------------------------------------------------------------------------------------


async def set_up_project(environment: dict[str, str]) -> tuple[str, str]:
    """A project and a test-mode API key, made with billwarden's own CLI: (project id, key)."""
    await billwarden_command(environment, "migrate")
    created = await billwarden_command(
        environment, "projects", "create", "--name", "Bench entitlements", "--slug", PROJECT_SLUG
    )
    project = re.search(r"\(([0-9a-f-]{36})\)", created)
    made = await billwarden_command(
        environment, "keys", "create", "--project", PROJECT_SLUG, "--name", "bench"
    )
    key = re.search(r"\bbw_test_\S+", made)
    if project is None or key is None:
        raise BenchError(f"no project id or API key in the CLI's output:\n{created}\n{made}")
    return project.group(1), key.group(0)


async def seed_snapshots(database_url: str, project_id: str, subjects: int) -> None:
    """Entitlement snapshots for `subjects` users: an active premium plan each."""
    now = datetime.now(UTC)
    domains.metadata()  # every domain's models mapped, so the snapshot's foreign keys resolve
    engine = create_engine(database_url)
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
                    stripe_customer_id=f"cus_{subject_id(number)}",
                    stripe_subscription_id=f"sub_{subject_id(number)}",
                    stripe_price_id="price_pro_monthly",
                    current_period_start=now,
                    current_period_end=now + timedelta(days=30),
                    cancel_at_period_end=False,
                    features=FEATURES,
                    quotas=QUOTAS,
                    role="member",
                    plans=["pro_monthly"],
                    last_synced_at=now,
                    last_event_id=f"evt_{subject_id(number)}",
                )
                for number in range(subjects)
            )
    finally:
        await engine.dispose()


async def check_answers(server: Server, headers: dict[str, str]) -> None:
    """One read of each path answers what was seeded, so the load measures the intended path."""
    async with httpx.AsyncClient(base_url=server.url, headers=headers, trust_env=False) as client:
        for subject, plan in ((subject_id(0), "PREMIUM_MONTHLY"), (unknown_subject_id(0), "FREE")):
            response = await client.get(f"/api/v1/entitlements/user/{subject}")
            answer = response.json() if response.status_code == 200 else None
            if answer is None or answer["entitlement"]["plan"] != plan:
                raise BenchError(
                    f"{server.name} answered {response.status_code} for {subject}, not the "
                    f"{plan} entitlement: {response.text[:300]}"
                )


# --- measuring ----------------------------------------------------------------------------------


def reads(path: str, args: argparse.Namespace, headers: dict[str, str]) -> list[Call]:
    """`args.reads` reads: subjects with a snapshot in turn, or a distinct unknown subject each."""
    if path == "hot":
        ids = [subject_id(number % args.subjects) for number in range(args.reads)]
    else:
        ids = [unknown_subject_id(number) for number in range(args.reads)]
    return [Call("GET", f"/api/v1/entitlements/user/{subject}", headers) for subject in ids]


async def load_paths(
    server: Server, args: argparse.Namespace, headers: dict[str, str]
) -> dict[str, Load]:
    await check_answers(server, headers)
    # every subject of the hot set read once (and the connections warmed)
    warm_up = [
        Call("GET", f"/api/v1/entitlements/user/{subject_id(number)}", headers)
        for number in range(max(args.subjects, WARM_UP_READS))
    ]
    await drive(server, warm_up, args.concurrency)
    return {
        path: await drive(server, reads(path, args, headers), args.concurrency) for path in PATHS
    }


async def bench_database(kind: str, args: argparse.Namespace) -> bool:
    """Measure one database and print its lines; whether every answer was a 200."""
    async with scratch_database(kind, args.postgres_url, args.workdir) as database:
        environment = server_environment(database.url, secrets.token_urlsafe(48))
        project_id, key = await set_up_project(environment)
        await seed_snapshots(database.url, project_id, args.subjects)

        port = free_port()
        command = [sys.executable, str(SCRIPT), "--serve-baseline", str(port)]
        command += ["--subjects", str(args.subjects)]
        async with running_server(
            "baseline", command, plain_environment(), port, "/healthz", args.workdir
        ) as server:
            baseline = await load_paths(server, args, {})

        port = free_port()
        headers = {"Authorization": f"Bearer {key}"}
        async with running_server(
            "billwarden", billwarden_serve(port), environment, port, "/readyz", args.workdir
        ) as billwarden:
            measured = await load_paths(billwarden, args, headers)
    healthy = True
    for path in PATHS:
        print(f"{kind:<10} {path:<8} baseline    {describe(baseline[path], 'reads')}")
        print(f"{kind:<10} {path:<8} billwarden  {describe(measured[path], 'reads')}")
        if path == TARGETED:
            share = verdict(
                "reads/s", measured[path].success_rate, baseline[path].success_rate, TARGET
            )
        else:
            ratio = measured[path].success_rate / max(baseline[path].success_rate, 1e-9)
            share = f"reads/s: {ratio:.0%} of baseline (first reads: no target)"
        print(f"{kind:<10} {path:<8} {share}")
        healthy = healthy and not measured[path].unexpected and not baseline[path].unexpected
    for line in billwarden.log_summary():
        print(f"{kind:<10} billwarden logged {line}")
    busy = sum(load.busy for load in measured.values())
    if busy:
        print(f"{kind:<10} NOTE: billwarden answered 503 (busy database) to {busy} read(s)")
    return healthy


async def main_async(args: argparse.Namespace) -> int:
    databases = chosen_databases(args.databases)
    postgres = args.postgres_url if "postgresql" in databases else None
    print(await machine_facts(postgres))
    print(
        f"{args.reads} reads per path per server (after reading each of the hot subjects once), "
        f"{args.subjects} subjects with a snapshot, {args.concurrency} concurrent keep-alive "
        "connections, one server process each"
    )
    healthy = True
    for kind in databases:
        with tempfile.TemporaryDirectory(prefix="billwarden-bench-") as directory:
            args.workdir = Path(directory)
            healthy = await bench_database(kind, args) and healthy
    if not healthy:
        print("FAILED: an answer was neither a 200 nor a 503 (see above)")
    return 0 if healthy else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reads", type=int, default=1500, help="timed reads per path and server")
    parser.add_argument("--concurrency", type=int, default=8, help="concurrent connections")
    parser.add_argument("--subjects", type=int, default=500, help="subjects with a snapshot")
    add_common_options(parser)
    # the baseline server, run by this script in a process of its own
    parser.add_argument("--serve-baseline", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_baseline is not None:
        serve_baseline(args.serve_baseline, args.subjects)
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
