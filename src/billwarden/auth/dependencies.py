"""The authentication and project-access dependencies (see the package's docstring)."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, replace
from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from billwarden.auth.end_users import EndUsers, JwksKeys, check_origin
from billwarden.auth.principals import (
    BillingPrincipal,
    ConsolePrincipal,
    EndUserPrincipal,
    ProjectKeyPrincipal,
    SeedAdminPrincipal,
)
from billwarden.config import Settings
from billwarden.core.modes import Mode
from billwarden.crypto import SecretBox
from billwarden.db.changes import GenerationCache
from billwarden.db.unit_of_work import DbSession
from billwarden.errors import Forbidden
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
    DEVELOPER_AUDIENCE,
    DeveloperTokens,
    InvalidToken,
    unverified,
)
from billwarden.kit.state import AppReadCache, AppSecretBox, AppSettings, from_settings
from billwarden.projects.end_user_auth import EndUserAuthSettings
from billwarden.projects.exceptions import ProjectNotFound
from billwarden.projects.service import MembershipService, ProjectAccess, ProjectService
from billwarden.projects.single_tenant import single_tenant_mode

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


_jwks_keys = from_settings(JwksKeys.from_settings)


async def verified_end_user(
    request: Request,
    session: AsyncSession,
    secret_box: SecretBox,
    settings: Settings,
    cache: GenerationCache,
    bearer: HTTPAuthorizationCredentials | None,
) -> tuple[EndUserPrincipal, EndUserAuthSettings]:
    """The end user a request comes from (a bearer token, or the cookie its project reads) and
    its project's end-user settings (projects.end_user_auth: the project's own secret, a shared
    secret such as the single-tenant project's end_user_secret, or a JWKS). Unauthenticated
    (401) when there is none or it is not valid; OriginNotAllowed (403) for a cookie's unsafe
    request from elsewhere."""
    end_users = EndUsers(session, secret_box, settings, cache, await _jwks_keys(request))
    if bearer is not None and bearer.credentials:
        return await end_users.verify(bearer.credentials)
    refused: Unauthenticated | None = None
    if request.cookies:
        # every configured cookie the browser sent, until one holds a token of a project that
        # reads that cookie (another project's cookie name must not shadow it)
        for name in sorted(await end_users.cookie_names()):
            token = request.cookies.get(name)
            if not token:
                continue
            try:
                claims, project = await end_users.verify(token)
            except Unauthenticated as exc:
                refused = exc
                continue
            if project.cookie_name != name:
                refused = Unauthenticated(
                    "The end-user token came in a cookie its project does not read."
                )
                continue
            if request.method not in SAFE_METHODS:
                # browsers attach cookies to cross-site requests: only the app's pages may
                check_origin(project, request.headers.get("origin"))
            return claims, project
    if refused is not None:
        raise refused
    raise Unauthenticated("This route needs an end-user JWT as Authorization: Bearer.")


async def request_end_user(
    request: Request,
    session: AsyncSession,
    secret_box: SecretBox,
    settings: Settings,
    cache: GenerationCache,
    bearer: HTTPAuthorizationCredentials | None,
) -> EndUserPrincipal:
    """The end user a request comes from, or Unauthenticated (401 UNAUTHENTICATED). For routes
    that answer a seed's own 401 code: call this and translate the error."""
    claims, _ = await verified_end_user(request, session, secret_box, settings, cache, bearer)
    return claims


TestMode = Annotated[
    bool | None,
    Query(
        description="true: test mode, false: live mode; left out: the credential's mode. A "
        "key's mode, a token's mode claim and (unless the project sets modeFromQuery) a token's "
        "default mode are fixed: another is 403 MODE_MISMATCH."
    ),
]


def _chosen_mode(mode: Mode, fixed: bool, test_mode: bool | None) -> Mode:
    """`?test_mode=` selects the mode (seed 002) where the credential leaves it open; a fixed
    mode it contradicts is 403 MODE_MISMATCH."""
    if test_mode is None:
        return mode
    wanted = Mode.TEST if test_mode else Mode.LIVE
    if fixed and wanted is not mode:
        raise Forbidden(
            f"test_mode={str(test_mode).lower()} asks for {wanted.value} mode, but the "
            f"credential is for {mode.value} mode.",
            code="MODE_MISMATCH",
        )
    return wanted


def _in_mode(
    claims: EndUserPrincipal, project: EndUserAuthSettings, test_mode: bool | None
) -> EndUserPrincipal:
    """A token's mode: its claim's, else the project's default, which `?test_mode=` may change
    only where the project lets it (modeFromQuery: seed 002's apps)."""
    fixed = claims.mode_claimed or not project.mode_from_query
    mode = _chosen_mode(claims.mode, fixed, test_mode)
    return claims if mode is claims.mode else replace(claims, mode=mode)


