"""JSON Web Tokens: developer tokens (signed with a key derived from the secret key) and the
end-user tokens a tenant backend signs with its project's end-user secret."""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import jwt
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from billwarden.config import Settings
from billwarden.core.modes import Mode
from billwarden.core.subjects import SUBJECT_ID_PATTERN
from billwarden.db.base import utcnow

ALGORITHM = "HS256"
DEVELOPER_AUDIENCE = "billwarden:developer"
_HKDF_SALT = b"billwarden/developer-jwt"
_HKDF_INFO = b"hs256-v1"


class InvalidToken(Exception):
    """A malformed, badly signed or expired token, or a missing claim; the message says which."""


def derive_developer_jwt_key(secret_key: str) -> bytes:
    """The developer-token signing key: HKDF of the secret key, never the key itself."""
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=_HKDF_SALT, info=_HKDF_INFO)
    return hkdf.derive(secret_key.encode())


def password_version(changed_at: datetime) -> int:
    return int(changed_at.timestamp() * 1_000_000)


@dataclass(frozen=True)
class DeveloperClaims:
    user_id: uuid.UUID
    password_version: int


class DeveloperTokens:
    """Issues with the primary secret key; verifies with it or any fallback key."""

    def __init__(self, secret_keys: Sequence[str], ttl: timedelta) -> None:
        self._keys = [derive_developer_jwt_key(key) for key in secret_keys]
        self.ttl = ttl

    @classmethod
    def from_settings(cls, settings: Settings) -> DeveloperTokens:
        if settings.secret_key is None:
            raise ValueError("developer tokens need BILLWARDEN_SECRET_KEY")
        keys = [settings.secret_key, *settings.secret_key_fallbacks]
        return cls(
            [key.get_secret_value() for key in keys],
            timedelta(seconds=settings.developer_token_ttl_seconds),
        )

    def issue(self, user_id: uuid.UUID, password_changed_at: datetime) -> str:
        now = utcnow()
        claims = {
            "sub": str(user_id),
            "aud": DEVELOPER_AUDIENCE,
            "iat": now,
            "exp": now + self.ttl,
            "pwv": password_version(password_changed_at),
        }
        return jwt.encode(claims, self._keys[0], algorithm=ALGORITHM)

    def verify(self, token: str) -> DeveloperClaims:
        last_error: jwt.PyJWTError | None = None
        for key in self._keys:
            try:
                claims = jwt.decode(
                    token,
                    key,
                    algorithms=[ALGORITHM],
                    audience=DEVELOPER_AUDIENCE,
                    options={"require": ["sub", "exp", "iat", "aud", "pwv"]},
                )
            except jwt.InvalidSignatureError as exc:
                last_error = exc
                continue
            except jwt.PyJWTError as exc:
                raise InvalidToken(_describe(exc)) from exc
            version = claims["pwv"]
            # JSON numbers may be floats (1e999 is infinity); only an integer is a version
            if not isinstance(version, int) or isinstance(version, bool):
                raise InvalidToken("The token's claims are malformed.")
            try:
                return DeveloperClaims(uuid.UUID(str(claims["sub"])), version)
            except (ValueError, TypeError) as exc:
                raise InvalidToken("The token's claims are malformed.") from exc
        raise InvalidToken(_describe(last_error))


@dataclass(frozen=True)
class EndUserClaims:
    project_id: uuid.UUID
    mode: Mode
    sub: str
    email: str | None
    organization_id: str | None
    # the role claim (a string or a list in the token), for the seeds' admin routes
    roles: tuple[str, ...] = ()

    @property
    def subject(self) -> str:
        """The billing subject: the organization when there is one, else the user."""
        return self.organization_id or self.sub


def unverified_project_id(token: str) -> uuid.UUID:
    """The `project_id` claim, read before verification only to pick the secrets to verify with."""
    try:
        header = jwt.get_unverified_header(token)
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError as exc:
        raise InvalidToken(_describe(exc)) from exc
    if header.get("alg") != ALGORITHM:
        raise InvalidToken(f"End-user tokens are signed with {ALGORITHM}.")
    try:
        return uuid.UUID(str(claims["project_id"]))
    except (KeyError, ValueError) as exc:
        raise InvalidToken("The token has no valid project_id claim.") from exc


def verify_end_user_token(token: str, secrets: Sequence[str]) -> EndUserClaims:
    """Verify against each of the project's live secrets (several while rotating)."""
    claims: dict[str, Any] | None = None
    for secret in secrets:
        try:
            claims = jwt.decode(
                token,
                secret,
                algorithms=[ALGORITHM],
                options={"require": ["sub", "project_id", "exp"], "verify_aud": False},
            )
            break
        except jwt.InvalidSignatureError:
            continue
        except jwt.PyJWTError as exc:
            raise InvalidToken(_describe(exc)) from exc
    if claims is None:
        raise InvalidToken("The token's signature does not match the project's end-user secret.")
    return _end_user_claims(claims)


# billing subjects are stored in 255 characters, emails in 320 (what a token may carry)
_SUBJECT_ID = re.compile(SUBJECT_ID_PATTERN)
EMAIL_MAX_LENGTH = 320


def _end_user_claims(claims: dict[str, Any]) -> EndUserClaims:
    sub = claims["sub"]
    if not isinstance(sub, str) or not _SUBJECT_ID.fullmatch(sub):
        raise InvalidToken("The sub claim must be 1-255 characters, no control characters.")
    try:
        mode = Mode(claims.get("mode", Mode.TEST.value))
    except ValueError as exc:
        raise InvalidToken("The mode claim must be 'test' or 'live'.") from exc
    email = claims.get("email")
    organization_id = claims.get("organization_id")
    if email is not None and (
        not isinstance(email, str) or len(email) > EMAIL_MAX_LENGTH or "\x00" in email
    ):
        raise InvalidToken(f"The email claim must be a string of at most {EMAIL_MAX_LENGTH}.")
    if organization_id is not None and (
        not isinstance(organization_id, str)
        or (organization_id and not _SUBJECT_ID.fullmatch(organization_id))
    ):
        raise InvalidToken(
            "The organization_id claim must be 1-255 characters, no control characters."
        )
    return EndUserClaims(
        project_id=uuid.UUID(str(claims["project_id"])),
        mode=mode,
        sub=sub,
        email=email,
        organization_id=organization_id or None,
    )


def _describe(error: jwt.PyJWTError | None) -> str:
    if isinstance(error, jwt.ExpiredSignatureError):
        return "The token has expired."
    if isinstance(error, jwt.MissingRequiredClaimError):
        return f"The token has no {error.claim} claim."
    if isinstance(error, jwt.InvalidSignatureError):
        return "The token's signature is invalid."
    if isinstance(error, jwt.InvalidAudienceError):
        return "The token is not a billwarden developer token."
    if isinstance(error, jwt.ImmatureSignatureError):
        return "The token is not valid yet."
    return "The token is malformed."
