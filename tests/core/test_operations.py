"""What an operator reads of the workers and the reconciliation: `/metrics` figures from the
database and the worker report of `/readyz` (docs/deployment.md)."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.ext.asyncio import AsyncSession

from billwarden.app import read_operations
from billwarden.core.modes import Mode
from billwarden.db.engine import create_engine, create_sessionmaker
from billwarden.kit.operations import Operations
from billwarden.notifications.models import Delivery, DeliveryStatus, OutboxMessage
from billwarden.reconciliation.models import ReconcileRun, RunStatus
from billwarden.usage.models import MeterForward
from billwarden.webhooks.models import InboxStatus
from billwarden.webhooks.repository import WebhookEventRepository
from tests.conftest import Scratch
from tests.factories import Factories
from tests.notifications.factories import Endpoints
from tests.webhooks.factories import stripe_event


def ago(seconds: float) -> datetime:
    return datetime.now(UTC) - timedelta(seconds=seconds)


async def a_project(scratch: Scratch) -> uuid.UUID:
    async def build(made: Factories) -> uuid.UUID:
        owner = await made.people.user()
        return (await made.tenants.project(owner)).id

    return await scratch.setup(build)


async def store_event(
    session: AsyncSession,
    project_id: uuid.UUID,
    *,
    due_seconds_ago: float,
    status: InboxStatus = InboxStatus.PENDING,
    mode: Mode = Mode.TEST,
) -> None:
    """An event as the intake stores it, received (and due) `due_seconds_ago`, or due then
    after earlier attempts; a negative figure: a retry still to come."""
    event = stripe_event()
    await WebhookEventRepository(session).insert_if_new(
        {
            "project_id": project_id,
            "mode": mode,
            "event_id": event["id"],
            "event_type": event["type"],
            "object_id": "sub_1",
            "event_created": ago(max(due_seconds_ago, 0)),
            "payload": orjson.dumps(event).decode(),
            "received_at": ago(max(due_seconds_ago, 0)),
            "status": status,
            "attempts": 0 if status is InboxStatus.PENDING else 8,
            "next_attempt_at": ago(due_seconds_ago) if status is InboxStatus.PENDING else None,
        }
    )


def fresh_figures(scratch: Scratch) -> None:
    """Read the database at every scrape (the served app keeps its figures a few seconds)."""
    operations: Operations = scratch.app.state.operations
    operations.cache_seconds = 0


async def scrape(scratch: Scratch) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = await scratch.client.get("/metrics")
    assert response.status_code == 200
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: dict[Any, float], name: str, **labels: str) -> float:
    return samples[name, tuple(sorted(labels.items()))]


class TestStalledWorker:
    async def test_readyz_reports_an_inbox_waiting_past_the_threshold(
        self, scratch: Scratch
    ) -> None:
        project_id = await a_project(scratch)
        async with scratch.writing() as session:
            await store_event(session, project_id, due_seconds_ago=900)
            await store_event(session, project_id, due_seconds_ago=5)
        response = await scratch.client.get("/readyz")
        # still ready: any process stores webhooks durably while the workers lag
        assert response.status_code == 200
        worker = response.json()["worker"]
        assert worker["status"] == "stalled"
        assert worker["stalledQueues"] == ["inbox"]
        assert worker["thresholdSeconds"] == 300
        assert 900 <= worker["oldestWaitSeconds"] < 960

    async def test_recent_work_and_retries_not_yet_due_are_no_stall(self, scratch: Scratch) -> None:
        project_id = await a_project(scratch)
        async with scratch.writing() as session:
            await store_event(session, project_id, due_seconds_ago=20)
            await store_event(session, project_id, due_seconds_ago=-3600)  # backing off
            await store_event(session, project_id, due_seconds_ago=0, status=InboxStatus.FAILED)
        worker = (await scratch.client.get("/readyz")).json()["worker"]
        assert worker["status"] == "ok"
        assert worker["stalledQueues"] == []
        assert 20 <= worker["oldestWaitSeconds"] < 80

    async def test_threshold_is_a_setting(self, scratch: Scratch) -> None:
        project_id = await a_project(scratch)
        async with scratch.writing() as session:
            await store_event(session, project_id, due_seconds_ago=90)
        scratch.app.state.settings = scratch.settings.model_copy(
            update={"worker_stall_seconds": 60}
        )
        worker = (await scratch.client.get("/readyz")).json()["worker"]
        assert (worker["status"], worker["thresholdSeconds"]) == ("stalled", 60)

    async def test_stalled_worker_answers_503_when_asked_to(self, scratch: Scratch) -> None:
        project_id = await a_project(scratch)
        async with scratch.writing() as session:
            await store_event(session, project_id, due_seconds_ago=900)
        scratch.app.state.settings = scratch.settings.model_copy(
            update={"worker_stall_not_ready": True}
        )
        response = await scratch.client.get("/readyz")
        assert response.status_code == 503
        body = response.json()
        assert body["code"] == "NOT_READY"
        assert body["details"]["worker"]["stalledQueues"] == ["inbox"]

    async def test_a_stalled_notification_queue_is_reported_too(self, scratch: Scratch) -> None:
        project_id = await a_project(scratch)
        async with scratch.writing() as session:
            await add_delivery(session, scratch, project_id, due_seconds_ago=400)
        worker = (await scratch.client.get("/readyz")).json()["worker"]
        assert (worker["status"], worker["stalledQueues"]) == ("stalled", ["notifications"])


async def add_delivery(
    session: AsyncSession,
    scratch: Scratch,
    project_id: uuid.UUID,
    *,
    due_seconds_ago: float,
    status: DeliveryStatus = DeliveryStatus.PENDING,
) -> None:
    endpoint, _ = await Endpoints(session, scratch.secret_box).endpoint(project_id)
    message = OutboxMessage(
        project_id=project_id, mode=Mode.TEST, event_type="entitlement.updated", body={}
    )
    session.add(message)
    await session.flush()
    session.add(
        Delivery(
            endpoint_id=endpoint.id,
            message_id=message.id,
            event_type="entitlement.updated",
            status=status,
            attempts=0 if status is DeliveryStatus.PENDING else 8,
            next_attempt_at=ago(due_seconds_ago) if status is DeliveryStatus.PENDING else None,
        )
    )
    await session.flush()


def meter_forward(
    project_id: uuid.UUID, *, due_seconds_ago: float, status: str = "pending", mode: Mode
) -> MeterForward:
    return MeterForward(
        project_id=project_id,
        mode=mode,
        event_id=f"use_{uuid.uuid4().hex}",
        event_name="api_calls",
        subject_type="user",
        subject_id="u1",
        value=1.0,
        timestamp=ago(due_seconds_ago),
        status=status,
        next_attempt_at=ago(due_seconds_ago) if status == "pending" else None,
    )


def finished_run(
    project_id: uuid.UUID,
    mode: Mode,
    *,
    requested_seconds_ago: float,
    mismatched: int,
    reasons: dict[str, int],
    status: RunStatus = RunStatus.FINISHED,
) -> ReconcileRun:
    moment = ago(requested_seconds_ago)
    return ReconcileRun(
        project_id=project_id,
        mode=mode,
        status=status,
        trigger="schedule",
        requested_by="schedule",
        requested_at=moment,
        started_at=moment,
        finished_at=moment + timedelta(seconds=30) if status is RunStatus.FINISHED else None,
        total=10,
        in_sync=10 - mismatched,
        mismatched=mismatched,
        reasons=reasons,
    )


class TestOperationalMetrics:
    async def test_queues_show_what_waits_and_what_failed(self, scratch: Scratch) -> None:
        project_id = await a_project(scratch)
        async with scratch.writing() as session:
            await store_event(session, project_id, due_seconds_ago=120)
            await store_event(session, project_id, due_seconds_ago=3)
            await store_event(session, project_id, due_seconds_ago=-600)  # a retry to come
            await store_event(
                session, project_id, due_seconds_ago=0, status=InboxStatus.FAILED, mode=Mode.LIVE
            )
            await add_delivery(session, scratch, project_id, due_seconds_ago=60)
            await add_delivery(
                session, scratch, project_id, due_seconds_ago=0, status=DeliveryStatus.FAILED
            )
            session.add_all(
                [
                    meter_forward(project_id, due_seconds_ago=30, mode=Mode.TEST),
                    meter_forward(project_id, due_seconds_ago=0, status="failed", mode=Mode.TEST),
                    meter_forward(
                        project_id, due_seconds_ago=0, status="forwarded", mode=Mode.LIVE
                    ),
                ]
            )
        samples = await scrape(scratch)
        assert value(samples, "billwarden_operations_up") == 1
        assert 120 <= value(samples, "billwarden_inbox_lag_seconds") < 180
        assert value(samples, "billwarden_inbox_due_events") == 2
        assert value(samples, "billwarden_inbox_failed_events", mode="live") == 1
        assert value(samples, "billwarden_inbox_failed_events", mode="test") == 0
        assert 60 <= value(samples, "billwarden_notification_lag_seconds") < 120
        assert value(samples, "billwarden_notification_due_deliveries") == 1
        assert value(samples, "billwarden_notification_failed_deliveries") == 1
        assert 30 <= value(samples, "billwarden_meter_forward_lag_seconds") < 90
        assert value(samples, "billwarden_meter_forward_due_events") == 1
        assert value(samples, "billwarden_meter_forward_failed_events", mode="test") == 1
        assert value(samples, "billwarden_meter_forward_failed_events", mode="live") == 0

    async def test_empty_queues_read_zero(self, scratch: Scratch) -> None:
        samples = await scrape(scratch)
        for name in (
            "billwarden_inbox_lag_seconds",
            "billwarden_inbox_due_events",
            "billwarden_notification_lag_seconds",
            "billwarden_meter_forward_lag_seconds",
        ):
            assert value(samples, name) == 0, name
        assert value(samples, "billwarden_reconcile_mismatched_records", mode="live") == 0

    async def test_reconciliation_shows_each_projects_latest_finished_run(
        self, scratch: Scratch
    ) -> None:
        first, second = await a_project(scratch), await a_project(scratch)
        async with scratch.writing() as session:
            session.add_all(
                [
                    # superseded by the run after it
                    finished_run(
                        first,
                        Mode.LIVE,
                        requested_seconds_ago=7200,
                        mismatched=5,
                        reasons={"price_mismatch": 5},
                    ),
                    finished_run(
                        first,
                        Mode.LIVE,
                        requested_seconds_ago=3600,
                        mismatched=2,
                        reasons={"status_mismatch": 2, "snapshot_drift": 1},
                    ),
                    # not finished: the last finished run still counts
                    finished_run(
                        first,
                        Mode.LIVE,
                        requested_seconds_ago=60,
                        mismatched=0,
                        reasons={},
                        status=RunStatus.FAILED,
                    ),
                    finished_run(
                        second,
                        Mode.LIVE,
                        requested_seconds_ago=600,
                        mismatched=1,
                        reasons={"snapshot_drift": 1},
                    ),
                    finished_run(
                        second,
                        Mode.TEST,
                        requested_seconds_ago=600,
                        mismatched=4,
                        reasons={"missing_locally": 4},
                    ),
                ]
            )
        samples = await scrape(scratch)
        assert value(samples, "billwarden_reconcile_mismatched_records", mode="live") == 3
        assert value(samples, "billwarden_reconcile_mismatched_records", mode="test") == 4
        reasons = "billwarden_reconcile_mismatch_reasons"
        assert value(samples, reasons, mode="live", reason="status_mismatch") == 2
        assert value(samples, reasons, mode="live", reason="snapshot_drift") == 2
        assert value(samples, reasons, mode="live", reason="price_mismatch") == 0
        assert value(samples, reasons, mode="test", reason="missing_locally") == 4
        finished = value(
            samples, "billwarden_reconcile_last_finished_timestamp_seconds", mode="live"
        )
        assert abs(finished - (ago(600) + timedelta(seconds=30)).timestamp()) < 60

    async def test_figures_are_kept_a_few_seconds(self, scratch: Scratch) -> None:
        project_id = await a_project(scratch)
        first = await scrape(scratch)
        async with scratch.writing() as session:
            await store_event(session, project_id, due_seconds_ago=1)
        # a scraper asking again at once is answered from memory, not the database
        assert value(await scrape(scratch), "billwarden_inbox_due_events") == value(
            first, "billwarden_inbox_due_events"
        )
        fresh_figures(scratch)
        assert value(await scrape(scratch), "billwarden_inbox_due_events") == 1

    async def test_every_figure_is_documented(self, scratch: Scratch) -> None:
        doc = (Path(__file__).parents[2] / "docs" / "deployment.md").read_text()
        response = await scratch.client.get("/metrics")
        names = {
            # a counter's family drops the `_total` its samples carry
            f"{family.name}_total" if family.type == "counter" else family.name
            for family in text_string_to_metric_families(response.text)
            if family.name.startswith("billwarden_")
        }
        assert "billwarden_inbox_lag_seconds" in names
        documented = set(re.findall(r"`billwarden_\w+`", doc))
        # the client library's `_created` companions (when a counter started) go with their metric
        bases = {name: name.removesuffix("_created") for name in names}
        missing = sorted(
            name
            for name, base in bases.items()
            if not {f"`{name}`", f"`{base}`", f"`{base}_total`"} & documented
        )
        assert not missing, f"metrics missing from docs/deployment.md: {missing}"


class TestDatabaseAway:
    async def test_metrics_still_answer_and_say_the_figures_are_missing(
        self, scratch: Scratch, tmp_path: Path
    ) -> None:
        scratch.app.state.operations = _unreadable(tmp_path)
        response = await scratch.client.get("/metrics")
        assert response.status_code == 200
        samples = await scrape(scratch)
        assert value(samples, "billwarden_operations_up") == 0
        assert not any(name == "billwarden_inbox_lag_seconds" for name, _ in samples)
        assert any(name == "billwarden_http_requests_total" for name, _ in samples)

    async def test_readyz_is_not_ready_when_the_figures_cannot_be_read(
        self, scratch: Scratch, tmp_path: Path
    ) -> None:
        scratch.app.state.operations = _unreadable(tmp_path)
        response = await scratch.client.get("/readyz")
        assert response.status_code == 503
        assert response.json()["code"] == "NOT_READY"


def _unreadable(directory: Path) -> Operations:
    """Figures read from a database that cannot be opened (its directory does not exist)."""
    engine = create_engine(f"sqlite+aiosqlite:///{directory / 'missing' / 'billwarden.db'}")
    return Operations(create_sessionmaker(engine), read_operations, cache_seconds=0)
