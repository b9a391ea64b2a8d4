"""Every route the app serves, against every kind of caller, with the answer declared per cell.

Each domain declares its routes in `tests/<domain>/authz.py`; they are merged here from the one
list of domains, with the service routes. A route without a declaration fails
`test_every_route_is_declared`, so a new route cannot ship without deciding who may call it. Each
cell runs inside a savepoint that is rolled back, so one caller's write never changes what the next
caller sees.
"""

from __future__ import annotations

import importlib
import time
import uuid
from types import ModuleType

import httpx
import jwt
import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.routing import Mount

from billwarden.config import Settings
from billwarden.core.modes import Mode
from billwarden.crypto import SecretBox
from billwarden.domains import DOMAINS
from billwarden.identity.repository import KeyViewer
from billwarden.identity.service import ApiKeyService
from billwarden.projects.models import ProjectRole
from tests.authz import (
    ALLOW,
    PRINCIPALS,
    PUBLIC,
    SAFE,
    Declaration,
    Routes,
    World,
)
from tests.factories import Factories
from tests.identity.factories import People
from tests.projects.factories import ProjectWithSecret, Tenants

# the principals that belong to project A; every other caller must never see its id
INSIDERS = {"member", "member_token", "member_no_csrf", "admin", "superuser", "key", "end_user"}
EXPECTED_CODES = {
    # seed 004's routes answer its own codes (UNAUTHORIZED, FORBIDDEN); so do the seeds' admin
    # routes to an end user without an admin role (FORBIDDEN)
    401: {"UNAUTHENTICATED", "UNAUTHORIZED"},
    403: {"CSRF_FAILED", "PROJECT_ADMIN_REQUIRED", "FORBIDDEN"},
    404: {
        "PROJECT_NOT_FOUND",
        "API_KEY_NOT_FOUND",
        "WEBHOOK_EVENT_NOT_FOUND",
        "CHECKOUT_SESSION_NOT_FOUND",
        "SUBSCRIPTION_NOT_FOUND",
        "NO_CUSTOMER",
        "RUN_NOT_FOUND",
        "USAGE_EVENT_NOT_FOUND",
        "USE_PROJECT_WEBHOOK_URL",
        "INVITATION_NOT_FOUND",
    },
}

SERVICE_ROUTES: Routes = {
    ("GET", "/openapi.json"): Declaration(PUBLIC),
    ("GET", "/docs"): Declaration(PUBLIC),
    ("GET", "/docs/oauth2-redirect"): Declaration(PUBLIC),
    ("GET", "/docs-assets/{path}"): Declaration(PUBLIC, path=lambda w: {"path": "swagger-ui.css"}),
    ("GET", "/healthz"): Declaration(PUBLIC),
    ("GET", "/readyz"): Declaration(PUBLIC),
    ("GET", "/metrics"): Declaration(PUBLIC),
}
DOMAIN_DECLARATIONS: list[ModuleType] = [
    importlib.import_module(f"tests.{domain}.authz") for domain in DOMAINS
]


def merged_routes() -> Routes:
    routes = dict(SERVICE_ROUTES)
    for module in DOMAIN_DECLARATIONS:
        twice = routes.keys() & module.ROUTES.keys()
        assert not twice, f"{module.__name__} declares routes declared elsewhere: {twice}"
        routes.update(module.ROUTES)
    return routes


ROUTES = merged_routes()


def served_routes(app: FastAPI) -> set[tuple[str, str]]:
    routes = set()
    for context in iter_route_contexts(app.routes):
        if isinstance(context.original_route, Mount):
            routes.add(("GET", f"{context.path}/{{path}}"))
            continue
        methods = getattr(context.original_route, "methods", None) or set()
        for method in methods - {"HEAD"}:
            assert context.path is not None
            routes.add((method, context.path))
    return routes


def end_user_token(project: ProjectWithSecret, secret: str, *, expires_in: int = 300) -> str:
    claims = {
        "sub": "end-user-1",
        "project_id": str(project.id),
        "exp": int(time.time()) + expires_in,
        "mode": "test",
    }
    return jwt.encode(claims, secret, algorithm="HS256")


