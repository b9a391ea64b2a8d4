"""Authentication dependencies: who is calling, and may they touch this project.

| alias                 | principal                                                          |
|-----------------------|--------------------------------------------------------------------|
| `CurrentConsoleUser`  | console user: session cookie (CSRF on unsafe methods) or developer JWT |
| `ConsoleAuth`         | the same, with the session it came through                          |
| `ProjectMemberAccess` | console user who is a member of `{project_id}`, or a superuser      |
| `ProjectAdminAccess`  | console user who is an owner or admin of `{project_id}`, or a superuser |
| `ProjectKey`          | project API key `Bearer bw_test_...` / `bw_live_...`               |
| `EndUser`             | end-user JWT signed with the project's end-user secret             |
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer

from billwarden.config import Settings
from billwarden.crypto import SecretBox
from billwarden.db.base import Mode
from billwarden.db.engine import DbSession
from billwarden.identity.models import ConsoleSession, User
from billwarden.identity.service import (
    ApiKeyService,
    IdentityPolicy,
    Unauthenticated,
    UserService,
)
from billwarden.identity.tokens import (
    DeveloperTokens,
    EndUserClaims,
    InvalidToken,
    unverified_project_id,
    verify_end_user_token,
)
from billwarden.projects.service import (
    EndUserSecretService,
    MembershipService,
    ProjectAccess,
)

SESSION_COOKIE = "bw_session"
CSRF_COOKIE = "bw_csrf"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

# security schemes: they document the credentials in OpenAPI; the checks are below
_session_cookie = APIKeyCookie(
    name=SESSION_COOKIE,
    auto_error=False,
    description=f"Console session cookie; unsafe methods also need the {CSRF_HEADER} header.",
)
_bearer = HTTPBearer(
    auto_error=False,
    description="A developer JWT from POST /api/v1/auth/token, a project API key "
    "(bw_test_... / bw_live_...) or an end-user JWT, depending on the route.",
)

__all__ = [
    "ConsoleAuth",
    "ConsolePrincipal",
    "CurrentConsoleUser",
    "EndUser",
    "EndUserPrincipal",
    "ProjectAccess",
    "ProjectAdminAccess",
    "ProjectKey",
    "ProjectKeyPrincipal",
    "ProjectMemberAccess",
]


def app_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def app_secret_box(request: Request) -> SecretBox:
    secret_box: SecretBox = request.app.state.secret_box
    return secret_box


AppSettings = Annotated[Settings, Depends(app_settings)]
AppSecretBox = Annotated[SecretBox, Depends(app_secret_box)]


def developer_tokens(settings: Settings) -> DeveloperTokens:
    assert settings.secret_key is not None  # the app refuses to start without it
    keys = [settings.secret_key, *settings.secret_key_fallbacks]
    return DeveloperTokens(
        [key.get_secret_value() for key in keys],
        timedelta(seconds=settings.developer_token_ttl_seconds),
    )


def user_service(
    session: DbSession, secret_box: AppSecretBox, settings: AppSettings
) -> UserService:
    return UserService(session, secret_box, IdentityPolicy.from_settings(settings))


Users = Annotated[UserService, Depends(user_service)]


@dataclass(frozen=True)
class ConsolePrincipal:
    """A console user and how they authenticated: a session (browser) or a developer token."""

    user: User
    session: ConsoleSession | None
    session_token: str | None


async def console_principal(
    request: Request,
    users: Users,
    settings: AppSettings,
    session_token: Annotated[str | None, Depends(_session_cookie)],
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> ConsolePrincipal:
    if bearer is not None:
        try:
            claims = developer_tokens(settings).verify(bearer.credentials)
        except InvalidToken as exc:
            message = f"The bearer token is not a valid developer token: {exc}"
            raise Unauthenticated(message) from exc
        user = await users.user_for_developer_token(claims.user_id, claims.password_version)
        return ConsolePrincipal(user, None, None)
    if not session_token:
        raise Unauthenticated(
            "Sign in first: send the session cookie from POST /api/v1/auth/login or a "
            "developer token from POST /api/v1/auth/token as Authorization: Bearer."
        )
    console_session, user = await users.resolve_session(session_token)
    if request.method not in SAFE_METHODS:
        # browsers attach cookies to cross-site requests; only our pages can read the token
        users.check_csrf(session_token, request.headers.get(CSRF_HEADER))
    return ConsolePrincipal(user, console_session, session_token)


ConsoleAuth = Annotated[ConsolePrincipal, Depends(console_principal)]


async def current_console_user(principal: ConsoleAuth) -> User:
    return principal.user


CurrentConsoleUser = Annotated[User, Depends(current_console_user)]


async def project_member_access(
    project_id: uuid.UUID, user: CurrentConsoleUser, session: DbSession
) -> ProjectAccess:
    return await MembershipService(session).access(user, project_id)


async def project_admin_access(
    project_id: uuid.UUID, user: CurrentConsoleUser, session: DbSession
) -> ProjectAccess:
    return await MembershipService(session).admin_access(user, project_id)


ProjectMemberAccess = Annotated[ProjectAccess, Depends(project_member_access)]
ProjectAdminAccess = Annotated[ProjectAccess, Depends(project_admin_access)]


@dataclass(frozen=True)
class ProjectKeyPrincipal:
    """A tenant backend calling with one of its project's API keys."""

    project_id: uuid.UUID
    mode: Mode
    key_id: uuid.UUID


def _bearer_credentials(bearer: HTTPAuthorizationCredentials | None, what: str) -> str:
    if bearer is None or not bearer.credentials:
        raise Unauthenticated(f"This route needs {what} as Authorization: Bearer.")
    return bearer.credentials


async def project_key(
    session: DbSession,
    secret_box: AppSecretBox,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> ProjectKeyPrincipal:
    plaintext = _bearer_credentials(bearer, "a project API key (bw_test_... or bw_live_...)")
    key = await ApiKeyService(session, secret_box).authenticate(plaintext)
    return ProjectKeyPrincipal(key.project_id, key.mode, key.id)


ProjectKey = Annotated[ProjectKeyPrincipal, Depends(project_key)]


# an end user of a tenant app; `subject` is whom billing belongs to
EndUserPrincipal = EndUserClaims


async def end_user(
    session: DbSession,
    secret_box: AppSecretBox,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> EndUserPrincipal:
    token = _bearer_credentials(bearer, "an end-user JWT signed with the project's secret")
    try:
        project_id = unverified_project_id(token)
        secrets = await EndUserSecretService(session, secret_box).live_secrets(project_id)
        if not secrets:
            raise InvalidToken("The project does not exist or has no end-user secret.")
        claims = verify_end_user_token(token, secrets)
    except InvalidToken as exc:
        raise Unauthenticated(f"The end-user token is not valid: {exc}") from exc
    return claims


EndUser = Annotated[EndUserPrincipal, Depends(end_user)]
