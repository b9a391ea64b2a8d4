"""The read cache of a served billwarden: answers from memory while nothing they hold changed,
and never a stale one once a change is committed (by any process)."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from billwarden.app import create_app
from billwarden.core.subjects import Subject, SubjectType
from billwarden.entitlements.models import Entitlement
from billwarden.entitlements.service import EntitlementService
from billwarden.identity.models import ApiKey
from billwarden_emulator.testing import serving
from tests.conftest import Scratch
from tests.factories import Factories


async def eventually(check: Callable[[], Awaitable[bool]], within: float = 5.0) -> None:
    """PostgreSQL tells other processes of a commit by NOTIFY: a few milliseconds later."""
    deadline = time.monotonic() + within
    while not await check():
        assert time.monotonic() < deadline
        await asyncio.sleep(0.01)


@dataclass
class Views:
    count: int = 0
    subjects: Counter[str] = field(default_factory=Counter)  # reads per subject id


def count_views(monkeypatch: pytest.MonkeyPatch) -> Views:
    """How often entitlements are read from the database (not from memory)."""
    views = Views()
    original = EntitlementService.view

    async def counted(self: EntitlementService, *args: Any) -> Any:
        views.count += 1
        views.subjects[args[2].id] += 1
        return await original(self, *args)

    monkeypatch.setattr(EntitlementService, "view", counted)
    return views


class TestReadCache:
    async def test_reads_come_from_memory_until_a_change_is_committed(
        self, scratch: Scratch, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        async def build(made: Factories) -> tuple[Any, str]:
            owner = await made.people.user()
            project = await made.tenants.project(owner)
            await made.snapshots.granted(project.id, Subject(SubjectType.USER, "ada"))
            return project, await made.people.api_key(project, owner)

        project, key = await scratch.setup(build)
        views = count_views(monkeypatch)
        headers = {"Authorization": f"Bearer {key}"}
        with serving(create_app(scratch.settings, configure_logs=False)) as url:
            async with httpx.AsyncClient(base_url=url) as http:

                async def read() -> dict[str, Any]:
                    answer = await http.get("/api/v1/entitlements/user/ada", headers=headers)
                    assert answer.status_code == 200, answer.text
                    result: dict[str, Any] = answer.json()
                    return result

                routed = await http.get("/api/v1/entitlements/user/ada", headers=headers)
                first = routed.json()
                remembered = await http.get("/api/v1/entitlements/user/ada", headers=headers)
                # answered from memory, before routing: the same answer, and every layer of the
                # stack around it still applies
                assert remembered.content == routed.content
                assert remembered.headers["content-type"] == "application/json"
                for header in ("x-request-id", "x-content-type-options", "cache-control"):
                    assert header in remembered.headers, header
                for _ in range(5):
                    assert await read() == first
                assert views.count == 1  # the rest from memory
                metrics = (await http.get("/metrics")).text
                assert (
                    'route="/api/v1/entitlements/{subject_type}/{subject_id}",status="200"'
                    in metrics
                )
                other = await http.get(
                    "/api/v1/entitlements/user/ada", headers={"Authorization": "Bearer bw_test_x"}
                )
                assert other.status_code == 401  # an unknown key is never answered from memory
                check = await http.post(
                    "/api/v1/entitlements/check",
                    json={"feature": "export", "subjectId": "ada"},
                    headers=headers,
                )
                assert check.json()["allowed"] is True and views.count == 1
                again = await http.post(
                    "/api/v1/entitlements/check",
                    json={"feature": "export", "subjectId": "ada"},
                    headers=headers,
                )
                assert again.json() == check.json()
                assert again.headers["content-type"] == "application/json"

                # another process changes the snapshot: the next reads see it
                async with scratch.writing() as session:
                    await session.execute(
                        update(Entitlement)
                        .where(Entitlement.project_id == project.id)
                        .values(features=["premium"], granted=False, status="CANCELED")
                    )

                async def changed() -> bool:
                    return (await read())["entitlement"]["status"] == "CANCELED"

                await eventually(changed)
                assert (await read())["hasPremiumAccess"] is False
                # the check's answer, kept with the entitlement it was read from, went with it
                check = await http.post(
                    "/api/v1/entitlements/check",
                    json={"feature": "export", "subjectId": "ada"},
                    headers=headers,
                )
                assert check.json()["allowed"] is False
                assert check.json()["entitlement"]["status"] == "CANCELED"

                # a deactivated key is refused from the next request on
                async with scratch.writing() as session:
                    await session.execute(update(ApiKey).values(is_active=False))

                async def refused() -> bool:
                    answer = await http.get("/api/v1/entitlements/user/ada", headers=headers)
                    return answer.status_code == 401

                await eventually(refused)

    async def test_a_changed_snapshot_sends_only_its_subject_back_to_the_database(
        self, scratch: Scratch, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """On PostgreSQL a snapshot's change is notified for its subject alone: one user's
        checkout or renewal leaves every other user's answer in memory. SQLite's one generation
        row sends every subject back to the database."""

        async def build(made: Factories) -> tuple[Any, str]:
            owner = await made.people.user()
            project = await made.tenants.project(owner)
            for name in ("ada", "bob"):
                await made.snapshots.granted(project.id, Subject(SubjectType.USER, name))
            return project, await made.people.api_key(project, owner)

        project, key = await scratch.setup(build)
        views = count_views(monkeypatch)
        headers = {"Authorization": f"Bearer {key}"}
        with serving(create_app(scratch.settings, configure_logs=False)) as url:
            async with httpx.AsyncClient(base_url=url, headers=headers) as http:

                async def status(name: str) -> str:
                    answer = await http.get(f"/api/v1/entitlements/user/{name}")
                    assert answer.status_code == 200, answer.text
                    return str(answer.json()["entitlement"]["status"])

                for _ in range(2):
                    assert [await status("ada"), await status("bob")] == ["ACTIVE", "ACTIVE"]
                assert views.subjects == {"ada": 1, "bob": 1}

                async with scratch.writing() as session:
                    await session.execute(
                        update(Entitlement)
                        .where(Entitlement.project_id == project.id)
                        .where(Entitlement.subject_id == "bob")
                        .values(granted=False, status="CANCELED")
                    )

                async def bob_canceled() -> bool:
                    return await status("bob") == "CANCELED"

                await eventually(bob_canceled)
                assert await status("ada") == "ACTIVE"
                assert await status("bob") == "CANCELED"
        assert views.subjects["bob"] == 2  # read again once, then from memory
        postgresql = scratch.engine.dialect.name == "postgresql"
        assert views.subjects["ada"] == (1 if postgresql else 2)

    async def test_without_the_cache_every_read_asks_the_database(
        self, scratch: Scratch, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        async def build(made: Factories) -> str:
            owner = await made.people.user()
            project = await made.tenants.project(owner)
            return await made.people.api_key(project, owner)

        key = await scratch.setup(build)
        views = count_views(monkeypatch)
        settings = scratch.settings.model_copy(update={"read_cache": False})
        with serving(create_app(settings, configure_logs=False)) as url:
            async with httpx.AsyncClient(base_url=url) as http:
                for _ in range(3):
                    answer = await http.get(
                        "/api/v1/entitlements/user/nobody",
                        headers={"Authorization": f"Bearer {key}"},
                    )
                    assert answer.status_code == 200
        assert views.count == 3
