"""The loop every background worker runs (the inbox, notifications, reconciliation, meters): do
one round, go again at once while there was work, otherwise sleep until woken, stopped or the
next poll. A failed round (the database away for a moment) is logged and tried again."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

logger = logging.getLogger("billwarden")


class Worker(Protocol):
    stopping: asyncio.Event

    async def run_forever(self) -> None: ...


async def run_until_stopped(
    run_once: Callable[[], Awaitable[int]],
    *,
    wake: asyncio.Event,
    stopping: asyncio.Event,
    poll_seconds: float,
    name: str,
) -> None:
    """Call `run_once` (how much it did) until `stopping` is set."""
    while not stopping.is_set():
        wake.clear()  # a wake arriving while the round runs is kept for the wait below
        try:
            done = await run_once()
        except Exception:
            logger.exception("the %s could not run; trying again after the poll", name)
            done = 0
        if done:
            continue
        sleep = asyncio.ensure_future(wake.wait())
        stop = asyncio.ensure_future(stopping.wait())
        _, pending = await asyncio.wait(
            {sleep, stop}, timeout=poll_seconds, return_when=asyncio.FIRST_COMPLETED
        )
        for task in pending:
            task.cancel()


async def stop_all(
    workers: dict[str, Worker], tasks: list[asyncio.Task[None]], wait: float
) -> None:
    """Ask every worker to stop and wait for them together, at most `wait` seconds; one that
    does not stop in time is left to its leases (what it holds comes back to the others)."""
    for worker in workers.values():
        worker.stopping.set()
    if not tasks:  # no embedded worker (BILLWARDEN_EMBEDDED_WORKER=false): nothing to wait for
        return
    _, late = await asyncio.wait(tasks, timeout=wait)
    for task in late:
        logger.warning("the %s did not stop in time; its leases expire", task.get_name())
        task.cancel()
