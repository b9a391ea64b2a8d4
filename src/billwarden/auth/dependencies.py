"""The authentication and project-access dependencies (see the package's docstring)."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from billwarden.auth.principals import (
    BillingPrincipal,
    ConsolePrincipal,
    EndUserPrincipal,
    ProjectKeyPrincipal,
    SeedAdminPrincipal,
)
from billwarden.crypto import SecretBox
from billwarden.db.changes import GenerationCache
from billwarden.db.unit_of_work import DbSession
from billwarden.identity.cookies import CSRF_HEADER, SESSION_COOKIE
from billwarden.identity.exceptions import Unauthenticated
from billwarden.identity.models import User
from billwarden.identity.repository import KeyViewer
from billwarden.identity.service import (
    ACTIVITY_RESOLUTION,
    ApiKeyService,
    IdentityPolicy,
    UserService,
)
from billwarden.identity.tokens import (
    DeveloperTokens,
    InvalidToken,
    unverified_project_id,
    verify_end_user_token,
)
from billwarden.kit.state import AppReadCache, AppSecretBox, AppSettings, from_settings
from billwarden.projects.service import EndUserSecretService, MembershipService, ProjectAccess

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
Bearer = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]

IdentityRules = Annotated[IdentityPolicy, Depends(from_settings(IdentityPolicy.from_settings))]
DeveloperTokenIssuer = Annotated[
    DeveloperTokens, Depends(from_settings(DeveloperTokens.from_settings))
]


async def console_principal(
    request: Request,
    session: DbSession,
    secret_box: AppSecretBox,
    policy: IdentityRules,
    tokens: DeveloperTokenIssuer,
    session_token: Annotated[str | None, Depends(_session_cookie)],
    bearer: Bearer,
) -> ConsolePrincipal:
    users = UserService(session, secret_box, policy)
    if bearer is not None:
        try:
            claims = tokens.verify(bearer.credentials)
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


async def optional_console_user(
    request: Request,
    session: DbSession,
    secret_box: AppSecretBox,
    policy: IdentityRules,
    tokens: DeveloperTokenIssuer,
    session_token: Annotated[str | None, Depends(_session_cookie)],
    bearer: Bearer,
) -> User | None:
    """The console user, or None for anyone else (the console's pages send them to sign in
    rather than answer 401). Pages are read with GET only, so no CSRF check applies."""
    try:
        principal = await console_principal(
            request, session, secret_box, policy, tokens, session_token, bearer
        )
    except Unauthenticated:
        return None
    return principal.user


OptionalConsoleUser = Annotated[User | None, Depends(optional_console_user)]


async def member_access(session: AsyncSession, user: User, project_id: uuid.UUID) -> ProjectAccess:
    """The user's access to a project; one they cannot see is reported as not existing."""
    return await MembershipService(session).access(user, project_id)


async def admin_access(session: AsyncSession, user: User, project_id: uuid.UUID) -> ProjectAccess:
    """The user's access to a project they administer (403 for a member, 404 for others)."""
    return await MembershipService(session).admin_access(user, project_id)


async def key_viewer(session: AsyncSession, user: User) -> KeyViewer:
    """Which projects' API keys the user may see and deactivate."""
    administered, member_of = await MembershipService(session).project_ids_of(user)
    return KeyViewer(user, frozenset(administered), frozenset(member_of))


async def project_member_access(
    project_id: uuid.UUID, user: CurrentConsoleUser, session: DbSession
) -> ProjectAccess:
    return await member_access(session, user, project_id)


async def project_admin_access(
    project_id: uuid.UUID, user: CurrentConsoleUser, session: DbSession
) -> ProjectAccess:
    return await MembershipService(session).admin_access(user, project_id)


ProjectMemberAccess = Annotated[ProjectAccess, Depends(project_member_access)]
ProjectAdminAccess = Annotated[ProjectAccess, Depends(project_admin_access)]


def _bearer_credentials(bearer: HTTPAuthorizationCredentials | None, what: str) -> str:
    if bearer is None or not bearer.credentials:
        raise Unauthenticated(f"This route needs {what} as Authorization: Bearer.")
    return bearer.credentials


@dataclass(frozen=True)
class _KnownKey:
    principal: ProjectKeyPrincipal
    # its use is recorded at most once a minute: past this, authenticate (and record) again
    recorded_until: float


def _key_lookup(secret_box: SecretBox, plaintext: str) -> tuple[str, str]:
    return ("api_key", secret_box.keyed_hash(plaintext))


def remembered_key(
    cache: GenerationCache, secret_box: SecretBox, plaintext: str
) -> ProjectKeyPrincipal | None:
    """The key's principal when the cache holds it and may be trusted, else None (no I/O)."""
    _, known = cache.get(_key_lookup(secret_box, plaintext))
    if isinstance(known, _KnownKey) and known.recorded_until > time.monotonic():
        return known.principal
    return None


