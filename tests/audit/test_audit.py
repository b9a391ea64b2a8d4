"""Every admin write is in the audit log, in its own transaction, with who, what, before and
after, and never a secret."""

from __future__ import annotations

import uuid

import httpx
import orjson

from tests.identity.factories import People
from tests.projects.factories import Tenants

SECRET_KEY = f"sk_test_{uuid.uuid4().hex}"
WEBHOOK_SECRET = "whsec_audittests0000000000000000001"


class TestAdminWritesAreAudited:
    async def test_changes_with_before_and_after_and_no_secret(
        self, client: httpx.AsyncClient, people: People, tenants: Tenants
    ) -> None:
        owner = await people.user()
        project = await tenants.project(owner, "Audited")
        headers = people.bearer(owner)
        base = f"/api/v1/projects/{project.id}"
        renamed = await client.patch(base, json={"name": "Audited shop"}, headers=headers)
        assert renamed.status_code == 200, renamed.text
        configured = await client.put(
            f"/api/v1/payments/stripe/projects/{project.id}/config",
            json={"secretKey": SECRET_KEY, "webhookSecrets": [WEBHOOK_SECRET]},
            headers=headers,
        )
        assert configured.status_code == 200, configured.text
        key = await client.post(
            "/api-dashboard/keys/generate",
            json={"projectId": str(project.id), "name": "backend", "mode": "test"},
            headers=headers,
        )
        assert key.status_code == 201, key.text
        endpoint = await client.post(
            f"{base}/webhook-endpoints",
            json={"url": "https://app.example.test/hooks", "events": ["*"]},
            headers=headers,
        )
        assert endpoint.status_code == 201, endpoint.text

        log = await client.get(
            "/api/v1/admin/audit", params={"projectId": str(project.id)}, headers=headers
        )
        assert log.status_code == 200, log.text
        entries = log.json()["items"]
        assert [entry["action"] for entry in entries] == [
            "notifications.endpoint_created",
            "api_key.created",
            "stripe.config_updated",
            "project.updated",
        ]
        assert {entry["actor"] for entry in entries} == {owner.email}
        renaming = entries[-1]
        assert renaming["before"]["name"] == "Audited"
        assert renaming["after"]["name"] == "Audited shop"
        stripe = entries[-2]
        assert stripe["before"] is None
        assert stripe["after"]["activeWebhookSecrets"] == 1
        assert stripe["after"]["secretKeyHint"] == configured.json()["secretKey"]
        written = orjson.dumps(entries).decode()
        for secret in (
            SECRET_KEY,
            WEBHOOK_SECRET,
            key.json()["apiKey"],
            endpoint.json()["secret"],
            project.end_user_secret,
        ):
            assert secret not in written

        only_keys = await client.get(
            "/api/v1/admin/audit",
            params={"projectId": str(project.id), "action": "api_key.created"},
            headers=headers,
        )
        assert [entry["targetId"] for entry in only_keys.json()["items"]] == [key.json()["keyId"]]

    async def test_members_cannot_read_it(
        self, client: httpx.AsyncClient, people: People, tenants: Tenants
    ) -> None:
        from billwarden.projects.models import ProjectRole

        owner = await people.user()
        member = await people.user()
        project = await tenants.project(owner)
        await tenants.add_member(project, member, ProjectRole.MEMBER)
        refused = await client.get(
            "/api/v1/admin/audit",
            params={"projectId": str(project.id)},
            headers=people.bearer(member),
        )
        assert refused.status_code == 403
        assert refused.json()["code"] == "PROJECT_ADMIN_REQUIRED"
