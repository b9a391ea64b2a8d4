"""Under bad input and contention, answers stay 4xx/503 envelopes and nothing is half-written."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from billwarden.app import create_app
from billwarden.config import Settings
from billwarden.crypto import SecretDecryptionError
from billwarden.db import migrate
from billwarden.db.engine import create_engine
from billwarden.db.unit_of_work import DbSession
from billwarden.projects.models import Project
from billwarden.projects.service import ProjectService
from tests.conftest import drop_database, new_database_url


class _ServerError(Exception):
    sqlstate = "57P03"


def _probe_router() -> APIRouter:
    router = APIRouter(prefix="/probe")

    @router.post("/projects/{slug}", status_code=201)
    async def create_project(slug: str, session: DbSession) -> dict[str, str]:
        # read, think, then write: the shape that trips SQLite's deferred transactions
        await ProjectService(session).projects.get_by_slug(slug)
        await asyncio.sleep(0.01)
        project = await ProjectService(session).create_project(slug, slug)
        return {"id": str(project.id)}

    @router.post("/duplicate-slug")
    async def duplicate_slug(session: DbSession) -> None:
        # bypasses the service's check, as a concurrent request would
        session.add(Project(name="first", slug="taken"))
        session.add(Project(name="second", slug="taken"))
        await session.flush()

    @router.get("/locked")
    async def locked() -> None:
        raise OperationalError("SELECT 1", {}, Exception("database is locked"))

    @router.get("/restarting")
    async def restarting() -> None:
        # asyncpg's "the database system is shutting down" (SQLSTATE 57P03), as SQLAlchemy
        # raises it: a plain DBAPIError, not an OperationalError
        raise DBAPIError("SELECT 1", {}, _ServerError("the database system is shutting down"))

    @router.get("/refused")
    async def refused() -> None:
        # a new pool connection to a server that is down: asyncpg's OSError, not wrapped
        raise ConnectionRefusedError(111, "Connection refused")

    @router.get("/pool-exhausted")
    async def pool_exhausted() -> None:
        raise PoolTimeout("QueuePool limit of size 10 overflow 10 reached")

    @router.get("/unreadable-secret")
    async def unreadable_secret() -> None:
        raise SecretDecryptionError("cannot decrypt")

    return router


async def _client(app: FastAPI) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


@pytest.fixture
async def probe(app: FastAPI, client: httpx.AsyncClient) -> httpx.AsyncClient:
    app.include_router(_probe_router())
    return client


class TestNulCharacters:
    async def test_in_a_json_body(self, client: httpx.AsyncClient) -> None:
        response = await client.post(
            "/api/v1/auth/login", json={"email": "a\u0000@example.test", "password": "secret!"}
        )
        assert response.status_code == 400
        assert response.json()["code"] == "VALIDATION_ERROR"
        assert response.json()["details"] == {"location": "body"}

    async def test_in_a_form_body(self, client: httpx.AsyncClient) -> None:
        response = await client.post(
            "/api/v1/auth/token",
            content=b"username=a%00%40example.test&password=whatever",
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        assert response.status_code == 400
        assert response.json()["code"] == "VALIDATION_ERROR"

    async def test_in_a_query_string(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/api/v1/projects?limit=1%00")
        assert response.status_code == 400
        assert response.json()["code"] == "VALIDATION_ERROR"
        assert response.json()["details"] == {"location": "query string"}

    async def test_clean_body_reaches_the_route(self, client: httpx.AsyncClient) -> None:
        response = await client.post(
            "/api/v1/auth/login", json={"email": "nobody@example.test", "password": "secret!"}
        )
        assert response.status_code == 401
        assert response.json()["code"] == "INVALID_CREDENTIALS"


class TestBackstops:
    async def test_unforeseen_uniqueness_conflict_is_409_and_nothing_written(
        self, probe: httpx.AsyncClient, session: DbSession
    ) -> None:
        response = await probe.post("/probe/duplicate-slug")
        assert response.status_code == 409
        assert response.json()["code"] == "CONFLICT"
        count = await session.scalar(select(func.count()).select_from(Project))
        assert count == 0

    async def test_locked_database_is_503_with_retry_after(self, probe: httpx.AsyncClient) -> None:
        response = await probe.get("/probe/locked")
        assert response.status_code == 503
        assert response.json()["code"] == "DATABASE_UNAVAILABLE"
        assert response.headers["retry-after"] == "1"

    @pytest.mark.parametrize("path", ["/probe/restarting", "/probe/refused"])
    async def test_database_restarting_is_503_and_handled_by_the_app(
        self, app: FastAPI, probe: httpx.AsyncClient, path: str
    ) -> None:
        # raise_app_exceptions: an error answered by the catch-all handler is raised again by
        # Starlette to the server, which logs it as a crash ("Exception in ASGI application")
        # on every request while PostgreSQL restarts; a handled one is not
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=True)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            response = await http.get(path)
        assert response.status_code == 503
        assert response.json()["code"] == "DATABASE_UNAVAILABLE"
        assert response.headers["retry-after"] == "1"

    async def test_exhausted_connection_pool_is_503_with_retry_after(
        self, probe: httpx.AsyncClient
    ) -> None:
        # an overloaded process whose every connection stayed busy: "busy, retry", not a 500
        response = await probe.get("/probe/pool-exhausted")
        assert response.status_code == 503
        assert response.json()["code"] == "DATABASE_UNAVAILABLE"
        assert response.headers["retry-after"] == "1"

    async def test_unreadable_secret_is_503_without_internals(
        self, probe: httpx.AsyncClient
    ) -> None:
        response = await probe.get("/probe/unreadable-secret")
        assert response.status_code == 503
        assert response.json()["code"] == "SECRETS_UNREADABLE"


@pytest.fixture
async def real_app(
    backend: str, tmp_path: Path, settings: Settings
) -> AsyncIterator[tuple[FastAPI, str]]:
    """The app on a database of its own with the production session dependency (no test
    transaction), so concurrent requests really contend."""
    url = await new_database_url(backend, tmp_path)
    engine = create_engine(url)
    try:
        await migrate.upgrade(engine)
        app = create_app(
            settings.model_copy(update={"database_url": url}), engine=engine, configure_logs=False
        )
        app.include_router(_probe_router())
        yield app, url
    finally:
        await engine.dispose()
        await drop_database(url)


class TestConcurrentWriters:
    async def test_parallel_read_then_write_requests_all_succeed(
        self, real_app: tuple[FastAPI, str]
    ) -> None:
        app, _ = real_app
        async with await _client(app) as http:
            slugs = [f"p-{uuid.uuid4().hex[:8]}" for _ in range(12)]
            responses = await asyncio.gather(*(http.post(f"/probe/projects/{s}") for s in slugs))
        assert [r.status_code for r in responses] == [201] * 12, [r.text for r in responses]

    async def test_parallel_duplicates_get_one_201_and_conflicts(
        self, real_app: tuple[FastAPI, str]
    ) -> None:
        app, _ = real_app
        async with await _client(app) as http:
            responses = await asyncio.gather(*(http.post("/probe/projects/same") for _ in range(6)))
        statuses = sorted(r.status_code for r in responses)
        assert statuses == [201] + [409] * 5, [r.text for r in responses]
        conflicts = {r.json()["code"] for r in responses if r.status_code == 409}
        assert conflicts == {"PROJECT_SLUG_TAKEN"}