async def authenticated_key(
    session: AsyncSession, secret_box: SecretBox, cache: GenerationCache, plaintext: str
) -> ProjectKeyPrincipal:
    """The key's principal: from memory while no key has been deactivated since it was read
    (and its last use was recorded within the minute), else from the database."""
    lookup = _key_lookup(secret_box, plaintext)
    generation, known = cache.get(lookup)
    if isinstance(known, _KnownKey) and known.recorded_until > time.monotonic():
        return known.principal
    key = await ApiKeyService(session, secret_box).authenticate(plaintext)
    principal = ProjectKeyPrincipal(key.project_id, key.mode, key.id)
    resolution = ACTIVITY_RESOLUTION.total_seconds()
    cache.put(lookup, generation, _KnownKey(principal, time.monotonic() + resolution))
    return principal


async def project_key(
    session: DbSession, secret_box: AppSecretBox, cache: AppReadCache, bearer: Bearer
) -> ProjectKeyPrincipal:
    plaintext = _bearer_credentials(bearer, "a project API key (bw_test_... or bw_live_...)")
    return await authenticated_key(session, secret_box, cache, plaintext)


ProjectKey = Annotated[ProjectKeyPrincipal, Depends(project_key)]


async def end_user(
    session: DbSession, secret_box: AppSecretBox, settings: AppSettings, bearer: Bearer
) -> EndUserPrincipal:
    token = _bearer_credentials(bearer, "an end-user JWT signed with the project's secret")
    return await _verified_end_user(session, secret_box, settings, token)


async def _verified_end_user(
    session: AsyncSession, secret_box: AppSecretBox, settings: AppSettings, token: str
) -> EndUserPrincipal:
    overlap = timedelta(seconds=settings.end_user_secret_overlap_seconds)
    try:
        project_id = unverified_project_id(token)
        secrets = await EndUserSecretService(session, secret_box, overlap).live_secrets(project_id)
        if not secrets:
            raise InvalidToken("The project does not exist or has no end-user secret.")
        claims = verify_end_user_token(token, secrets)
    except InvalidToken as exc:
        raise Unauthenticated(f"The end-user token is not valid: {exc}") from exc
    return claims


EndUser = Annotated[EndUserPrincipal, Depends(end_user)]


async def billing_principal(
    session: DbSession,
    secret_box: AppSecretBox,
    settings: AppSettings,
    cache: AppReadCache,
    bearer: Bearer,
) -> BillingPrincipal:
    """A project API key (`bw_test_...`/`bw_live_...`) or an end-user JWT."""
    credentials = _bearer_credentials(
        bearer, "an end-user JWT or a project API key (bw_test_... or bw_live_...)"
    )
    if credentials.startswith(("bw_test_", "bw_live_")):
        key = await authenticated_key(session, secret_box, cache, credentials)
        return BillingPrincipal(key.project_id, key.mode, key_id=key.key_id)
    claims = await _verified_end_user(session, secret_box, settings, credentials)
    return BillingPrincipal(claims.project_id, claims.mode, end_user=claims)


BillingCaller = Annotated[BillingPrincipal, Depends(billing_principal)]


async def request_end_user(
    request: Request,
    session: AsyncSession,
    secret_box: SecretBox,
    settings: AppSettings,
    cache: GenerationCache,
    bearer: HTTPAuthorizationCredentials | None,
) -> EndUserPrincipal:
    """The end user a request comes from, or Unauthenticated (401 UNAUTHENTICATED). For routes
    that answer a seed's own 401 code: call this and translate the error."""
    token = _bearer_credentials(bearer, "an end-user JWT")
    return await _verified_end_user(session, secret_box, settings, token)


async def end_user_caller(
    request: Request,
    session: DbSession,
    secret_box: AppSecretBox,
    settings: AppSettings,
    cache: AppReadCache,
    bearer: Bearer,
) -> BillingPrincipal:
    """An end user only (the seeds' billing routes act for the signed-in user), as the
    canonical billing services take their callers."""
    claims = await request_end_user(request, session, secret_box, settings, cache, bearer)
    return BillingPrincipal(claims.project_id, claims.mode, end_user=claims)


EndUserCaller = Annotated[BillingPrincipal, Depends(end_user_caller)]


async def seed_admin(
    request: Request,
    session: DbSession,
    secret_box: AppSecretBox,
    settings: AppSettings,
    cache: AppReadCache,
    policy: IdentityRules,
    tokens: DeveloperTokenIssuer,
    session_token: Annotated[str | None, Depends(_session_cookie)],
    bearer: Bearer,
) -> SeedAdminPrincipal:
    """A console user who administers the project (the single-tenant project, or `projectId`),
    or an end user whose role claim is one of the project's `adminRoles`."""
    raise NotImplementedError  # being built


SeedAdmin = Annotated[SeedAdminPrincipal, Depends(seed_admin)]
