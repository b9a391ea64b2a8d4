"""Malformed deliveries: bodies that are not events, signatures that do not hold, and signed
events whose fields have the wrong types. Every refusal is a 400 (413 for a body past the size
limit) in the error envelope and stores nothing; a stored event a handler cannot read ends as a
failed inbox row with the error recorded, and the worker goes on applying the next events."""

from __future__ import annotations

import copy
import hashlib
import hmac
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
import pytest
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from billwarden import domains
from billwarden.app import create_app
from billwarden.checkout.models import CheckoutSession
from billwarden.core.modes import Mode
from billwarden.db.engine import create_sessionmaker
from billwarden.entitlements.models import Entitlement
from billwarden.errors import ErrorEnvelope
from billwarden.payments.models import Payment
from billwarden.projects.models import Project
from billwarden.projects.stripe_config import StripeConfigService
from billwarden.subscriptions.models import Customer, Subscription
from billwarden.webhooks.models import InboxStatus, WebhookEvent
from billwarden.webhooks.service import InboxPolicy
from billwarden.webhooks.service.registry import HandlerRegistry
from billwarden.webhooks.tasks import InboxWorker
from tests.checkout.factories import Shop
from tests.conftest import Scratch
from tests.identity.factories import People
from tests.projects.factories import ProjectWithSecret, Tenants
from tests.webhooks.factories import stripe_access, stripe_event

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


def assert_refused(answer: httpx.Response, what: str, statuses: set[int]) -> str:
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
            code = assert_refused(answer, what, {400})
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
            code = assert_refused(answer, what, {400})
            expected = "VALIDATION_ERROR" if not header else "STRIPE_SIGNATURE_INVALID"
            assert code == expected, (what, answer.text)
        assert await inbox(session) == []

    async def test_a_signed_event_is_stored_whatever_content_type_it_came_with(
        self, client: httpx.AsyncClient, session: AsyncSession, project: ProjectWithSecret
    ) -> None:
        """The signature covers the body, not the headers: refusing a real event over its
        Content-Type would lose it (Stripe retries a 400 until it gives up)."""
        for content_type in ("text/plain", "application/x-www-form-urlencoded"):
            body = event_body()
            answer = await client.post(
                scoped(project.id), content=body, headers=delivery(body, content_type)
            )
            assert answer.status_code == 200, (content_type, answer.text)
        assert len(await inbox(session)) == 2

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
            code = assert_refused(answer, what, {413})
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
                    code = assert_refused(answer, f"{path}: {what}", {400})
                    assert code in REFUSED, (path, what, code)
                for what, header in bad_signatures():
                    headers: dict[str, str | bytes] = {"Content-Type": "application/json"}
                    if header is not None:
                        headers["Stripe-Signature"] = header
                    answer = await http.post(path, content=body, headers=headers)
                    code = assert_refused(answer, f"{path}: {what}", {400})
                    assert code in REFUSED, (path, what, code)
                huge = b'{"padding": "' + b"x" * scratch.settings.max_body_bytes + b'"}'
                answer = await http.post(path, content=huge, headers=delivery(huge))
                assert assert_refused(answer, f"{path}: huge", {413}) == "PAYLOAD_TOO_LARGE"
            document = (await http.get("/openapi.json")).json()
            assert all("413" in document["paths"][path]["post"]["responses"] for path in UNSCOPED)
            async with scratch.session() as session:
                assert await inbox(session) == []
                assert await session.scalar(select(Project.slug)) == "default"
            accepted = await http.post(UNSCOPED[0], content=body, headers=delivery(body))
            assert accepted.status_code == 200, accepted.text
        async with scratch.session() as session:
            assert len(await inbox(session)) == 1


# --- signed events whose fields have the wrong types, applied by the worker -----------------

ENDED = "customer.subscription.deleted"
# a value of another type for whatever a field held
WRONG = {str: 42, int: "soon", float: "soon", bool: "yes", dict: "x", list: "x", type(None): [1]}
NESTED = (
    ("items", "data"),
    ("items", "data", 0),
    ("items", "data", 0, "price"),
    ("items", "data", 0, "price", "id"),
    ("items", "data", 0, "current_period_end"),
    ("lines", "data"),
    ("lines", "data", 0),
    ("lines", "data", 0, "subscription"),
    ("parent", "subscription_details", "subscription"),
    ("metadata", "billwarden_subject_id"),
    ("metadata", "billwarden_project_id"),
)


