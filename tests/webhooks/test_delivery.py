"""End to end: the emulator delivers signed events over HTTP to a served billwarden, which stores
them before answering and applies them with its embedded worker; the inbox's admin view and
replay."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter

import httpx
import stripe
from sqlalchemy import select

from billwarden.app import create_app
from billwarden.core.modes import Mode
from billwarden.db.engine import create_sessionmaker
from billwarden.identity.models import User
from billwarden.projects.models import ProjectRole
from billwarden.projects.stripe_config import StripeConfigService
from billwarden.webhooks.models import InboxStatus, WebhookEvent
from billwarden.webhooks.service import InboxPolicy
from billwarden.webhooks.service.registry import EventContext, HandlerRegistry
from billwarden.webhooks.tasks import InboxWorker
from billwarden_emulator.testing import serving
from tests.conftest import Scratch
from tests.factories import Factories
from tests.projects.factories import ProjectWithSecret
from tests.webhooks.factories import Events, stripe_access

EVENTS = "/api/v1/admin/webhook-events"


async def settled(scratch: Scratch, count: int, *, within: float) -> list[WebhookEvent]:
    """The inbox once `count` events are in it and none is pending any more."""
    deadline = time.monotonic() + within
    while True:
        async with scratch.session() as session:
            found = list((await session.scalars(select(WebhookEvent))).all())
        if len(found) >= count and all(row.status is not InboxStatus.PENDING for row in found):
            return found
        assert time.monotonic() < deadline, [(row.event_type, row.status) for row in found]
        await asyncio.sleep(0.05)


class TestDeliveredByTheEmulator:
    async def test_signed_deliveries_are_stored_and_applied_by_the_embedded_worker(
        self, scratch: Scratch, emulator_url: str
    ) -> None:
        key = f"sk_test_{uuid.uuid4().hex}"
        settings = scratch.settings.model_copy(
            update={"stripe_api_base": emulator_url, "worker_poll_seconds": 5.0}
        )
        # the served app owns its engine: uvicorn runs it on another thread's event loop
        with serving(create_app(settings, configure_logs=False)) as billwarden_url:

            async def build(made: Factories) -> ProjectWithSecret:
                return await made.tenants.project(await made.people.user())

            project = await scratch.setup(build)
            client = stripe.StripeClient(key, base_addresses={"api": emulator_url})
            endpoint = client.v1.webhook_endpoints.create(
                {
                    "url": f"{billwarden_url}/api/v1/payments/stripe/webhooks/{project.id}/test",
                    "enabled_events": ["*"],
                }
            )
            async with scratch.writing() as session:
                await StripeConfigService(session, scratch.secret_box).set_stripe_config(
                    project.project, Mode.TEST, secret_key=key, webhook_secrets=[endpoint.secret]
                )

            customer = client.v1.customers.create({"email": "ada@example.test"})
            client.v1.customers.update(customer.id, {"name": "Ada"})
            # the poll is 5 s: done sooner only because storing an event wakes the worker
            started = time.monotonic()
            inbox = await settled(scratch, 2, within=4)
            assert time.monotonic() - started < 4
        assert sorted(row.event_type for row in inbox) == ["customer.created", "customer.updated"]
        assert {row.object_id for row in inbox} == {customer.id}
        # no handler for customer.created yet: kept and marked, never lost
        assert {row.status for row in inbox} <= {InboxStatus.IGNORED, InboxStatus.PROCESSED}
        async with httpx.AsyncClient(base_url=emulator_url) as http:
            log = await http.get(
                "/_emulator/deliveries", headers={"Authorization": f"Bearer {key}"}
            )
        deliveries = log.json()["data"]
        assert {attempt["status_code"] for attempt in deliveries} == {200}


class TestAdminInbox:
    async def test_admin_lists_filters_and_replays_a_failed_event(self, scratch: Scratch) -> None:
        async def build(made: Factories) -> tuple[ProjectWithSecret, User, User]:
            owner, member = await made.people.user(), await made.people.user()
            project = await made.tenants.project(owner)
            await made.tenants.add_member(project, member, ProjectRole.MEMBER)
            events = Events(made.people.session)
            await events.stored(project.id, "evt_updated", "customer.subscription.updated")
            await events.stored(project.id, "evt_created", "customer.created")
            return project, owner, member

        project, owner, member = await scratch.setup(build)
        failures: Counter[str] = Counter()

        async def broken_once(context: EventContext) -> None:
            failures[context.event["id"]] += 1
            if failures[context.event["id"]] == 1:
                raise RuntimeError("first time unlucky")

        worker = InboxWorker(
            create_sessionmaker(scratch.engine),
            HandlerRegistry({"customer.subscription.updated": broken_once}),
            InboxPolicy.from_settings(
                scratch.settings.model_copy(update={"webhook_max_attempts": 1})
            ),
            stripe_access(scratch.settings),
        )
        await worker.run_once()
        async with scratch.session() as session:
            people = Factories.on(session, scratch.secret_box, scratch.settings).people
            headers = people.bearer(owner)
            member_headers = people.bearer(member)

        listed = await scratch.client.get(
            EVENTS, params={"projectId": str(project.id), "status": "failed"}, headers=headers
        )
        assert listed.status_code == 200, listed.text
        (failed,) = listed.json()["items"]
        assert failed["eventId"] == "evt_updated" and failed["attempts"] == 1
        assert failed["lastError"] == "RuntimeError: first time unlucky"
        assert failed["payload"]["type"] == "customer.subscription.updated"
        by_type = await scratch.client.get(
            EVENTS,
            params={"projectId": str(project.id), "type": "customer.created"},
            headers=headers,
        )
        assert [item["status"] for item in by_type.json()["items"]] == ["ignored"]

        replay = f"{EVENTS}/{failed['id']}/replay"
        refused = await scratch.client.post(replay, headers=member_headers)
        assert refused.status_code == 403
        assert refused.json()["code"] == "PROJECT_ADMIN_REQUIRED"
        replayed = await scratch.client.post(replay, headers=headers)
        assert replayed.status_code == 200
        assert replayed.json()["status"] == "pending"
        await worker.run_once()
        done = await scratch.client.get(
            EVENTS, params={"projectId": str(project.id), "status": "processed"}, headers=headers
        )
        assert [item["eventId"] for item in done.json()["items"]] == ["evt_updated"]
        assert failures["evt_updated"] == 2

    async def test_unknown_event_is_404(self, scratch: Scratch) -> None:
        async def build(made: Factories) -> User:
            return await made.people.user(superuser=True)

        root = await scratch.setup(build)
        async with scratch.session() as session:
            headers = Factories.on(session, scratch.secret_box, scratch.settings).people.bearer(
                root
            )
        missing = await scratch.client.post(f"{EVENTS}/{uuid.uuid4()}/replay", headers=headers)
        assert missing.status_code == 404
        assert missing.json()["code"] == "WEBHOOK_EVENT_NOT_FOUND"
