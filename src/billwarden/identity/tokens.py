"""JSON Web Tokens: developer tokens (signed with a key derived from the secret key) and end
users' tokens: signed by a tenant backend with its project's end-user secret, by the team's app
with a shared secret, or by its identity provider (verified with the keys of its JWKS)."""

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
            except jwt.InvalidAudienceError as exc:
                raise InvalidToken("The token is not a billwarden developer token.") from exc
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
    # whether the token names its mode (a `mode` claim) or takes the project's default
    mode_claimed: bool = False

    @property
    def subject(self) -> str:
        """The billing subject: the organization when there is one, else the user."""
        return self.organization_id or self.sub


@dataclass(frozen=True)
class ClaimNames:
    """Which claims name the user, organization, email and roles in a project's tokens."""

    user: str = "sub"
    organization: str = "organization_id"
    email: str = "email"
    roles: str = "role"


# the algorithms an identity provider's keys may sign with (never HS* with a public key)
ASYMMETRIC_ALGORITHMS = ("RS256", "ES256")


@dataclass(frozen=True)
class UnverifiedToken:
    """What a token says before verification, read only to choose how to verify it."""

    algorithm: str | None
    key_id: str | None
    project_id: uuid.UUID | None
    audience: object
    claims: dict[str, Any]


def unverified(token: str) -> UnverifiedToken:
    try:
        header = jwt.get_unverified_header(token)
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError as exc:
        raise InvalidToken(_describe(exc)) from exc
    project_id: uuid.UUID | None = None
    if "project_id" in claims:
        try:
            project_id = uuid.UUID(str(claims["project_id"]))
        except ValueError as exc:
            raise InvalidToken("The token's project_id claim is not a project id.") from exc
    algorithm, key_id = header.get("alg"), header.get("kid")
    return UnverifiedToken(
        algorithm if isinstance(algorithm, str) else None,
        key_id if isinstance(key_id, str) else None,
        project_id,
        claims.get("aud"),
        claims,
    )


def unverified_project_id(token: str) -> uuid.UUID:
    """The `project_id` claim, read before verification only to pick the secrets to verify with."""
    found = unverified(token)
    if found.algorithm != ALGORITHM:
        raise InvalidToken(f"End-user tokens are signed with {ALGORITHM}.")
    if found.project_id is None:
        raise InvalidToken("The token has no valid project_id claim.")
    return found.project_id


def verify_end_user_token(
    token: str,
    keys: Sequence[Any],
    *,
    project_id: uuid.UUID | None = None,
    default_mode: Mode = Mode.TEST,
    names: ClaimNames = ClaimNames(),
    algorithms: Sequence[str] = (ALGORITHM,),
    issuer: str | None = None,
    audience: str | None = None,
    leeway: int = 0,
) -> EndUserClaims:
    """Verify against each of `keys` in turn (a project's live secrets while rotating, a shared
    secret, or the identity provider's key for the token's `kid`). `project_id` is the project
    the token was resolved to (a token without the claim: the single-tenant project); with an
    issuer and audience both are required and checked (identity providers' tokens)."""
    required = ["exp", names.user]
    if project_id is None:
        required.append("project_id")
    if issuer is not None:
        required.append("iss")
    if audience is not None:
        required.append("aud")
    claims: dict[str, Any] | None = None
    for key in keys:
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=list(algorithms),
                issuer=issuer,
                audience=audience,
                leeway=leeway,
                # the user claim is checked below (a numeric id is taken as its string)
                options={
                    "require": required,
                    "verify_aud": audience is not None,
                    "verify_sub": False,
                },
            )
            break
        except jwt.InvalidSignatureError:
            continue
        except jwt.PyJWTError as exc:
            raise InvalidToken(_describe(exc)) from exc
        except (TypeError, ValueError) as exc:  # a key of another type than the algorithm's
            raise InvalidToken("The token's key does not fit its algorithm.") from exc
    if claims is None:
        raise InvalidToken("The token's signature does not match the project's end-user keys.")
    return _end_user_claims(claims, project_id, default_mode, names)


# billing subjects are stored in 255 characters, emails in 320 (what a token may carry)
_SUBJECT_ID = re.compile(SUBJECT_ID_PATTERN)
EMAIL_MAX_LENGTH = 320
ROLE_MAX_LENGTH = 100
MAX_ROLES = 50


def _end_user_claims(
    claims: dict[str, Any], project_id: uuid.UUID | None, default_mode: Mode, names: ClaimNames
) -> EndUserClaims:
    sub = claims[names.user]
    if isinstance(sub, int) and not isinstance(sub, bool):
        sub = str(sub)  # identity providers with numeric user ids
    if not isinstance(sub, str) or not _SUBJECT_ID.fullmatch(sub):
        raise InvalidToken(
            f"The {names.user} claim must be 1-255 characters, no control characters."
        )
    try:
        mode = Mode(claims.get("mode", default_mode.value))
    except ValueError as exc:
        raise InvalidToken("The mode claim must be 'test' or 'live'.") from exc
    email = claims.get(names.email)
    organization_id = claims.get(names.organization)
    if email is not None and (
        not isinstance(email, str) or len(email) > EMAIL_MAX_LENGTH or "\x00" in email
    ):
        raise InvalidToken(
            f"The {names.email} claim must be a string of at most {EMAIL_MAX_LENGTH}."
        )
    if isinstance(organization_id, int) and not isinstance(organization_id, bool):
        organization_id = str(organization_id)
    if organization_id is not None and (
        not isinstance(organization_id, str)
        or (organization_id and not _SUBJECT_ID.fullmatch(organization_id))
    ):
        raise InvalidToken(
            f"The {names.organization} claim must be 1-255 characters, no control characters."
        )
    return EndUserClaims(
        project_id=project_id or uuid.UUID(str(claims["project_id"])),
        mode=mode,
        sub=sub,
        email=email,
        organization_id=organization_id or None,
        roles=_roles(claims.get(names.roles), names.roles),
        mode_claimed="mode" in claims,
    )


def _roles(value: object, name: str) -> tuple[str, ...]:
    if value is None:
        return ()
    items = [value] if isinstance(value, str) else value
    if (
        not isinstance(items, list)
        or len(items) > MAX_ROLES
        or not all(isinstance(item, str) and 0 < len(item) <= ROLE_MAX_LENGTH for item in items)
    ):
        raise InvalidToken(
            f"The {name} claim must be a role or a list of at most {MAX_ROLES} roles "
            f"(strings of 1-{ROLE_MAX_LENGTH} characters)."
        )
    return tuple(items)


def _describe(error: jwt.PyJWTError | None) -> str:
    if isinstance(error, jwt.ExpiredSignatureError):
        return "The token has expired."
    if isinstance(error, jwt.MissingRequiredClaimError):
        return f"The token has no {error.claim} claim."
    if isinstance(error, jwt.InvalidSignatureError):
        return "The token's signature is invalid."
    if isinstance(error, jwt.InvalidAudienceError):
        return "The token is for another audience."
    if isinstance(error, jwt.InvalidIssuerError):
        return "The token is from another issuer."
    if isinstance(error, jwt.InvalidAlgorithmError):
        return "The token is signed with an algorithm this project does not accept."
    if isinstance(error, jwt.ImmatureSignatureError):
        return "The token is not valid yet."
    return "The token is malformed."
