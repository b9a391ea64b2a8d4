"""`billwarden worker` as a process: applies what is stored, and stops cleanly on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import select

from billwarden.webhooks.models import InboxStatus, WebhookEvent
from tests.conftest import TEST_SECRET_KEY, Scratch
from tests.factories import Factories
from tests.webhooks.factories import Events


class TestWorkerProcess:
    async def test_applies_stored_events_and_stops_on_sigterm(
        self, scratch: Scratch, scratch_database: str, tmp_path: Path
    ) -> None:
        async def build(made: Factories) -> None:
            project = await made.tenants.project(await made.people.user())
            for number in range(3):
                await Events(made.people.session).stored(
                    project.id, f"evt_process{number}", "product.created"
                )

        await scratch.setup(build)
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("BILLWARDEN_")},
            "BILLWARDEN_DATABASE_URL": scratch_database,
            "BILLWARDEN_SECRET_KEY": TEST_SECRET_KEY,
            "BILLWARDEN_WORKER_POLL_SECONDS": "0.2",
        }
        worker = subprocess.Popen(  # noqa: ASYNC220 (a process the test talks to over the database)
            [sys.executable, "-m", "billwarden", "worker"],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            deadline = time.monotonic() + 30
            while True:
                async with scratch.session() as session:
                    statuses = list((await session.scalars(select(WebhookEvent.status))).all())
                if statuses and all(status is InboxStatus.IGNORED for status in statuses):
                    break
                assert time.monotonic() < deadline, statuses
                assert worker.poll() is None, worker.communicate()
                await asyncio.sleep(0.1)
            worker.send_signal(signal.SIGTERM)
            _, errors = worker.communicate(timeout=15)
        finally:
            if worker.poll() is None:
                worker.kill()
        assert worker.returncode == 0, errors
        assert len(statuses) == 3
