"""HTTP routes for sign-in, sessions, developer tokens, the login page and API keys."""

from __future__ import annotations

import unicodedata
import uuid
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import HTMLResponse
from fastapi.security import OAuth2PasswordRequestForm

from billwarden.audit.service import audit
from billwarden.auth import (
    ConsoleAuth,
    CurrentConsoleUser,
    DeveloperTokenIssuer,
    IdentityRules,
    admin_access,
    key_viewer,
    member_access,
    single_tenant_project,
)
from billwarden.config import Settings
from billwarden.core.modes import Mode
from billwarden.core.security_headers import CONSOLE_CONTENT_SECURITY_POLICY
from billwarden.db.unit_of_work import DbSession
from billwarden.errors import InvalidInput, error_responses
from billwarden.identity.cookies import CSRF_COOKIE, SESSION_COOKIE
from billwarden.identity.models import ApiKey, User
from billwarden.identity.pages import render_login_page
from billwarden.identity.schemas import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyDeactivate,
    ApiKeyRead,
    DeveloperToken,
    LoginRequest,
    LoginResponse,
    Me,
    PasswordChange,
    PasswordChanged,
    UserRead,
)
from billwarden.identity.service import ApiKeyService, StartedSession, UserService
from billwarden.kit.schemas import Page, Pages
from billwarden.kit.state import AppSecretBox, AppSettings

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])
keys_router = APIRouter(prefix="/api-dashboard/keys", tags=["api keys"])
pages_router = APIRouter(tags=["console"], include_in_schema=False)
routers = [router, keys_router, pages_router]

LOGIN_PATH = "/api/v1/auth/login"


async def _user_service(
    session: DbSession, secret_box: AppSecretBox, policy: IdentityRules
) -> UserService:
    return UserService(session, secret_box, policy)


Users = Annotated[UserService, Depends(_user_service)]


def _client_address(request: Request) -> str:
    # behind a proxy, `billwarden serve --forwarded-allow-ips <proxy>` makes this the real client
    return request.client.host if request.client else "unknown"


def _set_session_cookies(response: Response, started: StartedSession, settings: Settings) -> None:
    max_age = max(1, settings.session_absolute_timeout_seconds)
    secure = not settings.is_development
    response.set_cookie(
        SESSION_COOKIE,
        started.token,
        max_age=max_age,
        httponly=True,
        secure=secure,
        samesite="lax",
        path="/",
    )
    response.set_cookie(
        CSRF_COOKIE,
        started.csrf_token,
        max_age=max_age,
        httponly=False,
        secure=secure,
        samesite="lax",
        path="/",
    )


def _user_read(user: User) -> UserRead:
    return UserRead(
        id=user.id, email=user.email, is_superuser=user.is_superuser, created_at=user.created_at
    )


@router.post(
    "/login",
    response_model=LoginResponse,
    responses=error_responses(400, 401, 429),
    summary="Sign in with email and password; sets the session and CSRF cookies",
)
async def login(
    body: LoginRequest,
    request: Request,
    response: Response,
    users: Users,
    settings: AppSettings,
) -> LoginResponse:
    # a refused sign-in is counted (InvalidCredentials keeps the unit of work's changes)
    user = await users.authenticate(body.email, body.password, _client_address(request))
    started = await users.start_session(user)
    _set_session_cookies(response, started, settings)
    return LoginResponse(
        user=_user_read(user),
        csrf_token=started.csrf_token,
        expires_at=started.session.expires_at,
        idle_expires_at=started.session.idle_expires_at,
    )


@router.post(
    "/logout",
    status_code=204,
    responses=error_responses(400, 401, 403),
    summary="End the browser session",
)
async def logout(principal: ConsoleAuth, users: Users, response: Response) -> None:
    if principal.session is None:
        raise InvalidInput("Sign-out ends a browser session; developer tokens expire on their own.")
    await users.end_session(principal.session)
    response.delete_cookie(SESSION_COOKIE, path="/")
    response.delete_cookie(CSRF_COOKIE, path="/")


@router.get("/me", response_model=Me, responses=error_responses(401))
async def me(principal: ConsoleAuth) -> Me:
    return Me(
        user=_user_read(principal.user),
        auth_method="session" if principal.session is not None else "token",
    )


@router.post(
    "/password",
    response_model=PasswordChanged,
    responses=error_responses(400, 401, 403, 429),
    summary="Change the password; revokes every session and developer token",
)
async def change_password(
    body: PasswordChange,
    principal: ConsoleAuth,
    users: Users,
    settings: AppSettings,
    response: Response,
) -> PasswordChanged:
    await users.change_password(principal.user, body.current_password, body.new_password)
    if principal.session is None:
        return PasswordChanged(csrf_token=None)
    started = await users.start_session(principal.user)
    _set_session_cookies(response, started, settings)
    return PasswordChanged(csrf_token=started.csrf_token)


