"""The inbox worker: applies each stored event once, in the handler's own transaction; retries a
failure with backoff, then gives up as `failed`; takes over an event a dead worker held."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from billwarden.config import Settings
from billwarden.db.base import utcnow
from billwarden.db.engine import create_sessionmaker
from billwarden.db.unit_of_work import unit_of_work
from billwarden.projects.models import Project
from billwarden.webhooks.models import InboxStatus, WebhookEvent
from billwarden.webhooks.repository import WebhookEventRepository
from billwarden.webhooks.service import InboxPolicy, InboxService
from billwarden.webhooks.service.registry import (
    EventContext,
    Handler,
    HandlerRegistry,
    UnknownEventType,
)
from billwarden.webhooks.tasks import InboxWorker
from tests.conftest import Scratch
from tests.factories import Factories
from tests.webhooks.factories import Events, stripe_access

UPDATED = "customer.subscription.updated"


def policy(settings: Settings, **changes: object) -> InboxPolicy:
    return InboxPolicy.from_settings(settings.model_copy(update=changes))


def renaming_handler(applied: Counter[str]) -> Handler:
    """A handler with an effect on the database: the project is renamed after the event."""

    async def handle(context: EventContext) -> None:
        applied[context.event["id"]] += 1
        await context.session.execute(
            update(Project).where(Project.id == context.project_id).values(name=context.event["id"])
        )

    return handle


async def setup_events(
    scratch: Scratch, count: int, event_type: str = UPDATED
) -> tuple[uuid.UUID, list[str]]:
    async def build(made: Factories) -> tuple[uuid.UUID, list[str]]:
        project = await made.tenants.project(await made.people.user())
        ids = [f"evt_{uuid.uuid4().hex}" for _ in range(count)]
        for event_id in ids:
            await Events(made.people.session).stored(project.id, event_id, event_type)
        return project.id, ids

    return await scratch.setup(build)


async def rows(scratch: Scratch) -> list[WebhookEvent]:
    async with scratch.session() as session:
        return list((await session.scalars(select(WebhookEvent))).all())


class TestApplying:
    async def test_handled_event_is_applied_with_its_effect_once(self, scratch: Scratch) -> None:
        project_id, (event_id,) = await setup_events(scratch, 1)
        applied: Counter[str] = Counter()
        worker = InboxWorker(
            create_sessionmaker(scratch.engine),
            HandlerRegistry({UPDATED: renaming_handler(applied)}),
            policy(scratch.settings),
            stripe_access(scratch.settings),
        )
        assert await worker.run_once() == 1
        assert await worker.run_once() == 0  # nothing left to claim
        assert applied == {event_id: 1}
        (row,) = await rows(scratch)
        assert row.status is InboxStatus.PROCESSED and row.processed_at is not None
        assert row.attempts == 1
        async with scratch.session() as session:
            renamed = await session.get(Project, project_id)
            assert renamed is not None and renamed.name == event_id

    async def test_a_type_without_handler_is_kept_and_marked_ignored(
        self, scratch: Scratch
    ) -> None:
        await setup_events(scratch, 1, "customer.created")
        worker = InboxWorker(
            create_sessionmaker(scratch.engine),
            HandlerRegistry({}),
            policy(scratch.settings),
            stripe_access(scratch.settings),
        )
        await worker.run_once()
        (row,) = await rows(scratch)
        assert row.status is InboxStatus.IGNORED and row.processed_at is not None

    def test_a_handler_for_an_unknown_event_type_is_refused_when_registered(self) -> None:
        async def nothing(context: EventContext) -> None:
            return None

        with pytest.raises(UnknownEventType, match=r"customer\.subscription\.updatd"):
            HandlerRegistry({"customer.subscription.updatd": nothing})


class TestFailures:
    async def test_failure_rolls_back_its_effects_and_retries_with_backoff(
        self, scratch: Scratch
    ) -> None:
        project_id, _ = await setup_events(scratch, 1)

        async def half_done_then_broken(context: EventContext) -> None:
            await context.session.execute(
                update(Project).where(Project.id == context.project_id).values(name="half done")
            )
            raise RuntimeError("Stripe said no")

        worker = InboxWorker(
            create_sessionmaker(scratch.engine),
            HandlerRegistry({UPDATED: half_done_then_broken}),
            policy(scratch.settings, webhook_retry_base_seconds=30),
            stripe_access(scratch.settings),
        )
        await worker.run_once()
        (row,) = await rows(scratch)
        assert row.status is InboxStatus.PENDING and row.attempts == 1
        assert row.last_error == "RuntimeError: Stripe said no"
        assert row.next_attempt_at is not None
        assert timedelta(seconds=25) < row.next_attempt_at - utcnow() <= timedelta(seconds=30)
        assert await worker.run_once() == 0  # not due yet
        async with scratch.session() as session:
            untouched = await session.get(Project, project_id)
            assert untouched is not None and untouched.name != "half done"

    async def test_after_the_last_attempt_the_event_is_failed(self, scratch: Scratch) -> None:
        await setup_events(scratch, 1)

        async def broken(context: EventContext) -> None:
            raise ValueError("bad payload")

        worker = InboxWorker(
            create_sessionmaker(scratch.engine),
            HandlerRegistry({UPDATED: broken}),
            policy(scratch.settings, webhook_max_attempts=3, webhook_retry_base_seconds=0.001),
            stripe_access(scratch.settings),
        )
        for _ in range(5):
            await worker.run_once()
            await asyncio.sleep(0.01)
        (row,) = await rows(scratch)
        assert row.status is InboxStatus.FAILED and row.attempts == 3
        assert row.next_attempt_at is None and row.last_error == "ValueError: bad payload"

    async def test_an_event_a_dead_worker_held_is_applied_after_the_lease(
        self, scratch: Scratch
    ) -> None:
        _, (event_id,) = await setup_events(scratch, 1)
        sessionmaker = create_sessionmaker(scratch.engine)
        # a worker claims the event, then dies before applying it
        async with unit_of_work(sessionmaker) as session:
            claimed = await WebhookEventRepository(session).claim_due(
                utcnow(), 10, timedelta(seconds=0.2), uuid.uuid4()
            )
        assert len(claimed) == 1
        applied: Counter[str] = Counter()
        worker = InboxWorker(
            sessionmaker,
            HandlerRegistry({UPDATED: renaming_handler(applied)}),
            policy(scratch.settings),
            stripe_access(scratch.settings),
        )
        assert await worker.run_once() == 0  # still held
        await asyncio.sleep(0.3)
        assert await worker.run_once() == 1
        assert applied == {event_id: 1}


class TestTwoWorkers:
    async def test_two_workers_apply_every_event_exactly_once(self, scratch: Scratch) -> None:
        _, ids = await setup_events(scratch, 60)
        applied: Counter[str] = Counter()
        registry = HandlerRegistry({UPDATED: renaming_handler(applied)})
        sessionmaker = create_sessionmaker(scratch.engine)
        workers = [
            InboxWorker(
                sessionmaker,
                registry,
                policy(scratch.settings, worker_batch_size=7),
                stripe_access(scratch.settings),
            )
            for _ in range(2)
        ]

        async def drain(worker: InboxWorker) -> None:
            while await worker.run_once():
                pass

        await asyncio.gather(*(drain(worker) for worker in workers))
        assert applied == Counter(dict.fromkeys(ids, 1))
        assert {row.status for row in await rows(scratch)} == {InboxStatus.PROCESSED}


class TestFencedClaims:
    async def test_a_claim_that_expires_mid_handler_is_not_applied_twice(
        self, scratch: Scratch
    ) -> None:
        """The first worker's handler outlives its lease; a second worker claims the event
        again: it waits on the row, then finds it processed."""
        _, (event_id,) = await setup_events(scratch, 1)
        applied: Counter[str] = Counter()
        renaming = renaming_handler(applied)

        async def slow(context: EventContext) -> None:
            await renaming(context)
            await asyncio.sleep(0.6)

        sessionmaker = create_sessionmaker(scratch.engine)
        short = policy(scratch.settings, worker_lease_seconds=1)
        registry = HandlerRegistry({UPDATED: slow})
        first = InboxWorker(sessionmaker, registry, short, stripe_access(scratch.settings))
        second = InboxWorker(sessionmaker, registry, short, stripe_access(scratch.settings))
        # the batch's claim is 1 s; the per-event lease set when applying starts is 1 s too
        first.policy = InboxPolicy(
            max_attempts=8,
            retry_base=timedelta(seconds=1),
            retry_max=timedelta(seconds=1),
            lease=timedelta(seconds=0.2),
            batch_size=5,
        )
        running = asyncio.create_task(first.run_once())
        await asyncio.sleep(0.4)  # the first worker's lease has ended; its handler still runs
        await second.run_once()
        await running
        assert applied == {event_id: 1}
        (row,) = await rows(scratch)
        assert row.status is InboxStatus.PROCESSED

    async def test_a_stale_failure_never_overwrites_an_outcome(self, scratch: Scratch) -> None:
        await setup_events(scratch, 1)
        sessionmaker = create_sessionmaker(scratch.engine)
        stale = uuid.uuid4()
        async with unit_of_work(sessionmaker) as session:
            (event_row_id,) = await WebhookEventRepository(session).claim_due(
                utcnow(), 10, timedelta(seconds=0), stale
            )
        worker = InboxWorker(
            sessionmaker,
            HandlerRegistry({}),
            policy(scratch.settings),
            stripe_access(scratch.settings),
        )
        assert await worker.run_once() == 1  # the expired claim taken over and applied
        async with unit_of_work(sessionmaker) as session:
            recorded = await InboxService(session).record_failure(
                event_row_id, stale, RuntimeError("late"), policy(scratch.settings)
            )
        assert recorded is None
        (row,) = await rows(scratch)
        assert row.status is InboxStatus.IGNORED and row.last_error is None

    async def test_stopping_gives_back_the_claims_not_started(self, scratch: Scratch) -> None:
        await setup_events(scratch, 3)
        sessionmaker = create_sessionmaker(scratch.engine)
        worker: InboxWorker

        async def stop_after_first(context: EventContext) -> None:
            worker.stopping.set()

        worker = InboxWorker(
            sessionmaker,
            HandlerRegistry({UPDATED: stop_after_first}),
            policy(scratch.settings),
            stripe_access(scratch.settings),
        )
        assert await worker.run_once() == 3
        states = sorted(
            (row.status.value, row.attempts, row.claim_token is None) for row in await rows(scratch)
        )
        assert states == [("pending", 0, True), ("pending", 0, True), ("processed", 1, True)]


class TestReplay:
    async def test_replay_of_a_failed_event_gets_every_attempt_again(
        self, scratch: Scratch
    ) -> None:
        await setup_events(scratch, 1)

        async def broken(context: EventContext) -> None:
            raise ValueError("still broken")

        sessionmaker = create_sessionmaker(scratch.engine)
        worker = InboxWorker(
            sessionmaker,
            HandlerRegistry({UPDATED: broken}),
            policy(scratch.settings, webhook_max_attempts=2, webhook_retry_base_seconds=0.001),
            stripe_access(scratch.settings),
        )
        for _ in range(3):
            await worker.run_once()
            await asyncio.sleep(0.01)
        (row,) = await rows(scratch)
        assert row.status is InboxStatus.FAILED and row.attempts == 2
        async with unit_of_work(sessionmaker) as session:
            await InboxService(session).replay(row.id)
        await worker.run_once()
        (again,) = await rows(scratch)
        assert again.status is InboxStatus.PENDING and again.attempts == 1
