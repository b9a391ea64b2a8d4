"""`billwarden create-user`: scripted set-up of console users."""

from __future__ import annotations

from typing import Annotated

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from billwarden.config import Settings
from billwarden.crypto import SecretBox
from billwarden.identity.service import IdentityPolicy, UserService
from billwarden.kit.cli import load_settings, run_in_unit_of_work


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

    created = run_in_unit_of_work(load_settings(), action)
    kind = "superuser" if superuser else "user"
    typer.echo(f"Created {kind} {created}.")


def register(cli: typer.Typer) -> None:
    """Add the identity commands to the `billwarden` command."""
    cli.command("create-user")(create_user)
