"""`billwarden create-user` and `billwarden keys create`: scripted set-up of people and keys."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from billwarden.config import Settings, get_settings
from billwarden.crypto import SecretBox, SecretKeyError
from billwarden.db.base import Mode
from billwarden.db.engine import create_sessionmaker, engine_from_settings, transactional
from billwarden.errors import BillwardenError
from billwarden.identity.service import ApiKeyService, IdentityPolicy, UserService
from billwarden.projects.service import ProjectService

T = TypeVar("T")


def _run(action: Callable[[AsyncSession, SecretBox, Settings], Awaitable[T]]) -> T:
    """Run `action` in one transaction, committed when it succeeds."""
    get_settings.cache_clear()
    settings = get_settings()
    try:
        if settings.secret_key is None:
            raise SecretKeyError("BILLWARDEN_SECRET_KEY is not set.")
        secret_box = SecretBox(
            settings.secret_key.get_secret_value(),
            [key.get_secret_value() for key in settings.secret_key_fallbacks],
        )
    except SecretKeyError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from exc
    engine = engine_from_settings(settings)

    async def run() -> T:
        try:
            async with create_sessionmaker(engine)() as session, transactional(session):
                return await action(session, secret_box, settings)
        finally:
            await engine.dispose()

    try:
        return asyncio.run(run())
    except BillwardenError as exc:
        typer.secho(f"error: {exc.message}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from exc


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

    created = _run(action)
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

    plaintext = _run(action)
    typer.echo(f"Created a {mode.value}-mode key for {project}. It is shown only this once:")
    typer.echo(plaintext)


def register(cli: typer.Typer) -> None:
    """Add the identity commands to the `billwarden` command."""
    cli.command("create-user")(create_user)
    cli.add_typer(keys_cli, name="keys")
