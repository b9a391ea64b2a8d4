"""`billwarden projects create|stripe-config` and `billwarden keys create`: scripted set-up of
projects, their Stripe credentials and their API keys."""

from __future__ import annotations

from typing import Annotated

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from billwarden.config import Settings
from billwarden.core.modes import Mode
from billwarden.crypto import SecretBox
from billwarden.identity.service import ApiKeyService, IdentityPolicy, UserService
from billwarden.kit.cli import load_settings, run_in_unit_of_work
from billwarden.projects.models import Project
from billwarden.projects.service import EndUserSecretService, MembershipService, ProjectService
from billwarden.projects.stripe_config import StripeConfigService

projects_cli = typer.Typer(help="Create projects and set their Stripe credentials.")
keys_cli = typer.Typer(help="Project API keys.", no_args_is_help=True)


@projects_cli.command("create")
def projects_create(
    name: Annotated[str, typer.Option(help="Display name.")],
    slug: Annotated[str | None, typer.Option(help="URL-safe identifier (from the name).")] = None,
    owner: Annotated[
        str | None, typer.Option(help="Email of an existing console user to make its owner.")
    ] = None,
) -> None:
    """Create a project and print its end-user JWT secret once."""

    async def action(
        session: AsyncSession, secret_box: SecretBox, settings: Settings
    ) -> tuple[Project, str]:
        if owner is None:
            project = await ProjectService(session).create_project(name, slug)
        else:
            user = await UserService(
                session, secret_box, IdentityPolicy.from_settings(settings)
            ).find_user_by_email(owner)
            project = await MembershipService(session).create_project(user, name, slug)
        end_user_secret, _ = await EndUserSecretService(session, secret_box).rotate(project)
        return project, end_user_secret

    project, end_user_secret = run_in_unit_of_work(load_settings(), action)
    typer.echo(f"Created project {project.slug} ({project.id}).")
    typer.echo("Its end-user JWT secret (HS256), shown only this once:")
    typer.echo(end_user_secret)


@projects_cli.command("stripe-config")
def projects_stripe_config(
    project: Annotated[str, typer.Option(help="Project id or slug.")],
    mode: Annotated[Mode, typer.Option(help="Stripe mode.")] = Mode.TEST,
    secret_key: Annotated[
        str,
        typer.Option(
            prompt=True, hide_input=True, help="Stripe secret key (prompted, never echoed)."
        ),
    ] = "",
    publishable_key: Annotated[str | None, typer.Option(help="Stripe publishable key.")] = None,
    webhook_secret: Annotated[
        list[str] | None,
        typer.Option(help="Webhook signing secret (repeat while rotating)."),
    ] = None,
) -> None:
    """Store a project's Stripe credentials for one mode, encrypted at rest."""

    async def action(session: AsyncSession, secret_box: SecretBox, _: Settings) -> tuple[str, int]:
        found = await ProjectService(session).find_project(project)
        config = await StripeConfigService(session, secret_box).set_stripe_config(
            found,
            mode,
            secret_key=secret_key,
            publishable_key=publishable_key,
            webhook_secrets=webhook_secret or (),
        )
        return config.secret_key_hint, len(config.webhook_secrets)

    hint, secret_count = run_in_unit_of_work(load_settings(), action)
    typer.echo(
        f"Stored {mode.value}-mode Stripe credentials for {project}: secret key {hint}, "
        f"{secret_count} webhook secret(s)."
    )


@keys_cli.command("create")
def create_key(
    project: Annotated[str, typer.Option(help="Project id or slug.")],
    name: Annotated[str, typer.Option(help="What the key is for.")],
    mode: Annotated[Mode, typer.Option(help="Stripe mode the key works in.")] = Mode.TEST,
) -> None:
    """Create a project API key and print it once."""

    async def action(session: AsyncSession, secret_box: SecretBox, _: Settings) -> str:
        found = await ProjectService(session).find_project(project)
        created = await ApiKeyService(session, secret_box).create_key(found.id, mode, name, None)
        return created.plaintext

    plaintext = run_in_unit_of_work(load_settings(), action)
    typer.echo(f"Created a {mode.value}-mode key for {project}. It is shown only this once:")
    typer.echo(plaintext)


def register(cli: typer.Typer) -> None:
    """Add the projects and keys commands to the `billwarden` command."""
    cli.add_typer(projects_cli, name="projects")
    cli.add_typer(keys_cli, name="keys")
