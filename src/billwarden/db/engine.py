"""The async engine and its sessions, configured alike for SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection

from billwarden.config import Settings


def _configure_sqlite(dbapi_connection: DBAPIConnection, _: ConnectionPoolEntry) -> None:
    # pysqlite's implicit transactions break SAVEPOINT; let SQLAlchemy emit BEGIN itself.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    # FULL: a commit is on disk before it is acknowledged (NORMAL in WAL mode may lose the last
    # commits on power loss: an acknowledged webhook must not be one of them)
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.close()


SQLITE_BEGIN_OPTION = "billwarden_sqlite_begin"


def _begin_sqlite(connection: Any) -> None:
    # IMMEDIATE takes SQLite's single write lock up front: a transaction that reads and then
    # writes would otherwise fail at once with "database is locked" when another wrote meanwhile
    mode = connection.get_execution_options().get(SQLITE_BEGIN_OPTION, "DEFERRED")
    connection.exec_driver_sql(f"BEGIN {mode}")


def _replace_closed_connection(
    dbapi_connection: DBAPIConnection, _: ConnectionPoolEntry, __: PoolProxiedConnection
) -> None:
    # what pool_pre_ping is for, without its three round trips per checkout on asyncpg (BEGIN,
    # a ping, ROLLBACK: half of a cached entitlement check's): a connection the server closed (a
    # restart, a terminated backend) is already known closed to the driver, and the pool
    # replaces a connection refused here with a new one
    driver_connection = getattr(dbapi_connection, "_connection", None)
    if driver_connection is not None and driver_connection.is_closed():
        raise DisconnectionError("PostgreSQL closed this pooled connection")


def create_engine(database_url: str, *, echo: bool = False, pool_size: int = 10) -> AsyncEngine:
    if database_url.startswith("sqlite"):
        engine = create_async_engine(database_url, echo=echo, hide_parameters=True)
        event.listen(engine.sync_engine, "connect", _configure_sqlite)
        event.listen(engine.sync_engine, "begin", _begin_sqlite)
        return engine
    # hide_parameters: an error's text (logged, or shown as an inbox event's last error) never
    # carries the values of a statement
    engine = create_async_engine(database_url, echo=echo, pool_size=pool_size, hide_parameters=True)
    event.listen(engine.sync_engine, "checkout", _replace_closed_connection)
    return engine


def engine_from_settings(settings: Settings) -> AsyncEngine:
    return create_engine(
        settings.database_url, echo=settings.database_echo, pool_size=settings.database_pool_size
    )


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)
