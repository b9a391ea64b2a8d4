"""`billwarden reconcile`: a run from the command line, with its progress and a summary."""

from __future__ import annotations

import asyncio
import sys
import uuid
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from billwarden.audit.service import Actor, AuditLog
from billwarden.config import RECONCILE_REASONS
from billwarden.core.modes import Mode
from billwarden.crypto import SecretKeyError
from billwarden.db.engine import create_sessionmaker, engine_from_settings
from billwarden.db.unit_of_work import unit_of_work
from billwarden.errors import BillwardenError
from billwarden.kit.cli import fail, load_settings
from billwarden.kit.state import build_secret_box
from billwarden.projects.service import ProjectService
from billwarden.reconciliation.models import ReconcileRecord, ReconcileRun
from billwarden.reconciliation.repository import RecordRepository, RunRepository
from billwarden.reconciliation.service import (
    REPAIRS,
    SYNC_FROM_STRIPE,
    Repairs,
    RunPolicy,
    Runs,
)
from billwarden.stripe_gateway import StripeGateway

COMMAND_LINE = Actor.system("command line")


def reconcile(
    project: Annotated[str, typer.Option("--project", help="Project id or slug.")],
    mode: Annotated[Mode, typer.Option(help="Stripe mode.")] = Mode.TEST,
    repair: Annotated[
        str | None,
        typer.Option(
            help="Then repair every mismatched record this way: " + ", ".join(REPAIRS) + "."
        ),
    ] = None,
) -> None:
    """Compare the project's mode with Stripe (and its snapshots with the mirror), print what
    differs, and optionally repair it (audited as `command line`)."""
    if repair is not None and repair not in REPAIRS:
        raise fail(f"unknown repair {repair!r}: one of {', '.join(REPAIRS)}")
    settings = load_settings()
    try:
        secret_box = build_secret_box(settings)
    except SecretKeyError as exc:
        raise fail(str(exc)) from exc
    console = Console(stderr=False)
    interactive = sys.stdout.isatty()

    async def run() -> tuple[ReconcileRun, list[ReconcileRecord], int]:
        engine = engine_from_settings(settings)
        gateway = StripeGateway(
            api_base=settings.stripe_api_base,
            max_network_retries=settings.stripe_max_network_retries,
        )
        sessionmaker = create_sessionmaker(engine)
        try:
            runs = Runs(sessionmaker, gateway, secret_box, RunPolicy.from_settings(settings))
            async with unit_of_work(sessionmaker) as session:
                found = await ProjectService(session).find_project(project)
                asked, new = await Runs.request(session, found.id, mode, COMMAND_LINE, "cli")
                # claimed before anyone sees it queued: no worker runs it instead of this command
                token = await runs.claim(session, asked.id) if new else None
                if token is not None:
                    await AuditLog(session).record(
                        COMMAND_LINE,
                        "reconciliation.run_requested",
                        target_type="reconcile_run",
                        target_id=str(asked.id),
                        project_id=found.id,
                        mode=mode,
                    )
            if token is None:
                raise fail(
                    f"a run of {found.slug} ({mode.value}) is already {asked.status.value}: "
                    f"{asked.id}"
                )
            if not await _execute(runs, asked.id, token, console, interactive):
                raise fail(f"another runner took run {asked.id} over; it finishes it")
            async with unit_of_work(sessionmaker, write=False) as session:
                done = await RunRepository(session).get(asked.id)
                assert done is not None
                records, _ = await RecordRepository(session).page(
                    done.id, mismatched=True, reason=None, limit=1_000_000, offset=0
                )
            repaired = 0
            if repair is not None:
                for record in records:
                    if record.subject_id is None and repair != SYNC_FROM_STRIPE:
                        typer.echo(
                            f"skipped: {', '.join(record.subscription_ids)} belongs to no "
                            f"subject, which {repair} needs (sync_from_stripe adopts it)"
                        )
                        continue
                    async with unit_of_work(sessionmaker) as session:
                        await Repairs(session, gateway, secret_box, found.id, mode).repair(
                            entitlement_id=record.entitlement_id,
                            subscription_id=None
                            if record.entitlement_id or not record.subscription_ids
                            else record.subscription_ids[0],
                            action=repair,
                            actor=COMMAND_LINE,
                            reason="billwarden reconcile --repair",
                        )
                    repaired += 1
                async with unit_of_work(sessionmaker, write=False) as session:
                    done = await RunRepository(session).get(asked.id)
                    assert done is not None
            return done, records, repaired
        finally:
            await gateway.close()
            await engine.dispose()

    try:
        done, records, repaired = asyncio.run(run())
    except BillwardenError as exc:
        raise fail(exc.message) from exc
    _summary(console, done, records, repaired)
    if done.status.value == "failed":
        raise typer.Exit(1)


async def _execute(
    runs: Runs, run_id: Any, token: uuid.UUID, console: Console, interactive: bool
) -> bool:
    """Run it, with a progress bar on a terminal and a line per 1,000 subscriptions otherwise;
    False when another runner took it over."""
    if interactive:
        with Progress(
            SpinnerColumn(),
            TextColumn("reading Stripe's subscriptions"),
            BarColumn(),
            TextColumn("{task.completed}"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        ) as progress:
            task = progress.add_task("subscriptions", total=None)
            return await runs.execute(
                run_id, token=token, progress=lambda seen: progress.update(task, completed=seen)
            )
    printed = [0]

    def lines(seen: int) -> None:
        if seen - printed[0] >= 1000:
            printed[0] = seen
            typer.echo(f"{seen} subscriptions read")

    return await runs.execute(run_id, token=token, progress=lines)


def _summary(
    console: Console, run: ReconcileRun, records: list[ReconcileRecord], repaired: int
) -> None:
    if run.error:
        typer.secho(f"the run failed: {run.error}", fg=typer.colors.RED, err=True)
        return
    if not run.stripe_available:
        typer.secho(
            f"Stripe could not be read ({run.stripe_error}): the database alone was compared.",
            fg=typer.colors.YELLOW,
        )
    table = Table(title=f"Reconciliation {run.id}")
    table.add_column("records")
    table.add_column("count", justify="right")
    table.add_row("Stripe subscriptions read", str(run.subscriptions_seen))
    table.add_row("total", str(run.total))
    table.add_row("in sync", str(run.in_sync))
    table.add_row("mismatched", str(len(records)))
    for reason in RECONCILE_REASONS:
        if run.reasons.get(reason):
            table.add_row(f"  {reason}", str(run.reasons[reason]))
    if repaired:
        table.add_row("repaired now", str(repaired))
        table.add_row("in sync after the repairs", str(run.in_sync))
    console.print(table)


def register(cli: typer.Typer) -> None:
    cli.command("reconcile")(reconcile)