def wrong_value(value: Any) -> Any:
    return WRONG.get(type(value))


def at(obj: Any, path: tuple[str | int, ...]) -> tuple[Any, str | int] | None:
    """The container holding `path`'s last step, and that step; None when it is not there."""
    for step in path[:-1]:
        try:
            obj = obj[step]
        except (KeyError, IndexError, TypeError):
            return None
    last = path[-1]
    if isinstance(obj, dict) and last in obj:
        return obj, last
    if isinstance(obj, list) and isinstance(last, int) and last < len(obj):
        return obj, last
    return None


# the fields of Stripe's objects that billwarden's handlers read (or could)
READ = (
    "id",
    "object",
    "customer",
    "status",
    "subscription",
    "payment_intent",
    "items",
    "metadata",
    "current_period_start",
    "current_period_end",
    "cancel_at_period_end",
    "cancel_at",
    "canceled_at",
    "ended_at",
    "trial_end",
    "start_date",
    "created",
    "pause_collection",
    "mode",
    "payment_status",
    "client_reference_id",
    "amount_paid",
    "amount_due",
    "amount",
    "amount_refunded",
    "amount_total",
    "currency",
    "total",
    "lines",
    "parent",
    "discounts",
    "deleted",
    "email",
    "latest_invoice",
    "invoice",
    "plan",
    "quantity",
    "refunded",
    "paid",
)


