"""Whether cached reads may still be trusted: a generation that moves whenever what the read
caches hold changes in the database, whichever process changed it.

Triggers (migration 0006) do the work: on PostgreSQL they `NOTIFY billwarden_cache` (sent at
commit, so never before the change is visible), and each process LISTENs on a connection of its
own; on SQLite they increment the one row of `cache_generations`, which each process reads
through a plain sqlite3 connection (microseconds: no thread hop, and a WAL reader never waits).
`generation()` is None whenever the watch cannot vouch for the cache (not started, or the
PostgreSQL listener lost): callers then read the database.

On PostgreSQL a change can name its scope (migration 0016: a subject's entitlement snapshot
notifies `entitlements:<project>:<mode>:<subject type>:<subject id>`): it moves the generation of
the answers cached under that scope only, so one subject's checkout does not send every other
subject's read back to the database. Any other change, and SQLite's, moves every generation.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from typing import Any

from sqlalchemy import BigInteger, Column, Integer, Table, select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from billwarden.db.base import Base

logger = logging.getLogger("billwarden.db")
CHANNEL = "billwarden_cache"
RECONNECT_SECONDS = 1.0
# notifications with a payload of this shape name the one scope that changed (a subject)
SCOPED_PREFIXES = ("entitlements:",)
MAX_SCOPES = 100_000  # scopes remembered; past it, every generation moves and it starts over

cache_generations = Table(
    "cache_generations",
    Base.metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("generation", BigInteger, nullable=False),
)


class ChangeWatch:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._sqlite: sqlite3.Connection | None = None
        # one counter for every change seen: the last value drawn by a change of everything,
        # and by each scope's own changes (a generation is the larger of the two it depends on)
        self._sequence = 0
        self._everything_at = 0
        self._scopes: dict[str, int] = {}
        self._listening = False
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    async def start(self) -> None:
        url = self.engine.url
        if url.get_backend_name() == "sqlite":
            database = url.database
            if database and database != ":memory:":
                self._sqlite = sqlite3.connect(database, check_same_thread=False)
            return
        self._task = asyncio.create_task(self._listen(), name="billwarden-cache-watch")

    @property
    def is_sqlite(self) -> bool:
        return self._sqlite is not None

    def generation(self, scope: str | None = None) -> int | None:
        """The generation of what is cached under `scope` (None: not scoped); it moves with every
        change of everything and, on PostgreSQL, with each change of that scope."""
        if self._sqlite is not None:
            try:
                row = self._sqlite.execute(
                    "SELECT generation FROM cache_generations WHERE id = 1"
                ).fetchone()
            except sqlite3.Error:
                return None
            return int(row[0]) if row is not None else None
        if not self._listening:
            return None
        if scope is None:
            return self._everything_at
        return max(self._everything_at, self._scopes.get(scope, 0))

    async def _listen(self) -> None:
        """Hold a LISTEN connection; on loss, distrust the caches until it is back."""
        import asyncpg  # type: ignore[import-untyped]  # the driver, there with PostgreSQL

        dsn = (
            make_url(self.engine.url)
            .set(drivername="postgresql")
            .render_as_string(hide_password=False)
        )
        while not self._stopping.is_set():
            connection: Any = None
            try:
                connection = await asyncpg.connect(dsn)
                lost = asyncio.Event()
                connection.add_termination_listener(lambda _, lost=lost: lost.set())
                await connection.add_listener(CHANNEL, self._changed)
                self._changed_everything()  # anything may have changed while nobody listened
                self._listening = True
                stop = asyncio.ensure_future(self._stopping.wait())
                gone = asyncio.ensure_future(lost.wait())
                await asyncio.wait({stop, gone}, return_when=asyncio.FIRST_COMPLETED)
                stop.cancel()
                gone.cancel()
            except Exception:  # the database is away: try again shortly
                logger.warning("the read-cache watch lost PostgreSQL; reading through")
            finally:
                self._listening = False
                if connection is not None:
                    with contextlib.suppress(Exception):
                        await connection.close()
            if not self._stopping.is_set():
                await asyncio.sleep(RECONNECT_SECONDS)

    def _changed(self, _connection: object, _pid: int, _channel: str, payload: str) -> None:
        if payload.startswith(SCOPED_PREFIXES):
            if len(self._scopes) >= MAX_SCOPES:
                self._scopes.clear()
                self._changed_everything()
            self._sequence += 1
            self._scopes[payload] = self._sequence
        else:
            self._changed_everything()

    def _changed_everything(self) -> None:
        self._sequence += 1
        self._everything_at = self._sequence

    async def stop(self) -> None:
        self._stopping.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        if self._sqlite is not None:
            self._sqlite.close()
            self._sqlite = None


class GenerationCache:
    """Answers kept per key with the generation they were read at; a different generation (or
    none) is a miss. Bounded: past `max_entries` it starts over."""

    def __init__(self, watch: ChangeWatch, max_entries: int = 100_000) -> None:
        self.watch = watch
        self.max_entries = max_entries
        self._entries: dict[object, tuple[int, Any]] = {}

    def get(self, key: object, scope: str | None = None) -> tuple[int | None, Any]:
        """(the generation now, the cached value or None). `scope`: what the value depends on
        besides everything (a subject's entitlement), as its changes are notified."""
        generation = self.watch.generation(scope)
        if generation is None:
            return None, None
        found = self._entries.get(key)
        if found is None or found[0] != generation:
            return generation, None
        return generation, found[1]

    def put(
        self, key: object, generation: int | None, value: Any, scope: str | None = None
    ) -> None:
        """Keep `value`, read at `generation` (of `scope`, as `get` gave it), unless a change has
        been seen since."""
        if generation is None or self.watch.generation(scope) != generation:
            return
        if len(self._entries) >= self.max_entries:
            self._entries.clear()
        self._entries[key] = (generation, value)

    async def put_read(
        self, session: AsyncSession, key: object, generation: int | None, value: Any
    ) -> None:
        """`put` for a value read through `session`. On SQLite a transaction reads one snapshot
        from its first statement on: a change committed after that but before `generation` was
        taken would be cached as current. The generation the snapshot itself holds is the one
        the value goes with (`put` then keeps it only while nothing changed since)."""
        if self.watch.is_sqlite:
            generation = await session.scalar(
                select(cache_generations.c.generation).where(cache_generations.c.id == 1)
            )
        self.put(key, generation, value)

    def forget(self, key: object) -> None:
        self._entries.pop(key, None)
