"""How a project accepts its end users' tokens: the tokens the team's app already issues.

- `project_secret` (the default; no row): HS256 with the project's own end-user secret, which
  billwarden generates and rotates; the token names the project in `project_id`.
- `shared_secret`: HS256 with the secret the app already signs its sessions with.
- `jwks`: RS256/ES256 tokens from the app's identity provider, verified with the keys its JWKS
  URL publishes, for one issuer and audience. Set through the API, the URL must be a public
  https host (a private one only in development); the environment's may be any.

Also: which claims name the user, organization, email and roles; a cookie browsers carry the
token in (unsafe methods then need an `Origin` among `allowed_origins`); and the roles that may
use the seeds' admin routes. The single-tenant project's comes from `BILLWARDEN_END_USER_*`.
"""

from __future__ import annotations

import ipaddress
import re
import uuid
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from billwarden.config import Environment, Settings
from billwarden.crypto import SecretBox
from billwarden.errors import Conflict, InvalidInput
from billwarden.identity.cookies import CSRF_COOKIE, SESSION_COOKIE
from billwarden.identity.tokens import ClaimNames
from billwarden.projects.models import EndUserAuth, EndUserAuthMethod, Project

# RFC 7518 3.2: an HS256 key is at least as long as the hash (32 bytes)
MIN_SHARED_SECRET_LENGTH = 32
MAX_SHARED_SECRET_LENGTH = 1000
MAX_LIST = 20
_CLAIM = re.compile(r"[\x21-\x7e]{1,100}")
_COOKIE = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,100}")
_ORIGIN = re.compile(r"https?://[^/\s?#]{1,250}")
_ROLE = re.compile(r"[^\x00-\x1f\x7f]{1,100}")


class ConfiguredByEnvironment(Conflict):
    code = "CONFIGURED_BY_ENVIRONMENT"


@dataclass(frozen=True)
class EndUserAuthInput:
    """A project's end-user authentication as an admin (or the environment) sets it."""

    method: EndUserAuthMethod = EndUserAuthMethod.PROJECT_SECRET
    shared_secret: str | None = field(default=None, repr=False)
    jwks_url: str | None = None
    issuer: str | None = None
    audience: str | None = None
    claims: ClaimNames = field(default_factory=ClaimNames)
    cookie_name: str | None = None
    allowed_origins: tuple[str, ...] = ()
    admin_roles: tuple[str, ...] = ()
    mode_from_query: bool = False


@dataclass(frozen=True)
class EndUserAuthSettings:
    """What verifying a project's end users needs, secrets decrypted (held by the read cache)."""

    project_id: uuid.UUID
    method: EndUserAuthMethod = EndUserAuthMethod.PROJECT_SECRET
    shared_secret: str | None = field(default=None, repr=False)
    jwks_url: str | None = None
    issuer: str | None = None
    audience: str | None = None
    claims: ClaimNames = field(default_factory=ClaimNames)
    cookie_name: str | None = None
    allowed_origins: tuple[str, ...] = ()
    admin_roles: tuple[str, ...] = ()
    mode_from_query: bool = False


def from_environment(settings: Settings) -> EndUserAuthInput | None:
    """The single-tenant project's end-user authentication from `BILLWARDEN_END_USER_*`; None
    when none of them is set (the project's own secret and whatever an admin set apply)."""
    defaults = ClaimNames()
    claims = ClaimNames(
        user=settings.end_user_user_claim,
        organization=settings.end_user_organization_claim,
        email=settings.end_user_email_claim,
        roles=settings.end_user_roles_claim,
    )
    given = (
        settings.end_user_secret is not None
        or settings.end_user_jwks_url is not None
        or settings.end_user_cookie is not None
        or bool(settings.end_user_admin_roles)
        or bool(settings.end_user_allowed_origins)
        or claims != defaults
    )
    if not given:
        return None
    if settings.end_user_jwks_url is not None:
        method = EndUserAuthMethod.JWKS
    elif settings.end_user_secret is not None:
        method = EndUserAuthMethod.SHARED_SECRET
    else:
        method = EndUserAuthMethod.PROJECT_SECRET
    return EndUserAuthInput(
        method=method,
        shared_secret=(
            settings.end_user_secret.get_secret_value()
            if settings.end_user_secret is not None
            else None
        ),
        jwks_url=settings.end_user_jwks_url,
        issuer=settings.end_user_issuer,
        audience=settings.end_user_audience,
        claims=claims,
        cookie_name=settings.end_user_cookie,
        allowed_origins=tuple(settings.end_user_allowed_origins),
        admin_roles=tuple(settings.end_user_admin_roles),
    )


