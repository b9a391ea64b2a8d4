"""Stripe subscriptions reconciled per second by a billwarden run, beside a bare read of them.

One emulator account holds `--subscriptions` subscriptions (default 20,000) of the plans of
examples/catalog.toml, in a mix of statuses: made by cloning one subscription per plan made
through the emulator's API, written into its state, which a `billwarden emulator` process then
serves from a snapshot file. For each database (SQLite, then PostgreSQL), freshly migrated, a
project with a test-mode Stripe configuration (the account's key) and the catalog (loaded and
pushed) is made with billwarden's own CLI, and the mirror is filled as the webhooks would have
left it: a customer per subject, a row per subscription (one subject in ten has a second one, an
add-on) and each subject's snapshot as `entitlements.derive` gives it. One subscription in a
hundred is planted out of sync, in turn: its mirror row's status, period end or cancellation
differs from Stripe's, or its subject's snapshot status differs from what the mirror derives.
On PostgreSQL the database is then ANALYZEd, as autovacuum would have done by the time a run
starts (without statistics the planner scans the whole mode for each page's query). Then,
measured:

- bare read: the same subscriptions read from the emulator with the gateway call a run makes
  (`StripeGateway.list_page`, `/v1/subscriptions?status=all&limit=100`, pages in turn) and
  nothing else, before the runs and again after them;
- billwarden, in-process: `Runs.request` then `Runs.execute` in this process, the time of
  `execute` alone (the headline: no interpreter start-up);
- billwarden, command: `billwarden reconcile --project SLUG --mode test`, its wall time from
  start to exit (the user's path, start-up included).

    .venv/bin/python bench/reconcile.py [--subscriptions 20000]
        [--databases sqlite,postgresql] [--postgres-url postgresql+asyncpg://...]

Prints subscriptions read per second for each, the CPU seconds this process and the emulator
used meanwhile, billwarden's rate as a share of the bare read's (the faster of the two), and the
in-process rate beside the product's target on PostgreSQL (>= 2,000 subscriptions/s; SQLite is
printed with no target). A missed target says MISSED; the exit status is 1 when a run does not
read every subscription or does not find exactly the records planted out of sync, 2 when the
bench itself could not run (a server or a command failed), 0 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import re
import secrets
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import stripe
from _common import (
    BenchError,
    Server,
    add_common_options,
    billwarden_command,
    chosen_databases,
    free_port,
    machine_facts,
    plain_environment,
    running_server,
    scratch_database,
    server_environment,
)
from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from billwarden import domains
from billwarden.audit.service import Actor
from billwarden.catalog.service import CatalogService, read_catalog_file
from billwarden.catalog.service.document import CatalogDocument
from billwarden.config import Settings
from billwarden.core.modes import Mode
from billwarden.db.engine import create_sessionmaker, engine_from_settings
from billwarden.db.unit_of_work import unit_of_work
from billwarden.entitlements.models import Entitlement
from billwarden.entitlements.service import derive
from billwarden.kit.state import build_secret_box
from billwarden.projects.repository import ProjectRepository
from billwarden.reconciliation.models import RunStatus
from billwarden.reconciliation.repository import RunRepository
from billwarden.reconciliation.service import RunPolicy, Runs
from billwarden.stripe_gateway import StripeGateway
from billwarden.subscriptions.models import Customer, Subscription
from billwarden.subscriptions.service import (
    period_of,
    price_ids_of,
    recurring_amount,
    timestamp,
)
from billwarden_emulator import snapshot
from billwarden_emulator.app import create_app
from billwarden_emulator.config import EmulatorConfig
from billwarden_emulator.testing import serving

TARGET_PER_SECOND = 2000.0  # subscriptions reconciled per second, on PostgreSQL
TARGETED = "postgresql"
PROJECT_SLUG = "bench-reconcile"
CATALOG = Path(__file__).resolve().parent.parent / "examples" / "catalog.toml"
PAGE_SIZE = 100
SEED_BATCH = 1000  # subscriptions per insert (a multiple of 10: an add-on's subject is in it)
DAY = 86400
DRIFT_EVERY = 100  # one subscription in a hundred planted out of sync
# what differs on a planted subscription (or its subject's snapshot), in turn
DRIFTS = ("status_mismatch", "period_mismatch", "cancel_state_mismatch", "snapshot_drift")


# --- the data set -------------------------------------------------------------------------------


def subject_number(number: int) -> int:
    """Whose subscription `number` is: one subject in ten has a second one (an add-on)."""
    return number - 1 if number % 10 == 9 else number


def subject_id(subject: int) -> str:
    return f"user_{subject:06d}"


def customer_id(subject: int) -> str:
    return f"cus_bench{subject:09d}"


def subscription_id(number: int) -> str:
    return f"sub_bench{number:015d}"


def plan_of(number: int) -> str:
    """The plan (purchase key of examples/catalog.toml) subscription `number` is on."""
    if number % 10 == 9:
        return "api_pro"
    if number % 50 == 17:
        return "enterprise"
    if number % 10 in (3, 6):
        return "premium_yearly"
    return "premium_monthly"


def status_of(number: int) -> tuple[str, bool]:
    """Stripe's status of subscription `number`, and whether it cancels at the period's end
    (23 is prime to the drift's period, so the planted ones have every status)."""
    turn = number % 23
    if turn == 0:
        return "canceled", False
    if turn == 1:
        return "past_due", False
    if turn == 2:
        return "trialing", False
    return "active", turn == 3


def drift_of(number: int) -> str | None:
    """The reason planted on subscription `number`, if any (never on an add-on: one record,
    one planted reason)."""
    if number % DRIFT_EVERY != DRIFT_EVERY // 2:
        return None
    return DRIFTS[(number // DRIFT_EVERY) % len(DRIFTS)]


@dataclass(frozen=True)
class Fleet:
    """The emulator's subscriptions, each as Stripe's JSON (bytes: they weigh nothing on the
    garbage collector of the process that is measured)."""

    key: str
    subscriptions: list[bytes]
    snapshot: Path
    seconds: float


def build_fleet(path: Path, count: int) -> Fleet:
    """Make a subscription per plan through the emulator's API (served in a thread here), clone
    them `count` times into its state, and save that state as a snapshot file."""
    started = time.perf_counter()
    key = "sk_test_bench" + secrets.token_hex(12)
    document = read_catalog_file(CATALOG)
    app = create_app(EmulatorConfig())
    with serving(app) as url:
        client = stripe.StripeClient(key, base_addresses={"api": url})
        customer = client.v1.customers.create({"email": "template@example.com"})
        templates: dict[str, str] = {}
        for plan_key, reference in document.price_references(Mode.TEST):
            plan = document.plans[plan_key]
            if plan.amount is None or plan.currency is None or plan.interval is None:
                raise BenchError(f"{CATALOG}: plan {plan_key} needs an amount and an interval")
            product = client.v1.products.create({"name": plan_key})
            price = client.v1.prices.create(
                {
                    "product": product.id,
                    "unit_amount": plan.amount,
                    "currency": plan.currency,
                    "recurring": {"interval": plan.interval},
                    "lookup_key": reference.removeprefix("lookup:"),
                }
            )
            made = client.v1.subscriptions.create(
                {"customer": customer.id, "items": [{"price": price.id}]}
            )
            templates[plan_key] = made.id
        account = app.state.emulator.store.accounts[key]
        customers: dict[str, Any] = account.collections["customers"]
        subscriptions: dict[str, Any] = account.collections["subscriptions"]
        template_customer = orjson.dumps(customers[customer.id])
        template_subscription = {
            plan_key: orjson.dumps(subscriptions.pop(stripe_id))
            for plan_key, stripe_id in templates.items()
        }
        now = int(time.time())
        made_json = []
        for number in range(count):
            subject = subject_number(number)
            if subject == number:
                cloned = orjson.loads(template_customer)
                cloned.update(
                    id=customer_id(subject),
                    email=f"{subject_id(subject)}@example.com",
                    created=now - 40 * DAY,
                )
                customers[cloned["id"]] = cloned
            obj = _subscription(orjson.loads(template_subscription[plan_of(number)]), number, now)
            subscriptions[obj["id"]] = obj
            made_json.append(orjson.dumps(obj))
        snapshot.save_file(app.state.emulator.store, path)
    del app
    gc.collect()
    return Fleet(key, made_json, path, time.perf_counter() - started)


def _subscription(obj: dict[str, Any], number: int, now: int) -> dict[str, Any]:
    """A template subscription made into subscription `number`."""
    stripe_id = subscription_id(number)
    created = now - (number % 28) * DAY - 3600
    status, cancels = status_of(number)
    obj.update(
        id=stripe_id,
        customer=customer_id(subject_number(number)),
        created=created,
        start_date=created,
        billing_cycle_anchor=created,
        status=status,
    )
    end = created
    for index, item in enumerate(obj["items"]["data"]):
        interval = item["price"]["recurring"]["interval"]
        end = created + (365 if interval == "year" else 30) * DAY
        item.update(
            id=f"si_bench{number:09d}{index}",
            subscription=stripe_id,
            created=created,
            current_period_start=created,
            current_period_end=end,
        )
    obj["items"]["url"] = f"/v1/subscription_items?subscription={stripe_id}"
    if status == "trialing":
        obj.update(trial_start=created, trial_end=end)
    if status == "canceled":
        obj.update(canceled_at=created + DAY, ended_at=created + DAY)
        obj["cancellation_details"]["reason"] = "cancellation_requested"
    if cancels:
        obj.update(cancel_at_period_end=True, cancel_at=end, canceled_at=created + DAY)
        obj["cancellation_details"]["reason"] = "cancellation_requested"
    return obj


def emulator_command(port: int, path: Path) -> list[str]:
    """`billwarden emulator`, serving the saved state."""
    return [
        *(sys.executable, "-m", "billwarden", "emulator", "--host", "127.0.0.1"),
        *("--port", str(port), "--snapshot", str(path)),
    ]


# --- the mirror ---------------------------------------------------------------------------------


async def seed_mirror(
    sessionmaker: async_sessionmaker[AsyncSession], project_id: uuid.UUID, fleet: Fleet
) -> Counter[str]:
    """Customers, mirror rows and snapshots as billwarden would hold them after every webhook,
    bulk-inserted; one subscription in a hundred out of sync. The reasons planted, counted."""
    async with unit_of_work(sessionmaker, write=False) as session:
        loaded = await CatalogService(session).current(project_id)
        if loaded is None:
            raise BenchError("the project has no catalog after `billwarden catalog load`")
        catalog = loaded.document
        price_map = await CatalogService(session).price_map(project_id, Mode.TEST, catalog)
        project = await ProjectRepository(session).get(project_id)
        grace_days = project.past_due_grace_days if project is not None else 0
    if len(price_map) != len(catalog.plans):
        raise BenchError(f"`catalog push` resolved {len(price_map)} of {len(catalog.plans)} plans")
    planted: Counter[str] = Counter()
    for start in range(0, len(fleet.subscriptions), SEED_BATCH):
        batch = range(start, min(start + SEED_BATCH, len(fleet.subscriptions)))
        rows = _batch_rows(project_id, fleet, batch, catalog, price_map, grace_days, planted)
        async with unit_of_work(sessionmaker) as session:
            for model, values in zip((Customer, Subscription, Entitlement), rows, strict=True):
                await session.execute(insert(model), values)
    return planted


def _batch_rows(
    project_id: uuid.UUID,
    fleet: Fleet,
    batch: range,
    catalog: CatalogDocument,
    price_map: dict[str, str],
    grace_days: int,
    planted: Counter[str],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    now = datetime.now(UTC)
    tenant = {"project_id": project_id, "mode": Mode.TEST}
    customers: list[dict[str, Any]] = []
    subscriptions: list[dict[str, Any]] = []
    by_subject: dict[int, list[dict[str, Any]]] = {}
    drifted: dict[int, str] = {}
    for number in batch:
        obj = orjson.loads(fleet.subscriptions[number])
        subject = subject_number(number)
        if subject == number:
            customers.append(
                {
                    **tenant,
                    "id": uuid.uuid4(),
                    "subject_type": "user",
                    "subject_id": subject_id(subject),
                    "stripe_customer_id": customer_id(subject),
                    "email": f"{subject_id(subject)}@example.com",
                    "deleted": False,
                    "created_at": now,
                    "updated_at": now,
                }
            )
        row = _mirror_row(obj, price_map, now) | tenant | {"subject_id": subject_id(subject)}
        drift = drift_of(number)
        if drift is not None:
            planted[drift] += 1
            drifted[subject] = drift
            _plant(row, drift, now)
        subscriptions.append(row)
        by_subject.setdefault(subject, []).append(row)
    snapshots = []
    for subject, rows in by_subject.items():
        derived = derive([Subscription(**row) for row in rows], catalog, price_map, grace_days, now)
        if drifted.get(subject) == "snapshot_drift":
            derived.status = "CANCELED" if derived.status != "CANCELED" else "ACTIVE"
        snapshots.append(
            {
                **tenant,
                **vars(derived),
                "id": uuid.uuid4(),
                "subject_type": "user",
                "subject_id": subject_id(subject),
                "user_email": f"{subject_id(subject)}@example.com",
                "last_synced_at": now,
                "last_event_id": None,
            }
        )
    return customers, subscriptions, snapshots


def _mirror_row(obj: dict[str, Any], price_map: dict[str, str], now: datetime) -> dict[str, Any]:
    """What `MirrorService.apply_subscription` writes for `obj` (a fresh read of Stripe)."""
    prices = price_ids_of(obj)
    currency, annual = recurring_amount(obj)
    start, end = period_of(obj)
    return {
        "id": uuid.uuid4(),
        "stripe_subscription_id": obj["id"],
        "stripe_customer_id": obj["customer"],
        "subject_type": "user",
        "status": obj["status"],
        "price_ids": prices,
        "purchase_keys": [price_map[price] for price in prices if price in price_map],
        "currency": currency,
        "annual_amount": annual,
        "started_at": timestamp(obj.get("start_date")) or timestamp(obj.get("created")),
        "current_period_start": start,
        "current_period_end": end,
        "cancel_at_period_end": bool(obj.get("cancel_at_period_end")),
        "cancel_at": timestamp(obj.get("cancel_at")),
        "canceled_at": timestamp(obj.get("canceled_at")),
        "ended_at": timestamp(obj.get("ended_at")),
        "trial_end": timestamp(obj.get("trial_end")),
        "pause_behavior": None,
        "pause_resumes_at": None,
        "past_due_since": now if obj["status"] == "past_due" else None,
        "last_event_created": None,
        "last_event_id": None,
        "synced_at": now,
        "created_at": now,
        "raw": obj,
    }


def _plant(row: dict[str, Any], drift: str, now: datetime) -> None:
    """Make the mirror row differ from Stripe's subscription (a snapshot drift is planted on
    the snapshot instead); the snapshot is derived from the row as it is."""
    if drift == "status_mismatch":
        row["status"] = "past_due" if row["status"] != "past_due" else "active"
        row["past_due_since"] = now if row["status"] == "past_due" else None
    elif drift == "period_mismatch":
        row["current_period_end"] -= timedelta(days=3)
    elif drift == "cancel_state_mismatch":
        row["cancel_at_period_end"] = not row["cancel_at_period_end"]


# --- measuring ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Measured:
    name: str
    subscriptions: int
    seconds: float
    cpu: float | None  # this process's CPU seconds meanwhile (None: another process ran it)
    emulator_cpu: float | None

    @property
    def rate(self) -> float:
        return self.subscriptions / self.seconds if self.seconds > 0 else 0.0

    def line(self, kind: str) -> str:
        line = (
            f"{kind:<10} {self.name:<22} {self.subscriptions:>6} subscriptions "
            f"{self.seconds:7.2f} s {self.rate:7.0f} /s"
        )
        if self.cpu is not None:
            line += f"  bench CPU {self.cpu:6.2f} s"
        if self.emulator_cpu is not None:
            line += f"  emulator CPU {self.emulator_cpu:6.2f} s"
        return line


class Stopwatch:
    """Wall time, this process's CPU time and the emulator's, between start and stop."""

    def __init__(self, emulator: Server) -> None:
        self.emulator = emulator
        self.started = time.perf_counter()
        self.cpu = time.process_time()
        self.emulator_cpu = emulator.cpu_seconds()

    def stop(self, name: str, subscriptions: int, *, in_process: bool = True) -> Measured:
        seconds = time.perf_counter() - self.started
        cpu = time.process_time() - self.cpu if in_process else None
        after = self.emulator.cpu_seconds()
        emulator_cpu = (
            None if after is None or self.emulator_cpu is None else after - self.emulator_cpu
        )
        return Measured(name, subscriptions, seconds, cpu, emulator_cpu)


async def bare_read(
    settings: Settings, emulator: Server, project_id: uuid.UUID, key: str, name: str
) -> Measured:
    """Every subscription, a page of 100 at a time, with the run's gateway call, and nothing
    else done with them."""
    gateway = StripeGateway(
        api_base=settings.stripe_api_base,
        max_network_retries=settings.stripe_max_network_retries,
    )
    try:
        gc.collect()
        watch = Stopwatch(emulator)
        params: dict[str, Any] = {"status": "all", "limit": PAGE_SIZE}
        seen = 0
        while True:
            page = await gateway.list_page(project_id, Mode.TEST, key, "/v1/subscriptions", params)
            objects = page["data"]
            seen += len(objects)
            if not page.get("has_more") or not objects:
                break
            params = {**params, "starting_after": objects[-1]["id"]}
        return watch.stop(name, seen)
    finally:
        await gateway.close()


@dataclass(frozen=True)
class RunResult:
    measured: Measured
    seen: int
    total: int
    mismatched: int
    reasons: dict[str, int]
    failure: str | None


async def in_process_run(
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    emulator: Server,
    project_id: uuid.UUID,
) -> RunResult:
    """`Runs.request`, then `Runs.execute` timed, as `billwarden reconcile` does them."""
    gateway = StripeGateway(
        api_base=settings.stripe_api_base,
        max_network_retries=settings.stripe_max_network_retries,
    )
    runs = Runs(
        sessionmaker, gateway, build_secret_box(settings), RunPolicy.from_settings(settings)
    )
    try:
        async with unit_of_work(sessionmaker) as session:
            run, new = await Runs.request(
                session, project_id, Mode.TEST, Actor.system("bench"), "cli"
            )
        if not new:
            raise BenchError(f"a run was already {run.status.value}: {run.id}")
        gc.collect()
        watch = Stopwatch(emulator)
        executed = await runs.execute(run.id)
        async with unit_of_work(sessionmaker, write=False) as session:
            done = await RunRepository(session).get(run.id)
        if done is None:
            raise BenchError(f"run {run.id} vanished")
        measured = watch.stop("billwarden in-process", done.subscriptions_seen)
    finally:
        await gateway.close()
    failure = None
    if not executed or done.status != RunStatus.FINISHED:
        failure = f"the run ended {done.status.value}: {done.error}"
    elif not done.stripe_available:
        failure = f"the run could not read Stripe: {done.stripe_error}"
    return RunResult(
        measured, done.subscriptions_seen, done.total, done.mismatched, dict(done.reasons), failure
    )


async def command_run(environment: dict[str, str], emulator: Server) -> RunResult:
    """`billwarden reconcile --project SLUG --mode test`, from start to exit."""
    watch = Stopwatch(emulator)
    printed = await billwarden_command(
        environment, "reconcile", "--project", PROJECT_SLUG, "--mode", "test"
    )
    measured = watch.stop("billwarden command", 0, in_process=False)

    def count(label: str) -> int | None:
        found = re.search(rf"^\W*{label}\W+(\d+)", printed, re.MULTILINE)
        return int(found.group(1)) if found else None

    seen, total, mismatched = (
        count(label) for label in ("Stripe subscriptions read", "total", "mismatched")
    )
    reasons = {
        found.group(1): int(found.group(2))
        for found in re.finditer(
            r"^\W*([a-z_]+_(?:mismatch|drift|stripe|locally))\W+(\d+)", printed, re.MULTILINE
        )
    }
    failure = None
    if seen is None or total is None or mismatched is None:
        failure = f"no summary in the command's output:\n{printed}"
    measured = Measured(
        measured.name, seen or 0, measured.seconds, measured.cpu, measured.emulator_cpu
    )
    return RunResult(measured, seen or 0, total or 0, mismatched or 0, reasons, failure)


def check(kind: str, name: str, result: RunResult, count: int, planted: Counter[str]) -> bool:
    """Whether the run read every subscription and found exactly what was planted."""
    problems = []
    if result.failure is not None:
        problems.append(result.failure)
    else:
        if result.seen != count:
            problems.append(f"read {result.seen} subscriptions, not {count}")
        if result.mismatched != sum(planted.values()):
            problems.append(
                f"{result.mismatched} records mismatched, {sum(planted.values())} planted"
            )
        if result.reasons != dict(planted):
            problems.append(f"reasons {result.reasons}, planted {dict(planted)}")
    for problem in problems:
        print(f"{kind:<10} FAILED ({name}): {problem}")
    return not problems


# --- one database -------------------------------------------------------------------------------


async def set_up_project(environment: dict[str, str], key: str) -> uuid.UUID:
    """Migrated, a project, its test-mode Stripe configuration and the catalog (loaded, and its
    prices found in the emulator), all with billwarden's own CLI."""
    await billwarden_command(environment, "migrate")
    created = await billwarden_command(
        environment, "projects", "create", "--name", "Bench reconcile", "--slug", PROJECT_SLUG
    )
    project = re.search(r"\(([0-9a-f-]{36})\)", created)
    if project is None:
        raise BenchError(f"no project id in the CLI's output:\n{created}")
    await billwarden_command(
        environment,
        *("projects", "stripe-config", "--project", PROJECT_SLUG, "--mode", "test"),
        *("--secret-key", key),
    )
    await billwarden_command(
        environment, "catalog", "load", str(CATALOG), "--project", PROJECT_SLUG
    )
    await billwarden_command(environment, "catalog", "push", "--project", PROJECT_SLUG)
    return uuid.UUID(project.group(1))


async def bench_database(
    kind: str, args: argparse.Namespace, emulator: Server, fleet: Fleet, workdir: Path
) -> bool:
    """Set up and measure one database, print its lines; whether both runs found what was
    planted."""
    count = len(fleet.subscriptions)
    async with scratch_database(kind, args.postgres_url, workdir) as database:
        secret_key = secrets.token_urlsafe(48)
        environment = server_environment(database.url, secret_key)
        environment["BILLWARDEN_STRIPE_API_BASE"] = emulator.url
        started = time.perf_counter()
        project_id = await set_up_project(environment, fleet.key)
        commands = time.perf_counter() - started
        settings = Settings(
            database_url=database.url,
            secret_key=secret_key,
            stripe_api_base=emulator.url,
            log_level="WARNING",
        )
        domains.metadata()  # every domain's models mapped, so foreign keys resolve
        engine = engine_from_settings(settings)
        try:
            sessionmaker = create_sessionmaker(engine)
            started = time.perf_counter()
            planted = await seed_mirror(sessionmaker, project_id, fleet)
            analyzed = ""
            if kind == "postgresql":
                # the statistics autovacuum gathers within a minute of such a change in a
                # running database (without them the planner reads every row of the mode for
                # each page: it picks the subject index and filters on the subscription id)
                async with engine.begin() as connection:
                    await connection.execute(text("ANALYZE"))
                analyzed = " and ANALYZE"
            seeded = time.perf_counter() - started
            print(
                f"{kind:<10} set-up: CLI (migrate, project, stripe-config, catalog load and "
                f"push) {commands:.1f} s, mirror ({count} subscriptions){analyzed} "
                f"{seeded:.1f} s; "
                f"planted out of sync: {sum(planted.values())} "
                f"({', '.join(f'{reason} {n}' for reason, n in sorted(planted.items()))})"
            )
            first = await bare_read(settings, emulator, project_id, fleet.key, "bare read")
            print(first.line(kind))
            in_process = await in_process_run(settings, sessionmaker, emulator, project_id)
            print(in_process.measured.line(kind))
        finally:
            await engine.dispose()
        command = await command_run(environment, emulator)
        print(command.measured.line(kind))
        again = await bare_read(settings, emulator, project_id, fleet.key, "bare read (again)")
        print(again.line(kind))
    healthy = check(kind, "in-process", in_process, count, planted)
    healthy = check(kind, "command", command, count, planted) and healthy
    print(
        f"{kind:<10} records: {in_process.total} subjects, {in_process.mismatched} mismatched "
        f"({', '.join(f'{reason} {n}' for reason, n in sorted(in_process.reasons.items()))})"
    )
    baseline = max(first.rate, again.rate)
    for result in (in_process, command):
        rate = result.measured.rate
        share = rate / baseline if baseline > 0 else 0.0
        line = (
            f"{kind:<10} {result.measured.name}: {rate:.0f} subscriptions/s, {share:.0%} of the "
            f"bare read ({baseline:.0f}/s)"
        )
        if kind != TARGETED:
            line += " (no target)"
        else:
            outcome = "met" if rate >= TARGET_PER_SECOND else "MISSED"
            headline = " [headline]" if result is in_process else ""
            line += f"; target >= {TARGET_PER_SECOND:.0f}/s: {outcome}{headline}"
        print(line)
    return healthy


async def main_async(args: argparse.Namespace) -> int:
    databases = chosen_databases(args.databases)
    if args.subscriptions < 1:
        raise SystemExit("--subscriptions takes a positive number")
    postgres = args.postgres_url if "postgresql" in databases else None
    print(await machine_facts(postgres))
    started = time.perf_counter()
    healthy = True
    with tempfile.TemporaryDirectory(prefix="billwarden-bench-") as directory:
        workdir = Path(directory)
        fleet = await asyncio.to_thread(build_fleet, workdir / "emulator.json", args.subscriptions)
        size = fleet.snapshot.stat().st_size / 1e6
        count = len(fleet.subscriptions)
        print(
            f"{count} subscriptions of {count - count // 10} subjects in one emulator account, "
            f"made in {fleet.seconds:.1f} s (snapshot {size:.0f} MB), served by one "
            f"`billwarden emulator` process; pages of {PAGE_SIZE}"
        )
        port = free_port()
        async with running_server(
            "emulator",
            emulator_command(port, fleet.snapshot),
            plain_environment(),
            port,
            "/_emulator/health",
            workdir,
        ) as emulator:
            for kind in databases:
                database_dir = workdir / kind
                database_dir.mkdir()
                healthy = (
                    await bench_database(kind, args, emulator, fleet, database_dir) and healthy
                )
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    print(f"total {time.perf_counter() - started:.0f} s; load at the end {load}")
    return 0 if healthy else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--subscriptions", type=int, default=20000, help="subscriptions in the emulator"
    )
    add_common_options(parser)
    args = parser.parse_args()
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
