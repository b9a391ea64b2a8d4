"""The service routes an operator and a load balancer rely on."""

from __future__ import annotations

import uuid

import httpx
import pytest

from billwarden.db.migrate import head_revision


class TestHealth:
    async def test_healthz_answers_without_touching_the_database(
        self, client: httpx.AsyncClient
    ) -> None:
        response = await client.get("/healthz")
        assert response.status_code == 200
        assert response.json()["status"] == "ok"

    async def test_readyz_reports_database_and_current_migration(
        self, client: httpx.AsyncClient
    ) -> None:
        response = await client.get("/readyz")
        assert response.status_code == 200
        body = response.json()
        assert body == {
            "status": "ready",
            "database": "ok",
            "migration": head_revision(),
            "worker": {
                "status": "ok",
                "thresholdSeconds": 300,
                "oldestWaitSeconds": 0.0,
                "stalledQueues": [],
            },
        }


class TestRequestId:
    async def test_generated_when_absent(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/healthz")
        assert len(response.headers["x-request-id"]) == 32

    async def test_echoed_when_given(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/healthz", headers={"X-Request-ID": "trace-abc.123"})
        assert response.headers["x-request-id"] == "trace-abc.123"

    async def test_replaced_when_unsafe(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/healthz", headers={"X-Request-ID": "bad id\twith spaces"})
        assert response.headers["x-request-id"] != "bad id\twith spaces"

    @pytest.mark.parametrize("newline", ["\n", "\r\n"], ids=["lf", "crlf"])
    async def test_replaced_not_echoed_with_a_trailing_newline(
        self, client: httpx.AsyncClient, newline: str
    ) -> None:
        """Python's `$` also matches before a final "\\n": the id is checked in full."""
        response = await client.get("/healthz", headers={"X-Request-ID": f"trace-1{newline}"})
        assert response.status_code == 200
        echoed = response.headers["x-request-id"]
        assert "trace-1" not in echoed
        assert uuid.UUID(hex=echoed).hex == echoed  # one billwarden made


class TestMetrics:
    async def test_counts_requests_by_route_template(self, client: httpx.AsyncClient) -> None:
        await client.get("/healthz")
        await client.get("/no/such/route")
        response = await client.get("/metrics")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain")
        text = response.text
        assert 'billwarden_http_requests_total{method="GET",route="/healthz",status="200"}' in text
        assert 'route="<unmatched>",status="404"' in text
        assert "billwarden_http_request_duration_seconds_bucket" in text


class TestOpenApi:
    async def test_schema_and_docs_are_served(self, client: httpx.AsyncClient) -> None:
        schema = await client.get("/openapi.json")
        assert schema.status_code == 200
        assert schema.json()["info"]["title"] == "billwarden"
        assert "/readyz" in schema.json()["paths"]
        docs = await client.get("/docs")
        assert docs.status_code == 200
        assert "swagger-ui" in docs.text

    async def test_docs_load_their_scripts_from_billwarden_not_a_cdn(
        self, client: httpx.AsyncClient
    ) -> None:
        page = (await client.get("/docs")).text
        assert "cdn." not in page and "https://" not in page
        script = await client.get("/docs-assets/swagger-ui-bundle.js")
        assert script.status_code == 200 and len(script.content) > 100_000
        css = await client.get("/docs-assets/swagger-ui.css")
        assert css.status_code == 200

    async def test_validation_errors_are_documented_as_400_envelopes(
        self, client: httpx.AsyncClient
    ) -> None:
        schema = (await client.get("/openapi.json")).json()
        for path, item in schema["paths"].items():
            for method, operation in item.items():
                assert "422" not in operation["responses"], f"{method} {path} documents 422"
        login = schema["paths"]["/api/v1/auth/login"]["post"]["responses"]["400"]
        assert login["content"]["application/json"]["schema"]["$ref"].endswith("ErrorEnvelope")
        assert "HTTPValidationError" not in schema["components"]["schemas"]


class TestSecurityHeaders:
    async def test_responses_are_not_cached_sniffed_or_framed(
        self, client: httpx.AsyncClient
    ) -> None:
        for response in (await client.get("/healthz"), await client.get("/nope")):
            assert response.headers["cache-control"] == "no-store"
            assert response.headers["x-content-type-options"] == "nosniff"
            assert response.headers["x-frame-options"] == "DENY"
