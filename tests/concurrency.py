"""Forcing races: hold concurrent callers at one point so a check-then-act race happens every
time."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest


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
