"""The async engine and the per-request session dependency."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import event
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import ConnectionPoolEntry

from billwarden.config import Settings


def _configure_sqlite(dbapi_connection: DBAPIConnection, _: ConnectionPoolEntry) -> None:
    # pysqlite's implicit transactions break SAVEPOINT; let SQLAlchemy emit BEGIN itself.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


SQLITE_BEGIN_OPTION = "billwarden_sqlite_begin"


def _begin_sqlite(connection: Any) -> None:
    # IMMEDIATE takes SQLite's single write lock up front: a transaction that reads and then
    # writes would otherwise fail at once with "database is locked" when another wrote meanwhile
    mode = connection.get_execution_options().get(SQLITE_BEGIN_OPTION, "DEFERRED")
    connection.exec_driver_sql(f"BEGIN {mode}")


def create_engine(database_url: str, *, echo: bool = False, pool_size: int = 10) -> AsyncEngine:
    if database_url.startswith("sqlite"):
        engine = create_async_engine(database_url, echo=echo)
        event.listen(engine.sync_engine, "connect", _configure_sqlite)
        event.listen(engine.sync_engine, "begin", _begin_sqlite)
        return engine
    return create_async_engine(database_url, echo=echo, pool_size=pool_size, pool_pre_ping=True)


def engine_from_settings(settings: Settings) -> AsyncEngine:
    return create_engine(
        settings.database_url, echo=settings.database_echo, pool_size=settings.database_pool_size
    )


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


@asynccontextmanager
async def transactional(session: AsyncSession) -> AsyncIterator[AsyncSession]:
    """Commit `session` when the block succeeds, roll it back when it raises."""
    try:
        yield session
    except BaseException:
        await session.rollback()
        raise
    else:
        await session.commit()


WRITING_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


async def get_db_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One session per request: committed when the handler succeeds, rolled back otherwise.

    On SQLite a request that may write starts with the write lock (waiting up to the busy
    timeout for it), so concurrent writers queue instead of failing."""
    sessionmaker: async_sessionmaker[AsyncSession] = request.app.state.sessionmaker
    async with sessionmaker() as session, transactional(session):
        if request.method in WRITING_METHODS and session.get_bind().dialect.name == "sqlite":
            await session.connection(execution_options={SQLITE_BEGIN_OPTION: "IMMEDIATE"})
        yield session


# scope="function": commit before the response is sent, so a 2xx means the write is durable.
DbSession = Annotated[AsyncSession, Depends(get_db_session, scope="function")]
