"""Console API key routes (create shown once, list, deactivate) and the API key principal."""

from __future__ import annotations

import logging
import uuid

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from billwarden.projects.models import ProjectRole
from tests.identity.factories import PASSWORD, People
from tests.probes import PROJECT_KEY_PROBE, install_probes
from tests.projects.factories import Tenants

GENERATE = "/api-dashboard/keys/generate"
DEACTIVATE = "/api-dashboard/keys/deactivate"
LIST = "/api-dashboard/keys"


@pytest.fixture(autouse=True)
def probe(app: FastAPI) -> None:
    install_probes(app)


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


class TestGenerate:
    async def test_key_is_returned_once_and_authenticates(
        self,
        client: httpx.AsyncClient,
        people: People,
        tenants: Tenants,
    ) -> None:
        owner = await people.user()
        project = await tenants.project(owner)
        response = await client.post(
            GENERATE,
            json={"name": "local sync job", "projectId": str(project.id), "mode": "live"},
            headers=people.bearer(owner),
        )
        assert response.status_code == 201
        body = response.json()
        key = body["apiKey"]
        assert key.startswith("bw_live_") and len(key) >= len("bw_live_") + 43
        assert key.startswith(body["prefix"]) and body["prefix"] != key
        who = await client.get(PROJECT_KEY_PROBE, headers=bearer(key))
        assert who.status_code == 200
        assert who.json() == {"projectId": str(project.id), "mode": "live", "keyId": body["keyId"]}

        listed = await client.get(LIST, headers=people.bearer(owner))
        assert listed.status_code == 200
        (item,) = listed.json()["items"]
        assert item["keyId"] == body["keyId"] and item["name"] == "local sync job"
        assert item["lastUsedAt"] is not None and item["active"] is True
        assert "apiKey" not in item and key not in listed.text

    @pytest.mark.parametrize("name", ["", "   "])
    async def test_empty_name_is_400(
        self, client: httpx.AsyncClient, people: People, tenants: Tenants, name: str
    ) -> None:
        owner = await people.user()
        project = await tenants.project(owner)
        response = await client.post(
            GENERATE,
            json={"name": name, "projectId": str(project.id)},
            headers=people.bearer(owner),
        )
        assert response.status_code == 400
        assert response.json()["code"] == "VALIDATION_ERROR"

    async def test_non_member_cannot_create_a_key(
        self,
        client: httpx.AsyncClient,
        people: People,
        tenants: Tenants,
    ) -> None:
        project = await tenants.project(await people.user())
        stranger = await people.user()
        response = await client.post(
            GENERATE,
            json={"name": "x", "projectId": str(project.id)},
            headers=people.bearer(stranger),
        )
        assert response.status_code == 404
        assert response.json()["code"] == "PROJECT_NOT_FOUND"

    async def test_anonymous_is_401(self, client: httpx.AsyncClient) -> None:
        response = await client.post(GENERATE, json={"name": "x", "projectId": str(uuid.uuid4())})
        assert response.status_code == 401
        assert response.json()["code"] == "UNAUTHENTICATED"


class TestLiveKeys:
    """Live-mode keys move real money: only a project's owners and admins create them."""

    async def test_a_member_gets_403_for_a_live_key_and_still_creates_test_keys(
        self, client: httpx.AsyncClient, people: People, tenants: Tenants
    ) -> None:
        owner, member = await people.user(), await people.user()
        project = await tenants.project(owner)
        await tenants.add_member(project, member, ProjectRole.MEMBER)
        for headers in (people.bearer(member), (await people.sign_in(member)).unsafe):
            refused = await client.post(
                GENERATE,
                json={"name": "prod", "projectId": str(project.id), "mode": "live"},
                headers=headers,
            )
            assert refused.status_code == 403
            assert refused.json()["code"] == "PROJECT_ADMIN_REQUIRED"
            assert "apiKey" not in refused.json()
        listed = await client.get(LIST, headers=people.bearer(owner))
        assert listed.json()["total"] == 0  # nothing was made
        allowed = await client.post(
            GENERATE,
            json={"name": "dev", "projectId": str(project.id), "mode": "test"},
            headers=people.bearer(member),
        )
        assert allowed.status_code == 201 and allowed.json()["apiKey"].startswith("bw_test_")

    @pytest.mark.parametrize("role", [ProjectRole.ADMIN, ProjectRole.OWNER])
    async def test_admins_and_owners_create_live_keys(
        self, client: httpx.AsyncClient, people: People, tenants: Tenants, role: ProjectRole
    ) -> None:
        owner, admin = await people.user(), await people.user()
        project = await tenants.project(owner)
        await tenants.add_member(project, admin, role)
        response = await client.post(
            GENERATE,
            json={"name": "prod", "projectId": str(project.id), "mode": "live"},
            headers=people.bearer(admin),
        )
        assert response.status_code == 201
        key = response.json()["apiKey"]
        assert key.startswith("bw_live_")
        who = await client.get(PROJECT_KEY_PROBE, headers=bearer(key))
        assert who.status_code == 200 and who.json()["mode"] == "live"

    async def test_a_superuser_creates_live_keys_and_an_outsider_gets_404(
        self, client: httpx.AsyncClient, people: People, tenants: Tenants
    ) -> None:
        project = await tenants.project(await people.user())
        root, outsider = await people.user(superuser=True), await people.user()
        body = {"name": "prod", "projectId": str(project.id), "mode": "live"}
        made = await client.post(GENERATE, json=body, headers=people.bearer(root))
        assert made.status_code == 201
        hidden = await client.post(GENERATE, json=body, headers=people.bearer(outsider))
        assert hidden.status_code == 404
        assert hidden.json()["code"] == "PROJECT_NOT_FOUND"


