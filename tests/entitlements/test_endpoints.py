"""Entitlement reads and checks over HTTP, answered from the snapshot."""

from __future__ import annotations

import time
from datetime import timedelta

import httpx
import jwt
from sqlalchemy.ext.asyncio import AsyncSession

from billwarden.core.modes import Mode
from billwarden.core.subjects import Subject, SubjectType
from billwarden.db.base import utcnow
from billwarden.entitlements.service import EntitlementService
from billwarden.subscriptions.models import Subscription
from tests.catalog.factories import Catalogs
from tests.checkout.factories import catalog_document
from tests.entitlements.factories import Snapshots
from tests.identity.factories import People
from tests.projects.factories import ProjectWithSecret, Tenants

PRICES = {
    "premium_monthly": "price_monthly",
    "premium_yearly": "price_yearly",
    "api_pro": "price_api",
    "enterprise": "price_enterprise",
}


def bearer(project: ProjectWithSecret, sub: str, **claims: object) -> dict[str, str]:
    payload = {
        "sub": sub,
        "project_id": str(project.id),
        "mode": "test",
        "exp": int(time.time()) + 60,
        **claims,
    }
    return {
        "Authorization": f"Bearer {jwt.encode(payload, project.end_user_secret, algorithm='HS256')}"
    }


class TestReads:
    async def test_an_unknown_subject_gets_the_free_entitlement_not_404(
        self, client: httpx.AsyncClient, people: People, tenants: Tenants, catalogs: Catalogs
    ) -> None:
        owner = await people.user()
        project = await tenants.project(owner)
        await catalogs.load(project.id, catalog_document(PRICES))
        key = await people.api_key(project, owner)
        answer = await client.get(
            "/api/v1/entitlements/organization/acme", headers={"Authorization": f"Bearer {key}"}
        )
        assert answer.status_code == 200
        body = answer.json()
        assert body["hasPremiumAccess"] is False
        assert body["entitlement"]["plan"] == "FREE" and body["entitlement"]["status"] == "NONE"
        assert body["entitlement"]["id"] is None
        assert (body["entitlement"]["subjectType"], body["entitlement"]["subjectId"]) == (
            "organization",
            "acme",
        )
        assert body["features"] == ["basic"]
        assert body["entitlement"]["quotas"] == {"api_calls": {"limit": 100, "period": "day"}}

    async def test_user_and_organization_of_one_id_are_different_subjects(
        self, client: httpx.AsyncClient, session: AsyncSession, people: People, tenants: Tenants
    ) -> None:
        owner = await people.user()
        project = await tenants.project(owner)
        await Snapshots(session).granted(project.id, Subject(SubjectType.ORGANIZATION, "42"))
        as_org = await client.get(
            "/api/v1/entitlements/me", headers=bearer(project, "42", organization_id="42")
        )
        as_user = await client.get("/api/v1/entitlements/me", headers=bearer(project, "42"))
        assert as_org.json()["hasPremiumAccess"] is True
        assert as_org.json()["entitlement"]["subjectType"] == "organization"
        assert as_user.json()["hasPremiumAccess"] is False

    async def test_asking_another_mode_than_the_tokens_is_a_documented_403(
        self, client: httpx.AsyncClient, people: People, tenants: Tenants
    ) -> None:
        project = await tenants.project(await people.user())
        answer = await client.get(
            "/api/v1/entitlements/me", params={"test_mode": "false"}, headers=bearer(project, "42")
        )
        assert answer.status_code == 403
        assert answer.json()["code"] == "MODE_MISMATCH"
        document = (await client.get("/openapi.json")).json()
        responses = document["paths"]["/api/v1/entitlements/me"]["get"]["responses"]
        assert responses["403"]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/ErrorEnvelope"
        }

    async def test_a_bad_subject_type_is_400(
        self, client: httpx.AsyncClient, people: People, tenants: Tenants
    ) -> None:
        owner = await people.user()
        project = await tenants.project(owner)
        key = await people.api_key(project, owner)
        answer = await client.get(
            "/api/v1/entitlements/team/1", headers={"Authorization": f"Bearer {key}"}
        )
        assert (answer.status_code, answer.json()["code"]) == (400, "VALIDATION_ERROR")

    async def test_a_grace_that_ran_out_since_the_snapshot_reads_as_free(
        self,
        client: httpx.AsyncClient,
        session: AsyncSession,
        people: People,
        tenants: Tenants,
        catalogs: Catalogs,
    ) -> None:
        owner = await people.user()
        project = await tenants.project(owner)
        await catalogs.load(project.id, catalog_document(PRICES))
        row = await Snapshots(session).granted(project.id, Subject(SubjectType.USER, "late"))
        row.status = "PAST_DUE"
        row.grace_until = utcnow() - timedelta(seconds=1)
        await session.flush()
        answer = (
            await client.get("/api/v1/entitlements/me", headers=bearer(project, "late"))
        ).json()
        assert answer["hasPremiumAccess"] is False
        assert answer["entitlement"]["status"] == "PAST_DUE"
        assert answer["entitlement"]["plan"] == "FREE" and answer["features"] == ["basic"]


