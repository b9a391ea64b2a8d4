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
import logging
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import jwt
from sqlalchemy.ext.asyncio import AsyncSession

from billwarden.config import Settings
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
from billwarden.projects.models import EndUserAuthMethod
from billwarden.projects.service import EndUserSecretService, ProjectService
from billwarden.projects.single_tenant import single_tenant_mode

logger = logging.getLogger("billwarden.auth")
JWKS_MAX_AGE = 600.0
JWKS_MIN_REFETCH = 30.0
JWKS_TIMEOUT = 5.0
JWKS_MAX_BYTES = 256 * 1024


class EndUserKeysUnavailable(BillwardenError):
    code = "END_USER_KEYS_UNAVAILABLE"
    status_code = 503


class OriginNotAllowed(Forbidden):
    code = "ORIGIN_NOT_ALLOWED"


@dataclass
class _KeySet:
    keys: dict[str | None, Any]
    fetched_at: float


class JwksKeys:
    """Identity providers' signing keys, per JWKS URL, for one app."""

    def __init__(self) -> None:
        self._sets: dict[str, _KeySet] = {}
        self._tried: dict[str, float] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> JwksKeys:
        return cls()

    async def key(self, url: str, key_id: str | None) -> Any:
        """The key for `key_id` (a token without `kid`: the set's only key)."""
        found = self._sets.get(url)
        now = time.monotonic()
        stale = found is None or now - found.fetched_at > JWKS_MAX_AGE
        unknown = found is not None and self._pick(found, key_id) is None
        if stale or (unknown and now - self._tried.get(url, 0.0) > JWKS_MIN_REFETCH):
            found = await self._refresh(url) or found
        if found is None:
            raise EndUserKeysUnavailable(
                "The identity provider's keys cannot be fetched right now; try again shortly."
            )
        key = self._pick(found, key_id)
        if key is None:
            raise InvalidToken("The token's key id is not among the identity provider's keys.")
        return key

    @staticmethod
    def _pick(found: _KeySet, key_id: str | None) -> Any:
        if key_id is None:
            return next(iter(found.keys.values())) if len(found.keys) == 1 else None
        return found.keys.get(key_id)

    async def _refresh(self, url: str) -> _KeySet | None:
        lock = self._locks.setdefault(url, asyncio.Lock())
        tried_before = self._tried.get(url, 0.0)
        async with lock:
            if self._tried.get(url, 0.0) != tried_before:  # another request just fetched
                return self._sets.get(url)
            self._tried[url] = time.monotonic()
            try:
                async with httpx.AsyncClient(timeout=JWKS_TIMEOUT) as client:
                    answer = await client.get(url, headers={"Accept": "application/json"})
                answer.raise_for_status()
                if len(answer.content) > JWKS_MAX_BYTES:
                    raise ValueError("the key set is too large")
                keys: dict[str | None, Any] = {}
                for jwk in jwt.PyJWKSet.from_dict(answer.json()).keys:
                    if jwk.public_key_use in (None, "sig"):
                        keys[jwk.key_id] = jwk.key
            except (httpx.HTTPError, ValueError, jwt.PyJWKSetError) as exc:
                logger.warning("cannot fetch the identity provider's keys from %s: %s", url, exc)
                return None
            found = _KeySet(keys, time.monotonic())
            self._sets[url] = found
            return found


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
        self.cache.put(lookup, generation, names)
        return names

    async def _project(self, project_id: uuid.UUID | None) -> _Project:
        lookup = ("end_user_auth", project_id)
        generation, known = self.cache.get(lookup)
        if isinstance(known, _Project):
            return known
        mode = Mode.TEST
        if project_id is None:
            secret_key = self.settings.single_tenant_secret_key
            if secret_key is None:
                raise InvalidToken(
                    "The token has no project_id claim, and there is no single-tenant project."
                )
            single = await ProjectService(self.session).find_by_slug(
                self.settings.single_tenant_project_slug
            )
            if single is None:
                raise InvalidToken("The single-tenant project does not exist yet.")
            resolved = single.id
            mode = single_tenant_mode(secret_key.get_secret_value())
        else:
            # a project that does not exist has no settings row, so its tokens go to the
            # project-secret check, which finds no secret
            resolved = project_id
        settings = await EndUserAuthService(self.session, self.secret_box).effective(resolved)
        project = _Project(settings, mode)
        self.cache.put(lookup, generation, project)
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
            key = await self.keys.key(settings.jwks_url, key_id)
            return verify_end_user_token(
                token,
                [key],
                algorithms=ASYMMETRIC_ALGORITHMS,
                issuer=settings.issuer,
                audience=settings.audience,
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
