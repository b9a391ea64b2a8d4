"""Storage settings a user relies on: referential integrity and, on SQLite, the WAL journal."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from billwarden.core.modes import Mode
from billwarden.db.engine import create_engine
from billwarden.projects.models import StripeConfig
from billwarden.projects.service import ProjectService
from tests.conftest import drop_database, new_database_url


class TestIntegrity:
    async def test_rows_of_a_missing_project_are_refused(self, session: AsyncSession) -> None:
        nested = await session.begin_nested()
        session.add(
            StripeConfig(
                project_id=uuid.uuid4(),
                mode=Mode.TEST,
                secret_key_ciphertext="x",
                secret_key_hint="sk_test_...",
            )
        )
        with pytest.raises(IntegrityError):
            await session.flush()
        await nested.rollback()

    async def test_mode_outside_test_and_live_is_refused(self, session: AsyncSession) -> None:
        project = await ProjectService(session).create_project("Acme")
        config = StripeConfig(
            project_id=project.id,
            mode=Mode.TEST,
            secret_key_ciphertext="x",
            secret_key_hint="sk_test_...",
        )
        session.add(config)
        await session.flush()
        nested = await session.begin_nested()
        with pytest.raises(IntegrityError):
            await session.execute(
                text("UPDATE stripe_configs SET mode = 'prod' WHERE project_id = :project"),
                {
                    "project": project.id
                    if session.bind.dialect.name != "sqlite"
                    else project.id.hex
                },
            )
        await nested.rollback()


class TestSqliteDefaults:
    async def test_sqlite_file_uses_wal_and_foreign_keys(self, tmp_path: Path) -> None:
        engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'settings.db'}")
        try:
            async with engine.connect() as connection:
                journal = (await connection.execute(text("PRAGMA journal_mode"))).scalar_one()
                foreign_keys = (await connection.execute(text("PRAGMA foreign_keys"))).scalar_one()
                synchronous = (await connection.execute(text("PRAGMA synchronous"))).scalar_one()
        finally:
            await engine.dispose()
        assert journal == "wal"
        assert foreign_keys == 1
        assert synchronous == 2  # FULL: an acknowledged commit survives a power loss


@pytest.mark.postgresql_only  # SQLite has no server to close a connection
class TestPooledConnections:
    async def test_a_connection_the_server_closed_is_replaced_at_checkout(
        self, backend: str, tmp_path: Path
    ) -> None:
        """A PostgreSQL restart or a terminated backend closes pooled connections: the next
        request gets a new one rather than an error (without a ping per checkout)."""
        url = await new_database_url(backend, tmp_path)
        engine = create_engine(url, pool_size=1)
        try:
            async with engine.connect() as connection:
                first = await connection.scalar(text("SELECT pg_backend_pid()"))
            async with engine.connect() as connection:  # back in the pool: the same one
                assert await connection.scalar(text("SELECT pg_backend_pid()")) == first
            admin = create_engine(url, pool_size=1)
            try:
                async with admin.connect() as connection:
                    await connection.scalar(
                        text("SELECT pg_terminate_backend(:pid)"), {"pid": first}
                    )
            finally:
                await admin.dispose()
            await asyncio.sleep(0.2)  # the driver reads the server's goodbye
            async with engine.connect() as connection:
                again = await connection.scalar(text("SELECT pg_backend_pid()"))
            assert again != first
        finally:
            await engine.dispose()
            await drop_database(url)
