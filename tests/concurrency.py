"""Forcing races: hold concurrent callers at one point so a check-then-act race happens every
time."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from billwarden.db.unit_of_work import unit_of_work
from billwarden.projects.models import Project
from billwarden.projects.service import ProjectService

HOLD_SECONDS = 0.6


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


async def create_after_reading(session: AsyncSession, slug: str) -> None:
    """Read, let another writer get in, then write: the shape of every check-then-insert."""
    await session.scalar(select(func.count()).select_from(Project))
    await asyncio.sleep(0.05)
    await ProjectService(session).create_project(slug, slug)


@contextlib.asynccontextmanager
async def writer_holding_the_lock(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> AsyncIterator[None]:
    """A request-like writer that has written and keeps its transaction open for a while."""
    async with unit_of_work(sessionmaker) as session:
        await ProjectService(session).create_project("held", "held")
        await session.flush()
        yield
        await asyncio.sleep(HOLD_SECONDS)
