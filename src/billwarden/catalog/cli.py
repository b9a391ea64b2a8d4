"""`billwarden catalog load|show|push`: a project's catalog from the command line."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import orjson
import typer
from sqlalchemy.ext.asyncio import AsyncSession

from billwarden.catalog.exceptions import InvalidCatalog
from billwarden.catalog.service import (
    CatalogPricing,
    CatalogService,
    LoadedCatalog,
    PushResult,
    read_catalog_file,
)
from billwarden.config import Settings
from billwarden.core.modes import Mode
from billwarden.crypto import SecretBox
from billwarden.entitlements.service import EntitlementService
from billwarden.kit.cli import fail, load_settings, run_in_unit_of_work
from billwarden.projects.service import ProjectService
from billwarden.projects.stripe_config import StripeConfigService
from billwarden.stripe_gateway import StripeGateway

catalog_cli = typer.Typer(help="A project's plan catalog.", no_args_is_help=True)
ProjectOption = Annotated[str, typer.Option("--project", help="Project id or slug.")]


@catalog_cli.command("load")
def load(
    file: Annotated[Path, typer.Argument(help="The catalog, TOML (or .json).")],
    project: ProjectOption,
) -> None:
    """Validate a catalog file and put it in force as the project's next version."""
    try:
        document = read_catalog_file(file)
    except InvalidCatalog as exc:
        raise fail(exc.message) from exc

    async def action(session: AsyncSession, _: SecretBox, __: Settings) -> LoadedCatalog:
        found = await ProjectService(session).find_project(project)
        service = CatalogService(session)
        before = await service.current(found.id)
        loaded = await service.load(found.id, document, None)
        if before is None or before.version != loaded.version:
            await EntitlementService(session).recompute_project(found.id)
        return loaded

    loaded = run_in_unit_of_work(load_settings(), action)
    plans = len(loaded.document.plans)
    typer.echo(f"Catalog version {loaded.version} in force for {project} ({plans} plan(s)).")


@catalog_cli.command("show")
def show(project: ProjectOption) -> None:
    """Print the catalog in force (JSON) and the prices its lookup keys resolved to."""

    async def action(
        session: AsyncSession, _: SecretBox, __: Settings
    ) -> tuple[LoadedCatalog, dict[str, dict[str, str]]]:
        found = await ProjectService(session).find_project(project)
        service = CatalogService(session)
        loaded = await service.require(found.id)
        prices = {mode.value: await service.resolved_prices(found.id, mode) for mode in Mode}
        return loaded, prices

    loaded, prices = run_in_unit_of_work(load_settings(), action)
    shown = {"version": loaded.version, "document": loaded.document.as_json(), "prices": prices}
    typer.echo(orjson.dumps(shown, option=orjson.OPT_INDENT_2).decode())


@catalog_cli.command("push")
def push(
    project: ProjectOption,
    mode: Annotated[Mode, typer.Option(help="Stripe mode.")] = Mode.TEST,
) -> None:
    """Create in Stripe the products and prices the catalog names by lookup key but Stripe
    lacks (from amount, currency and interval); running it again creates nothing twice."""

    async def action(
        session: AsyncSession, secret_box: SecretBox, settings: Settings
    ) -> PushResult:
        found = await ProjectService(session).find_project(project)
        credentials = await StripeConfigService(session, secret_box).get_credentials(found.id, mode)
        gateway = StripeGateway(
            api_base=settings.stripe_api_base,
            max_network_retries=settings.stripe_max_network_retries,
        )
        try:
            pricing = CatalogPricing(session, gateway, found.id, mode, credentials.secret_key)
            return await pricing.push()
        finally:
            await gateway.close()

    result = run_in_unit_of_work(load_settings(), action)
    for lookup_key, price_id in result.found.items():
        typer.echo(f"found    {lookup_key} -> {price_id}")
    for lookup_key, price_id in result.created.items():
        typer.echo(f"created  {lookup_key} -> {price_id}")
    typer.echo(f"{len(result.created)} price(s) created, {len(result.found)} already in Stripe.")


def register(cli: typer.Typer) -> None:
    """Add the catalog commands to the `billwarden` command."""
    cli.add_typer(catalog_cli, name="catalog")