class TestDeactivate:
    async def test_deactivated_key_stops_on_the_next_request(
        self,
        client: httpx.AsyncClient,
        people: People,
        tenants: Tenants,
    ) -> None:
        owner = await people.user()
        project = await tenants.project(owner)
        created = (
            await client.post(
                GENERATE,
                json={"name": "x", "projectId": str(project.id)},
                headers=people.bearer(owner),
            )
        ).json()
        assert (
            await client.get(PROJECT_KEY_PROBE, headers=bearer(created["apiKey"]))
        ).status_code == 200
        response = await client.post(
            DEACTIVATE, json={"keyId": created["keyId"]}, headers=people.bearer(owner)
        )
        assert response.status_code == 200 and response.json()["active"] is False
        refused = await client.get(PROJECT_KEY_PROBE, headers=bearer(created["apiKey"]))
        assert refused.status_code == 401
        assert refused.json()["code"] == "UNAUTHENTICATED"

    async def test_member_cannot_see_or_deactivate_another_members_key(
        self,
        client: httpx.AsyncClient,
        people: People,
        tenants: Tenants,
    ) -> None:
        owner, member, other_member = await people.user(), await people.user(), await people.user()
        project = await tenants.project(owner)
        await tenants.add_member(project, member, ProjectRole.MEMBER)
        await tenants.add_member(project, other_member, ProjectRole.MEMBER)
        key = await people.api_key(project, created_by=other_member)
        listed = await client.get(LIST, headers=people.bearer(member))
        assert listed.json()["total"] == 0
        other_key_id = (await client.get(LIST, headers=people.bearer(other_member))).json()[
            "items"
        ][0]["keyId"]
        response = await client.post(
            DEACTIVATE, json={"keyId": other_key_id}, headers=people.bearer(member)
        )
        assert response.status_code == 404
        assert response.json()["code"] == "API_KEY_NOT_FOUND"
        assert (await client.get(PROJECT_KEY_PROBE, headers=bearer(key))).status_code == 200

    async def test_project_admin_can_deactivate_a_members_key(
        self,
        client: httpx.AsyncClient,
        people: People,
        tenants: Tenants,
    ) -> None:
        owner, admin, member = await people.user(), await people.user(), await people.user()
        project = await tenants.project(owner)
        await tenants.add_member(project, admin, ProjectRole.ADMIN)
        await tenants.add_member(project, member, ProjectRole.MEMBER)
        key = await people.api_key(project, created_by=member)
        (item,) = (await client.get(LIST, headers=people.bearer(admin))).json()["items"]
        response = await client.post(
            DEACTIVATE, json={"keyId": item["keyId"]}, headers=people.bearer(admin)
        )
        assert response.status_code == 200
        refused = await client.get(PROJECT_KEY_PROBE, headers=bearer(key))
        assert refused.status_code == 401
        assert refused.json()["code"] == "UNAUTHENTICATED"

    async def test_other_projects_admin_gets_404(
        self,
        client: httpx.AsyncClient,
        people: People,
        tenants: Tenants,
    ) -> None:
        owner, outsider = await people.user(), await people.user()
        project = await tenants.project(owner)
        await tenants.project(outsider)
        await people.api_key(project, created_by=owner)
        (item,) = (await client.get(LIST, headers=people.bearer(owner))).json()["items"]
        response = await client.post(
            DEACTIVATE, json={"keyId": item["keyId"]}, headers=people.bearer(outsider)
        )
        assert response.status_code == 404
        assert response.json()["code"] == "API_KEY_NOT_FOUND"

    async def test_key_id_is_required(self, client: httpx.AsyncClient, people: People) -> None:
        response = await client.post(
            DEACTIVATE, json={}, headers=people.bearer(await people.user())
        )
        assert response.status_code == 400
        assert response.json()["code"] == "VALIDATION_ERROR"


