"""Identity tests use the shared fixtures of tests/conftest.py (`actors`, cheap argon2id).

Concurrency tests need transactions that really commit and really wait on each other, which the
rolled-back `session` cannot give: `scratch` is a fresh, migrated database with its own engine
and the real app on it (production sessions, no overrides)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from billwarden.app import create_app
from billwarden.config import Settings
from billwarden.crypto import SecretBox
from billwarden.db import migrate
from billwarden.db.engine import create_engine, create_sessionmaker
from tests.actors import Actors
from tests.conftest import drop_database, new_database_url


@dataclass
class Scratch:
    """A database of its own, the app serving it, and a client of that app."""

    engine: AsyncEngine
    settings: Settings
    secret_box: SecretBox
    app: FastAPI
    client: httpx.AsyncClient

    def session(self) -> AsyncSession:
        return create_sessionmaker(self.engine)()

    async def setup(self, build: Callable[[Actors], Any]) -> Any:
        """Run `build` with actors on a session of this database, then commit."""
        async with self.session() as session:
            result = await build(Actors(session, self.secret_box, self.settings))
            await session.commit()
            return result


@pytest.fixture(name="scratch")
async def scratch_fixture(
    backend: str, tmp_path: Path, settings: Settings, secret_box: SecretBox
) -> AsyncIterator[Scratch]:
    url = await new_database_url(backend, tmp_path)
    engine = create_engine(url)
    try:
        await migrate.upgrade(engine)
        scratch_settings = settings.model_copy(update={"database_url": url})
        app = create_app(scratch_settings, engine=engine, configure_logs=False)
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield Scratch(engine, scratch_settings, secret_box, app, client)
    finally:
        await engine.dispose()
        await drop_database(url)


class Rendezvous:
    """Holds concurrent callers at one point until all of them are there, so a check-then-act
    race happens every time. A caller kept away by a lock never arrives: after `timeout` the
    others go on alone (that is the fixed behaviour)."""

    def __init__(self, parties: int, timeout: float = 0.5) -> None:
        self.parties = parties
        self.timeout = timeout
        self.arrived = 0
        self.gave_up = False
        self._all_here = asyncio.Event()

    async def wait(self) -> None:
        if self.gave_up:
            return
        self.arrived += 1
        if self.arrived >= self.parties:
            self._all_here.set()
        try:
            await asyncio.wait_for(self._all_here.wait(), self.timeout)
        except TimeoutError:
            self.gave_up = True

    def after(
        self,
        monkeypatch: pytest.MonkeyPatch,
        owner: type,
        name: str,
        when: Callable[..., bool] = lambda *args, **kwargs: True,
    ) -> None:
        """Make `owner.name` (an async method) wait here after it returns, for calls `when`
        accepts."""
        original = getattr(owner, name)

        async def waiting(self: Any, *args: Any, **kwargs: Any) -> Any:
            result = await original(self, *args, **kwargs)
            if when(*args, **kwargs):
                await rendezvous.wait()
            return result

        rendezvous = self
        monkeypatch.setattr(owner, name, waiting)