async def end_user(
    request: Request,
    session: DbSession,
    secret_box: AppSecretBox,
    settings: AppSettings,
    cache: AppReadCache,
    bearer: Bearer,
    test_mode: TestMode = None,
) -> EndUserPrincipal:
    claims, project = await verified_end_user(request, session, secret_box, settings, cache, bearer)
    return _in_mode(claims, project, test_mode)


EndUser = Annotated[EndUserPrincipal, Depends(end_user)]


async def billing_principal(
    request: Request,
    session: DbSession,
    secret_box: AppSecretBox,
    settings: AppSettings,
    cache: AppReadCache,
    bearer: Bearer,
    test_mode: TestMode = None,
) -> BillingPrincipal:
    """A project API key (`bw_test_...`/`bw_live_...`) or an end user (a bearer JWT, or the
    cookie its project reads); `?test_mode=` as `_chosen_mode` says."""
    if bearer is not None and bearer.credentials.startswith(("bw_test_", "bw_live_")):
        key = await authenticated_key(session, secret_box, cache, bearer.credentials)
        mode = _chosen_mode(key.mode, True, test_mode)
        return BillingPrincipal(key.project_id, mode, key_id=key.key_id)
    try:
        claims, project = await verified_end_user(
            request, session, secret_box, settings, cache, bearer
        )
    except Unauthenticated as exc:
        if bearer is None or not bearer.credentials:
            raise Unauthenticated(
                "This route needs an end-user JWT or a project API key (bw_test_... or "
                "bw_live_...) as Authorization: Bearer."
            ) from exc
        raise
    claims = _in_mode(claims, project, test_mode)
    return BillingPrincipal(claims.project_id, claims.mode, end_user=claims)


BillingCaller = Annotated[BillingPrincipal, Depends(billing_principal)]


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
    project_id: Annotated[
        uuid.UUID | None,
        Query(
            alias="projectId",
            description="Console users: the project (default: the single-tenant project).",
        ),
    ] = None,
    mode: Annotated[
        Mode | None,
        Query(description="Console users: the mode (default: the single-tenant project's)."),
    ] = None,
) -> SeedAdminPrincipal:
    """A console user who administers the project (the single-tenant project, or `projectId`),
    or an end user whose role claim is one of the project's `adminRoles` (403 FORBIDDEN for
    one whose is not). Project API keys are not admins (401)."""
    credentials = bearer.credentials if bearer is not None else ""
    if credentials.startswith(("bw_test_", "bw_live_")):
        raise Unauthenticated(
            "This route needs a console user who administers the project, or an end user with "
            "an admin role; an API key is neither."
        )
    if _is_developer_token(credentials) or (not credentials and session_token):
        principal = await console_principal(
            request, session, secret_box, policy, tokens, session_token, bearer
        )
        target, default_mode = await _console_target(session, settings, project_id)
        access = await admin_access(session, principal.user, target)
        return SeedAdminPrincipal(access.project.id, mode or default_mode, user=principal.user)
    claims, project = await verified_end_user(request, session, secret_box, settings, cache, bearer)
    if not set(claims.roles) & set(project.admin_roles):
        raise Forbidden(
            "This route is for the project's admins: the token's role is not one of its "
            "adminRoles.",
            code="FORBIDDEN",
        )
    if project_id is not None and project_id != claims.project_id:
        raise ProjectNotFound("No such project.", details={"projectId": str(project_id)})
    return SeedAdminPrincipal(claims.project_id, claims.mode, end_user=claims)


def _is_developer_token(credentials: str) -> bool:
    if not credentials:
        return False
    try:
        return unverified(credentials).audience == DEVELOPER_AUDIENCE
    except InvalidToken:
        return False


async def single_tenant_project(
    session: AsyncSession, settings: Settings
) -> tuple[uuid.UUID, Mode] | None:
    """The single-tenant project and its mode, when there is one (the seeds' routes that name
    no project default to it)."""
    secret_key = settings.single_tenant_secret_key
    if secret_key is None:
        return None
    single = await ProjectService(session).find_by_slug(settings.single_tenant_project_slug)
    if single is None:
        return None
    return single.id, single_tenant_mode(secret_key.get_secret_value())


async def _console_target(
    session: AsyncSession, settings: Settings, project_id: uuid.UUID | None
) -> tuple[uuid.UUID, Mode]:
    """The project a console user's seed admin call is about, and its default mode."""
    single = await single_tenant_project(session, settings)
    if single is not None and project_id in (None, single[0]):
        return single
    if project_id is None:
        raise ProjectNotFound(
            "There is no single-tenant project: name the project with ?projectId=.",
            details={"field": "projectId"},
        )
    return project_id, Mode.TEST


SeedAdmin = Annotated[SeedAdminPrincipal, Depends(seed_admin)]
