"""Receiving Stripe's events: verified over the raw body, stored once, acknowledged only after the
commit, every refusal a clear 4xx."""

from __future__ import annotations

import asyncio
import time
import uuid

import httpx
import orjson
import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncSession

from billwarden.core.modes import Mode
from billwarden.projects.stripe_config import StripeConfigService
from billwarden.webhooks.models import InboxStatus, WebhookEvent
from billwarden.webhooks.repository import WebhookEventRepository
from tests.conftest import Scratch
from tests.factories import Factories
from tests.identity.factories import People
from tests.projects.factories import ProjectWithSecret, Tenants
from tests.webhooks.factories import signed, stripe_event

SECRET = "whsec_receivetests0000000000000001"
ROTATED = "whsec_receivetests0000000000000002"


def url(project_id: object, mode: str = "test") -> str:
    return f"/api/v1/payments/stripe/webhooks/{project_id}/{mode}"


@pytest.fixture
async def project(
    people: People, tenants: Tenants, session: AsyncSession, secret_box: object
) -> ProjectWithSecret:
    made = await tenants.project(await people.user())
    await StripeConfigService(session, tenants.secret_box).set_stripe_config(
        made.project,
        Mode.TEST,
        secret_key=f"sk_test_{uuid.uuid4().hex}",
        webhook_secrets=[SECRET, ROTATED],
    )
    return made


async def stored(session: AsyncSession, project_id: uuid.UUID) -> list[WebhookEvent]:
    return list(
        (
            await session.scalars(select(WebhookEvent).where(WebhookEvent.project_id == project_id))
        ).all()
    )


class TestAccepted:
    async def test_verified_event_is_stored_raw_then_acknowledged(
        self, client: httpx.AsyncClient, session: AsyncSession, project: ProjectWithSecret
    ) -> None:
        event = stripe_event(
            "customer.subscription.updated", object_id="sub_42", created=1_800_000_000
        )
        body = orjson.dumps(event) + b"\n"  # bytes exactly as sent, whitespace included
        response = await client.post(url(project.id), content=body, headers=signed(body, SECRET))
        assert response.status_code == 200, response.text
        assert response.json() == {"received": True}
        (row,) = await stored(session, project.id)
        assert row.event_id == event["id"]
        assert row.event_type == "customer.subscription.updated"
        assert row.object_id == "sub_42"
        assert int(row.event_created.timestamp()) == 1_800_000_000
        assert row.payload.encode() == body
        assert row.status is InboxStatus.PENDING and row.attempts == 0

    async def test_any_active_signing_secret_verifies(
        self, client: httpx.AsyncClient, project: ProjectWithSecret
    ) -> None:
        body = orjson.dumps(stripe_event())
        response = await client.post(url(project.id), content=body, headers=signed(body, ROTATED))
        assert response.status_code == 200

    async def test_duplicate_delivery_answers_200_and_changes_nothing(
        self, client: httpx.AsyncClient, session: AsyncSession, project: ProjectWithSecret
    ) -> None:
        body = orjson.dumps(stripe_event())
        for _ in range(3):
            again = await client.post(url(project.id), content=body, headers=signed(body, SECRET))
            assert again.status_code == 200
        assert len(await stored(session, project.id)) == 1