class TestCheck:
    async def test_each_reason(
        self,
        client: httpx.AsyncClient,
        session: AsyncSession,
        people: People,
        tenants: Tenants,
        catalogs: Catalogs,
    ) -> None:
        owner = await people.user()
        project = await tenants.project(owner)
        await catalogs.load(project.id, catalog_document(PRICES))
        snapshots = Snapshots(session)
        await snapshots.granted(project.id, Subject(SubjectType.USER, "paid"))
        lapsed = await snapshots.granted(project.id, Subject(SubjectType.USER, "lapsed"))
        lapsed.status, lapsed.granted, lapsed.features = "UNPAID", False, ["basic"]
        await session.flush()
        key = {"Authorization": f"Bearer {await people.api_key(project, owner)}"}

        async def check(subject: str, feature: str) -> tuple[bool, str]:
            answer = await client.post(
                "/api/v1/entitlements/check",
                json={"feature": feature, "subjectId": subject},
                headers=key,
            )
            assert answer.status_code == 200, answer.text
            return answer.json()["allowed"], answer.json()["reason"]

        assert await check("paid", "export") == (True, "granted")
        assert await check("paid", "api") == (False, "feature_not_in_plan")
        assert await check("nobody", "export") == (False, "no_subscription")
        assert await check("nobody", "basic") == (True, "granted")  # the free tier's
        assert await check("lapsed", "export") == (False, "status_unpaid")
        missing = await client.post(
            "/api/v1/entitlements/check", json={"feature": "export"}, headers=key
        )
        assert (missing.status_code, missing.json()["code"]) == (400, "VALIDATION_ERROR")
        mine = await client.post(
            "/api/v1/entitlements/check",
            json={"feature": "export"},
            headers=bearer(project, "paid"),
        )
        assert mine.json()["allowed"] is True


class TestCatalogChanges:
    async def test_a_new_catalog_version_recomputes_every_snapshot_at_once(
        self,
        client: httpx.AsyncClient,
        session: AsyncSession,
        people: People,
        tenants: Tenants,
        catalogs: Catalogs,
    ) -> None:
        owner = await people.user()
        project = await tenants.project(owner)
        await catalogs.load(project.id, catalog_document(PRICES))
        session.add(
            Subscription(
                project_id=project.id,
                mode=Mode.TEST,
                stripe_subscription_id="sub_catalog",
                stripe_customer_id="cus_catalog",
                subject_type="user",
                subject_id="ada",
                status="active",
                price_ids=["price_monthly"],
                purchase_keys=["premium_monthly"],
                raw={},
            )
        )
        await session.flush()
        await EntitlementService(session).recompute(
            project.id, Mode.TEST, Subject(SubjectType.USER, "ada")
        )
        document = catalog_document(PRICES)
        document["plans"]["premium_monthly"]["features"] = ["premium", "export", "reports"]
        put = await client.put(
            f"/api/v1/projects/{project.id}/catalog", json=document, headers=people.bearer(owner)
        )
        assert put.status_code == 200, put.text
        me = await client.get("/api/v1/entitlements/me", headers=bearer(project, "ada"))
        assert me.json()["features"] == ["export", "premium", "reports"]
