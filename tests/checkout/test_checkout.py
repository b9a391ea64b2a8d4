"""Checkout over HTTP against the emulator: what a session carries, every refusal with its
status and code, and the subject's customer created once however many ask at once."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from billwarden.checkout.models import CheckoutSession
from billwarden.checkout.service import CheckoutService
from billwarden.config import Settings
from billwarden.core.modes import Mode
from billwarden.crypto import SecretBox
from billwarden.db.base import utcnow
from billwarden.stripe_gateway import StripeGateway
from billwarden.subscriptions.models import Customer, Subscription
from billwarden.subscriptions.service import EventStamp
from tests.checkout.factories import Shop, Shops
from tests.conftest import Scratch
from tests.factories import Factories
from tests.identity.factories import People
from tests.projects.factories import Tenants

CHECKOUT = "/api/v1/payments/stripe/checkout-session"


async def sessions_of(session: AsyncSession, shop: Shop) -> int:
    count = await session.scalar(
        select(func.count())
        .select_from(CheckoutSession)
        .where(CheckoutSession.project_id == shop.project.id)
    )
    return int(count or 0)


async def shop(session: AsyncSession, secret_box: SecretBox, settings: Settings) -> Shop:
    return await Shops(session, secret_box, settings).open()


class TestSessions:
    async def test_hosted_session_for_an_end_user_carries_the_subject(
        self,
        client: httpx.AsyncClient,
        session: AsyncSession,
        secret_box: SecretBox,
        settings: Settings,
    ) -> None:
        s = await shop(session, secret_box, settings)
        answer = await client.post(
            CHECKOUT,
            json={"purchaseKey": "premium_monthly"},
            headers=s.token("ada", email="ada@example.test"),
        )
        assert answer.status_code == 201, answer.text
        body = answer.json()
        assert set(body) == {"sessionId", "url"}
        assert "/_emulator/checkout/" in body["url"]
        made = s.stripe.v1.checkout.sessions.retrieve(body["sessionId"])
        assert made.mode == "subscription"
        assert made.client_reference_id == "ada"
        assert made.success_url == "https://billing.example.test/billing/success"
        assert made.metadata["bw_project"] == str(s.project.id)
        assert made.metadata["bw_mode"] == "test"
        assert made.metadata["bw_subject_type"] == "user"
        assert made.metadata["bw_subject_id"] == "ada"
        assert made.metadata["bw_purchase_keys"] == "premium_monthly"
        assert made.metadata["userExternalId"] == "ada"
        assert made.metadata["userEmail"] == "ada@example.test"
        customer = s.stripe.v1.customers.retrieve(str(made.customer))
        assert customer.email == "ada@example.test"
        # the subject now has a record that grants nothing
        me = await client.get("/api/v1/entitlements/me", headers=s.token("ada"))
        assert me.json()["entitlement"]["status"] == "INCOMPLETE"
        assert me.json()["hasPremiumAccess"] is False

    async def test_embedded_session_answers_a_client_secret(
        self,
        client: httpx.AsyncClient,
        session: AsyncSession,
        secret_box: SecretBox,
        settings: Settings,
    ) -> None:
        s = await shop(session, secret_box, settings)
        answer = await client.post(
            CHECKOUT,
            json={
                "purchaseKey": "premium_monthly",
                "uiMode": "embedded",
                "successUrl": "https://app.example.test/done",
            },
            headers=s.token("ada"),
        )
        assert answer.status_code == 201, answer.text
        assert set(answer.json()) == {"sessionId", "clientSecret"}
        made = s.stripe.v1.checkout.sessions.retrieve(answer.json()["sessionId"])
        assert made.ui_mode == "embedded_page"

    async def test_a_bundle_of_families_and_an_organization_subject_by_api_key(
        self,
        client: httpx.AsyncClient,
        session: AsyncSession,
        secret_box: SecretBox,
        settings: Settings,
    ) -> None:
        s = await shop(session, secret_box, settings)
        answer = await client.post(
            CHECKOUT,
            json={
                "purchaseKeys": ["premium_monthly", "api_pro"],
                "subjectType": "organization",
                "subjectId": "org-7",
            },
            headers=s.key,
        )
        assert answer.status_code == 201, answer.text
        made = s.stripe.v1.checkout.sessions.retrieve(answer.json()["sessionId"])
        assert made.metadata["bw_subject_type"] == "organization"
        assert made.metadata["bw_purchase_keys"] == "premium_monthly,api_pro"
        items = s.stripe.v1.checkout.sessions.line_items.list(made.id).data
        assert sorted(item.price.id for item in items if item.price) == sorted(
            [s.prices["premium_monthly"], s.prices["api_pro"]]
        )

    async def test_an_end_user_token_with_an_organization_buys_for_it(
        self,
        client: httpx.AsyncClient,
        session: AsyncSession,
        secret_box: SecretBox,
        settings: Settings,
    ) -> None:
        s = await shop(session, secret_box, settings)
        answer = await client.post(
            CHECKOUT, json={}, headers=s.token("ada", organization_id="org-1")
        )
        assert answer.status_code == 201, answer.text
        made = s.stripe.v1.checkout.sessions.retrieve(answer.json()["sessionId"])
        assert (made.metadata["bw_subject_type"], made.metadata["bw_subject_id"]) == (
            "organization",
            "org-1",
        )
        assert made.metadata["bw_purchase_keys"] == "premium_monthly"  # the catalog's default


class TestRefusals:
    async def refused(
        self,
        client: httpx.AsyncClient,
        session: AsyncSession,
        s: Shop,
        body: dict[str, object],
        status: int,
        code: str,
        headers: dict[str, str] | None = None,
    ) -> dict[str, object]:
        answer = await client.post(CHECKOUT, json=body, headers=headers or s.token("ada"))
        assert (answer.status_code, answer.json()["code"]) == (status, code), answer.text
        assert await sessions_of(session, s) == 0  # nothing half-written
        result: dict[str, object] = answer.json()
        return result

    async def test_unknown_purchase_key_is_400(
        self,
        client: httpx.AsyncClient,
        session: AsyncSession,
        secret_box: SecretBox,
        settings: Settings,
    ) -> None:
        s = await shop(session, secret_box, settings)
        await self.refused(
            client, session, s, {"purchaseKey": "platinum"}, 400, "UNKNOWN_PURCHASE_KEY"
        )

    async def test_a_plan_not_self_serve_is_400(
        self,
        client: httpx.AsyncClient,
        session: AsyncSession,
        secret_box: SecretBox,
        settings: Settings,
    ) -> None:
        s = await shop(session, secret_box, settings)
        await self.refused(client, session, s, {"purchaseKey": "enterprise"}, 400, "NOT_SELF_SERVE")
        await self.refused(
            client, session, s, {"priceId": s.prices["enterprise"]}, 400, "NOT_SELF_SERVE"
        )

    async def test_a_price_outside_the_allowlist_is_400(
        self,
        client: httpx.AsyncClient,
        session: AsyncSession,
        secret_box: SecretBox,
        settings: Settings,
    ) -> None:
        s = await shop(session, secret_box, settings)
        stray = s.stripe.v1.prices.create(
            {"currency": "usd", "unit_amount": 100, "product_data": {"name": "Stray"}}
        )
        await self.refused(client, session, s, {"priceId": stray.id}, 400, "PRICE_NOT_ALLOWED")

    async def test_a_catalog_price_by_id_is_sold(
        self,
        client: httpx.AsyncClient,
        session: AsyncSession,
        secret_box: SecretBox,
        settings: Settings,
    ) -> None:
        s = await shop(session, secret_box, settings)
        answer = await client.post(
            CHECKOUT, json={"priceId": s.prices["premium_yearly"]}, headers=s.token("ada")
        )
        assert answer.status_code == 201, answer.text

    async def test_two_plans_of_one_family_is_409(
        self,
        client: httpx.AsyncClient,
        session: AsyncSession,
        secret_box: SecretBox,
        settings: Settings,
    ) -> None:
        s = await shop(session, secret_box, settings)
        body = await self.refused(
            client,
            session,
            s,
            {"purchaseKeys": ["premium_monthly", "premium_yearly"]},
            409,
            "FAMILY_CONFLICT",
        )
        assert body["details"] == {
            "family": "membership",
            "purchaseKeys": ["premium_monthly", "premium_yearly"],
        }

    async def test_a_family_already_held_is_409_naming_the_subscription(
        self,
        client: httpx.AsyncClient,
        session: AsyncSession,
        secret_box: SecretBox,
        settings: Settings,
    ) -> None:
        s = await shop(session, secret_box, settings)
        for status in ("active", "trialing", "past_due", "paused"):
            subject_id = f"holder-{status}"
            session.add(
                Subscription(
                    project_id=s.project.id,
                    mode=Mode.TEST,
                    stripe_subscription_id=f"sub_{status}",
                    stripe_customer_id="cus_holder",
                    subject_type="user",
                    subject_id=subject_id,
                    status=status,
                    price_ids=[s.prices["premium_monthly"]],
                    purchase_keys=["premium_monthly"],
                    raw={},
                )
            )
            await session.flush()
            body = await self.refused(
                client,
                session,
                s,
                {"purchaseKey": "premium_yearly"},
                409,
                "ALREADY_SUBSCRIBED",
                headers=s.token(subject_id),
            )
            assert body["details"] == {
                "family": "membership",
                "subscriptionId": f"sub_{status}",
                "purchaseKey": "premium_monthly",
                "status": status,
            }
        # another family is still for sale, and a canceled subscription holds nothing
        other = await client.post(
            CHECKOUT, json={"purchaseKey": "api_pro"}, headers=s.token("holder-active")
        )
        assert other.status_code == 201, other.text

    async def test_no_stripe_configuration_is_409(
        self, client: httpx.AsyncClient, people: People, tenants: Tenants
    ) -> None:
        project = await tenants.project(await people.user())
        s = Shop(project, None, "", {}, "")  # type: ignore[arg-type]
        answer = await client.post(CHECKOUT, json={"purchaseKey": "x"}, headers=s.token("ada"))
        assert (answer.status_code, answer.json()["code"]) == (409, "STRIPE_NOT_CONFIGURED")

    async def test_stripe_unavailable_is_502_and_writes_nothing(
        self,
        client: httpx.AsyncClient,
        session: AsyncSession,
        secret_box: SecretBox,
        settings: Settings,
    ) -> None:
        s = await shop(session, secret_box, settings)
        async with httpx.AsyncClient(base_url=settings.stripe_api_base) as emulator:
            faults = await emulator.post(
                "/_emulator/faults",
                json={"requests": [{"path": "/v1/checkout/sessions", "status": 500, "count": 10}]},
                headers={"Authorization": f"Bearer {s.stripe_key}"},
            )
            assert faults.status_code == 200
        await self.refused(
            client, session, s, {"purchaseKey": "premium_monthly"}, 502, "STRIPE_ERROR"
        )

    async def test_callers_and_bodies_that_do_not_make_sense_are_refused(
        self,
        client: httpx.AsyncClient,
        session: AsyncSession,
        secret_box: SecretBox,
        settings: Settings,
    ) -> None:
        s = await shop(session, secret_box, settings)
        await self.refused(
            client,
            session,
            s,
            {"purchaseKey": "premium_monthly"},
            400,
            "VALIDATION_ERROR",
            headers=s.key,
        )
        await self.refused(
            client,
            session,
            s,
            {"purchaseKey": "premium_monthly", "subjectId": "bob"},
            403,
            "SUBJECT_MISMATCH",
        )
        await self.refused(
            client,
            session,
            s,
            {"purchaseKey": "premium_monthly", "priceId": s.prices["api_pro"]},
            400,
            "VALIDATION_ERROR",
        )
        await self.refused(client, session, s, {"purchaseKeys": []}, 400, "VALIDATION_ERROR")
        await self.refused(
            client, session, s, {"purchaseKeys": ["a"] * 11}, 400, "VALIDATION_ERROR"
        )
        await self.refused(client, session, s, {"uiMode": "popup"}, 400, "VALIDATION_ERROR")
        await self.refused(
            client, session, s, {"successUrl": "javascript:alert(1)"}, 400, "VALIDATION_ERROR"
        )


class TestCustomers:
    async def test_twenty_concurrent_calls_make_one_customer(
        self, scratch: Scratch, emulator_url: str
    ) -> None:
        async def build(made: Factories) -> Shop:
            return await made.shops.open()

        s = await scratch.setup(build)
        answers = await asyncio.gather(
            *(
                scratch.client.post(
                    "/api/v1/payments/stripe/create-customer",
                    json={"subjectId": "crowd"},
                    headers=s.key,
                )
                for _ in range(20)
            )
        )
        assert {answer.status_code for answer in answers} == {200}, [a.text for a in answers]
        ids = {answer.json()["customerId"] for answer in answers}
        assert len(ids) == 1
        assert [answer.json()["created"] for answer in answers].count(True) == 1
        in_stripe = s.stripe.v1.customers.list({"limit": 100}).data
        assert [customer.id for customer in in_stripe] == list(ids)
        async with scratch.session() as session:
            mapped = (await session.scalars(select(Customer))).all()
        assert [(row.subject_id, row.stripe_customer_id) for row in mapped] == [
            ("crowd", ids.pop())
        ]

    async def test_the_same_subject_reuses_its_customer_and_types_are_apart(
        self,
        client: httpx.AsyncClient,
        session: AsyncSession,
        secret_box: SecretBox,
        settings: Settings,
    ) -> None:
        s = await shop(session, secret_box, settings)
        url = "/api/v1/payments/stripe/create-customer"
        first = await client.post(url, json={"subjectId": "42"}, headers=s.key)
        again = await client.post(url, json={"subjectId": "42"}, headers=s.key)
        org = await client.post(
            url, json={"subjectType": "organization", "subjectId": "42"}, headers=s.key
        )
        mine = await client.post(url, headers=s.token("42"))
        assert first.json()["created"] is True and again.json()["created"] is False
        assert again.json()["customerId"] == first.json()["customerId"]
        assert org.json()["customerId"] != first.json()["customerId"]
        assert mine.json() == {"customerId": first.json()["customerId"], "created": False}
        _ = uuid


class TestSessionOwnership:
    async def test_a_session_made_outside_billwarden_is_nobodys_to_reconcile(
        self,
        client: httpx.AsyncClient,
        session: AsyncSession,
        secret_box: SecretBox,
        settings: Settings,
    ) -> None:
        s = await shop(session, secret_box, settings)
        foreign = s.stripe.v1.checkout.sessions.create(
            {
                "mode": "subscription",
                "line_items": [{"price": s.prices["premium_monthly"], "quantity": 1}],
                "success_url": "https://elsewhere.example.test/",
            }
        )
        for path in ("cs_../../v1/customers", foreign.id):
            answer = await client.post(
                "/api/v1/payments/stripe/reconcile-session", json={"sessionId": path}, headers=s.key
            )
            assert (answer.status_code, answer.json()["code"]) == (
                404,
                "CHECKOUT_SESSION_NOT_FOUND",
            )


class TestSessionEventsWithWrongTypes:
    async def test_a_field_that_is_not_text_fails_the_event_and_writes_nothing(
        self,
        session: AsyncSession,
        people: People,
        tenants: Tenants,
        settings: Settings,
        secret_box: SecretBox,
    ) -> None:
        project = await tenants.project(await people.user())
        gateway = StripeGateway(api_base=settings.stripe_api_base, max_network_retries=0)
        service = CheckoutService(session, gateway, secret_box, project.id, Mode.TEST)
        stamp = EventStamp("evt_wrong_types", utcnow())
        for field, value in (("status", 42), ("payment_status", {"paid": True}), ("mode", [1])):
            obj = {"id": f"cs_test_{uuid.uuid4().hex}", "status": "complete", field: value}
            with pytest.raises(ValueError, match=f"checkout session's {field} is not text"):
                await service.apply_session(obj, stamp)
        await gateway.close()
        stored = await session.scalar(
            select(func.count())
            .select_from(CheckoutSession)
            .where(CheckoutSession.project_id == project.id)
        )
        assert stored == 0
