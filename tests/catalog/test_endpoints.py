"""The catalog over HTTP: members read it, admins replace it as JSON, versions count up, and a bad
document is refused whole while the previous one stays in force."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import httpx

from billwarden.projects.models import ProjectRole
from tests.catalog.factories import Catalogs
from tests.identity.factories import People
from tests.projects.factories import Tenants

SAMPLE = tomllib.loads((Path(__file__).parents[2] / "examples" / "catalog.toml").read_text())


def url(project_id: object) -> str:
    return f"/api/v1/projects/{project_id}/catalog"


class TestReplace:
    async def test_admin_loads_the_sample_as_json_and_reads_it_back(
        self, client: httpx.AsyncClient, people: People, tenants: Tenants
    ) -> None:
        owner = await people.user()
        project = await tenants.project(owner)
        put = await client.put(url(project.id), json=SAMPLE, headers=people.bearer(owner))
        assert put.status_code == 200, put.text
        body = put.json()
        assert body["version"] == 1
        assert body["document"]["plans"]["premium_monthly"]["entitlement"] == "PREMIUM_MONTHLY"
        assert body["document"]["checkout"]["default_purchase_key"] == "premium_monthly"
        assert body["resolvedPrices"] == {"test": {}, "live": {}}
        got = await client.get(url(project.id), headers=people.bearer(owner))
        assert got.status_code == 200
        assert got.json()["document"] == body["document"]

    async def test_each_change_is_a_new_version_and_the_same_document_is_not(
        self, client: httpx.AsyncClient, people: People, tenants: Tenants
    ) -> None:
        owner = await people.user()
        project = await tenants.project(owner)
        headers = people.bearer(owner)
        assert (await client.put(url(project.id), json=SAMPLE, headers=headers)).json()[
            "version"
        ] == 1
        again = await client.put(url(project.id), json=SAMPLE, headers=headers)
        assert again.json()["version"] == 1
        changed: dict[str, Any] = {**SAMPLE, "free": {"features": ["basic"]}}
        assert (await client.put(url(project.id), json=changed, headers=headers)).json()[
            "version"
        ] == 2

    async def test_bad_document_is_refused_whole_and_the_previous_stays(
        self, client: httpx.AsyncClient, people: People, tenants: Tenants
    ) -> None:
        owner = await people.user()
        project = await tenants.project(owner)
        headers = people.bearer(owner)
        await client.put(url(project.id), json=SAMPLE, headers=headers)
        bad = {**SAMPLE, "plans": {**SAMPLE["plans"], "x": {"family": "memb"}}}
        refused = await client.put(url(project.id), json=bad, headers=headers)
        assert refused.status_code == 400
        body = refused.json()
        assert body["code"] == "INVALID_CATALOG"
        assert "plans.x.family: unknown family 'memb'" in body["message"]
        assert body["details"]["errors"] == [
            {"path": "plans.x.family", "message": "unknown family 'memb'"}
        ]
        current = await client.get(url(project.id), headers=headers)
        assert current.json()["version"] == 1
        assert "x" not in current.json()["document"]["plans"]

    async def test_a_body_that_is_not_an_object_is_a_validation_error(
        self, client: httpx.AsyncClient, people: People, tenants: Tenants
    ) -> None:
        owner = await people.user()
        project = await tenants.project(owner)
        refused = await client.put(url(project.id), json=["plans"], headers=people.bearer(owner))
        assert refused.status_code == 400
        assert refused.json()["code"] == "VALIDATION_ERROR"


class TestRead:
    async def test_no_catalog_yet_is_404_catalog_not_loaded(
        self, client: httpx.AsyncClient, people: People, tenants: Tenants
    ) -> None:
        owner = await people.user()
        project = await tenants.project(owner)
        missing = await client.get(url(project.id), headers=people.bearer(owner))
        assert missing.status_code == 404
        assert missing.json()["code"] == "CATALOG_NOT_LOADED"

    async def test_member_reads_but_may_not_replace(
        self,
        client: httpx.AsyncClient,
        people: People,
        tenants: Tenants,
        catalogs: Catalogs,
    ) -> None:
        owner, member = await people.user(), await people.user()
        project = await tenants.project(owner)
        await tenants.add_member(project, member, ProjectRole.MEMBER)
        await catalogs.load(project.id, SAMPLE)
        read = await client.get(url(project.id), headers=people.bearer(member))
        assert read.status_code == 200
        refused = await client.put(url(project.id), json=SAMPLE, headers=people.bearer(member))
        assert refused.status_code == 403
        assert refused.json()["code"] == "PROJECT_ADMIN_REQUIRED"


class TestOpenApi:
    async def test_the_put_body_is_documented_as_the_catalog_document(
        self, client: httpx.AsyncClient
    ) -> None:
        document = (await client.get("/openapi.json")).json()
        put = document["paths"]["/api/v1/projects/{project_id}/catalog"]["put"]
        schema = put["requestBody"]["content"]["application/json"]["schema"]
        assert schema["$ref"] == "#/components/schemas/CatalogDocument"
        assert "plans" in document["components"]["schemas"]["CatalogDocument"]["properties"]
