"""HEAD answers like GET on every read route the app serves: same status, same headers
(Content-Type and Content-Length included), no body, for a caller the route admits and for an
anonymous one. The routes and their path parameters come from the authorization matrix's
declarations, so a new GET route is covered as soon as it is declared."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import REGISTRY
from sqlalchemy.ext.asyncio import AsyncSession

from billwarden.app import create_app
from billwarden_emulator.testing import serving
from tests.authz import ALLOW, World
from tests.conftest import Scratch
from tests.test_authorization_matrix import ROUTES, served_routes
from tests.test_authorization_matrix import world as world  # the matrix's two projects

READ_ROUTES = sorted(path for method, path in ROUTES if method == "GET")
# who calls each route for the authenticated comparison: the first of these it admits
CALLERS = ("admin", "member", "key", "end_user", "superuser")
# differ between any two answers, GET or GET
VOLATILE = {"x-request-id"}
# bodies that every request changes, the HEAD included (the process's request counters and
# latency sums): their length is only required to be there, not equal between two answers (two
# GETs may agree by chance while the HEAD between them differs by a digit)
CHANGING_BODIES = {"/metrics"}


def _caller(path: str) -> str:
    expected = ROUTES[("GET", path)].expected
    return next((who for who in CALLERS if expected[who] == ALLOW), "anonymous")


async def _both(
    client: httpx.AsyncClient, session: AsyncSession, url: str, **kwargs: object
) -> tuple[httpx.Response, httpx.Response, httpx.Response]:
    """GET, HEAD, GET again, each in a savepoint rolled back (as the matrix's cells)."""
    answers = []
    for method in ("GET", "HEAD", "GET"):
        cell = await session.begin_nested()
        try:
            answers.append(await client.request(method, url, **kwargs))  # type: ignore[arg-type]
        finally:
            await cell.rollback()
    return answers[0], answers[1], answers[2]


def _differences(
    get: httpx.Response, head: httpx.Response, again: httpx.Response, *, changing: bool = False
) -> list[str]:
    problems = []
    if head.status_code != get.status_code:
        problems.append(f"status {head.status_code} for HEAD, {get.status_code} for GET")
    if head.content:
        problems.append(f"HEAD sent a body of {len(head.content)} bytes")
    stable = {
        name
        for name in get.headers
        if name not in VOLATILE
        and not (changing and name == "content-length")
        and get.headers.get(name) == again.headers.get(name)
    }
    for name in stable:
        if head.headers.get(name) != get.headers[name]:
            problems.append(f"{name}: HEAD {head.headers.get(name)!r}, GET {get.headers[name]!r}")
    for name in {"content-type", "content-length"} & set(get.headers):
        if name not in head.headers:
            problems.append(f"HEAD lacks {name}")
    extra = set(head.headers) - set(get.headers)
    if extra:
        problems.append(f"HEAD only: {sorted(extra)}")
    return problems


class TestHeadLikeGet:
    def test_every_served_read_route_is_covered(self, app: FastAPI) -> None:
        served = {path for method, path in served_routes(app) if method == "GET"}
        assert served == set(READ_ROUTES)

    @pytest.mark.parametrize("path", READ_ROUTES)
    async def test_head_answers_as_get(
        self, path: str, client: httpx.AsyncClient, session: AsyncSession, world: World
    ) -> None:
        declaration = ROUTES[("GET", path)]
        url = path.format(**declaration.path(world))
        params = declaration.query(world)
        problems = []
        for who in dict.fromkeys((_caller(path), "anonymous")):
            get, head, again = await _both(
                client, session, url, headers=world.headers[who], params=params
            )
            differences = _differences(get, head, again, changing=path in CHANGING_BODIES)
            problems += [f"{who}: {problem}" for problem in differences]
            if who != "anonymous":  # the route admits this caller: a real answer is compared
                assert get.status_code < 400, (who, get.status_code, get.text[:200])
        assert not problems, f"{path}:\n" + "\n".join(problems)


class TestHeadElsewhere:
    async def test_head_on_a_write_only_route_answers_as_get_does(
        self, client: httpx.AsyncClient
    ) -> None:
        get = await client.get("/api/v1/auth/login")
        head = await client.head("/api/v1/auth/login")
        assert get.status_code == head.status_code == 405
        assert head.headers["allow"] == get.headers["allow"] and head.content == b""

    async def test_an_unknown_path_is_404_with_no_body(self, client: httpx.AsyncClient) -> None:
        head = await client.head("/api/v1/nowhere")
        assert head.status_code == 404 and head.content == b""
        assert head.headers["content-type"] == "application/json"
        assert int(head.headers["content-length"]) > 0

    async def test_the_openapi_document_lists_get_only(self, client: httpx.AsyncClient) -> None:
        paths = (await client.get("/openapi.json")).json()["paths"]
        assert not [path for path, item in paths.items() if "head" in item]
        assert "get" in paths["/api/v1/auth/me"]

    async def test_metrics_count_head_under_the_route_template(
        self, client: httpx.AsyncClient
    ) -> None:
        def counted() -> float:
            labels = {"method": "HEAD", "route": "/healthz", "status": "200"}
            return REGISTRY.get_sample_value("billwarden_http_requests_total", labels) or 0.0

        before = counted()
        assert (await client.head("/healthz")).status_code == 200
        assert counted() == before + 1


class TestHeadOverTheWire:
    async def test_a_real_server_answers_head_with_the_length_and_no_body(
        self, scratch: Scratch
    ) -> None:
        with serving(create_app(scratch.settings, configure_logs=False)) as base:
            async with httpx.AsyncClient(base_url=base) as http:
                for path in ("/healthz", "/login", "/admin/static/console.css", "/openapi.json"):
                    get, head = await http.get(path), await http.head(path)
                    assert head.status_code == get.status_code == 200, path
                    assert head.headers["content-length"] == str(len(get.content)), path
                    assert head.headers["content-type"] == get.headers["content-type"]
                    assert head.content == b""
                refused = await http.head("/api/v1/auth/me")
                assert refused.status_code == 401 and refused.content == b""
