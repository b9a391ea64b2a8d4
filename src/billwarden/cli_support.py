"""What every `billwarden` command shares: settings, error exits, one committed transaction."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from billwarden.app import build_secret_box
from billwarden.config import Settings, get_settings
from billwarden.crypto import SecretBox, SecretKeyError
from billwarden.db.engine import create_sessionmaker, engine_from_settings, transactional
from billwarden.errors import BillwardenError

T = TypeVar("T")
Action = Callable[[AsyncSession, SecretBox, Settings], Awaitable[T]]


def load_settings() -> Settings:
    """Settings as the environment says now (commands may have adjusted it)."""
    get_settings.cache_clear()
    return get_settings()


def fail(message: str, code: int = 2) -> typer.Exit:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(code)


def with_session(settings: Settings, action: Action[T]) -> T:
    """Run `action` in one transaction, committed when it succeeds; errors exit with 2."""
    try:
        secret_box = build_secret_box(settings)
    except SecretKeyError as exc:
        raise fail(str(exc)) from exc
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
        raise fail(exc.message) from exc
