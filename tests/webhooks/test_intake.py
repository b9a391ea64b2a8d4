"""Stripe's deliveries on the hot path of a served billwarden: once an endpoint's signing secrets
are in the read cache, a delivery is verified and stored without reading the configuration, and
every refusal is still the route's, in the error envelope."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from billwarden.app import create_app
from billwarden.core.modes import Mode
from billwarden.projects.models import Project
from billwarden.projects.stripe_config import StripeConfigService
from billwarden.webhooks.models import InboxStatus, WebhookEvent
from billwarden.webhooks.repository import WebhookEventRepository
from billwarden.webhooks.service import InboxService
from billwarden_emulator.testing import serving
from tests.conftest import Scratch
from tests.factories import Factories
from tests.webhooks.factories import signed, stripe_event

SECRET = "whsec_intaketests00000000000000001"
NEW_SECRET = "whsec_intaketests00000000000000002"


@dataclass
class Calls:
    count: int = 0


def count_calls(monkeypatch: pytest.MonkeyPatch, owner: type, name: str) -> Calls:
    calls = Calls()
    original = getattr(owner, name)

    async def counted(self: object, *args: Any) -> Any:
        calls.count += 1
        return await original(self, *args)

    monkeypatch.setattr(owner, name, counted)
    return calls


async def configured(scratch: Scratch) -> Project:
    async def build(made: Factories) -> Project:
        project = (await made.tenants.project(await made.people.user())).project
        await StripeConfigService(made.people.session, made.people.secret_box).set_stripe_config(
            project, Mode.TEST, secret_key=f"sk_test_{uuid.uuid4().hex}", webhook_secrets=[SECRET]
        )
        return project

    return await scratch.setup(build)


@contextmanager
def served(scratch: Scratch) -> Iterator[httpx.Client]:
    # a sync client: the served app runs its own event loop on another thread
    with (
        serving(create_app(scratch.settings, configure_logs=False)) as url,
        httpx.Client(base_url=url, timeout=10) as http,
    ):
        yield http


def deliver(
    http: httpx.Client, project: Project, body: bytes, secret: str = SECRET
) -> httpx.Response:
    return http.post(
        f"/api/v1/payments/stripe/webhooks/{project.id}/test",
        content=body,
        headers=signed(body, secret),
    )


async def inbox(scratch: Scratch, project: Project) -> list[WebhookEvent]:
    async with scratch.session() as session:
        rows = await session.scalars(
            select(WebhookEvent)
            .where(WebhookEvent.project_id == project.id)
            .order_by(WebhookEvent.received_at)
        )
        return list(rows.all())


class TestHotPath:
    async def test_deliveries_after_the_first_are_stored_without_reading_the_configuration(
        self, scratch: Scratch, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        project = await configured(scratch)
        # how often the signing secrets are read from the database, and deliveries routed
        reads = count_calls(monkeypatch, StripeConfigService, "get_credentials")
        routed = count_calls(monkeypatch, InboxService, "receive")
        scratch.settings = scratch.settings.model_copy(update={"embedded_worker": False})
        bodies = [
            orjson.dumps(stripe_event("customer.updated", object_id=f"cus_{n}")) + b"\n"
            for n in range(5)
        ]
        with served(scratch) as http:
            for body in bodies:
                answer = deliver(http, project, body)
                assert answer.status_code == 200, answer.text
                assert answer.json() == {"received": True}
            again = deliver(http, project, bodies[-1])  # a duplicate: acknowledged, not stored
            assert again.status_code == 200 and again.json() == {"received": True}
        # the first delivery was routed and read the signing secrets; none after it
        assert (reads.count, routed.count) == (1, 1)
        rows = await inbox(scratch, project)
        assert [row.payload.encode() for row in rows] == bodies  # byte for byte, each once
        assert [row.object_id for row in rows] == [f"cus_{n}" for n in range(5)]
        assert all(row.status is InboxStatus.PENDING and row.mode is Mode.TEST for row in rows)

    async def test_refusals_are_the_routes_in_the_error_envelope(self, scratch: Scratch) -> None:
        project = await configured(scratch)
        path = f"/api/v1/payments/stripe/webhooks/{project.id}/test"
        with served(scratch) as http:
            warm = orjson.dumps(stripe_event())
            assert deliver(http, project, warm).status_code == 200  # the secrets are cached
            body = orjson.dumps(stripe_event())
            wrong = deliver(http, project, body, secret="whsec_someoneelse0000000000000000")
            assert wrong.status_code == 400
            assert wrong.json()["code"] == "STRIPE_SIGNATURE_INVALID"
            unsigned = http.post(path, content=body)
            assert unsigned.status_code == 400
            assert unsigned.json()["code"] == "VALIDATION_ERROR"
            assert unsigned.json()["message"] == "Missing Stripe-Signature header."
            not_an_event = deliver(http, project, b'{"object": "customer"}')
            assert not_an_event.status_code == 400
            assert not_an_event.json()["code"] == "NOT_A_STRIPE_EVENT"
            live = http.post(
                f"/api/v1/payments/stripe/webhooks/{project.id}/live",
                content=body,
                headers=signed(body, SECRET),
            )
            assert live.status_code == 404
            assert live.json()["code"] == "WEBHOOK_ENDPOINT_NOT_FOUND"
        assert [row.event_id for row in await inbox(scratch, project)] == [orjson.loads(warm)["id"]]

    async def test_new_signing_secrets_apply_at_once(self, scratch: Scratch) -> None:
        project = await configured(scratch)
        with served(scratch) as http:
            assert deliver(http, project, orjson.dumps(stripe_event())).status_code == 200

            async def rotate(made: Factories) -> None:
                config = StripeConfigService(made.people.session, made.people.secret_box)
                await config.set_stripe_config(
                    project, Mode.TEST, secret_key=None, webhook_secrets=[NEW_SECRET]
                )

            await scratch.setup(rotate)
            old = orjson.dumps(stripe_event())
            deadline = time.monotonic() + 5  # PostgreSQL tells the server by NOTIFY
            while (refused := deliver(http, project, old)).status_code == 200:
                assert time.monotonic() < deadline, "the replaced secret is still accepted"
                await asyncio.sleep(0.02)
                old = orjson.dumps(stripe_event())
            assert refused.status_code == 400
            assert refused.json()["code"] == "STRIPE_SIGNATURE_INVALID"
            fresh = orjson.dumps(stripe_event())
            assert deliver(http, project, fresh, secret=NEW_SECRET).status_code == 200
        stored = [row.event_id for row in await inbox(scratch, project)]
        assert orjson.loads(fresh)["id"] in stored
        assert orjson.loads(refused.request.content)["id"] not in stored

    async def test_a_storage_failure_answers_503_and_stores_nothing(
        self, scratch: Scratch, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        project = await configured(scratch)
        scratch.settings = scratch.settings.model_copy(update={"embedded_worker": False})

        async def database_gone(self: object, values: object) -> bool:
            raise OperationalError("INSERT INTO webhook_events", {}, Exception("server closed"))

        original = WebhookEventRepository.insert_if_new
        with served(scratch) as http:
            assert deliver(http, project, orjson.dumps(stripe_event())).status_code == 200
            body = orjson.dumps(stripe_event())
            monkeypatch.setattr(WebhookEventRepository, "insert_if_new", database_gone)
            failed = deliver(http, project, body)
            assert failed.status_code == 503
            assert failed.json()["code"] == "DATABASE_UNAVAILABLE"
            monkeypatch.setattr(WebhookEventRepository, "insert_if_new", original)
            assert orjson.loads(body)["id"] not in [
                row.event_id for row in await inbox(scratch, project)
            ]
            retried = deliver(http, project, body)  # Stripe's retry
            assert retried.status_code == 200
        assert [row.event_id for row in await inbox(scratch, project)].count(
            orjson.loads(body)["id"]
        ) == 1
