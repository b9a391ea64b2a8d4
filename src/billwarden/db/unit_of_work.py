"""One unit of work per request, command, start-up step or worker job.

`unit_of_work(sessionmaker, write=True)` opens a session and a transaction, commits when the block
succeeds and rolls back when it raises, except for errors marked `keeps_changes` (a failed sign-in
is counted, then refused): their writes are committed before the error goes on. On SQLite a writer
begins IMMEDIATE, taking the single write lock up front, so concurrent writers queue (up to the
busy timeout) instead of failing when a transaction that read first tries to write; repositories
that lock rows (`FOR UPDATE` on PostgreSQL) rely on that on SQLite. Writers of one process also
queue in memory first (an asyncio lock per engine), so they take turns without SQLite's busy
handler, which sleeps in growing steps; other processes still meet the busy timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Protocol

import anyio
from fastapi import Depends, Request
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from billwarden.db.engine import SQLITE_BEGIN_OPTION
from billwarden.errors import BillwardenError


def keeps_changes(exc: BaseException) -> bool:
    """Whether the transaction commits although `exc` ends the unit of work. Such an error must
    be raised before anything else is written: the whole unit is committed, not just the write
    it means to keep."""
    return isinstance(exc, BillwardenError) and exc.keeps_changes


async def begin(session: AsyncSession, *, write: bool) -> None:
    """Start the session's transaction; a SQLite writer takes the write lock now."""
    if write and session.get_bind().dialect.name == "sqlite":
        await session.connection(execution_options={SQLITE_BEGIN_OPTION: "IMMEDIATE"})


class _Ending(Protocol):
    async def commit(self) -> None: ...
    async def rollback(self) -> None: ...


async def finish(unit: _Ending, error: BaseException | None) -> None:
    """End a transaction (or a savepoint) the way every unit of work ends: commit on success or
    on an error that keeps changes, roll back otherwise. Shielded, so a cancellation arriving
    now cannot leave the transaction half-ended."""
    if isinstance(unit, AsyncSession) and not unit.in_transaction():
        return  # nothing was read or written (a read answered from memory): nothing to end
    with anyio.CancelScope(shield=True):
        if error is None or keeps_changes(error):
            await unit.commit()
        else:
            await unit.rollback()


_writers: weakref.WeakKeyDictionary[Engine, dict[asyncio.AbstractEventLoop, asyncio.Lock]] = (
    weakref.WeakKeyDictionary()
)


def _writer_lock(session: AsyncSession) -> asyncio.Lock | None:
    """This process's queue for SQLite's one writer (None on PostgreSQL, or in a savepoint)."""
    bind = session.get_bind()
    if bind.dialect.name != "sqlite" or not isinstance(bind, Engine):
        return None
    locks = _writers.setdefault(bind, {})
    loop = asyncio.get_running_loop()
    if loop not in locks:
        locks[loop] = asyncio.Lock()
    return locks[loop]


@asynccontextmanager
async def transaction(session: AsyncSession, *, write: bool) -> AsyncIterator[AsyncSession]:
    """Run the block in one transaction of `session`, committed or rolled back as above."""
    lock = _writer_lock(session) if write else None
    async with lock if lock is not None else contextlib.nullcontext():
        await begin(session, write=write)
        try:
            yield session
        except BaseException as exc:
            await finish(session, exc)
            raise
        await finish(session, None)


@asynccontextmanager
async def unit_of_work(
    sessionmaker: async_sessionmaker[AsyncSession], *, write: bool = True
) -> AsyncIterator[AsyncSession]:
    """A new session in one transaction (see the module's docstring)."""
    async with sessionmaker() as session, transaction(session, write=write):
        yield session


WRITING_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


async def get_db_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The request's unit of work; a request that may write takes SQLite's write lock first."""
    sessionmaker: async_sessionmaker[AsyncSession] = request.app.state.sessionmaker
    async with unit_of_work(sessionmaker, write=request.method in WRITING_METHODS) as session:
        yield session


# scope="function": commit before the response is sent, so a 2xx means the write is durable.
DbSession = Annotated[AsyncSession, Depends(get_db_session, scope="function")]
