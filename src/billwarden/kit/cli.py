"""What every `billwarden` command shares: settings, error exits, one unit of work per command."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from billwarden.config import Settings, get_settings
from billwarden.crypto import SecretBox, SecretKeyError
from billwarden.db.engine import create_sessionmaker, engine_from_settings
from billwarden.db.unit_of_work import unit_of_work
from billwarden.errors import BillwardenError
from billwarden.kit.state import build_secret_box

T = TypeVar("T")
Action = Callable[[AsyncSession, SecretBox, Settings], Awaitable[T]]


def load_settings() -> Settings:
    """Settings as the environment says now (commands may have adjusted it)."""
    get_settings.cache_clear()
    return get_settings()


def fail(message: str, code: int = 2) -> typer.Exit:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(code)


def run_in_unit_of_work(settings: Settings, action: Action[T]) -> T:
    """Run `action` as one unit of work (a writer: SQLite's write lock first), committed when it
    succeeds; billwarden's errors exit with status 2 and their message."""
    try:
        secret_box = build_secret_box(settings)
    except SecretKeyError as exc:
        raise fail(str(exc)) from exc
    engine = engine_from_settings(settings)

    async def run() -> T:
        try:
            async with unit_of_work(create_sessionmaker(engine)) as session:
                return await action(session, secret_box, settings)
        finally:
            await engine.dispose()

    try:
        return asyncio.run(run())
    except BillwardenError as exc:
        raise fail(exc.message) from exc
