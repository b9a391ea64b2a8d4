"""The chaos run, shared by `bench/chaos.py` (the issue's sizes) and `tests/chaos/test_chaos.py`
(a small one on every `make test`).

On a PostgreSQL cluster of its own: the emulator as Stripe (a process), two `billwarden serve`
processes (the emulator's webhook endpoints alternate between them) and two `billwarden worker`
processes. The scenario (tests/chaos/scenario.py) runs with 30% of the events delivered twice,
deliveries shuffled, and 5% of the Stripe API calls failing with 500 or 429; mid-run a worker is
killed with SIGKILL (and started again), PostgreSQL is restarted, and a server is killed with
SIGKILL (and started again). Once every delivery is done and the inbox holds no due work, every
emitted event must be in the inbox and applied, and every mirror row and entitlement snapshot
must equal what Stripe's final state implies (tests/chaos/check.py). Every process's log is then
scanned for secrets (tests/secret_scan.py).
"""

from __future__ import annotations

import asyncio
import secrets
import shutil
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import stripe
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from billwarden.catalog.service import CatalogService
from billwarden.core.modes import Mode
from billwarden.crypto import SecretBox
from billwarden.db import migrate
from billwarden.db.engine import create_engine, create_sessionmaker
from billwarden.db.unit_of_work import unit_of_work
from billwarden.projects.service import EndUserSecretService, ProjectService
from billwarden.projects.stripe_config import StripeConfigService
from tests.chaos.check import FINISHED, Catalog, StripeState, compare, read_inbox, read_mirror
from tests.chaos.clients import Billwarden, Emulator
from tests.chaos.cluster import PrivateCluster
from tests.chaos.processes import (
    ManagedProcess,
    billwarden,
    free_port,
    plain_environment,
)
from tests.chaos.scenario import Plan, Scenario
from tests.checkout.factories import catalog_document, make_prices
from tests.secret_scan import scan_files

SERVERS = 2
WORKERS = 2
RESTART_AFTER_SECONDS = 2.0
# the emulator retries a failed delivery for about two minutes, at most 10 s apart: long enough
# for a server's restart and PostgreSQL's (Stripe itself retries for days)
WEBHOOK_RETRIES = "0.5,1,2,3,5,8" + ",10" * 12
# a killed worker's claims come back after this; the default (300 s) would idle the run
WORKER_LEASE_SECONDS = 15
# each endpoint takes some event types; endpoints alternate between the servers
DELIVERY_LANES: tuple[tuple[str, ...], ...] = (
    (
        "checkout.session.completed",
        "customer.subscription.created",
        "customer.subscription.updated",
        "customer.subscription.deleted",
    ),
    (
        "invoice.created",
        "invoice.finalized",
        "invoice.paid",
        "invoice.payment_succeeded",
        "invoice.payment_failed",
        "invoice.updated",
        "invoice.upcoming",
        "invoiceitem.created",
    ),
    (
        "payment_intent.created",
        "payment_intent.succeeded",
        "payment_intent.payment_failed",
        "charge.succeeded",
        "charge.failed",
        "charge.refunded",
        "refund.created",
        "refund.updated",
    ),
    (
        "customer.created",
        "customer.updated",
        "test_helpers.test_clock.created",
        "test_helpers.test_clock.advancing",
        "test_helpers.test_clock.ready",
        "billing_portal.session.created",
    ),
)


@dataclass
class ChaosOptions:
    subscriptions: int = 500
    min_events: int = 10_000
    duplicate_rate: float = 0.30
    fault_rate: float = 0.05
    shuffle_window: float = 1.0
    concurrency: int = 8
    seed: int = 14
    quiescence_seconds: float = 900.0
    keep: Path | None = None  # copy the logs here
    progress: bool = False  # print the timeline as it happens