@pytest.fixture
async def world(
    people: People,
    tenants: Tenants,
    session: AsyncSession,
    secret_box: SecretBox,
    settings: Settings,
) -> World:
    owner = await people.user()
    member = await people.user()
    admin = await people.user()
    superuser = await people.user(superuser=True)
    stranger = await people.user()
    project = await tenants.project(owner)
    other_project = await tenants.project(stranger)
    await tenants.add_member(project, member, ProjectRole.MEMBER)
    await tenants.add_member(project, admin, ProjectRole.ADMIN)
    keys = ApiKeyService(session, secret_box)
    owners_key = await keys.create_key(project.id, Mode.TEST, "owner's key", owner)
    deactivated = await keys.create_key(project.id, Mode.TEST, "old key", owner)
    await keys.deactivate_key(
        KeyViewer(owner, frozenset({project.id}), frozenset({project.id})), deactivated.key.id
    )
    other_key = await keys.create_key(other_project.id, Mode.TEST, "b", stranger)
    await people.api_key(project, owner)

    candidate = await people.user()
    world = World(project, other_project, owner, member, admin, candidate, owners_key.key.id)

    def bearer(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    member_session = await people.sign_in(member)
    admin_session = await people.sign_in(admin)
    world.headers = {
        "anonymous": {},
        "member": member_session.cookie,
        "member_token": people.bearer(member),
        "member_no_csrf": member_session.cookie,
        "admin": admin_session.cookie,
        "other_admin": people.bearer(stranger),
        "superuser": people.bearer(superuser),
        "key": bearer(owners_key.plaintext),
        "other_key": bearer(other_key.plaintext),
        "deactivated_key": bearer(deactivated.plaintext),
        "end_user": bearer(end_user_token(project, project.end_user_secret)),
        "end_user_expired": bearer(
            end_user_token(project, project.end_user_secret, expires_in=-120)
        ),
        "end_user_wrong_secret": bearer(end_user_token(project, "not-the-projects-secret" * 2)),
        "end_user_other_project": bearer(
            end_user_token(other_project, other_project.end_user_secret)
        ),
    }
    world.unsafe_headers = {
        **world.headers,
        "member": member_session.unsafe,
        "admin": admin_session.unsafe,
    }
    made = Factories.on(session, secret_box, settings)
    for module in DOMAIN_DECLARATIONS:
        prepare = getattr(module, "prepare", None)
        if prepare is not None:
            await prepare(world, made)
    return world


def own_project(world: World, principal: str) -> uuid.UUID:
    other = principal in {"other_admin", "other_key", "end_user_other_project"}
    return world.other_project.id if other else world.project.id


class TestAuthorizationMatrix:
    def test_every_route_is_declared(self, app: FastAPI) -> None:
        served = served_routes(app)
        undeclared = sorted(served - ROUTES.keys())
        stale = sorted(ROUTES.keys() - served)
        assert not undeclared, f"routes without an authorization declaration: {undeclared}"
        assert not stale, f"declarations for routes the app no longer serves: {stale}"

    @pytest.mark.parametrize(("method", "path"), sorted(ROUTES), ids=lambda v: str(v))
    async def test_route_answers_each_principal_as_declared(
        self,
        method: str,
        path: str,
        app: FastAPI,
        client: httpx.AsyncClient,
        session: AsyncSession,
        world: World,
    ) -> None:
        declaration = ROUTES[(method, path)]
        url = path.format(**declaration.path(world))
        unexpected = []
        for principal in PRINCIPALS:
            headers = (world.headers if method in SAFE else world.unsafe_headers)[principal]
            cell = await session.begin_nested()
            try:
                response = await client.request(
                    method,
                    url,
                    headers=headers,
                    json=declaration.json(world),
                    data=declaration.form(world),
                    params=declaration.query(world),
                )
            finally:
                await cell.rollback()
            expected = declaration.expected[principal]
            takes_sessions = (
                declaration.expected["anonymous"] == 401 and declaration.expected["member"] != 401
            )
            csrf_refusal = principal == "member_no_csrf" and method not in SAFE and takes_sessions
            if csrf_refusal:
                expected = 403
            answered = response.status_code
            matched = 200 <= answered < 300 if expected == ALLOW else answered == expected
            problem = None
            if not matched:
                problem = f"expected {expected}, got {answered}"
            elif answered in EXPECTED_CODES and response.json()["code"] not in (
                {"CSRF_FAILED"} if csrf_refusal else EXPECTED_CODES[answered]
            ):
                problem = f"answered {answered} with code {response.json()['code']}"
            elif (
                principal not in INSIDERS
                and answered < 300
                and str(world.project.id) in response.text
            ):
                problem = "an outsider's answer names project A"
            elif (
                declaration.answers_own_project
                and expected == ALLOW
                and response.json()["projectId"] != str(own_project(world, principal))
            ):
                problem = "the answer names another project than the caller's"
            elif (
                declaration.shows_project_a is not None
                and expected == ALLOW
                and declaration.shows_project_a(response.json())
                != (own_project(world, principal) == world.project.id)
            ):
                problem = "the answer shows another project's data than the caller's"
            if problem:
                unexpected.append(f"{principal}: {problem}: {response.text[:200]}")
        assert not unexpected, "\n".join(unexpected)
