"""Recording when a session or an API key was last used never fails the request: a read route
answers while another writer holds SQLite's one write lock (the write waits for next time)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import select, update

from billwarden.db.base import utcnow
from billwarden.db.engine import create_sessionmaker
from billwarden.identity.models import ApiKey, ConsoleSession
from tests.concurrency import writer_holding_the_lock
from tests.conftest import Scratch
from tests.factories import Factories
from tests.identity.factories import SignedIn
from tests.probes import PROJECT_KEY_PROBE, install_probes

ME = "/api/v1/auth/me"


class TestActivityUnderAConcurrentWriter:
    async def test_session_idle_past_the_resolution_still_reads(self, scratch: Scratch) -> None:
        async def build(made: Factories) -> SignedIn:
            return await made.people.sign_in(await made.people.user())

        signed_in = await scratch.setup(build)
        async with scratch.writing() as session:
            await session.execute(
                update(ConsoleSession).values(last_seen_at=utcnow() - timedelta(minutes=5))
            )
        async with writer_holding_the_lock(create_sessionmaker(scratch.engine)):
            request = asyncio.create_task(scratch.client.get(ME, headers=signed_in.cookie))
            await asyncio.sleep(0.05)
        response = await request
        assert response.status_code == 200, response.text
        assert response.json()["authMethod"] == "session"

    async def test_api_key_used_for_the_first_time_still_reads(self, scratch: Scratch) -> None:
        install_probes(scratch.app)

        async def build(made: Factories) -> str:
            owner = await made.people.user()
            project = await made.tenants.project(owner)
            return await made.people.api_key(project, owner)

        key = await scratch.setup(build)
        async with writer_holding_the_lock(create_sessionmaker(scratch.engine)):
            request = asyncio.create_task(
                scratch.client.get(PROJECT_KEY_PROBE, headers={"Authorization": f"Bearer {key}"})
            )
            await asyncio.sleep(0.05)
        response = await request
        assert response.status_code == 200, response.text
        # the next request, with the database free again, records the use
        again = await scratch.client.get(
            PROJECT_KEY_PROBE, headers={"Authorization": f"Bearer {key}"}
        )
        assert again.status_code == 200
        async with scratch.session() as session:
            used = await session.scalar(select(ApiKey.last_used_at))
        assert used is not None