@dataclass
class ChaosResult:
    figures: dict[str, Any] = field(default_factory=dict)
    mismatches: list[str] = field(default_factory=list)
    secret_findings: list[str] = field(default_factory=list)
    exit_codes: dict[str, int | None] = field(default_factory=dict)

    @property
    def clean(self) -> bool:
        return not self.mismatches and not self.secret_findings

    def report(self, first: int = 20) -> str:
        lines = [f"{name}: {value}" for name, value in self.figures.items()]
        lines.append(f"mismatches: {len(self.mismatches)}")
        lines += [f"  {mismatch}" for mismatch in self.mismatches[:first]]
        lines.append(f"secrets found in logs: {len(self.secret_findings)}")
        lines += [f"  {finding}" for finding in self.secret_findings[:first]]
        return "\n".join(lines)


class Chaos:
    """One run's processes, cluster and clients; `await run()`, then `close()`."""

    def __init__(self, options: ChaosOptions) -> None:
        self.options = options
        self.workdir = Path(tempfile.mkdtemp(prefix="billwarden-chaos-"))
        self.cluster = PrivateCluster()
        self.processes: list[ManagedProcess] = []
        self.servers: list[ManagedProcess] = []
        self.workers: list[ManagedProcess] = []
        self.result = ChaosResult()
        self.background: list[asyncio.Task[None]] = []
        # the run's secrets: never to be found in a log
        self.secret_key = secrets.token_urlsafe(48)
        self.stripe_key = f"sk_test_{secrets.token_hex(16)}"
        self.webhook_secrets: list[str] = []
        self.end_user_secret = ""
        self.chaos_log: list[str] = []
        self.started = time.monotonic()
        self.database_url = ""

    def note(self, what: str) -> None:
        line = f"{time.monotonic() - self.started:7.1f} s  {what}"
        self.chaos_log.append(line)
        if self.options.progress:
            print(line, flush=True)

    # --- set-up ------------------------------------------------------------------------------

    def environment(self, database_url: str, emulator_url: str) -> dict[str, str]:
        environment = plain_environment()
        environment.update(
            BILLWARDEN_DATABASE_URL=database_url,
            BILLWARDEN_SECRET_KEY=self.secret_key,
            BILLWARDEN_STRIPE_API_BASE=emulator_url,
            BILLWARDEN_LOG_LEVEL="INFO",
            BILLWARDEN_EMBEDDED_WORKER="false",
            BILLWARDEN_WORKER_POLL_SECONDS="0.2",
            BILLWARDEN_WORKER_LEASE_SECONDS=str(WORKER_LEASE_SECONDS),
        )
        return environment

    def process(
        self,
        name: str,
        argv: list[str],
        environment: dict[str, str],
        *,
        url: str | None = None,
        ready_path: str | None = None,
    ) -> ManagedProcess:
        managed = ManagedProcess(
            name, argv, environment, self.workdir, url=url, ready_path=ready_path
        )
        self.processes.append(managed)
        return managed

    async def start_emulator(self) -> str:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        emulator = self.process(
            "emulator",
            billwarden(
                "emulator",
                *("--port", str(port), "--webhook-retries", WEBHOOK_RETRIES),
                *("--webhook-timeout", "10"),
            ),
            plain_environment(),
            url=url,
            ready_path="/_emulator/health",
        )
        emulator.start()
        await emulator.wait_ready()
        return url

    async def start_database(self) -> str:
        await asyncio.to_thread(self.cluster.start)
        admin = await asyncpg.connect(
            f"postgresql://postgres@127.0.0.1:{self.cluster.port}/postgres"
        )
        try:
            await admin.execute('CREATE DATABASE "billwarden"')
        finally:
            await admin.close()
        url = self.cluster.database_url("billwarden")
        engine = create_engine(url)
        try:
            await migrate.upgrade(engine)
        finally:
            await engine.dispose()
        return url

    async def set_up_project(
        self, emulator_url: str, urls: list[str]
    ) -> tuple[str, dict[str, str]]:
        """What an operator does with `billwarden projects create`, `catalog load` and
        `projects stripe-config` (done here in-process: the same services, without a process
        start for each): a project selling the catalog of tests/checkout/factories.py, its prices
        made in the emulator, and one webhook endpoint per lane, alternating between servers."""
        setup_client = stripe.StripeClient(self.stripe_key, base_addresses={"api": emulator_url})
        prices = await asyncio.to_thread(make_prices, setup_client)
        document = catalog_document(prices)
        self.catalog = Catalog(document)
        engine = create_engine(self.database_url)
        try:
            async with unit_of_work(create_sessionmaker(engine)) as session:
                project = await ProjectService(session).create_project("Chaos", "chaos")
                box = SecretBox(self.secret_key)
                self.end_user_secret, _ = await EndUserSecretService(session, box).rotate(project)
                await CatalogService(session).load_raw(project.id, document, None)
                project_id = str(project.id)
                for lane, events in enumerate(DELIVERY_LANES):
                    endpoint = await asyncio.to_thread(
                        setup_client.v1.webhook_endpoints.create,
                        {
                            "url": f"{urls[lane % SERVERS]}/api/v1/payments/stripe/webhooks/"
                            f"{project_id}/test",
                            "enabled_events": list(events),
                        },
                    )
                    assert endpoint.secret is not None
                    self.webhook_secrets.append(endpoint.secret)
                await StripeConfigService(session, box).set_stripe_config(
                    project,
                    Mode.TEST,
                    secret_key=self.stripe_key,
                    webhook_secrets=self.webhook_secrets,
                )
        finally:
            await engine.dispose()
        return project_id, prices

    async def set_up(self) -> tuple[Emulator, Billwarden, dict[str, str], str, set[str]]:
        emulator_url, self.database_url = await asyncio.gather(
            self.start_emulator(), self.start_database()
        )
        environment = self.environment(self.database_url, emulator_url)
        ports = [free_port() for _ in range(SERVERS)]
        urls = [f"http://127.0.0.1:{port}" for port in ports]
        for number, port in enumerate(ports):
            server = self.process(
                f"serve{number}",
                billwarden("serve", "--port", str(port), "--no-migrate"),
                environment,
                url=urls[number],
                ready_path="/readyz",
            )
            self.servers.append(server)
        for number in range(WORKERS):
            self.workers.append(self.process(f"worker{number}", billwarden("worker"), environment))
        for managed in [*self.servers, *self.workers]:
            managed.start()  # they start up while the project is set up
        project_id, prices = await self.set_up_project(emulator_url, urls)
        for server in self.servers:
            await server.wait_ready()
        emulator = Emulator(emulator_url, self.stripe_key)
        before = {event["id"] for event in await emulator.list_all("/v1/events")}
        client = Billwarden(urls, project_id, self.end_user_secret)
        return emulator, client, prices, project_id, before

    async def inject_faults(self, emulator: Emulator) -> None:
        # two rules, tried in turn: half the faults 500s, half 429s
        half = self.options.fault_rate / 2
        await emulator.helper(
            "/_emulator/faults",
            requests=[
                {"path": "/v1/*", "status": 500, "rate": half},
                {"path": "/v1/*", "status": 429, "rate": half / (1 - half)},
            ],
            webhooks={
                "duplicate_rate": self.options.duplicate_rate,
                "shuffle_window": self.options.shuffle_window,
                "shuffle_seed": self.options.seed,
            },
        )

    # --- mid-run chaos -----------------------------------------------------------------------

    async def _kill_and_restart(self, managed: ManagedProcess) -> None:
        managed.kill()
        self.note(f"{managed.name} killed (SIGKILL)")
        await asyncio.sleep(RESTART_AFTER_SECONDS)
        managed.start()
        await managed.wait_ready()
        self.note(f"{managed.name} started again")

    async def hook(self, point: str) -> None:
        """The chaos of each point of the scenario, while its traffic goes on."""
        if point == "checkouts":
            task = asyncio.create_task(self._kill_and_restart(self.workers[0]))
            self.background.append(task)
        elif point == "changes":
            self.note("PostgreSQL restart (pg_ctl restart -m fast)")
            seconds = await asyncio.to_thread(self.cluster.restart)
            self.note(f"PostgreSQL back after {seconds:.1f} s")
            self.result.figures["postgresql restart seconds"] = round(seconds, 1)
        elif point == "renewals":
            task = asyncio.create_task(self._kill_and_restart(self.servers[0]))
            self.background.append(task)

    # --- quiescence --------------------------------------------------------------------------

    async def wait_quiet(
        self, emulator: Emulator, engine: Any, project_id: uuid.UUID, before: set[str]
    ) -> tuple[dict[str, str], dict[str, Any]]:
        """Until the emulator has no delivery left and the inbox holds every emitted event,
        applied (or the time is up); the emitted events (id -> type) and the delivery summary."""
        deadline = time.monotonic() + self.options.quiescence_seconds
        emitted: dict[str, str] = {}
        while True:
            summary = await emulator.get("/_emulator/deliveries/summary")
            for managed in [*self.servers, *self.workers]:
                if not managed.alive():
                    raise RuntimeError(f"{managed.name} died:\n{managed.tail()}")
            if summary["pending"] == 0:
                if not emitted:
                    events = await emulator.list_all("/v1/events")
                    emitted = {e["id"]: e["type"] for e in events if e["id"] not in before}
                inbox = await read_inbox(engine, project_id)
                done = all(
                    event_id in inbox and inbox[event_id][0] in FINISHED for event_id in emitted
                )
                if done:
                    return emitted, summary
            if time.monotonic() > deadline:
                events = await emulator.list_all("/v1/events")
                emitted = {e["id"]: e["type"] for e in events if e["id"] not in before}
                return emitted, summary
            await asyncio.sleep(1.0)

    # --- the run -----------------------------------------------------------------------------

    async def run(self) -> ChaosResult:
        options, figures = self.options, self.result.figures
        emulator, client, prices, project_id, before = await self.set_up()
        engine = create_async_engine(self.database_url, poolclass=NullPool)
        try:
            self.note("set up: 2 servers, 2 workers, the emulator, a private PostgreSQL")
            await self.inject_faults(emulator)
            plan = Plan(
                options.subscriptions, options.min_events, options.concurrency, options.seed
            )

            async def count_events() -> int:
                events = await emulator.list_all("/v1/events")
                return len([e for e in events if e["id"] not in before])

            scenario = Scenario(
                plan, client, emulator, prices, self.hook, count_events, note=self.note
            )
            driven = time.monotonic()
            await scenario.run()
            await asyncio.gather(*self.background)
            driven_seconds = time.monotonic() - driven
            self.note("scenario done; waiting for quiescence")
            quiet = time.monotonic()
            emitted, deliveries = await self.wait_quiet(
                emulator, engine, uuid.UUID(project_id), before
            )
            convergence = time.monotonic() - quiet
            self.note(f"quiet after {convergence:.1f} s")
            faults = await emulator.get("/_emulator/faults")
            await emulator.http.delete("/_emulator/faults")
            stripe_state = StripeState(
                customers=await emulator.list_all("/v1/customers"),
                subscriptions=await emulator.list_all("/v1/subscriptions", status="all"),
                invoices=await emulator.list_all("/v1/invoices"),
                refunded=await refunded_by_invoice(emulator),
            )
            mirror = await read_mirror(engine, uuid.UUID(project_id))
            self.result.mismatches = compare(mirror, stripe_state, self.catalog, emitted)

            deliveries.pop("object", None)
            failures = deliveries.pop("failed_by_cause")
            injected = {int(k): v for k, v in faults["injected"].items()}
            by_driver = emulator.faults_seen
            figures.update(
                {
                    "subscriptions": len(stripe_state.subscriptions),
                    "subjects": plan.subjects,
                    "test clocks": len(plan.clocks),
                    "extra rounds": plan.rounds,
                    "actions": dict(sorted(plan.actions.items())),
                    "events emitted": len(emitted),
                    "event types": dict(Counter(emitted.values()).most_common()),
                    "invoices": len(stripe_state.invoices),
                    "invoices refunded (in part or whole)": len(stripe_state.refunded),
                    "final statuses": dict(
                        Counter(s["status"] for s in stripe_state.subscriptions).most_common()
                    ),
                    "deliveries": deliveries,
                    "failed delivery attempts by cause": failures,
                    "duplicated deliveries": f"{deliveries['duplicates']} "
                    f"({deliveries['duplicates'] / max(1, len(emitted)):.0%} of the events)",
                    "inbox": dict(Counter(s.value for s, _, _ in mirror.inbox.values())),
                    "stripe api requests": faults["checked"],
                    "faults injected": f"{sum(injected.values())} "
                    f"({sum(injected.values()) / max(1, faults['checked']):.1%}; 500: "
                    f"{injected.get(500, 0)}, 429: {injected.get(429, 0)}), of which billwarden's "
                    f"calls met {sum(injected.values()) - sum(by_driver.values())}",
                    "faults injected count": sum(injected.values()),
                    "billwarden answers retried by the tenant app": dict(client.retried),
                    "restarts": f"PostgreSQL {self.cluster.restarts}, "
                    f"worker SIGKILL {sum(w.kills for w in self.workers)}, "
                    f"server SIGKILL {sum(s.kills for s in self.servers)}",
                    "scenario seconds": round(driven_seconds, 1),
                    "convergence seconds": round(convergence, 1),
                    "timeline": self.chaos_log,
                }
            )
        finally:
            await engine.dispose()
            await client.aclose()
            await emulator.aclose()
        return self.result

    def close(self) -> None:
        """Stop every process and the cluster, scan the logs, remove the run's files."""
        for managed in reversed(self.processes):
            self.result.exit_codes[managed.name] = managed.stop()
        self.cluster.stop()
        logs = [managed.log for managed in self.processes if managed.log.exists()]
        known = [
            self.secret_key,
            self.stripe_key,
            self.end_user_secret,
            *self.webhook_secrets,
        ]
        self.result.secret_findings = [str(f) for f in scan_files(logs, known=known)]
        self.result.figures["log lines scanned"] = sum(
            len(path.read_text(errors="replace").splitlines()) for path in logs
        )
        if self.options.keep is not None:
            self.options.keep.mkdir(parents=True, exist_ok=True)
            for path in logs:
                shutil.copy(path, self.options.keep / path.name)
        shutil.rmtree(self.workdir, ignore_errors=True)


async def refunded_by_invoice(emulator: Emulator) -> dict[str, int]:
    """What Stripe's refunds took back of each invoice's payments."""
    invoice_of = {
        payment["payment"]["payment_intent"]: payment["invoice"]
        for payment in await emulator.list_all("/v1/invoice_payments")
        if payment["payment"].get("payment_intent")
    }
    refunded: dict[str, int] = {}
    for refund in await emulator.list_all("/v1/refunds"):
        invoice_id = invoice_of.get(refund["payment_intent"])
        if invoice_id is not None and refund["status"] == "succeeded":
            refunded[invoice_id] = refunded.get(invoice_id, 0) + refund["amount"]
    return refunded


async def run_chaos(options: ChaosOptions) -> ChaosResult:
    """One whole run; every process and the cluster stopped however it ends."""
    chaos = Chaos(options)
    try:
        await chaos.run()
    finally:
        await asyncio.to_thread(chaos.close)
    return chaos.result
