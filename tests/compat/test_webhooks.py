"""The seeds' unscoped Stripe webhook routes: the single-tenant project's events into the same
inbox, with seed 004's answers; without a single-tenant project, a 404 naming the scoped URL."""

from __future__ import annotations

import uuid

import httpx
import orjson
import pytest
from pydantic import SecretStr
from sqlalchemy import select

from billwarden.app import create_app
from billwarden.projects.models import Project
from billwarden.webhooks.models import WebhookEvent
from billwarden_emulator.testing import serving
from tests.conftest import Scratch
from tests.webhooks.factories import signed, stripe_event

SECRET = "whsec_compattests0000000000000001"
PATHS = ("/api/stripe/webhook", "/api/billing/stripe/webhook", "/api/v1/billing/webhook")


class TestUnscopedWebhooks:
    @pytest.mark.parametrize("path", PATHS)
    async def test_the_single_tenant_projects_events_with_seed_004s_answers(
        self, scratch: Scratch, path: str
    ) -> None:
        settings = scratch.settings.model_copy(
            update={
                "single_tenant_secret_key": SecretStr(f"sk_test_{uuid.uuid4().hex}"),
                "single_tenant_webhook_secrets": [SecretStr(SECRET)],
                "embedded_worker": False,
            }
        )
        event = stripe_event("customer.updated", object_id="cus_1")
        body = orjson.dumps(event)
        with serving(create_app(settings, configure_logs=False)) as url:  # start-up: the project
            async with httpx.AsyncClient(base_url=url) as http:
                stored = await http.post(path, content=body, headers=signed(body, SECRET))
                assert stored.status_code == 200, stored.text
                assert stored.json() == {"received": True}
                again = await http.post(path, content=body, headers=signed(body, SECRET))
                assert again.status_code == 200
                unsigned = await http.post(path, content=body)
                assert unsigned.status_code == 400
                assert unsigned.json()["code"] == "VALIDATION_ERROR"
                assert unsigned.json()["message"] == "Missing Stripe-Signature header."
                forged = await http.post(
                    path, content=body, headers=signed(body, "whsec_someoneelse00000000000000")
                )
                assert forged.status_code == 400
                assert forged.json()["code"] == "STRIPE_SIGNATURE_INVALID"
        async with scratch.session() as session:
            project = await session.scalar(select(Project).where(Project.slug == "default"))
            rows = (await session.scalars(select(WebhookEvent))).all()
        assert project is not None
        assert [(row.event_id, row.project_id) for row in rows] == [(event["id"], project.id)]

    async def test_without_a_single_tenant_project_they_name_the_scoped_url(
        self, client: httpx.AsyncClient
    ) -> None:
        body = orjson.dumps(stripe_event())
        for path in PATHS:
            answer = await client.post(path, content=body, headers=signed(body, SECRET))
            assert answer.status_code == 404, path
            assert answer.json()["code"] == "USE_PROJECT_WEBHOOK_URL"
            assert "/api/v1/payments/stripe/webhooks/" in answer.json()["message"]
