"""Every route the app serves, against every kind of caller, with the answer declared per cell.

A route without a declaration fails `test_every_route_is_declared`, so a new route cannot ship
without deciding who may call it. Each cell runs inside a savepoint that is rolled back, so one
caller's write never changes what the next caller sees.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt
import pytest
from fastapi import APIRouter, FastAPI
from fastapi.routing import iter_route_contexts
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.routing import Mount

from billwarden.crypto import SecretBox
from billwarden.db.base import Mode
from billwarden.identity.auth import EndUser, ProjectKey
from billwarden.identity.models import User
from billwarden.identity.service import ApiKeyService
from billwarden.projects.models import ProjectRole
from billwarden.projects.stripe_config import StripeConfigService
from tests.actors import PASSWORD, Actors, ProjectWithSecret

ALLOW = 200  # any 2xx
SAFE = {"GET", "HEAD", "OPTIONS"}
PRINCIPALS = (
    "anonymous",
    "member",  # member (role member) of project A, browser session + CSRF token
    "member_token",  # the same member with a developer JWT
    "member_no_csrf",  # the member's browser session, without the CSRF token
    "admin",  # admin of project A, browser session
    "other_admin",  # owner of project B only, developer JWT
    "superuser",  # developer JWT
    "key",  # API key of project A
    "other_key",  # API key of project B
    "deactivated_key",  # deactivated API key of project A
    "end_user",  # valid end-user JWT of project A
    "end_user_expired",
    "end_user_wrong_secret",
    "end_user_other_project",  # valid end-user JWT of project B
)
MACHINE = (
    "key",
    "other_key",
    "deactivated_key",
    "end_user",
    "end_user_expired",
    "end_user_wrong_secret",
    "end_user_other_project",
)


def policy(**cells: int) -> dict[str, int]:
    """Expected status per principal. `member_no_csrf` answers as `member` does; on unsafe
    requests to routes that take console sessions it must get 403 instead (checked per request)."""
    cells = {**cells, "member_no_csrf": cells["member"]}
    missing = set(PRINCIPALS) - set(cells)
    assert not missing, f"undeclared principals: {missing}"
    return cells


PUBLIC = policy(**dict.fromkeys(PRINCIPALS, ALLOW))
# tenant-backend and end-user routes (the probes below stand in until real ones exist)
PROJECT_KEY = policy(**{**dict.fromkeys(PRINCIPALS, 401), "key": ALLOW, "other_key": ALLOW})
END_USER = policy(
    **{**dict.fromkeys(PRINCIPALS, 401), "end_user": ALLOW, "end_user_other_project": ALLOW}
)
# the principals that belong to project A; every other caller must never see its id
INSIDERS = {"member", "member_token", "member_no_csrf", "admin", "superuser", "key", "end_user"}
EXPECTED_CODES = {
    401: {"UNAUTHENTICATED"},
    403: {"CSRF_FAILED", "PROJECT_ADMIN_REQUIRED"},
    404: {"PROJECT_NOT_FOUND", "API_KEY_NOT_FOUND"},
}
CONSOLE_USER = policy(
    anonymous=401,
    member=ALLOW,
    member_token=ALLOW,
    admin=ALLOW,
    other_admin=ALLOW,
    superuser=ALLOW,
    **dict.fromkeys(MACHINE, 401),
)
PROJECT_MEMBER = policy(
    anonymous=401,
    member=ALLOW,
    member_token=ALLOW,
    admin=ALLOW,
    other_admin=404,
    superuser=ALLOW,
    **dict.fromkeys(MACHINE, 401),
)
PROJECT_ADMIN = policy(
    anonymous=401,
    member=403,
    member_token=403,
    admin=ALLOW,
    other_admin=404,
    superuser=ALLOW,
    **dict.fromkeys(MACHINE, 401),
)


@dataclass
class World:
    """Two projects and everyone who may (or may not) touch project A."""

    project: ProjectWithSecret
    other_project: ProjectWithSecret
    owner: User
    member: User
    admin: User
    candidate: User  # a console user of neither project, to be added as a member
    key_id: uuid.UUID
    headers: dict[str, dict[str, str]] = field(default_factory=dict)
    unsafe_headers: dict[str, dict[str, str]] = field(default_factory=dict)


Body = Callable[[World], dict[str, Any] | None]


@dataclass(frozen=True)
class Declaration:
    expected: dict[str, int]
    # the answer names the caller's own project (probes of tenant-backend and end-user auth)
    answers_own_project: bool = False
    json: Body = lambda world: None
    form: Body = lambda world: None
    path: Callable[[World], dict[str, str]] = lambda world: {}


def _project(world: World) -> dict[str, str]:
    return {"project_id": str(world.project.id)}


def _member_path(world: World) -> dict[str, str]:
    return {"project_id": str(world.project.id), "user_id": str(world.member.id)}


ROUTES: dict[tuple[str, str], Declaration] = {
    # test-only probes: the first routes for tenant backends and end users stand in here
    ("GET", "/probe/project-key"): Declaration(PROJECT_KEY, answers_own_project=True),
    ("GET", "/probe/end-user"): Declaration(END_USER, answers_own_project=True),
    ("GET", "/openapi.json"): Declaration(PUBLIC),
    ("GET", "/docs"): Declaration(PUBLIC),
    ("GET", "/docs/oauth2-redirect"): Declaration(PUBLIC),
    ("GET", "/docs-assets/{path}"): Declaration(PUBLIC, path=lambda w: {"path": "swagger-ui.css"}),
    ("GET", "/healthz"): Declaration(PUBLIC),
    ("GET", "/readyz"): Declaration(PUBLIC),
    ("GET", "/metrics"): Declaration(PUBLIC),
    ("GET", "/login"): Declaration(PUBLIC),
    ("POST", "/api/v1/auth/login"): Declaration(
        PUBLIC, json=lambda w: {"email": w.member.email, "password": PASSWORD}
    ),
    ("POST", "/api/v1/auth/token"): Declaration(
        PUBLIC, form=lambda w: {"username": w.member.email, "password": PASSWORD}
    ),
    # developer tokens expire on their own: sign-out is for browser sessions (400 otherwise)
    ("POST", "/api/v1/auth/logout"): Declaration(
        {**CONSOLE_USER, "member_token": 400, "other_admin": 400, "superuser": 400}
    ),
    ("GET", "/api/v1/auth/me"): Declaration(CONSOLE_USER),
    # each caller changes their own password; only the member's is PASSWORD-then-new
    ("POST", "/api/v1/auth/password"): Declaration(
        CONSOLE_USER,
        json=lambda w: {"currentPassword": PASSWORD, "newPassword": "another long passphrase"},
    ),
    ("POST", "/api-dashboard/keys/generate"): Declaration(
        PROJECT_MEMBER,
        json=lambda w: {"name": "matrix", "projectId": str(w.project.id), "mode": "test"},
    ),
    ("GET", "/api-dashboard/keys"): Declaration(CONSOLE_USER),
    # the key was made by the owner: the creator or a project admin may deactivate it
    ("POST", "/api-dashboard/keys/deactivate"): Declaration(
        {**PROJECT_ADMIN, "member": 404, "member_token": 404},
        json=lambda w: {"keyId": str(w.key_id)},
    ),
    ("POST", "/api/v1/projects"): Declaration(CONSOLE_USER, json=lambda w: {"name": "Matrix"}),
    ("GET", "/api/v1/projects"): Declaration(CONSOLE_USER),
    ("GET", "/api/v1/projects/{project_id}"): Declaration(PROJECT_MEMBER, path=_project),
    ("PATCH", "/api/v1/projects/{project_id}"): Declaration(
        PROJECT_ADMIN, path=_project, json=lambda w: {"name": "Renamed"}
    ),
    ("GET", "/api/v1/projects/{project_id}/members"): Declaration(PROJECT_ADMIN, path=_project),
    ("POST", "/api/v1/projects/{project_id}/members"): Declaration(
        PROJECT_ADMIN,
        path=_project,
        json=lambda w: {"email": w.candidate.email, "role": "member"},
    ),
    ("PATCH", "/api/v1/projects/{project_id}/members/{user_id}"): Declaration(
        PROJECT_ADMIN, path=_member_path, json=lambda w: {"role": "admin"}
    ),
    ("DELETE", "/api/v1/projects/{project_id}/members/{user_id}"): Declaration(
        PROJECT_ADMIN, path=_member_path
    ),
    ("POST", "/api/v1/projects/{project_id}/end-user-secret/rotate"): Declaration(
        PROJECT_ADMIN, path=_project
    ),
    ("GET", "/api/v1/payments/stripe/projects/{project_id}/config"): Declaration(
        PROJECT_MEMBER, path=_project
    ),
    ("PUT", "/api/v1/payments/stripe/projects/{project_id}/config"): Declaration(
        PROJECT_ADMIN, path=_project, json=lambda w: {"secretKey": "sk_test_matrix00000001"}
    ),
    # there is a configuration to deactivate (made by the world)
    ("DELETE", "/api/v1/payments/stripe/projects/{project_id}/config"): Declaration(
        PROJECT_ADMIN, path=_project
    ),
    ("GET", "/api/v1/payments/stripe/projects/{project_id}/webhook-urls"): Declaration(
        PROJECT_MEMBER, path=_project
    ),
    ("POST", "/api/v1/payments/stripe/projects/{project_id}/validate-credentials"): Declaration(
        PROJECT_ADMIN, path=_project
    ),
}


def _probe_router() -> APIRouter:
    router = APIRouter(prefix="/probe")

    @router.get("/project-key")
    async def project_key_probe(key: ProjectKey) -> dict[str, str]:
        return {"projectId": str(key.project_id), "mode": key.mode.value}

    @router.get("/end-user")
    async def end_user_probe(user: EndUser) -> dict[str, str]:
        return {"projectId": str(user.project_id), "subject": user.subject}

    return router


@pytest.fixture
def probed_app(app: FastAPI) -> FastAPI:
    app.include_router(_probe_router())
    return app


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
async def world(actors: Actors, session: AsyncSession, secret_box: SecretBox) -> World:
    owner = await actors.user()
    member = await actors.user()
    admin = await actors.user()
    superuser = await actors.user(superuser=True)
    stranger = await actors.user()
    project = await actors.project(owner)
    other_project = await actors.project(stranger)
    await actors.add_member(project, member, ProjectRole.MEMBER)
    await actors.add_member(project, admin, ProjectRole.ADMIN)
    keys = ApiKeyService(session, secret_box)
    owners_key = await keys.create_key(project.project, Mode.TEST, "owner's key", owner)
    deactivated = await keys.create_key(project.project, Mode.TEST, "old key", owner)
    await keys.deactivate_key(owner, deactivated.key.id)
    other_key = await keys.create_key(other_project.project, Mode.TEST, "b", stranger)
    await actors.api_key(project, owner)
    await StripeConfigService(session, secret_box).set_stripe_config(
        project.project, Mode.TEST, secret_key=f"sk_test_{uuid.uuid4().hex}"
    )

    candidate = await actors.user()
    world = World(project, other_project, owner, member, admin, candidate, owners_key.key.id)

    def bearer(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    member_session = await actors.sign_in(member)
    admin_session = await actors.sign_in(admin)
    world.headers = {
        "anonymous": {},
        "member": member_session.cookie,
        "member_token": actors.bearer(member),
        "member_no_csrf": member_session.cookie,
        "admin": admin_session.cookie,
        "other_admin": actors.bearer(stranger),
        "superuser": actors.bearer(superuser),
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
    return world


def own_project(world: World, principal: str) -> uuid.UUID:
    other = principal in {"other_admin", "other_key", "end_user_other_project"}
    return world.other_project.id if other else world.project.id


class TestAuthorizationMatrix:
    def test_every_route_is_declared(self, probed_app: FastAPI) -> None:
        served = served_routes(probed_app)
        undeclared = sorted(served - ROUTES.keys())
        stale = sorted(ROUTES.keys() - served)
        assert not undeclared, f"routes without an authorization declaration: {undeclared}"
        assert not stale, f"declarations for routes the app no longer serves: {stale}"

    @pytest.mark.parametrize(("method", "path"), sorted(ROUTES), ids=lambda v: str(v))
    async def test_route_answers_each_principal_as_declared(
        self,
        method: str,
        path: str,
        probed_app: FastAPI,
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
            if problem:
                unexpected.append(f"{principal}: {problem}: {response.text[:200]}")
        assert not unexpected, "\n".join(unexpected)
