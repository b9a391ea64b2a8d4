"""Verifying end users' tokens the way each project accepts them (projects.end_user_auth).

A token names its project in `project_id`; one without (the team's own tokens) belongs to the
single-tenant project. The project's settings are read through the read cache, so the hot path
(an entitlement check with the app's token) reads no configuration from the database; the
project's own rotating secrets (the default method) are read each time, as before.

Identity providers' keys come from their JWKS URL, kept per app: refreshed when older than
`JWKS_MAX_AGE`, or at once for a `kid` not yet seen (at most every `JWKS_MIN_REFETCH` seconds, so
tokens with made-up key ids cannot make billwarden hammer the provider). While the provider is
unreachable the keys already fetched keep verifying; with none, the answer is 503.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import socket
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
import jwt
from sqlalchemy.ext.asyncio import AsyncSession

from billwarden.config import Environment, Settings
from billwarden.core.modes import Mode
from billwarden.crypto import SecretBox
from billwarden.db.changes import GenerationCache
from billwarden.errors import BillwardenError, Forbidden
from billwarden.identity.exceptions import Unauthenticated
from billwarden.identity.tokens import (
    ALGORITHM,
    ASYMMETRIC_ALGORITHMS,
    EndUserClaims,
    InvalidToken,
    unverified,
    verify_end_user_token,
)
from billwarden.projects.end_user_auth import EndUserAuthService, EndUserAuthSettings
from billwarden.projects.models import EndUserAuthMethod, Project
from billwarden.projects.service import EndUserSecretService, ProjectService
from billwarden.projects.single_tenant import single_tenant_mode

logger = logging.getLogger("billwarden.auth")
JWKS_MAX_AGE = 600.0
JWKS_MIN_REFETCH = 30.0
_clock = time.monotonic  # the refetch windows' clock (tests move it on)
JWKS_TIMEOUT = 5.0
JWKS_MAX_BYTES = 256 * 1024
# an identity provider's clock may run a little ahead of or behind billwarden's
JWKS_LEEWAY_SECONDS = 30


class EndUserKeysUnavailable(BillwardenError):
    code = "END_USER_KEYS_UNAVAILABLE"
    status_code = 503


class OriginNotAllowed(Forbidden):
    code = "ORIGIN_NOT_ALLOWED"


# the key type each accepted algorithm verifies with
_KEY_TYPES = {"RS256": "RSA", "ES256": "EC"}


@dataclass
class _KeySet:
    keys: dict[str | None, tuple[str, Any]]  # kid -> (key type, key)
    fetched_at: float


class JwksKeys:
    """Identity providers' signing keys, per JWKS URL, for one app.

    A fetch has one deadline for the whole answer (a provider that trickles bytes cannot hold a
    request), reads at most `JWKS_MAX_BYTES` of an undecoded body, follows no redirect and, unless
    the URL is the operator's (`BILLWARDEN_END_USER_JWKS_URL`) or billwarden runs in development,
    connects only to a public address, the one it checked (no rebinding to an internal host).
    Failed fetches are retried at most every `JWKS_MIN_REFETCH` seconds; a request never waits
    for another's fetch when there are keys to verify with."""

    def __init__(self, *, allow_private: bool = False, trusted: frozenset[str] = frozenset()):
        self.allow_private = allow_private
        self.trusted = trusted
        self._sets: dict[str, _KeySet] = {}
        self._tried: dict[str, float] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> JwksKeys:
        return cls(
            allow_private=settings.environment is Environment.DEVELOPMENT,
            trusted=frozenset([settings.end_user_jwks_url] if settings.end_user_jwks_url else []),
        )

    async def key(self, url: str, key_id: str | None, algorithm: str) -> Any:
        """The key for `key_id` (a token without `kid`: the set's only key) of the type
        `algorithm` verifies with."""
        found = self._sets.get(url)
        now = _clock()
        due = now - self._tried.get(url, -JWKS_MIN_REFETCH) >= JWKS_MIN_REFETCH
        stale = found is None or now - found.fetched_at > JWKS_MAX_AGE
        unknown = found is not None and self._pick(found, key_id, algorithm) is None
        lock = self._locks.setdefault(url, asyncio.Lock())
        if (stale or unknown) and due and (found is None or not lock.locked()):
            found = await self._refresh(url, lock) or found
        if found is None:
            raise EndUserKeysUnavailable(
                "The identity provider's keys cannot be fetched right now; try again shortly."
            )
        key = self._pick(found, key_id, algorithm)
        if key is None:
            raise InvalidToken("The token's key id is not among the identity provider's keys.")
        return key

    @staticmethod
    def _pick(found: _KeySet, key_id: str | None, algorithm: str) -> Any:
        if key_id is None:
            entry = next(iter(found.keys.values())) if len(found.keys) == 1 else None
        else:
            entry = found.keys.get(key_id)
        if entry is None or entry[0] != _KEY_TYPES.get(algorithm):
            return None
        return entry[1]

    async def _refresh(self, url: str, lock: asyncio.Lock) -> _KeySet | None:
        tried_before = self._tried.get(url)
        async with lock:
            if self._tried.get(url) != tried_before:  # another request just fetched
                return self._sets.get(url)
            self._tried[url] = _clock()
            try:
                async with asyncio.timeout(JWKS_TIMEOUT):
                    document = await self._fetch(url)
                keys: dict[str | None, tuple[str, Any]] = {}
                for jwk in jwt.PyJWKSet.from_dict(document).keys:
                    if jwk.public_key_use in (None, "sig") and jwk.key_type in ("RSA", "EC"):
                        keys[jwk.key_id] = (jwk.key_type, jwk.key)
            except (TimeoutError, httpx.HTTPError, ValueError, OSError, jwt.PyJWKSetError) as exc:
                logger.warning(
                    "cannot fetch the identity provider's keys from %s: %s",
                    _redacted(url),
                    exc.__class__.__name__,
                )
                return None
            found = _KeySet(keys, _clock())
            self._sets[url] = found
            return found

    async def _fetch(self, url: str) -> dict[str, Any]:
        target, headers = url, {"Accept": "application/json"}
        extensions: dict[str, Any] = {}
        if not (self.allow_private or url in self.trusted):
            target, headers, extensions = await _pinned_to_a_public_address(url, headers)
        headers["Accept-Encoding"] = "identity"
        async with (
            httpx.AsyncClient(timeout=JWKS_TIMEOUT, follow_redirects=False) as client,
            client.stream("GET", target, headers=headers, extensions=extensions) as answer,
        ):
            answer.raise_for_status()
            declared = answer.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > JWKS_MAX_BYTES:
                raise ValueError("the key set is too large")
            body = bytearray()
            async for chunk in answer.aiter_raw():  # undecoded: no compressed bomb
                body += chunk
                if len(body) > JWKS_MAX_BYTES:
                    raise ValueError("the key set is too large")
        document = json.loads(body)
        if not isinstance(document, dict):
            raise ValueError("the key set is not a JSON object")
        return document


