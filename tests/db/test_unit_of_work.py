"""The unit of work HTTP requests, commands and start-up share: commit or roll back, keep what an
error says to keep, and on SQLite queue writers behind the one write lock instead of failing."""

from __future__ import annotations

import asyncio

import pytest
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from billwarden.config import Settings
from billwarden.crypto import SecretBox
from billwarden.db.engine import create_sessionmaker
from billwarden.db.unit_of_work import transaction, unit_of_work
from billwarden.errors import BillwardenError
from billwarden.kit.cli import run_in_unit_of_work
from billwarden.projects.models import Project
from billwarden.projects.service import ProjectService
from billwarden.projects.single_tenant import bootstrap_single_tenant
from tests.concurrency import create_after_reading, writer_holding_the_lock


class RefusedButRecorded(BillwardenError):
    code = "REFUSED_BUT_RECORDED"
    keeps_changes = True


@pytest.fixture
def sessionmaker(scratch_engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return create_sessionmaker(scratch_engine)


async def project_slugs(sessionmaker: async_sessionmaker[AsyncSession]) -> set[str]:
    async with sessionmaker() as session:
        return set((await session.scalars(select(Project.slug))).all())


class TestCommitAndRollback:
    async def test_success_commits(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        async with unit_of_work(sessionmaker) as session:
            await ProjectService(session).create_project("kept", "kept")
        assert await project_slugs(sessionmaker) == {"kept"}

    async def test_error_rolls_back(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        with pytest.raises(BillwardenError):
            async with unit_of_work(sessionmaker) as session:
                await ProjectService(session).create_project("lost", "lost")
                raise BillwardenError("refused")
        assert await project_slugs(sessionmaker) == set()

    async def test_error_that_keeps_changes_commits_then_is_raised(
        self, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        with pytest.raises(RefusedButRecorded):
            async with unit_of_work(sessionmaker) as session:
                await ProjectService(session).create_project("recorded", "recorded")
                raise RefusedButRecorded("counted, then refused")
        assert await project_slugs(sessionmaker) == {"recorded"}


class TestWritersQueue:
    async def test_concurrent_writers_that_read_first_all_succeed(
        self, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        async def write(slug: str) -> None:
            async with unit_of_work(sessionmaker) as session:
                await create_after_reading(session, slug)

        await asyncio.gather(*(write(f"writer-{index}") for index in range(5)))
        assert await project_slugs(sessionmaker) == {f"writer-{index}" for index in range(5)}

    async def test_without_the_write_lock_first_sqlite_refuses_a_reader_turned_writer(
        self, backend: str, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        """Why writers begin IMMEDIATE: a plain (deferred) transaction that read before another
        writer committed cannot write on SQLite ("database is locked"); PostgreSQL has no such
        limit."""

        async def deferred_write() -> None:
            async with sessionmaker() as session, transaction(session, write=False):
                await create_after_reading(session, "deferred")

        async with writer_holding_the_lock(sessionmaker):
            attempt = asyncio.create_task(deferred_write())
            await asyncio.sleep(0.02)
        if backend == "sqlite":
            with pytest.raises(OperationalError, match="locked"):
                await attempt
        else:
            await attempt
            assert "deferred" in await project_slugs(sessionmaker)

    async def test_command_waits_for_a_request_holding_the_lock(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: Settings,
        scratch_database: str,
    ) -> None:
        command_settings = settings.model_copy(update={"database_url": scratch_database})

        async def action(session: AsyncSession, _: SecretBox, __: Settings) -> None:
            await create_after_reading(session, "from-the-command")

        async with writer_holding_the_lock(sessionmaker):
            command = asyncio.create_task(
                asyncio.to_thread(run_in_unit_of_work, command_settings, action)
            )
            await asyncio.sleep(0.02)
        await command
        assert await project_slugs(sessionmaker) == {"held", "from-the-command"}

    async def test_start_up_waits_for_a_request_holding_the_lock(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: Settings,
        secret_box: SecretBox,
    ) -> None:
        single_tenant = settings.model_copy(
            update={"single_tenant_secret_key": SecretStr("sk_test_startup000000000001")}
        )
        async with writer_holding_the_lock(sessionmaker):
            start_up = asyncio.create_task(
                bootstrap_single_tenant(sessionmaker, secret_box, single_tenant)
            )
            await asyncio.sleep(0.02)
        await start_up
        assert await project_slugs(sessionmaker) == {"held", "default"}
