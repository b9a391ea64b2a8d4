"""`billwarden create-user` and `billwarden keys create`: scripted set-up of people and keys."""

from __future__ import annotations

from typing import Annotated

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from billwarden.cli_support import load_settings, with_session
from billwarden.config import Settings
from billwarden.crypto import SecretBox
from billwarden.db.base import Mode
from billwarden.identity.service import ApiKeyService, IdentityPolicy, UserService
from billwarden.projects.service import ProjectService


def create_user(
    email: Annotated[str, typer.Option(help="The user's email (their sign-in name).")],
    password: Annotated[
        str,
        typer.Option(
            prompt=True,
            hide_input=True,
            confirmation_prompt=True,
            help="Prompted without echo when omitted.",
        ),
    ],
    superuser: Annotated[
        bool, typer.Option("--superuser", help="Sees and administers every project.")
    ] = False,
) -> None:
    """Create a console user."""

    async def action(session: AsyncSession, secret_box: SecretBox, settings: Settings) -> str:
        users = UserService(session, secret_box, IdentityPolicy.from_settings(settings))
        user = await users.create_user(email, password, is_superuser=superuser)
        return user.email

    created = with_session(load_settings(), action)
    kind = "superuser" if superuser else "user"
    typer.echo(f"Created {kind} {created}.")


keys_cli = typer.Typer(help="Project API keys.", no_args_is_help=True)


@keys_cli.command("create")
def create_key(
    project: Annotated[str, typer.Option(help="Project id or slug.")],
    name: Annotated[str, typer.Option(help="What the key is for.")],
    mode: Annotated[Mode, typer.Option(help="Stripe mode the key works in.")] = Mode.TEST,
) -> None:
    """Create a project API key and print it once."""

    async def action(session: AsyncSession, secret_box: SecretBox, _: Settings) -> str:
        found = await ProjectService(session).find_project(project)
        created = await ApiKeyService(session, secret_box).create_key(found, mode, name, None)
        return created.plaintext

    plaintext = with_session(load_settings(), action)
    typer.echo(f"Created a {mode.value}-mode key for {project}. It is shown only this once:")
    typer.echo(plaintext)


def register(cli: typer.Typer) -> None:
    """Add the identity commands to the `billwarden` command."""
    cli.command("create-user")(create_user)
    cli.add_typer(keys_cli, name="keys")
