"""Every error, ours or the framework's, reaches the client in one envelope."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from pydantic import BaseModel, Field
from sqlalchemy import func, select

from billwarden.db.unit_of_work import DbSession
from billwarden.errors import BillwardenError, Conflict
from billwarden.projects.models import Project


class Widget(BaseModel):
    name: str = Field(min_length=1)
    quantity: int


def _probe_router() -> APIRouter:
    router = APIRouter(prefix="/probe")

    @router.post("/widgets")
    async def create_widget(widget: Widget) -> Widget:
        return widget

    @router.post("/conflict")
    async def conflict() -> None:
        raise Conflict("That widget exists already.", details={"name": "w"})

    @router.post("/crash")
    async def crash(session: DbSession) -> None:
        session.add(Project(name="half written", slug="half-written"))
        await session.flush()
        raise RuntimeError("database password is hunter2")

    return router


@pytest.fixture
async def probe(app: FastAPI, client: httpx.AsyncClient) -> AsyncIterator[httpx.AsyncClient]:
    app.include_router(_probe_router())
    yield client


def assert_envelope(response: httpx.Response, status: int, code: str) -> dict[str, object]:
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"code", "message", "details"}
    assert body["code"] == code
    assert isinstance(body["message"], str) and body["message"]
    return body


class TestValidationErrors:
    async def test_malformed_json_is_a_400_envelope(self, probe: httpx.AsyncClient) -> None:
        response = await probe.post(
            "/probe/widgets",
            content=b'{"name": "w", "quantity": ',
            headers={"content-type": "application/json"},
        )
        body = assert_envelope(response, 400, "VALIDATION_ERROR")
        assert body["message"] == "The request body is not valid JSON."

    async def test_wrong_type_names_the_field(self, probe: httpx.AsyncClient) -> None:
        response = await probe.post("/probe/widgets", json={"name": "w", "quantity": "many"})
        body = assert_envelope(response, 400, "VALIDATION_ERROR")
        fields = body["details"]["fields"]  # type: ignore[index]
        assert [(f["location"], f["field"]) for f in fields] == [("body", "quantity")]
        assert "raw" not in str(body) and "pydantic" not in str(body).lower()

    async def test_missing_field_and_empty_string(self, probe: httpx.AsyncClient) -> None:
        response = await probe.post("/probe/widgets", json={"name": ""})
        body = assert_envelope(response, 400, "VALIDATION_ERROR")
        names = sorted(f["field"] for f in body["details"]["fields"])  # type: ignore[index]
        assert names == ["name", "quantity"]

    async def test_valid_body_passes(self, probe: httpx.AsyncClient) -> None:
        response = await probe.post("/probe/widgets", json={"name": "w", "quantity": 2})
        assert response.status_code == 200
        assert response.json() == {"name": "w", "quantity": 2}


class TestRoutingErrors:
    async def test_unknown_route_is_a_404_envelope(self, client: httpx.AsyncClient) -> None:
        body = assert_envelope(await client.get("/api/v1/nothing-here"), 404, "NOT_FOUND")
        assert "/api/v1/nothing-here" in str(body["message"])

    async def test_wrong_method_is_a_405_envelope(self, client: httpx.AsyncClient) -> None:
        response = await client.delete("/healthz")
        assert_envelope(response, 405, "METHOD_NOT_ALLOWED")
        assert "GET" in response.headers["allow"]


class TestDomainErrors:
    async def test_billwarden_error_keeps_code_status_and_details(
        self, probe: httpx.AsyncClient
    ) -> None:
        body = assert_envelope(await probe.post("/probe/conflict"), 409, "CONFLICT")
        assert body["details"] == {"name": "w"}


class TestUnexpectedErrors:
    async def test_crash_is_a_500_without_internals_and_nothing_written(
        self, probe: httpx.AsyncClient, session: DbSession, caplog: pytest.LogCaptureFixture
    ) -> None:
        with caplog.at_level(logging.ERROR, logger="billwarden.errors"):
            response = await probe.post("/probe/crash", headers={"X-Request-ID": "req-crash-1"})
        body = assert_envelope(response, 500, "INTERNAL_SERVER_ERROR")
        assert body["details"] == {"requestId": "req-crash-1"}
        assert "hunter2" not in response.text and "Traceback" not in response.text
        assert "RuntimeError" not in response.text
        logged = [r for r in caplog.records if r.name == "billwarden.errors"]
        assert logged and logged[0].exc_info is not None
        assert getattr(logged[0], "request_id", None) == "req-crash-1"
        assert response.headers["x-request-id"] == "req-crash-1"
        count = await session.scalar(
            select(func.count()).select_from(Project).where(Project.slug == "half-written")
        )
        assert count == 0


class TestErrorHeaders:
    async def test_billwarden_error_headers_reach_the_client(
        self, app: FastAPI, client: httpx.AsyncClient
    ) -> None:
        router = APIRouter()

        @router.get("/probe/slow-down")
        async def slow_down() -> None:
            raise BillwardenError(
                "Slow down.", code="SLOW_DOWN", status_code=429, headers={"Retry-After": "7"}
            )

        app.include_router(router)
        response = await client.get("/probe/slow-down")
        assert_envelope(response, 429, "SLOW_DOWN")
        assert response.headers["retry-after"] == "7"
