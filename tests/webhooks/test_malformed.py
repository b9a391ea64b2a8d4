"""Malformed deliveries: bodies that are not events, signatures that do not hold, and signed
events whose fields have the wrong types. Every refusal is a 400 (413 for a body past the size
limit) in the error envelope and stores nothing; a stored event a handler cannot read ends as a
failed inbox row with the error recorded, and the worker goes on applying the next events."""

from __future__ import annotations

import hashlib
import hmac
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import orjson
import pytest
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from billwarden.app import create_app
from billwarden.core.modes import Mode
from billwarden.errors import ErrorEnvelope
from billwarden.projects.models import Project
from billwarden.projects.stripe_config import StripeConfigService
from billwarden.webhooks.models import WebhookEvent
from tests.conftest import Scratch
from tests.identity.factories import People
from tests.projects.factories import ProjectWithSecret, Tenants
from tests.webhooks.factories import stripe_event

SECRET = "whsec_malformedtests00000000000001"
UNSCOPED = ("/api/stripe/webhook", "/api/billing/stripe/webhook", "/api/v1/billing/webhook")
REFUSED = {"VALIDATION_ERROR", "STRIPE_SIGNATURE_INVALID", "NOT_A_STRIPE_EVENT"}


def signature(body: bytes, secret: str = SECRET, *, timestamp: int | None = None) -> str:
    """`Stripe-Signature` as Stripe computes it, over the raw bytes (UTF-8 or not)."""
    at = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{at}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={at},v1={digest}"


def delivery(body: bytes, content_type: str = "application/json") -> dict[str, str]:
    return {"Stripe-Signature": signature(body), "Content-Type": content_type}


def event_body() -> bytes:
    return orjson.dumps(stripe_event("customer.subscription.updated"))


def not_events() -> Iterator[tuple[str, bytes, str]]:
    """(what, body, content type) of signed bodies that are no Stripe event."""
    yield "not JSON", b"not json", "application/json"
    yield "empty", b"", "application/json"
    yield "not UTF-8", b"\xff\xfe{\x00}", "application/json"
    yield "truncated JSON", event_body()[:-7], "application/json"
    yield "deeply nested JSON", b"[" * 5000 + b"]" * 5000, "application/json"
    for json_value in (b"[]", b'"event"', b"42", b"null", b"true", b'[{"object": "event"}]'):
        yield f"JSON {json_value[:12]!r}, not an object", json_value, "application/json"
    yield (
        "a form",
        b"object=event&id=evt_1&type=customer.updated",
        "application/x-www-form-urlencoded",
    )
    boundary = "billwardenboundary"
    multipart = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="event"\r\n\r\n'
        f"{event_body().decode()}\r\n--{boundary}--\r\n"
    ).encode()
    yield "multipart", multipart, f"multipart/form-data; boundary={boundary}"
    yield "XML", b"<event><id>evt_1</id></event>", "application/xml"


def bad_signatures() -> Iterator[tuple[str, str | bytes | None]]:
    """(what, Stripe-Signature header) for a valid event body (None: no header at all)."""
    body = event_body()
    now = int(time.time())
    good = signature(body, timestamp=now)
    digest = good.partition("v1=")[2]
    yield "missing", None
    yield "empty", ""
    yield "garbage", "garbage"
    yield "only separators", ",,=,"
    yield "a timestamp that is no number", f"t=soon,v1={digest}"
    yield "no timestamp", f"v1={digest}"
    yield "no v1 signature", f"t={now}"
    yield "only the old v0 scheme", f"t={now},v0={digest}"
    yield "a garbled digest", f"t={now},v1={digest[:-4]}zzzz"
    yield "a digest of another body", signature(body + b" ", timestamp=now)
    yield "another secret's", signature(body, "whsec_someoneelses000000000000000", timestamp=now)
    yield "expired (301 s old)", signature(body, timestamp=now - 301)
    yield "signed for another time", f"t={now - 1},v1={digest}"
    yield "very long", f"t={now}," + ",".join(f"v1={'0' * 64}" for _ in range(300))
    yield "not ASCII", f"t={now},v1={digest}".encode() + b"\xe9\xff"


async def assert_refused(answer: httpx.Response, what: str, statuses: set[int]) -> str:
    assert answer.status_code in statuses, (what, answer.status_code, answer.text)
    envelope = ErrorEnvelope.model_validate_json(answer.content)
    return envelope.code


@pytest.fixture
async def project(people: People, tenants: Tenants, session: AsyncSession) -> ProjectWithSecret:
    made = await tenants.project(await people.user())
    await StripeConfigService(session, tenants.secret_box).set_stripe_config(
        made.project, Mode.TEST, secret_key=f"sk_test_{uuid.uuid4().hex}", webhook_secrets=[SECRET]
    )
    return made


async def inbox(session: AsyncSession) -> list[WebhookEvent]:
    return list((await session.scalars(select(WebhookEvent))).all())