def mutations(event: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(what, event) for every field the handlers read given another type, the event's own
    fields, and fields taken away."""
    obj = event["data"]["object"]
    paths: list[tuple[str | int, ...]] = [("data", "object", key) for key in READ if key in obj]
    paths += [("data", "object", *path) for path in NESTED]
    paths += [("data", "object"), ("data",), ("id",), ("created",), ("type",), ("livemode",)]
    for path in paths:
        twin = copy.deepcopy(event)
        found = at(twin, path)
        if found is None:
            continue
        container, step = found
        container[step] = wrong_value(container[step])
        yield f"{'.'.join(map(str, path))} as {type(container[step]).__name__}", twin
    for key in ("id", "customer", "status", "items", "subscription", "metadata"):
        if key in obj:
            twin = copy.deepcopy(event)
            del twin["data"]["object"][key]
            yield f"data.object.{key} missing", twin
    for key in ("id", "type", "created", "data"):
        twin = copy.deepcopy(event)
        del twin[key]
        yield f"{key} missing", twin
    twin = copy.deepcopy(event)
    twin["type"] = "customer.subscription.exploded"
    yield "a type no handler knows", twin


def fresh_id(event: dict[str, Any]) -> dict[str, Any]:
    """The event under an id of its own (the inbox keeps one event per id)."""
    if isinstance(event.get("id"), str):
        event["id"] = f"evt_mutated_{uuid.uuid4().hex}"
    return event


SHOP_SECRET = "whsec_shop"  # the webhook signing secret Shops.open configures
# an event of each handler (the invoice events share one)
SAMPLED = frozenset(
    {
        "checkout.session.completed",
        "customer.subscription.created",
        "customer.updated",
        "invoice.paid",
        "payment_intent.succeeded",
        "charge.refunded",
    }
)
# what a user of the mirror sees of each kind of row
MIRRORED: dict[type[Any], tuple[str, ...]] = {
    CheckoutSession: (
        "stripe_session_id",
        "subject_id",
        "stripe_mode",
        "status",
        "payment_status",
        "stripe_customer_id",
        "stripe_subscription_id",
        "price_ids",
        "applied_at",
    ),
    Subscription: (
        "stripe_subscription_id",
        "stripe_customer_id",
        "subject_id",
        "status",
        "price_ids",
        "purchase_keys",
        "current_period_start",
        "current_period_end",
        "cancel_at_period_end",
        "cancel_at",
        "canceled_at",
        "ended_at",
        "currency",
        "annual_amount",
        "past_due_since",
    ),
    Payment: (
        "stripe_id",
        "kind",
        "subject_id",
        "stripe_customer_id",
        "stripe_subscription_id",
        "amount",
        "amount_refunded",
        "currency",
        "status",
        "paid_at",
    ),
    Customer: ("stripe_customer_id", "subject_id", "email", "deleted"),
    Entitlement: (
        "subject_id",
        "plan",
        "status",
        "granted",
        "stripe_subscription_id",
        "stripe_price_id",
        "current_period_end",
        "cancel_at_period_end",
        "features",
    ),
}


async def mirror_state(scratch: Scratch) -> set[tuple[Any, ...]]:
    """Every mirror row as a user of billwarden sees it."""
    state: set[tuple[Any, ...]] = set()
    async with scratch.session() as session:
        for model, columns in MIRRORED.items():
            for row in (await session.scalars(select(model))).all():
                state.add(
                    (
                        model.__name__,
                        *(orjson.dumps(getattr(row, name), default=str) for name in columns),
                    )
                )
    return state


@dataclass
class Purchase:
    """A shop and what one paid subscription made in the emulator: its events, oldest first."""

    shop: Shop
    subscription_id: str
    events: list[dict[str, Any]]


async def emulator_events(shop: Shop, emulator_url: str, seen: set[str]) -> list[dict[str, Any]]:
    """The account's events not in `seen`, oldest first, as Stripe would deliver them."""
    async with httpx.AsyncClient(base_url=emulator_url) as http:
        answer = await http.get(
            "/v1/events",
            params={"limit": 100},
            headers={"Authorization": f"Bearer {shop.stripe_key}"},
        )
    assert answer.status_code == 200, answer.text
    events = [event for event in answer.json()["data"] if event["id"] not in seen]
    return sorted(events, key=lambda event: event["created"])


async def purchase(scratch: Scratch, emulator_url: str) -> Purchase:
    """ada buys premium_monthly through billwarden's checkout and pays in the emulator; her
    customer's email changes and the payment is refunded, so every handled kind of event is
    there."""
    shop = await scratch.setup(lambda made: made.shops.open())
    started = await scratch.client.post(
        "/api/v1/payments/stripe/checkout-session",
        json={"purchaseKey": "premium_monthly"},
        headers=shop.token("ada", email="ada@example.test"),
    )
    assert started.status_code == 201, started.text
    session_id = started.json()["sessionId"]
    async with httpx.AsyncClient(base_url=emulator_url) as http:
        paid = await http.post(
            f"/_emulator/checkout/sessions/{session_id}/complete",
            json={"outcome": "paid"},
            headers={"Authorization": f"Bearer {shop.stripe_key}"},
        )
    assert paid.status_code == 200, paid.text
    checkout = shop.stripe.v1.checkout.sessions.retrieve(session_id)
    assert isinstance(checkout.subscription, str) and isinstance(checkout.customer, str)
    shop.stripe.v1.customers.update(checkout.customer, {"email": "ada@example.org"})
    intents = shop.stripe.v1.payment_intents.list({"customer": checkout.customer}).data
    if intents:
        shop.stripe.v1.refunds.create({"payment_intent": intents[0].id, "amount": 100})
    events = await emulator_events(shop, emulator_url, set())
    return Purchase(shop, checkout.subscription, events)


async def deliver(scratch: Scratch, shop: Shop, event: dict[str, Any]) -> httpx.Response:
    body = orjson.dumps(event)
    return await scratch.client.post(
        scoped(shop.project.id), content=body, headers=delivery_signed(body, SHOP_SECRET)
    )


def delivery_signed(body: bytes, secret: str) -> dict[str, str]:
    return {"Stripe-Signature": signature(body, secret), "Content-Type": "application/json"}


async def drain(worker: InboxWorker) -> None:
    while await worker.run_once():
        pass


async def rows_by_event_id(scratch: Scratch) -> dict[str, WebhookEvent]:
    async with scratch.session() as session:
        return {row.event_id: row for row in await inbox(session)}


class TestEventsWithWrongTypes:
    async def test_each_ends_failed_with_its_error_or_applied_and_the_worker_goes_on(
        self, scratch: Scratch, emulator_url: str
    ) -> None:
        bought = await purchase(scratch, emulator_url)
        handlers = domains.event_handlers()
        worker = InboxWorker(
            create_sessionmaker(scratch.engine),
            HandlerRegistry(handlers),
            # one attempt, so a failure is final at once: with the defaults the worker tries
            # 7 times more, 2 s to 128 s apart (about 4 minutes), then marks it failed the same way
            InboxPolicy.from_settings(
                scratch.settings.model_copy(update={"webhook_max_attempts": 1})
            ),
            stripe_access(scratch.settings),
        )
        for event in bought.events:
            assert (await deliver(scratch, bought.shop, event)).status_code == 200
        await drain(worker)
        applied = await rows_by_event_id(scratch)
        assert {row.status for row in applied.values()} <= {
            InboxStatus.PROCESSED,
            InboxStatus.IGNORED,
        }, [(row.event_type, row.last_error) for row in applied.values() if row.last_error]

        # one event of each handler, its fields given the wrong types, applied one by one
        originals = {event["type"]: event for event in bought.events if event["type"] in SAMPLED}
        assert set(originals) == SAMPLED
        before = await mirror_state(scratch)
        outcomes: dict[str, WebhookEvent] = {}
        refused: list[str] = []
        changed: list[str] = []
        newer = int(time.time()) + 1
        for event in originals.values():
            for what, mutated in mutations(event):
                mutated = fresh_id(mutated)
                if isinstance(mutated.get("created"), int):
                    mutated["created"] = newer  # newer than what was applied: not skipped
                label = f"{event['type']}: {what}"
                answer = await deliver(scratch, bought.shop, mutated)
                if answer.status_code != 200:
                    assert answer.status_code == 400, (label, answer.text)
                    code = ErrorEnvelope.model_validate_json(answer.content).code
                    assert code == "NOT_A_STRIPE_EVENT", (label, code)
                    refused.append(label)
                    continue
                assert await worker.run_once() == 1  # a worker that crashed would raise here
                outcomes[label] = (await rows_by_event_id(scratch))[mutated["id"]]
                after = await mirror_state(scratch)
                if after != before:
                    changed.append(f"{label}: {sorted(set(after) ^ set(before))}")
                    before = after

        stuck = [label for label, row in outcomes.items() if row.status is InboxStatus.PENDING]
        assert not stuck, stuck
        unexplained = [
            label
            for label, row in outcomes.items()
            if row.status is InboxStatus.FAILED and not row.last_error
        ]
        assert not unexplained, unexplained
        # Stripe's objects did not change meanwhile: whatever a handler re-read from Stripe is
        # what the mirror held, and what it took from the event must not have been applied
        assert not changed, "\n".join(changed)
        failed = {label for label, row in outcomes.items() if row.status is InboxStatus.FAILED}
        # each handler but the refund's (which reads the charge's payment_intent, not its id)
        # fails an object without a usable id, saying so
        reads_id = SAMPLED - {"charge.refunded"}
        assert {f"{kind}: data.object.id as int" for kind in reads_id} <= failed, sorted(failed)
        assert all(
            "has no id" in outcomes[f"{kind}: data.object.id missing"].last_error
            for kind in reads_id
        )
        ignored = {label for label, row in outcomes.items() if row.status is InboxStatus.IGNORED}
        assert ignored == {f"{kind}: a type no handler knows" for kind in SAMPLED}
        assert {f"{kind}: data.object as str" for kind in SAMPLED} <= set(refused)

        # the same worker still applies a valid event: the subscription's cancellation
        seen = {event["id"] for event in bought.events}
        bought.shop.stripe.v1.subscriptions.cancel(bought.subscription_id)
        later = await emulator_events(bought.shop, emulator_url, seen)
        assert ENDED in {event["type"] for event in later}
        for event in later:
            assert (await deliver(scratch, bought.shop, event)).status_code == 200
        await drain(worker)
        final = await rows_by_event_id(scratch)
        assert all(final[event["id"]].status is not InboxStatus.FAILED for event in later)
        async with scratch.session() as session:
            mirrored = await session.scalar(
                select(Subscription).where(
                    Subscription.stripe_subscription_id == bought.subscription_id
                )
            )
        assert mirrored is not None and mirrored.status == "canceled"
