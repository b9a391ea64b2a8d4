"""The migrations build, tear down and rebuild the schema on both backends."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from billwarden.db import migrate
from billwarden.db.engine import create_engine
from billwarden.domains import metadata

REPO_ROOT = Path(__file__).parents[2]
# every domain's tables, as the one list of domains collects them
DOMAIN_TABLES = set(metadata().tables)


def _tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


def _alembic(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "BILLWARDEN_DATABASE_URL": url}
    return subprocess.run(
        [sys.executable, "-m", "alembic", "-c", str(REPO_ROOT / "alembic.ini"), *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


class TestRoundTrip:
    async def test_alembic_upgrade_downgrade_upgrade(self, scratch_database: str) -> None:
        for step in (("upgrade", "head"), ("downgrade", "base"), ("upgrade", "head")):
            result = _alembic(scratch_database, *step)
            assert result.returncode == 0, result.stderr
            engine = create_engine(scratch_database)
            try:
                async with engine.connect() as connection:
                    tables = await connection.run_sync(_tables)
                    revision = await migrate.current_revision(connection)
            finally:
                await engine.dispose()
            if step[0] == "upgrade":
                assert tables >= DOMAIN_TABLES
                assert revision == migrate.head_revision()
            else:
                assert not DOMAIN_TABLES & tables
                assert revision is None


class TestModelsMatchMigrations:
    async def test_alembic_in_its_own_process_finds_nothing_to_generate(
        self, scratch_database: str
    ) -> None:
        """Alembic's env.py collects the tables from the one list of domains, in a process where
        no test has imported any model: a domain left out of the list would show up here."""
        assert _alembic(scratch_database, "upgrade", "head").returncode == 0
        checked = _alembic(scratch_database, "check")
        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert "No new upgrade operations detected" in checked.stdout + checked.stderr

    async def test_no_difference_between_models_and_migrated_schema(
        self, engine: AsyncEngine
    ) -> None:
        def diff(connection: Connection) -> list[object]:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            return list(compare_metadata(context, metadata()))

        async with engine.connect() as connection:
            differences = await connection.run_sync(diff)
        assert differences == []
