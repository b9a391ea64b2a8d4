"""`billwarden adopt-subscriptions`: the subscribers a previous billing system sold, given their
access in billwarden once, from the metadata that system wrote."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from billwarden.audit.service import Actor
from billwarden.config import Settings
from billwarden.core.modes import Mode
from billwarden.crypto import SecretKeyError
from billwarden.db.engine import create_sessionmaker, engine_from_settings
from billwarden.db.unit_of_work import unit_of_work
from billwarden.errors import BillwardenError
from billwarden.kit.cli import fail, load_settings
from billwarden.kit.state import build_secret_box
from billwarden.projects.exceptions import ProjectNotFound
from billwarden.projects.models import Project
from billwarden.projects.service import ProjectService
from billwarden.projects.single_tenant import single_tenant_mode
from billwarden.stripe_gateway import StripeGateway, StripeGatewayError
from billwarden.subscriptions.service.adoption import (
    AdoptionKeys,
    AdoptionReport,
    Outcome,
    SubscriptionAdoption,
)

ADOPTION = Actor.system("adopt-subscriptions")
METADATA_KEY_MAX_LENGTH = 40  # Stripe's limit on a metadata key


def adopt_subscriptions(
    project: Annotated[
        str | None,
        typer.Option(
            "--project",
            help="Project id or slug (default: the single-tenant project, with STRIPE_SECRET_KEY).",
        ),
    ] = None,
    mode: Annotated[
        Mode | None,
        typer.Option(help="Stripe mode (default: the single-tenant project's, else test)."),
    ] = None,
    user_key: Annotated[
        str | None, typer.Option(help="The metadata key naming the user (e.g. userExternalId).")
    ] = None,
    organization_key: Annotated[
        str | None,
        typer.Option(help="The metadata key naming the organization; wins over --user-key."),
    ] = None,
    email_key: Annotated[
        str | None,
        typer.Option(
            help="The metadata key holding the subject's email (when its Stripe customer has none)."
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Read only: print what would be adopted.")
    ] = False,
) -> None:
    """Give the subscribers a previous system sold their access: every Stripe subscription of the
    project's mode without billwarden's metadata is tied to the subject its metadata (or its
    customer's) names under --user-key / --organization-key; audited, and safe to run again."""
    for option, value in (
        ("--user-key", user_key),
        ("--organization-key", organization_key),
        ("--email-key", email_key),
    ):
        if value is not None and not 0 < len(value.strip()) <= METADATA_KEY_MAX_LENGTH:
            raise fail(
                f"{option} takes a metadata key of 1 to {METADATA_KEY_MAX_LENGTH} characters"
            )
    if user_key is None and organization_key is None:
        raise fail("name the metadata key of the subject: --user-key and/or --organization-key")
    settings = load_settings()
    if project is None and settings.single_tenant_secret_key is None:
        raise fail("--project is required (without STRIPE_SECRET_KEY there is no default project)")
    try:
        secret_box = build_secret_box(settings)
    except SecretKeyError as exc:
        raise fail(str(exc)) from exc
    keys = AdoptionKeys(user=user_key, organization=organization_key, email=email_key)

    async def run() -> tuple[Project, Mode, AdoptionReport]:
        engine = engine_from_settings(settings)
        gateway = StripeGateway(
            api_base=settings.stripe_api_base,
            max_network_retries=settings.stripe_max_network_retries,
        )
        sessionmaker = create_sessionmaker(engine)
        try:
            async with unit_of_work(sessionmaker, write=False) as session:
                found = await _project(ProjectService(session), project, settings)
            chosen = mode or _default_mode(found, settings)
            adoption = SubscriptionAdoption(
                sessionmaker,
                gateway,
                secret_box,
                found.id,
                chosen,
                keys,
                actor=ADOPTION,
                dry_run=dry_run,
            )
            return found, chosen, await adoption.run()
        finally:
            await gateway.close()
            await engine.dispose()

    try:
        found, chosen, report = asyncio.run(run())
    except StripeGatewayError as exc:
        raise fail(f"Stripe's subscriptions could not be read: {exc.message}", 1) from exc
    except BillwardenError as exc:
        raise fail(exc.message) from exc
    _print(report, f"{found.slug} ({chosen.value})", dry_run)
    if report.of(Outcome.ERROR):
        raise typer.Exit(1)


async def _project(projects: ProjectService, reference: str | None, settings: Settings) -> Project:
    if reference is not None:
        return await projects.find_project(reference)
    slug = settings.single_tenant_project_slug
    try:
        return await projects.find_project(slug)
    except ProjectNotFound:
        raise ProjectNotFound(
            f"The single-tenant project {slug!r} does not exist yet: start `billwarden serve` "
            "once with STRIPE_SECRET_KEY set (it creates the project), or name one with --project."
        ) from None


def _default_mode(project: Project, settings: Settings) -> Mode:
    secret_key = settings.single_tenant_secret_key
    if secret_key is not None and project.slug == settings.single_tenant_project_slug:
        return single_tenant_mode(secret_key.get_secret_value())
    return Mode.TEST


def _print(report: AdoptionReport, label: str, dry_run: bool) -> None:
    adopted = "would adopt" if dry_run else "adopted now"
    table = Table(title=f"Adoption of {label}")
    table.add_column("subscriptions")
    table.add_column("count", justify="right")
    table.add_row("Stripe subscriptions read", str(report.read))
    table.add_row("already billwarden's", str(len(report.of(Outcome.ALREADY))))
    table.add_row(adopted, str(len(report.of(Outcome.ADOPTED))))
    table.add_row("another project's (left alone)", str(len(report.of(Outcome.OTHER_PROJECT))))
    table.add_row("without a subject", str(len(report.of(Outcome.NO_SUBJECT))))
    table.add_row("conflicts (refused)", str(len(report.of(Outcome.CONFLICT))))
    table.add_row("errors", str(len(report.of(Outcome.ERROR))))
    Console().print(table)
    for adoption in report.of(Outcome.ADOPTED):
        typer.echo(
            f"{adopted}: {adoption.subscription_id} customer {adoption.customer_id} "
            f"-> {adoption.subject} ({adoption.detail})"
        )
    for adoption in report.of(Outcome.OTHER_PROJECT):
        typer.echo(f"another project's: {adoption.subscription_id} ({adoption.detail})")
    for adoption in report.of(Outcome.NO_SUBJECT):
        typer.echo(
            f"without a subject: {adoption.subscription_id} customer {adoption.customer_id} "
            f"status {adoption.status}"
        )
    for adoption in report.of(Outcome.CONFLICT):
        typer.echo(
            f"conflict: {adoption.subscription_id} customer {adoption.customer_id}: its metadata "
            f"names {adoption.subject}, but {adoption.detail}"
        )
    for adoption in report.of(Outcome.ERROR):
        typer.echo(
            f"error: {adoption.subscription_id} customer {adoption.customer_id}: {adoption.detail}"
        )
    if dry_run:
        typer.echo("Dry run: nothing was changed. Run it without --dry-run to adopt.")
    if report.of(Outcome.NO_SUBJECT):
        typer.echo(
            "Subscriptions without a subject carry none of the keys named, nor do their "
            "customers: add the key to their metadata in Stripe and run the command again."
        )


def register(cli: typer.Typer) -> None:
    cli.command("adopt-subscriptions")(adopt_subscriptions)