class TestRefused:
    async def test_missing_signature_is_400_validation_error(
        self, client: httpx.AsyncClient, session: AsyncSession, project: ProjectWithSecret
    ) -> None:
        response = await client.post(url(project.id), content=orjson.dumps(stripe_event()))
        assert response.status_code == 400
        assert response.json()["code"] == "VALIDATION_ERROR"
        assert response.json()["message"] == "Missing Stripe-Signature header."
        assert await stored(session, project.id) == []

    async def test_wrong_secret_is_400_signature_invalid(
        self, client: httpx.AsyncClient, session: AsyncSession, project: ProjectWithSecret
    ) -> None:
        body = orjson.dumps(stripe_event())
        headers = signed(body, "whsec_notthisprojects000000000000")
        response = await client.post(url(project.id), content=body, headers=headers)
        assert response.status_code == 400
        assert response.json()["code"] == "STRIPE_SIGNATURE_INVALID"
        assert await stored(session, project.id) == []

    async def test_a_changed_body_does_not_verify(
        self, client: httpx.AsyncClient, project: ProjectWithSecret
    ) -> None:
        body = orjson.dumps(stripe_event())
        headers = signed(body, SECRET)
        response = await client.post(url(project.id), content=body + b" ", headers=headers)
        assert response.status_code == 400
        assert response.json()["code"] == "STRIPE_SIGNATURE_INVALID"

    async def test_a_signature_header_with_characters_outside_ascii_is_400(
        self, client: httpx.AsyncClient, session: AsyncSession, project: ProjectWithSecret
    ) -> None:
        body = orjson.dumps(stripe_event())
        header = signed(body, SECRET)["Stripe-Signature"].encode() + b"\xe9"
        response = await client.post(
            url(project.id), content=body, headers={"Stripe-Signature": header}
        )
        assert response.status_code == 400
        assert response.json()["code"] == "STRIPE_SIGNATURE_INVALID"
        assert await stored(session, project.id) == []

    async def test_a_signature_older_than_300_seconds_is_refused(
        self, client: httpx.AsyncClient, project: ProjectWithSecret
    ) -> None:
        body = orjson.dumps(stripe_event())
        headers = signed(body, SECRET, timestamp=int(time.time()) - 301)
        response = await client.post(url(project.id), content=body, headers=headers)
        assert response.status_code == 400
        assert response.json()["code"] == "STRIPE_SIGNATURE_INVALID"

    @pytest.mark.parametrize(
        "body",
        [
            b"not json",
            b'{"object": "customer", "id": "cus_1"}',
            b'{"object": "event", "id": "evt_1", "type": "x", "created": "soon", "data": {}}',
            b'{"object": "event", "id": "evt_1", "type": "x", "created": 1, "data": []}',
            # a second past the last a datetime holds, and negative
            b'{"object": "event", "id": "evt_1", "type": "x", "created": 253402300800,'
            b' "data": {"object": {}}}',
            b'{"object": "event", "id": "evt_1", "type": "x", "created": -1,'
            b' "data": {"object": {}}}',
            # NUL characters PostgreSQL cannot store
            b'{"object": "event", "id": "evt_\\u0000", "type": "x", "created": 1,'
            b' "data": {"object": {}}}',
            b'{"object": "event", "id": "evt_1", "type": "x", "created": 1,'
            b' "data": {"object": {"id": "sub_\\u0000"}}}',
        ],
    )
    async def test_a_signed_body_that_is_not_an_event_is_400(
        self, client: httpx.AsyncClient, project: ProjectWithSecret, body: bytes
    ) -> None:
        response = await client.post(url(project.id), content=body, headers=signed(body, SECRET))
        assert response.status_code == 400
        assert response.json()["code"] == "NOT_A_STRIPE_EVENT"

    @pytest.mark.parametrize("mode", ["live", "prod"])
    async def test_mode_without_configuration_is_404(
        self, client: httpx.AsyncClient, project: ProjectWithSecret, mode: str
    ) -> None:
        body = orjson.dumps(stripe_event())
        response = await client.post(
            url(project.id, mode), content=body, headers=signed(body, SECRET)
        )
        assert response.status_code == 404
        assert response.json()["code"] == "WEBHOOK_ENDPOINT_NOT_FOUND"

    @pytest.mark.parametrize("project_id", [uuid.uuid4(), "not-a-project"])
    async def test_unknown_project_is_404(
        self, client: httpx.AsyncClient, project_id: object
    ) -> None:
        body = orjson.dumps(stripe_event())
        response = await client.post(url(project_id), content=body, headers=signed(body, SECRET))
        assert response.status_code == 404
        assert response.json()["code"] == "WEBHOOK_ENDPOINT_NOT_FOUND"


class TestUnderConcurrencyAndFailure:
    async def test_one_event_delivered_20_times_at_once_is_stored_once(
        self, scratch: Scratch
    ) -> None:
        async def build(made: Factories) -> ProjectWithSecret:
            project = await made.tenants.project(await made.people.user())
            configs = StripeConfigService(made.people.session, made.people.secret_box)
            await configs.set_stripe_config(
                project.project,
                Mode.TEST,
                secret_key=f"sk_test_{uuid.uuid4().hex}",
                webhook_secrets=[SECRET],
            )
            return project

        project = await scratch.setup(build)
        body = orjson.dumps(stripe_event())
        answers = await asyncio.gather(
            *(
                scratch.client.post(url(project.id), content=body, headers=signed(body, SECRET))
                for _ in range(20)
            )
        )
        assert [answer.status_code for answer in answers] == [200] * 20
        async with scratch.session() as session:
            count = await session.scalar(select(func.count()).select_from(WebhookEvent))
        assert count == 1

    async def test_storage_failure_answers_503_so_stripe_retries(
        self,
        client: httpx.AsyncClient,
        session: AsyncSession,
        project: ProjectWithSecret,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        async def database_gone(self: object, values: object) -> bool:
            raise OperationalError("INSERT INTO webhook_events", {}, Exception("server closed"))

        original = WebhookEventRepository.insert_if_new
        monkeypatch.setattr(WebhookEventRepository, "insert_if_new", database_gone)
        body = orjson.dumps(stripe_event())
        failed = await client.post(url(project.id), content=body, headers=signed(body, SECRET))
        assert failed.status_code == 503
        assert failed.json()["code"] == "DATABASE_UNAVAILABLE"
        assert await stored(session, project.id) == []
        monkeypatch.setattr(WebhookEventRepository, "insert_if_new", original)
        retried = await client.post(url(project.id), content=body, headers=signed(body, SECRET))
        assert retried.status_code == 200
        assert len(await stored(session, project.id)) == 1