class TestOffboarding:
    async def test_removed_members_keys_stop_on_the_next_request(
        self,
        client: httpx.AsyncClient,
        people: People,
        tenants: Tenants,
    ) -> None:
        owner, bob = await people.user(), await people.user()
        project = await tenants.project(owner)
        other = await tenants.project(bob)
        await tenants.add_member(project, bob, ProjectRole.ADMIN)
        bobs_key = await people.api_key(project, bob)
        bobs_other_key = await people.api_key(other, bob)
        owners_key = await people.api_key(project, owner)
        assert (await client.get(PROJECT_KEY_PROBE, headers=bearer(bobs_key))).status_code == 200

        removed = await client.delete(
            f"/api/v1/projects/{project.id}/members/{bob.id}", headers=people.bearer(owner)
        )
        assert removed.status_code == 204
        refused = await client.get(PROJECT_KEY_PROBE, headers=bearer(bobs_key))
        assert refused.status_code == 401
        assert refused.json()["code"] == "UNAUTHENTICATED"
        # only bob's keys of that project: the owner's and bob's own project's keep working
        assert (await client.get(PROJECT_KEY_PROBE, headers=bearer(owners_key))).status_code == 200
        assert (
            await client.get(PROJECT_KEY_PROBE, headers=bearer(bobs_other_key))
        ).status_code == 200
        listed = await client.get(
            LIST, params={"projectId": str(project.id)}, headers=people.bearer(owner)
        )
        assert sorted(item["active"] for item in listed.json()["items"]) == [False, True]


class TestKeyPrincipal:
    @pytest.mark.parametrize(
        "credential", ["bw_test_short", "sk_test_abcdef", "bw_test_" + "A" * 54, "not a key"]
    )
    async def test_unknown_keys_are_401(self, client: httpx.AsyncClient, credential: str) -> None:
        response = await client.get(PROJECT_KEY_PROBE, headers=bearer(credential))
        assert response.status_code == 401
        assert response.json()["code"] == "UNAUTHENTICATED"

    async def test_key_cannot_change_its_mode_prefix(
        self,
        client: httpx.AsyncClient,
        people: People,
        tenants: Tenants,
    ) -> None:
        owner = await people.user()
        key = await people.api_key(await tenants.project(owner), created_by=owner)
        forged = key.replace("bw_test_", "bw_live_", 1)
        response = await client.get(PROJECT_KEY_PROBE, headers=bearer(forged))
        assert response.status_code == 401
        assert response.json()["code"] == "UNAUTHENTICATED"


class TestSecretsNeverLeak:
    async def test_key_session_and_end_user_secret_not_in_db_responses_or_logs(
        self,
        client: httpx.AsyncClient,
        people: People,
        session: AsyncSession,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        caplog.set_level(logging.DEBUG)
        owner = await people.user("owner@example.test")
        login = await client.post(
            "/api/v1/auth/login", json={"email": "owner@example.test", "password": PASSWORD}
        )
        session_token = login.cookies["bw_session"]
        csrf = login.json()["csrfToken"]
        created_project = await client.post(
            "/api/v1/projects", json={"name": "Leak check"}, headers={"X-CSRF-Token": csrf}
        )
        assert created_project.status_code == 201
        project_id = created_project.json()["id"]
        end_user_secret = created_project.json()["endUserSecret"]
        created_key = await client.post(
            GENERATE, json={"name": "x", "projectId": project_id}, headers={"X-CSRF-Token": csrf}
        )
        api_key = created_key.json()["apiKey"]
        await client.get(PROJECT_KEY_PROBE, headers=bearer(api_key))
        later = [
            await client.get(LIST),
            await client.get(f"/api/v1/projects/{project_id}"),
            await client.get("/api/v1/projects"),
            await client.get("/api/v1/auth/me"),
        ]
        secrets = [api_key, session_token, end_user_secret, csrf, PASSWORD]

        dump = []
        for table in ("users", "console_sessions", "api_keys", "end_user_secrets", "projects"):
            rows = (await session.execute(text(f"SELECT * FROM {table}"))).all()
            dump.append(repr(rows))
        database = "\n".join(dump)
        logs = caplog.text + "".join(repr(record.__dict__) for record in caplog.records)
        for secret in secrets:
            assert secret not in database
            assert secret not in logs
            for response in later:
                assert secret not in response.text
        assert owner.email in database  # the scan does read the rows
