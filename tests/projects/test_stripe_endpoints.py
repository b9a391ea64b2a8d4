"""The Stripe configuration routes, per project and mode, over HTTP: masked reads, key-prefix
rules, deactivation with history, webhook URLs and credential checks."""

from __future__ import annotations

import logging
import uuid

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from billwarden.identity.models import User
from billwarden.projects.models import ProjectRole
from tests.emulator_helpers import emulator_helper
from tests.identity.factories import People
from tests.projects.factories import ProjectWithSecret, Tenants

SECRET = "sk_test_51ConfigRouteSecret0000abcd"
WEBHOOK_SECRET = "whsec_configroute000000000001"


def config_url(project: ProjectWithSecret, suffix: str = "config") -> str:
    return f"/api/v1/payments/stripe/projects/{project.id}/{suffix}"


@pytest.fixture
async def owner(people: People) -> User:
    return await people.user()


@pytest.fixture
async def project(tenants: Tenants, owner: User) -> ProjectWithSecret:
    return await tenants.project(owner)


class TestConfig:
    async def test_not_configured_then_put_then_masked_get(
        self,
        client: httpx.AsyncClient,
        people: People,
        owner: User,
        project: ProjectWithSecret,
    ) -> None:
        headers = people.bearer(owner)
        empty = await client.get(config_url(project), headers=headers)
        assert empty.status_code == 200
        assert empty.json()["status"] == "not_configured"
        assert empty.json()["mode"] == "test"

        put = await client.put(
            config_url(project),
            headers=headers,
            json={
                "secretKey": SECRET,
                "publishableKey": "pk_test_publishable0001",
                "webhookSecrets": [WEBHOOK_SECRET],
            },
        )
        assert put.status_code == 200, put.text
        body = put.json()
        assert body["status"] == "configured"
        assert body["secretKey"] == "sk_test_...abcd"
        assert body["webhookSecrets"][0]["secret"] == "whsec_...0001"
        assert body["webhookUrl"] == (
            f"https://billing.example.test/api/v1/payments/stripe/webhooks/{project.id}/test"
        )
        got = await client.get(config_url(project), headers=headers)
        assert got.json() == body
        assert SECRET not in got.text and WEBHOOK_SECRET not in got.text

    async def test_live_key_in_test_mode_is_refused_and_nothing_stored(
        self,
        client: httpx.AsyncClient,
        people: People,
        owner: User,
        project: ProjectWithSecret,
        session: AsyncSession,
    ) -> None:
        response = await client.put(
            config_url(project),
            headers=people.bearer(owner),
            json={"secretKey": "sk_live_wrongmode00000001"},
        )
        assert response.status_code == 400
        assert response.json()["code"] == "INVALID_STRIPE_KEY"
        assert "sk_live_wrongmode" not in response.text
        count = await session.scalar(text("SELECT count(*) FROM stripe_configs"))
        assert count == 0

    async def test_live_mode_takes_live_keys_and_test_key_is_refused(
        self,
        client: httpx.AsyncClient,
        people: People,
        owner: User,
        project: ProjectWithSecret,
    ) -> None:
        headers = people.bearer(owner)
        live = f"{config_url(project)}?test_mode=false"
        refused = await client.put(live, headers=headers, json={"secretKey": SECRET})
        assert refused.status_code == 400
        assert refused.json()["code"] == "INVALID_STRIPE_KEY"
        accepted = await client.put(live, headers=headers, json={"secretKey": "rk_live_live000001"})
        assert accepted.status_code == 200 and accepted.json()["mode"] == "live"
        test_mode = await client.get(config_url(project), headers=headers)
        assert test_mode.json()["status"] == "not_configured"

    async def test_put_without_secret_keeps_the_stored_one(
        self,
        client: httpx.AsyncClient,
        people: People,
        owner: User,
        project: ProjectWithSecret,
    ) -> None:
        headers = people.bearer(owner)
        await client.put(config_url(project), headers=headers, json={"secretKey": SECRET})
        rotated = await client.put(
            config_url(project),
            headers=headers,
            json={"webhookSecrets": [WEBHOOK_SECRET, "whsec_configroute000000000002"]},
        )
        assert rotated.status_code == 200
        assert rotated.json()["secretKey"] == "sk_test_...abcd"
        assert len(rotated.json()["webhookSecrets"]) == 2

    @pytest.mark.parametrize(
        "raw_body",
        [
            '{"secretKey": "sk_test_has spaces"}',
            '{"secretKey": "sk_test_line\\r\\nbreak"}',
            '{"secretKey": "sk_test_n\\u00e9e"}',
            '{"secretKey": "sk_test_ok0001", "publishableKey": "pk_test_bad key"}',
            '{"secretKey": "sk_test_ok0001", "webhookSecrets": ["whsec_\\ud800"]}',
            '{"secretKey": "sk_test_ok0001", "webhookSecrets": ["whsec_' + "a" * 300 + '"]}',
            '{"secretKey": "sk_test_ok0001", "webhookSecrets": ["whsec_"]}',
        ],
    )
    async def test_malformed_keys_are_refused(
        self,
        client: httpx.AsyncClient,
        people: People,
        owner: User,
        project: ProjectWithSecret,
        raw_body: str,
    ) -> None:
        response = await client.put(
            config_url(project),
            headers={**people.bearer(owner), "content-type": "application/json"},
            content=raw_body.encode(),
        )
        assert response.status_code == 400, response.text
        assert response.json()["code"] in {"INVALID_STRIPE_KEY", "VALIDATION_ERROR"}

    async def test_first_put_needs_a_secret_key(
        self,
        client: httpx.AsyncClient,
        people: People,
        owner: User,
        project: ProjectWithSecret,
    ) -> None:
        response = await client.put(
            config_url(project), headers=people.bearer(owner), json={"webhookSecrets": []}
        )
        assert response.status_code == 400
        assert response.json()["code"] == "VALIDATION_ERROR"
        assert response.json()["details"]["field"] == "secretKey"

    async def test_unknown_field_is_a_validation_error(
        self,
        client: httpx.AsyncClient,
        people: People,
        owner: User,
        project: ProjectWithSecret,
    ) -> None:
        response = await client.put(
            config_url(project), headers=people.bearer(owner), json={"secret_key_typo": "x"}
        )
        assert response.status_code == 400
        assert response.json()["code"] == "VALIDATION_ERROR"

    async def test_delete_deactivates_and_keeps_history(
        self,
        client: httpx.AsyncClient,
        people: People,
        owner: User,
        project: ProjectWithSecret,
        session: AsyncSession,
    ) -> None:
        headers = people.bearer(owner)
        await client.put(config_url(project), headers=headers, json={"secretKey": SECRET})
        deleted = await client.delete(config_url(project), headers=headers)
        assert deleted.status_code == 200 and deleted.json()["status"] == "not_configured"
        again = await client.delete(config_url(project), headers=headers)
        assert again.status_code == 404 and again.json()["code"] == "STRIPE_NOT_CONFIGURED"
        rows = await session.scalar(text("SELECT count(*) FROM stripe_configs"))
        assert rows == 1

    async def test_member_reads_but_cannot_write(
        self,
        client: httpx.AsyncClient,
        people: People,
        tenants: Tenants,
        project: ProjectWithSecret,
    ) -> None:
        member = await people.user()
        await tenants.add_member(project, member, ProjectRole.MEMBER)
        headers = people.bearer(member)
        assert (await client.get(config_url(project), headers=headers)).status_code == 200
        refused = await client.put(config_url(project), headers=headers, json={"secretKey": SECRET})
        assert refused.status_code == 403
        assert refused.json()["code"] == "PROJECT_ADMIN_REQUIRED"

    async def test_other_projects_admin_sees_nothing(
        self,
        client: httpx.AsyncClient,
        people: People,
        tenants: Tenants,
        project: ProjectWithSecret,
    ) -> None:
        stranger = await people.user()
        await tenants.project(stranger)
        response = await client.get(config_url(project), headers=people.bearer(stranger))
        assert response.status_code == 404
        assert response.json()["code"] == "PROJECT_NOT_FOUND"

    async def test_secret_never_logged(
        self,
        client: httpx.AsyncClient,
        people: People,
        owner: User,
        project: ProjectWithSecret,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        with caplog.at_level(logging.DEBUG):
            await client.put(
                config_url(project),
                headers=people.bearer(owner),
                json={"secretKey": SECRET, "webhookSecrets": [WEBHOOK_SECRET]},
            )
            await client.post(
                config_url(project, "validate-credentials"), headers=people.bearer(owner)
            )
        assert SECRET not in caplog.text and WEBHOOK_SECRET not in caplog.text


class TestWebhookUrls:
    async def test_one_absolute_url_per_mode(
        self,
        client: httpx.AsyncClient,
        people: People,
        owner: User,
        project: ProjectWithSecret,
    ) -> None:
        response = await client.get(
            config_url(project, "webhook-urls"), headers=people.bearer(owner)
        )
        assert response.status_code == 200
        base = "https://billing.example.test/api/v1/payments/stripe/webhooks"
        assert response.json() == {
            "projectId": str(project.id),
            "test": f"{base}/{project.id}/test",
            "live": f"{base}/{project.id}/live",
        }


class TestValidateCredentials:
    async def put_key(
        self,
        client: httpx.AsyncClient,
        headers: dict[str, str],
        project: ProjectWithSecret,
        key: str,
    ) -> None:
        response = await client.put(config_url(project), headers=headers, json={"secretKey": key})
        assert response.status_code == 200, response.text

    async def test_key_the_emulator_accepts_is_valid(
        self,
        client: httpx.AsyncClient,
        people: People,
        owner: User,
        project: ProjectWithSecret,
    ) -> None:
        headers = people.bearer(owner)
        await self.put_key(client, headers, project, f"sk_test_{uuid.uuid4().hex}")
        response = await client.post(config_url(project, "validate-credentials"), headers=headers)
        assert response.status_code == 200
        assert response.json() == {
            "projectId": str(project.id),
            "mode": "test",
            "valid": True,
            "livemode": False,
            "error": None,
        }

    async def test_revoked_key_is_invalid_with_stripes_message(
        self,
        client: httpx.AsyncClient,
        people: People,
        owner: User,
        project: ProjectWithSecret,
        emulator_url: str,
    ) -> None:
        headers = people.bearer(owner)
        key = f"sk_test_{uuid.uuid4().hex}"
        await self.put_key(client, headers, project, key)
        await emulator_helper(emulator_url, key, "/_emulator/keys/revoke")
        response = await client.post(config_url(project, "validate-credentials"), headers=headers)
        assert response.status_code == 200
        body = response.json()
        assert body["valid"] is False and body["livemode"] is None
        assert "api key" in body["error"].lower()
        assert key not in response.text

    async def test_revoked_restricted_key_is_invalid(
        self,
        client: httpx.AsyncClient,
        people: People,
        owner: User,
        project: ProjectWithSecret,
        emulator_url: str,
    ) -> None:
        headers = people.bearer(owner)
        restricted_key = f"rk_test_{uuid.uuid4().hex}"
        await self.put_key(client, headers, project, restricted_key)
        await emulator_helper(emulator_url, restricted_key, "/_emulator/keys/revoke")
        response = await client.post(config_url(project, "validate-credentials"), headers=headers)
        assert response.status_code == 200 and response.json()["valid"] is False

    async def test_without_configuration_is_404(
        self,
        client: httpx.AsyncClient,
        people: People,
        owner: User,
        project: ProjectWithSecret,
    ) -> None:
        response = await client.post(
            config_url(project, "validate-credentials"), headers=people.bearer(owner)
        )
        assert response.status_code == 404
        assert response.json()["code"] == "STRIPE_NOT_CONFIGURED"

    async def test_unreachable_stripe_is_502(
        self,
        client: httpx.AsyncClient,
        people: People,
        owner: User,
        project: ProjectWithSecret,
        emulator_url: str,
    ) -> None:
        headers = people.bearer(owner)
        key = f"sk_test_{uuid.uuid4().hex}"
        await self.put_key(client, headers, project, key)
        await emulator_helper(
            emulator_url,
            key,
            "/_emulator/faults",
            json={"requests": [{"path": "/v1/balance", "status": 500, "count": 1}]},
        )
        response = await client.post(config_url(project, "validate-credentials"), headers=headers)
        assert response.status_code == 502
        assert response.json()["code"] == "STRIPE_ERROR"