def _redacted(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}{parts.path}"


def public_address(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


async def _pinned_to_a_public_address(
    url: str, headers: dict[str, str]
) -> tuple[str, dict[str, str], dict[str, Any]]:
    """The URL with its host replaced by the public address it resolves to (every address it
    resolves to must be public), the Host header and TLS name kept."""
    parts = urlsplit(url)
    host = parts.hostname
    if parts.scheme != "https" or not host or parts.username or parts.password:
        raise ValueError("the key set's URL must be https:// with a host and no credentials")
    port = parts.port or 443
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses = [str(info[4][0]) for info in infos]
    if not addresses or not all(public_address(address) for address in addresses):
        raise ValueError("the key set's host is not a public address")
    address = addresses[0]
    literal = f"[{address}]" if ":" in address else address
    netloc = f"{literal}:{parts.port}" if parts.port else literal
    target = parts._replace(netloc=netloc).geturl()
    return (
        target,
        {**headers, "Host": parts.netloc},
        {"sni_hostname": host},
    )


@dataclass(frozen=True)
class _Project:
    """What the cache holds for a project's end users: its settings, and whether it is the
    single-tenant project (whose tokens need no project_id and default to its mode)."""

    settings: EndUserAuthSettings
    mode: Mode


class EndUsers:
    """Verifies a request's end-user token for the project it belongs to."""

    def __init__(
        self,
        session: AsyncSession,
        secret_box: SecretBox,
        settings: Settings,
        cache: GenerationCache,
        keys: JwksKeys,
    ) -> None:
        self.session = session
        self.secret_box = secret_box
        self.settings = settings
        self.cache = cache
        self.keys = keys

    async def verify(self, token: str) -> tuple[EndUserClaims, EndUserAuthSettings]:
        """The token's claims and its project's settings, or Unauthenticated saying why."""
        try:
            found = unverified(token)
            project = await self._project(found.project_id)
            claims = await self._verify(token, found.algorithm, found.key_id, project)
        except InvalidToken as exc:
            raise Unauthenticated(f"The end-user token is not valid: {exc}") from exc
        return claims, project.settings

    async def cookie_names(self) -> frozenset[str]:
        """The cookies any project reads end users' tokens from (cached)."""
        lookup = ("end_user_cookies",)
        generation, known = self.cache.get(lookup)
        if isinstance(known, frozenset):
            return known
        names = await EndUserAuthService(self.session, self.secret_box).cookie_names()
        await self.cache.put_read(self.session, lookup, generation, names)
        return names

    async def _project(self, project_id: uuid.UUID | None) -> _Project:
        lookup = ("end_user_auth", project_id)
        generation, known = self.cache.get(lookup)
        if isinstance(known, _Project):
            return known
        secret_key = self.settings.single_tenant_secret_key
        single = (
            await ProjectService(self.session).find_by_slug(
                self.settings.single_tenant_project_slug
            )
            if secret_key is not None
            else None
        )
        if project_id is None:
            if single is None:
                raise InvalidToken(
                    "The token has no project_id claim, and there is no single-tenant project."
                )
            resolved = single.id
        elif await self.session.get(Project, project_id) is None:
            # not cached: made-up project ids must not fill the read cache
            raise InvalidToken("The project does not exist or has no end-user secret.")
        else:
            resolved = project_id
        mode = Mode.TEST
        if single is not None and secret_key is not None and resolved == single.id:
            mode = single_tenant_mode(secret_key.get_secret_value())
        settings = await EndUserAuthService(self.session, self.secret_box).effective(resolved)
        project = _Project(settings, mode)
        await self.cache.put_read(self.session, lookup, generation, project)
        return project

    async def _verify(
        self, token: str, algorithm: str | None, key_id: str | None, project: _Project
    ) -> EndUserClaims:
        settings = project.settings
        common: dict[str, Any] = {
            "project_id": settings.project_id,
            "default_mode": project.mode,
            "names": settings.claims,
        }
        if settings.method is EndUserAuthMethod.JWKS:
            if algorithm not in ASYMMETRIC_ALGORITHMS:
                accepted = " or ".join(ASYMMETRIC_ALGORITHMS)
                raise InvalidToken(f"This project's end-user tokens are signed with {accepted}.")
            assert settings.jwks_url is not None
            key = await self.keys.key(settings.jwks_url, key_id, algorithm)
            return verify_end_user_token(
                token,
                [key],
                algorithms=(algorithm,),
                issuer=settings.issuer,
                audience=settings.audience,
                leeway=JWKS_LEEWAY_SECONDS,
                **common,
            )
        if algorithm != ALGORITHM:
            raise InvalidToken(f"End-user tokens are signed with {ALGORITHM}.")
        if settings.method is EndUserAuthMethod.SHARED_SECRET:
            assert settings.shared_secret is not None
            return verify_end_user_token(token, [settings.shared_secret], **common)
        overlap = timedelta(seconds=self.settings.end_user_secret_overlap_seconds)
        secrets = await EndUserSecretService(self.session, self.secret_box, overlap).live_secrets(
            settings.project_id
        )
        if not secrets:
            raise InvalidToken("The project does not exist or has no end-user secret.")
        return verify_end_user_token(token, secrets, **common)


def check_origin(settings: EndUserAuthSettings, origin: str | None) -> None:
    """A browser's unsafe request with the app's cookie must come from one of its origins."""
    if origin is None or origin not in settings.allowed_origins:
        raise OriginNotAllowed(
            "A token from a cookie needs an Origin header among the project's allowedOrigins "
            "on unsafe methods.",
            details={"origin": origin},
        )
