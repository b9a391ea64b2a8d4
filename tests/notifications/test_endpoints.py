"""Endpoints over HTTP: created with their secret shown once, listed without it, deleted; the
outbox writes a delivery per matching endpoint; the delivery log and manual retry."""

from __future__ import annotations

import uuid

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from standardwebhooks.webhooks import Webhook

from billwarden.core.modes import Mode
from billwarden.crypto import SecretBox
from billwarden.notifications.models import Delivery, DeliveryStatus, OutboxMessage, WebhookEndpoint
from billwarden.notifications.service import Outbox
from tests.identity.factories import People
from tests.notifications.factories import Endpoints
from tests.projects.factories import Tenants


def url(project_id: object, rest: str = "") -> str:
    return f"/api/v1/projects/{project_id}/webhook-endpoints{rest}"


class TestEndpoints:
    async def test_secret_shown_once_stored_encrypted_never_listed(
        self, client: httpx.AsyncClient, people: People, tenants: Tenants, session: AsyncSession
    ) -> None:
        owner = await people.user()
        project = await tenants.project(owner)
        made = await client.post(
            url(project.id),
            json={"url": "https://app.example.test/hooks", "events": ["entitlement.updated"]},
            headers=people.bearer(owner),
        )
        assert made.status_code == 201, made.text
        body = made.json()
        secret = body["secret"]
        assert secret.startswith("whsec_")
        Webhook(secret)  # a secret the Standard Webhooks library takes
        assert body["mode"] == "test"
        assert body["events"] == ["entitlement.updated"]
        row = await session.get(WebhookEndpoint, uuid.UUID(body["id"]))
        assert row is not None and secret not in row.secret_ciphertext
        listed = await client.get(url(project.id), headers=people.bearer(owner))
        assert listed.status_code == 200
        assert listed.json()["total"] == 1
        assert "secret" not in listed.json()["items"][0]
        assert secret not in listed.text
        gone = await client.delete(url(project.id, f"/{body['id']}"), headers=people.bearer(owner))
        assert gone.status_code == 204
        again = await client.delete(url(project.id, f"/{body['id']}"), headers=people.bearer(owner))
        assert again.status_code == 404
        assert again.json()["code"] == "NOTIFICATION_ENDPOINT_NOT_FOUND"

    async def test_bad_input_is_a_400(
        self, client: httpx.AsyncClient, people: People, tenants: Tenants
    ) -> None:
        owner = await people.user()
        project = await tenants.project(owner)
        for body in (
            {"url": "ftp://app.example.test/hooks", "events": ["*"]},
            {"url": "not a url", "events": ["*"]},
            {"url": "https://app.example.test/hooks", "events": []},
            {"url": "https://app.example.test/hooks", "events": ["invoice.paid"]},
            {"url": "https://app.example.test/hooks", "events": ["*"], "mode": "prod"},
        ):
            answer = await client.post(url(project.id), json=body, headers=people.bearer(owner))
            assert answer.status_code == 400, (body, answer.text)

    async def test_an_internal_address_is_refused(
        self, client: httpx.AsyncClient, people: People, tenants: Tenants
    ) -> None:
        owner = await people.user()
        project = await tenants.project(owner)
        for target in (
            "http://127.0.0.1:8000/hooks",
            "http://localhost/hooks",
            "http://169.254.169.254/latest/meta-data/",
            "http://10.0.0.7/hooks",
            "http://[::1]/hooks",
            "https://billing.internal/hooks",
        ):
            answer = await client.post(
                url(project.id),
                json={"url": target, "events": ["*"]},
                headers=people.bearer(owner),
            )
            assert (answer.status_code, answer.json()["code"]) == (400, "UNSAFE_ENDPOINT_URL"), (
                target
            )
        public = await client.post(
            url(project.id),
            json={"url": "https://93.184.216.34/hooks", "events": ["*"]},
            headers=people.bearer(owner),
        )
        assert public.status_code == 201, public.text

    async def test_other_projects_endpoint_is_not_found(
        self,
        client: httpx.AsyncClient,
        people: People,
        tenants: Tenants,
        session: AsyncSession,
        secret_box: SecretBox,
    ) -> None:
        owner = await people.user()
        project = await tenants.project(owner)
        other = await tenants.project(owner)
        endpoint, _ = await Endpoints(session, secret_box).endpoint(other.id)
        answer = await client.get(
            url(project.id, f"/{endpoint.id}/deliveries"), headers=people.bearer(owner)
        )
        assert answer.status_code == 404


class TestOutbox:
    async def test_one_delivery_per_matching_endpoint_of_the_mode(
        self, people: People, tenants: Tenants, session: AsyncSession, secret_box: SecretBox
    ) -> None:
        project = await tenants.project(await people.user())
        endpoints = Endpoints(session, secret_box)
        everything, _ = await endpoints.endpoint(project.id, events=["*"])
        entitlements, _ = await endpoints.endpoint(project.id, events=["entitlement.updated"])
        await endpoints.endpoint(project.id, events=["subscription.updated"])
        await endpoints.endpoint(project.id, events=["*"], mode=Mode.LIVE)
        message = await Outbox(session).emit(
            project.id, Mode.TEST, "entitlement.updated", {"plan": "FREE"}
        )
        assert message is not None
        assert message.body["type"] == "entitlement.updated"
        assert message.body["data"] == {"plan": "FREE"}
        targets = set(
            (
                await session.scalars(
                    select(Delivery.endpoint_id).where(Delivery.message_id == message.id)
                )
            ).all()
        )
        assert targets == {everything.id, entitlements.id}

    async def test_no_endpoint_no_message(
        self, people: People, tenants: Tenants, session: AsyncSession
    ) -> None:
        project = await tenants.project(await people.user())
        assert await Outbox(session).emit(project.id, Mode.TEST, "payment.failed", {}) is None
        count = await session.scalar(
            select(func.count(OutboxMessage.id)).where(OutboxMessage.project_id == project.id)
        )
        assert count == 0


class TestDeliveryLog:
    async def test_log_and_manual_retry(
        self,
        client: httpx.AsyncClient,
        people: People,
        tenants: Tenants,
        session: AsyncSession,
        secret_box: SecretBox,
    ) -> None:
        owner = await people.user()
        project = await tenants.project(owner)
        endpoint, _ = await Endpoints(session, secret_box).endpoint(project.id)
        message = await Outbox(session).emit(project.id, Mode.TEST, "payment.succeeded", {"a": 1})
        assert message is not None
        delivery = await session.scalar(select(Delivery).where(Delivery.message_id == message.id))
        assert delivery is not None
        delivery.status = DeliveryStatus.FAILED
        delivery.attempts = 8
        await session.flush()
        log = await client.get(
            url(project.id, f"/{endpoint.id}/deliveries"), headers=people.bearer(owner)
        )
        assert log.status_code == 200, log.text
        [item] = log.json()["items"]
        assert item["status"] == "failed"
        assert item["webhookId"] == f"msg_{message.id.hex}"
        assert item["eventType"] == "payment.succeeded"
        retried = await client.post(
            url(project.id, f"/{endpoint.id}/deliveries/{delivery.id}/retry"),
            headers=people.bearer(owner),
        )
        assert retried.status_code == 200, retried.text
        assert retried.json()["status"] == "pending"
        assert retried.json()["attempts"] == 0
        missing = await client.post(
            url(project.id, f"/{endpoint.id}/deliveries/{endpoint.id}/retry"),
            headers=people.bearer(owner),
        )
        assert missing.status_code == 404
        assert missing.json()["code"] == "NOTIFICATION_DELIVERY_NOT_FOUND"
