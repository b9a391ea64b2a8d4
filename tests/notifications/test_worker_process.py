"""`billwarden worker` sends notifications, and one killed with SIGKILL mid-delivery loses
nothing: once its lease ends, the next worker sends the same message (same webhook-id)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import select

from billwarden.core.modes import Mode
from billwarden.notifications.models import Delivery, DeliveryStatus
from billwarden.notifications.service import Outbox
from tests.conftest import TEST_SECRET_KEY, Scratch
from tests.factories import Factories
from tests.notifications.factories import Endpoints, Receiver, receiving


def start_worker(scratch_database: str, tmp_path: Path) -> subprocess.Popen[str]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("BILLWARDEN_")},
        "BILLWARDEN_DATABASE_URL": scratch_database,
        "BILLWARDEN_SECRET_KEY": TEST_SECRET_KEY,
        "BILLWARDEN_WORKER_POLL_SECONDS": "0.2",
        "BILLWARDEN_WORKER_LEASE_SECONDS": "1",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "billwarden", "worker"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


async def delivery_status(scratch: Scratch) -> DeliveryStatus:
    async with scratch.session() as session:
        status = await session.scalar(select(Delivery.status))
    assert status is not None
    return status


class TestWorkerKilled:
    async def test_a_killed_worker_loses_nothing(
        self, scratch: Scratch, scratch_database: str, tmp_path: Path
    ) -> None:
        with receiving(Receiver(hang=5.0)) as receiver:
            secrets: list[str] = []

            async def build(made: Factories) -> None:
                session = made.people.session
                project = await made.tenants.project(await made.people.user())
                _, secret = await Endpoints(session, made.people.secret_box).endpoint(
                    project.id, receiver.url, ["entitlement.updated"]
                )
                secrets.append(secret)
                await Outbox(session).emit(
                    project.id, Mode.TEST, "entitlement.updated", {"plan": "PREMIUM_MONTHLY"}
                )

            await scratch.setup(build)
            first = start_worker(scratch_database, tmp_path)
            try:
                deadline = time.monotonic() + 30
                while not receiver.requests:  # the first attempt is in flight, unanswered
                    assert time.monotonic() < deadline
                    assert first.poll() is None, first.communicate()
                    await asyncio.sleep(0.05)
                first.send_signal(signal.SIGKILL)
                first.wait(timeout=10)
            finally:
                if first.poll() is None:
                    first.kill()
            assert await delivery_status(scratch) is DeliveryStatus.PENDING
            second = start_worker(scratch_database, tmp_path)
            try:
                deadline = time.monotonic() + 30
                while await delivery_status(scratch) is not DeliveryStatus.DELIVERED:
                    assert time.monotonic() < deadline
                    assert second.poll() is None, second.communicate()
                    await asyncio.sleep(0.1)
                second.send_signal(signal.SIGTERM)
                second.communicate(timeout=15)
            finally:
                if second.poll() is None:
                    second.kill()
            assert second.returncode == 0
        assert len(receiver.requests) == 2
        assert receiver.requests[0].id == receiver.requests[1].id
        bodies = receiver.verified(secrets[0])
        assert [body["data"] for body in bodies] == [{"plan": "PREMIUM_MONTHLY"}] * 2