def scoped(project_id: uuid.UUID) -> str:
    return f"/api/v1/payments/stripe/webhooks/{project_id}/test"


class TestMalformedDeliveries:
    async def test_signed_bodies_that_are_no_event_are_400_and_store_nothing(
        self, client: httpx.AsyncClient, session: AsyncSession, project: ProjectWithSecret
    ) -> None:
        for what, body, content_type in not_events():
            answer = await client.post(
                scoped(project.id), content=body, headers=delivery(body, content_type)
            )
            code = await assert_refused(answer, what, {400})
            assert code in {"NOT_A_STRIPE_EVENT", "STRIPE_SIGNATURE_INVALID"}, (what, code)
        assert await inbox(session) == []

    async def test_bad_signatures_are_400_and_store_nothing(
        self, client: httpx.AsyncClient, session: AsyncSession, project: ProjectWithSecret
    ) -> None:
        body = event_body()
        for what, header in bad_signatures():
            headers: dict[str, str | bytes] = {"Content-Type": "application/json"}
            if header is not None:
                headers["Stripe-Signature"] = header
            answer = await client.post(scoped(project.id), content=body, headers=headers)
            code = await assert_refused(answer, what, {400})
            expected = "VALIDATION_ERROR" if not header else "STRIPE_SIGNATURE_INVALID"
            assert code == expected, (what, answer.text)
        assert await inbox(session) == []

    async def test_a_body_past_the_size_limit_is_413_and_stores_nothing(
        self,
        client: httpx.AsyncClient,
        session: AsyncSession,
        project: ProjectWithSecret,
        app: Any,
    ) -> None:
        limit = app.state.settings.max_body_bytes
        event = stripe_event("customer.subscription.updated")
        event["data"]["object"]["metadata"] = {"padding": "x" * limit}
        body = orjson.dumps(event)

        async def streamed() -> AsyncIterator[bytes]:  # no Content-Length: read until past it
            for start in range(0, len(body), 65536):
                yield body[start : start + 65536]

        declared = await client.post(scoped(project.id), content=body, headers=delivery(body))
        chunked = await client.post(scoped(project.id), content=streamed(), headers=delivery(body))
        for what, answer in (("declared", declared), ("chunked", chunked)):
            code = await assert_refused(answer, what, {413})
            assert code == "PAYLOAD_TOO_LARGE"
        assert await inbox(session) == []
        document = (await client.get("/openapi.json")).json()
        post = document["paths"]["/api/v1/payments/stripe/webhooks/{project_id}/{mode}"]["post"]
        assert "413" in post["responses"]


@asynccontextmanager
async def single_tenant_client(scratch: Scratch) -> AsyncIterator[httpx.AsyncClient]:
    """The app of a single-tenant install (its start-up makes the project), in-process."""
    settings = scratch.settings.model_copy(
        update={
            "single_tenant_secret_key": SecretStr(f"sk_test_{uuid.uuid4().hex}"),
            "single_tenant_webhook_secrets": [SecretStr(SECRET)],
            "embedded_worker": False,
        }
    )
    app = create_app(settings, engine=scratch.engine, configure_logs=False)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://testserver") as http,
    ):
        yield http


class TestMalformedDeliveriesOnTheSeedsPaths:
    async def test_every_refusal_is_400_and_stores_nothing(self, scratch: Scratch) -> None:
        body = event_body()
        async with single_tenant_client(scratch) as http:
            for path in UNSCOPED:
                for what, bad, content_type in not_events():
                    answer = await http.post(path, content=bad, headers=delivery(bad, content_type))
                    code = await assert_refused(answer, f"{path}: {what}", {400})
                    assert code in REFUSED, (path, what, code)
                for what, header in bad_signatures():
                    headers: dict[str, str | bytes] = {"Content-Type": "application/json"}
                    if header is not None:
                        headers["Stripe-Signature"] = header
                    answer = await http.post(path, content=body, headers=headers)
                    code = await assert_refused(answer, f"{path}: {what}", {400})
                    assert code in REFUSED, (path, what, code)
                huge = b'{"padding": "' + b"x" * scratch.settings.max_body_bytes + b'"}'
                answer = await http.post(path, content=huge, headers=delivery(huge))
                assert await assert_refused(answer, f"{path}: huge", {413}) == "PAYLOAD_TOO_LARGE"
            document = (await http.get("/openapi.json")).json()
            assert all("413" in document["paths"][path]["post"]["responses"] for path in UNSCOPED)
            async with scratch.session() as session:
                assert await inbox(session) == []
                assert await session.scalar(select(Project.slug)) == "default"
            accepted = await http.post(UNSCOPED[0], content=body, headers=delivery(body))
            assert accepted.status_code == 200, accepted.text
        async with scratch.session() as session:
            assert len(await inbox(session)) == 1
