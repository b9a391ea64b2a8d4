"""Quotas in access decisions: a check with a metric, and consume (check and record in one atomic
step), exact when many requests race through two server processes."""

from __future__ import annotations

import asyncio
import uuid
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from billwarden.catalog.service import CatalogService
from billwarden.usage.models import UsageCounter, UsageEvent
from tests.catalog.factories import Catalogs
from tests.checkout.factories import Shop
from tests.conftest import Scratch
from tests.factories import Factories
from tests.test_serve_proxies import serving
from tests.usage.test_usage import send

CHECK = "/api/v1/entitlements/check"
CONSUME = "/api/v1/usage/consume"


def consume(event_id: str, amount: float = 1, subject: str = "ada") -> dict[str, Any]:
    return {"id": event_id, "subjectId": subject, "metric": "api_calls", "amount": amount}


class TestCheck:
    async def test_a_metric_fits_its_quota_or_not(
        self, client: httpx.AsyncClient, shop: Shop
    ) -> None:
        await send(
            client, shop.key, {"id": "u1", "subjectId": "ada", "metric": "api_calls", "value": 30}
        )
        fits = await client.post(
            CHECK, json={"metric": "api_calls", "amount": 70, "subjectId": "ada"}, headers=shop.key
        )
        assert fits.status_code == 200, fits.text
        assert fits.json()["allowed"] is True
        assert (fits.json()["limit"], fits.json()["used"], fits.json()["remaining"]) == (
            100,
            30,
            70,
        )
        over = await client.post(
            CHECK,
            json={"feature": "basic", "metric": "api_calls", "amount": 71, "subjectId": "ada"},
            headers=shop.key,
        )
        assert (over.json()["allowed"], over.json()["reason"]) == (False, "quota_exceeded")
        free = await client.post(
            CHECK, json={"metric": "tokens_issued", "subjectId": "ada"}, headers=shop.key
        )
        assert free.json()["allowed"] is True and free.json()["limit"] is None
        for body, code in (
            ({"subjectId": "ada"}, "VALIDATION_ERROR"),
            ({"metric": "spaceships", "subjectId": "ada"}, "UNKNOWN_METRIC"),
            ({"metric": "api_calls", "amount": 0, "subjectId": "ada"}, "VALIDATION_ERROR"),
        ):
            refused = await client.post(CHECK, json=body, headers=shop.key)
            assert refused.status_code == 400, body
            assert refused.json()["code"] == code

    async def test_a_metric_with_a_quota_is_checked_without_reading_the_catalog_again(
        self, client: httpx.AsyncClient, shop: Shop, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The hot quota check: the subject's entitlement names the metric's quota, so the
        catalog is not read again to know the metric (ada has no snapshot: her free tier is the
        one read); a metric without a quota still needs the catalog to say it exists."""
        reads: list[uuid.UUID] = []
        original = CatalogService.current

        async def counted(self: CatalogService, project_id: uuid.UUID) -> Any:
            reads.append(project_id)
            return await original(self, project_id)

        monkeypatch.setattr(CatalogService, "current", counted)
        await send(
            client, shop.key, {"id": "u1", "subjectId": "ada", "metric": "api_calls", "value": 30}
        )
        reads.clear()
        fits = await client.post(
            CHECK, json={"metric": "api_calls", "amount": 70, "subjectId": "ada"}, headers=shop.key
        )
        assert (fits.json()["allowed"], fits.json()["used"], fits.json()["limit"]) == (
            True,
            30,
            100,
        )
        assert len(reads) == 1  # the free tier's quotas; they name api_calls
        reads.clear()
        unknown = await client.post(
            CHECK, json={"metric": "spaceships", "subjectId": "ada"}, headers=shop.key
        )
        assert unknown.json()["code"] == "UNKNOWN_METRIC"
        assert len(reads) == 2  # the free tier, then the catalog's metrics


class TestConsume:
    async def test_records_only_what_fits_and_each_id_once(
        self, client: httpx.AsyncClient, session: AsyncSession, shop: Shop
    ) -> None:
        first = await client.post(CONSUME, json=consume("c1", 99), headers=shop.key)
        assert first.status_code == 200, first.text
        assert first.json() | {"resetsAt": None} == {
            "allowed": True,
            "duplicate": False,
            "limit": 100,
            "used": 99,
            "remaining": 1,
            "period": "day",
            "resetsAt": None,
        }
        over = await client.post(CONSUME, json=consume("c2", 2), headers=shop.key)
        assert over.status_code == 200
        assert (over.json()["allowed"], over.json()["used"]) == (False, 99)
        again = await client.post(CONSUME, json=consume("c1", 99), headers=shop.key)
        assert (again.json()["allowed"], again.json()["duplicate"]) == (True, True)
        last = await client.post(CONSUME, json=consume("c3", 1), headers=shop.key)
        assert (last.json()["allowed"], last.json()["remaining"]) == (True, 0)
        stored = await session.scalar(
            select(func.count())
            .select_from(UsageEvent)
            .where(UsageEvent.project_id == shop.project.id)
        )
        assert stored == 2  # c1 and c3; c2 was over, c1 again a duplicate
        unlimited = await client.post(
            CONSUME,
            json={"id": "t1", "subjectId": "ada", "metric": "tokens_issued", "amount": 5},
            headers=shop.key,
        )
        assert unlimited.json()["allowed"] is True and unlimited.json()["limit"] is None


class TestExactUnderConcurrency:
    async def test_100_consumes_through_two_processes_allow_exactly_the_10_left(
        self, scratch: Scratch, cli_env: dict[str, str], tmp_path: Path
    ) -> None:
        async def build(made: Factories) -> tuple[Any, str]:
            owner = await made.people.user()
            project = await made.tenants.project(owner)
            await made.catalogs.load(
                project.id,
                {
                    "free": {"quotas": {"api_calls": {"limit": 100, "period": "day"}}},
                    "families": {},
                    "plans": {},
                },
            )
            return project, await made.people.api_key(project, owner)

        project, key = await scratch.setup(build)
        headers = {"Authorization": f"Bearer {key}"}
        for name in ("one", "two"):
            (tmp_path / name).mkdir()
        with ExitStack() as stack:
            servers = [
                stack.enter_context(serving(cli_env, tmp_path / name, "--no-migrate"))
                for name in ("one", "two")
            ]
            async with httpx.AsyncClient(timeout=60) as http:
                warm = await http.post(
                    servers[0] + CONSUME, json=consume("warm", 90), headers=headers
                )
                assert warm.json()["remaining"] == 10, warm.text
                answers = await asyncio.gather(
                    *(
                        http.post(
                            servers[n % 2] + CONSUME,
                            json=consume(f"race-{n}-{uuid.uuid4().hex[:6]}"),
                            headers=headers,
                        )
                        for n in range(100)
                    )
                )
        assert [a.status_code for a in answers] == [200] * 100
        assert sum(a.json()["allowed"] for a in answers) == 10
        async with scratch.session() as session:
            used = await session.scalar(
                select(UsageCounter.value).where(
                    UsageCounter.project_id == project.id,
                    UsageCounter.granularity == "day",
                    UsageCounter.metric == "api_calls",
                )
            )
        assert used == 100


class TestPeriods:
    async def test_a_monthly_quota_counts_the_month_and_resets_on_the_first(
        self, client: httpx.AsyncClient, session: AsyncSession, shop: Shop
    ) -> None:
        await Catalogs(session).load(
            shop.project.id,
            {
                "free": {"quotas": {"api_calls": {"limit": 50, "period": "month"}}},
                "families": {},
                "plans": {},
            },
        )
        now = datetime.now(UTC)
        earlier = max(
            now.replace(day=1, hour=0, minute=0, second=0, microsecond=0), now - timedelta(days=1)
        )
        await send(
            client,
            shop.key,
            {"id": "early", "subjectId": "ada", "metric": "api_calls", "value": 20,
             "timestamp": earlier.isoformat()},
        )  # fmt: skip
        answer = await client.post(CONSUME, json=consume("now", 30), headers=shop.key)
        assert answer.json()["allowed"] is True, answer.text
        assert (answer.json()["used"], answer.json()["remaining"], answer.json()["period"]) == (
            50,
            0,
            "month",
        )
        first = datetime(now.year + (now.month == 12), now.month % 12 + 1, 1, tzinfo=UTC)
        assert datetime.fromisoformat(answer.json()["resetsAt"]) == first
        over = await client.post(CONSUME, json=consume("more"), headers=shop.key)
        assert over.json()["allowed"] is False


class TestConcurrentIngest:
    async def test_two_processes_ingesting_overlapping_batches_count_each_event_once(
        self, scratch: Scratch, cli_env: dict[str, str], tmp_path: Path
    ) -> None:
        async def build(made: Factories) -> tuple[Any, str]:
            owner = await made.people.user()
            project = await made.tenants.project(owner)
            await made.catalogs.load(
                project.id, {"metrics": {"api_calls": {}}, "families": {}, "plans": {}}
            )
            return project, await made.people.api_key(project, owner)

        project, key = await scratch.setup(build)
        headers = {"Authorization": f"Bearer {key}"}
        for name in ("one", "two"):
            (tmp_path / name).mkdir()
        # 20 batches of 100 events over 10 subjects; every batch is sent to both servers at once
        batches = [
            [
                {"id": f"b{b}-e{n}", "subjectId": f"s{n % 10}", "metric": "api_calls", "value": 2}
                for n in range(100)
            ]
            for b in range(20)
        ]
        with ExitStack() as stack:
            servers = [
                stack.enter_context(serving(cli_env, tmp_path / name, "--no-migrate"))
                for name in ("one", "two")
            ]
            async with httpx.AsyncClient(timeout=60) as http:
                answers = await asyncio.gather(
                    *(
                        http.post(
                            server + "/api/v1/usage/events", json={"events": batch}, headers=headers
                        )
                        for batch in batches
                        for server in servers
                    )
                )
        assert [a.status_code for a in answers] == [202] * 40
        assert sum(a.json()["accepted"] for a in answers) == 2000
        assert sum(a.json()["duplicates"] for a in answers) == 2000
        async with scratch.session() as session:
            rows = await session.execute(
                select(UsageCounter.granularity, func.sum(UsageCounter.value))
                .where(UsageCounter.project_id == project.id)
                .group_by(UsageCounter.granularity)
            )
            totals = dict(rows.all())
        assert totals == {"day": 4000, "month": 4000}