def _invalid(message: str, field_name: str) -> InvalidInput:
    return InvalidInput(message, code="VALIDATION_ERROR", details={"field": field_name})


def _check_jwks_url(url: str, allow_private: bool) -> None:
    """https with a host and no credentials; unless private hosts are allowed (development, or
    the operator's own setting), not an address on a private, loopback or reserved network (the
    fetch checks again what a host name resolves to)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if not host or parts.username is not None or parts.password is not None:
        raise _invalid("jwksUrl must name a host, and no user or password.", "jwksUrl")
    if allow_private:
        if parts.scheme not in ("https", "http"):
            raise _invalid("jwksUrl must be an https:// (or http://) URL.", "jwksUrl")
        return
    if parts.scheme != "https":
        raise _invalid("jwksUrl must be an https:// URL.", "jwksUrl")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        if host == "localhost" or host.endswith((".localhost", ".local", ".internal")):
            raise _invalid("jwksUrl must be a public host.", "jwksUrl") from None
        return
    mapped = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) else None
    if not (mapped or address).is_global:
        raise _invalid("jwksUrl must be a public host.", "jwksUrl")


def validate(
    config: EndUserAuthInput, *, has_shared_secret: bool = False, allow_private: bool = False
) -> None:
    """400 VALIDATION_ERROR naming the field for anything a verifier could not use."""
    if (
        config.method is EndUserAuthMethod.SHARED_SECRET
        and config.shared_secret is None
        and not has_shared_secret
    ):
        raise _invalid("method shared_secret needs sharedSecret.", "sharedSecret")
    if config.shared_secret is not None and not (
        MIN_SHARED_SECRET_LENGTH <= len(config.shared_secret) <= MAX_SHARED_SECRET_LENGTH
    ):
        raise _invalid(
            f"sharedSecret must be {MIN_SHARED_SECRET_LENGTH}-{MAX_SHARED_SECRET_LENGTH} "
            "characters (an HS256 key is at least as long as its hash).",
            "sharedSecret",
        )
    if config.method is EndUserAuthMethod.JWKS:
        for name, value in (
            ("jwksUrl", config.jwks_url),
            ("issuer", config.issuer),
            ("audience", config.audience),
        ):
            if not value:
                raise _invalid(f"method jwks needs {name}.", name)
        assert config.jwks_url is not None
        _check_jwks_url(config.jwks_url, allow_private)
    for name, value in (
        ("claims.user", config.claims.user),
        ("claims.organization", config.claims.organization),
        ("claims.email", config.claims.email),
        ("claims.roles", config.claims.roles),
    ):
        if not _CLAIM.fullmatch(value):
            raise _invalid(f"{name} must be a claim name: 1-100 printable characters.", name)
    if config.cookie_name is not None and (
        not _COOKIE.fullmatch(config.cookie_name)
        or config.cookie_name in (SESSION_COOKIE, CSRF_COOKIE)
    ):
        raise _invalid(
            "cookie must be a cookie name (RFC 6265 token characters), not billwarden's own.",
            "cookie",
        )
    if len(config.allowed_origins) > MAX_LIST or not all(
        _ORIGIN.fullmatch(origin) for origin in config.allowed_origins
    ):
        raise _invalid(
            f"allowedOrigins must be at most {MAX_LIST} origins like https://app.example.com "
            "(scheme and host, no path).",
            "allowedOrigins",
        )
    if len(config.admin_roles) > MAX_LIST or not all(
        _ROLE.fullmatch(role) for role in config.admin_roles
    ):
        raise _invalid(
            f"adminRoles must be at most {MAX_LIST} roles of 1-100 characters.", "adminRoles"
        )


class EndUserAuthService:
    def __init__(self, session: AsyncSession, secret_box: SecretBox) -> None:
        self.session = session
        self.secret_box = secret_box

    async def get(self, project_id: uuid.UUID) -> EndUserAuth | None:
        return await self.session.get(EndUserAuth, project_id)

    async def effective(self, project_id: uuid.UUID) -> EndUserAuthSettings:
        """The project's settings, the defaults when it has set none."""
        row = await self.get(project_id)
        if row is None:
            return EndUserAuthSettings(project_id)
        return EndUserAuthSettings(
            project_id=project_id,
            method=row.method,
            shared_secret=(
                self.secret_box.decrypt(row.shared_secret_ciphertext)
                if row.shared_secret_ciphertext
                else None
            ),
            jwks_url=row.jwks_url,
            issuer=row.issuer,
            audience=row.audience,
            claims=ClaimNames(
                user=row.user_claim,
                organization=row.organization_claim,
                email=row.email_claim,
                roles=row.roles_claim,
            ),
            cookie_name=row.cookie_name,
            allowed_origins=tuple(row.allowed_origins),
            admin_roles=tuple(row.admin_roles),
            mode_from_query=row.mode_from_query,
        )

    async def cookie_names(self) -> frozenset[str]:
        """Every cookie some project reads its end users' tokens from."""
        names = await self.session.scalars(
            select(EndUserAuth.cookie_name).where(EndUserAuth.cookie_name.is_not(None))
        )
        return frozenset(name for name in names if name)

    async def put(
        self, project: Project, config: EndUserAuthInput, settings: Settings | None = None
    ) -> EndUserAuth:
        """Replace the project's settings (a shared secret left out is kept when the method
        stays shared_secret). The single-tenant project's are the environment's when it sets
        them: 409 CONFIGURED_BY_ENVIRONMENT (a restart would undo the change)."""
        if (
            settings is not None
            and settings.single_tenant_secret_key is not None
            and project.slug == settings.single_tenant_project_slug
            and from_environment(settings) is not None
        ):
            raise ConfiguredByEnvironment(
                "This project's end-user authentication comes from the environment "
                "(BILLWARDEN_END_USER_*): change it there."
            )
        allow_private = settings is not None and settings.environment is Environment.DEVELOPMENT
        return await self._write(project.id, config, allow_private=allow_private)

    async def _write(
        self,
        project_id: uuid.UUID,
        config: EndUserAuthInput,
        *,
        allow_private: bool,
        from_environment: bool = False,
    ) -> EndUserAuth:
        row = await self.get(project_id)
        keep_secret = (
            row is not None
            and row.shared_secret_ciphertext is not None
            and config.method is EndUserAuthMethod.SHARED_SECRET
        )
        validate(config, has_shared_secret=keep_secret, allow_private=allow_private)
        if row is None:
            row = EndUserAuth(project_id=project_id)
            self.session.add(row)
        row.method = config.method
        if config.shared_secret is not None:
            row.shared_secret_ciphertext = self.secret_box.encrypt(config.shared_secret)
        elif not keep_secret or config.method is not EndUserAuthMethod.SHARED_SECRET:
            row.shared_secret_ciphertext = None
        row.jwks_url = config.jwks_url
        row.issuer = config.issuer
        row.audience = config.audience
        row.user_claim = config.claims.user
        row.organization_claim = config.claims.organization
        row.email_claim = config.claims.email
        row.roles_claim = config.claims.roles
        row.cookie_name = config.cookie_name
        row.allowed_origins = list(config.allowed_origins)
        row.admin_roles = list(config.admin_roles)
        row.mode_from_query = config.mode_from_query
        row.from_environment = from_environment
        await self.session.flush()
        return row

    async def sync_from_environment(self, project_id: uuid.UUID, settings: Settings) -> bool:
        """Make the single-tenant project's settings the environment's (a no-op, and no write,
        when they are already). Settings the environment wrote and no longer gives are removed
        (the project's own secret applies again): a secret taken out of the environment stops
        verifying. True when something changed."""
        wanted = from_environment(settings)
        row = await self.get(project_id)
        if wanted is None:
            if row is None or not row.from_environment:
                return False
            await self.session.delete(row)
            await self.session.flush()
            return True
        validate(wanted, allow_private=True)  # the operator's own setting
        if (
            row is not None
            and row.from_environment
            and _same(await self.effective(project_id), wanted)
        ):
            return False
        await self._write(project_id, wanted, allow_private=True, from_environment=True)
        return True


def _same(current: EndUserAuthSettings, wanted: EndUserAuthInput) -> bool:
    return (
        current.method,
        current.shared_secret,
        current.jwks_url,
        current.issuer,
        current.audience,
        current.claims,
        current.cookie_name,
        current.allowed_origins,
        current.admin_roles,
        current.mode_from_query,
    ) == (
        wanted.method,
        wanted.shared_secret,
        wanted.jwks_url,
        wanted.issuer,
        wanted.audience,
        wanted.claims,
        wanted.cookie_name,
        wanted.allowed_origins,
        wanted.admin_roles,
        wanted.mode_from_query,
    )