@router.post(
    "/token",
    response_model=DeveloperToken,
    responses=error_responses(400, 401, 429),
    summary="OAuth2 password grant: a short-lived developer JWT for Authorization: Bearer",
)
async def issue_token(
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    request: Request,
    users: Users,
    tokens: DeveloperTokenIssuer,
) -> DeveloperToken:
    user = await users.authenticate(form.username, form.password, _client_address(request))
    return DeveloperToken(
        access_token=tokens.issue(user.id, user.password_changed_at),
        expires_in=int(tokens.ttl.total_seconds()),
    )


@pages_router.get("/login", response_class=HTMLResponse)
async def login_page(next: Annotated[str, Query(max_length=2000)] = "/docs") -> HTMLResponse:
    if not is_same_site_path(next):
        next = "/docs"
    return HTMLResponse(
        render_login_page(login_url=LOGIN_PATH, next_url=next),
        headers={"Content-Security-Policy": CONSOLE_CONTENT_SECURITY_POLICY},
    )


def is_same_site_path(target: str) -> bool:
    """Whether `target` is a path on this site, never an open redirect.

    Browsers drop tabs and newlines from URLs and read a backslash as a slash, so a tab or a
    backslash after the first slash turns the path into `//evil.example`, another host."""
    if any(
        character.isspace() or unicodedata.category(character)[0] == "C" for character in target
    ):
        return False
    if "\\" in target or not target.startswith("/") or target.startswith("//"):
        return False
    parts = urlsplit(target)
    return not parts.scheme and not parts.netloc


def _key_read(key: ApiKey) -> ApiKeyRead:
    return ApiKeyRead(
        key_id=key.id,
        name=key.name,
        prefix=key.prefix,
        mode=key.mode,
        project_id=key.project_id,
        created_at=key.created_at,
        last_used_at=key.last_used_at,
        active=key.is_active,
    )


@keys_router.post(
    "/generate",
    status_code=201,
    response_model=ApiKeyCreated,
    responses=error_responses(400, 401, 403, 404),
    summary="Create a project API key; the key itself is returned only here. Test-mode keys: "
    "any member; live-mode keys: the project's owners and admins",
)
async def generate_key(
    body: ApiKeyCreate,
    user: CurrentConsoleUser,
    session: DbSession,
    secret_box: AppSecretBox,
    settings: AppSettings,
) -> ApiKeyCreated:
    project_id, mode = body.project_id, body.mode
    if project_id is None:
        single = await single_tenant_project(session, settings)
        if single is None:
            raise InvalidInput(
                "projectId is required: there is no single-tenant project to default to.",
                details={"field": "projectId"},
            )
        project_id, mode = single[0], mode or single[1]
    mode = mode or Mode.TEST
    # a live key moves real money: only those who administer the project may mint one
    check_access = admin_access if mode is Mode.LIVE else member_access
    access = await check_access(session, user, project_id)
    created = await ApiKeyService(session, secret_box).create_key(
        access.project.id, mode, body.name, user
    )
    await audit(
        session,
        user,
        "api_key.created",
        project_id=access.project.id,
        target_type="api_key",
        target_id=created.key.id,
        mode=mode,
        after={"name": created.key.name, "prefix": created.key.prefix},
    )
    return ApiKeyCreated(
        **_key_read(created.key).model_dump(by_alias=False), api_key=created.plaintext
    )


@keys_router.get(
    "",
    response_model=Page[ApiKeyRead],
    responses=error_responses(400, 401),
    summary="Keys you created, and every key of the projects you administer (no secrets)",
)
async def list_keys(
    user: CurrentConsoleUser,
    session: DbSession,
    secret_box: AppSecretBox,
    pages: Pages,
    project_id: Annotated[
        uuid.UUID | None, Query(alias="projectId", description="Only this project's keys.")
    ] = None,
) -> Page[ApiKeyRead]:
    keys, total = await ApiKeyService(session, secret_box).list_keys(
        await key_viewer(session, user), project_id=project_id, **pages.window
    )
    return Page[ApiKeyRead].of(keys, total, pages, _key_read)


@keys_router.post(
    "/deactivate",
    response_model=ApiKeyRead,
    responses=error_responses(400, 401, 403, 404),
    summary="Deactivate a key you created, or any key of a project you administer",
)
async def deactivate_key(
    body: ApiKeyDeactivate, user: CurrentConsoleUser, session: DbSession, secret_box: AppSecretBox
) -> ApiKeyRead:
    viewer = await key_viewer(session, user)
    key = await ApiKeyService(session, secret_box).deactivate_key(viewer, body.key_id)
    await audit(
        session,
        user,
        "api_key.deactivated",
        project_id=key.project_id,
        target_type="api_key",
        target_id=key.id,
        mode=key.mode,
        after={"name": key.name, "prefix": key.prefix},
    )
    return _key_read(key)
