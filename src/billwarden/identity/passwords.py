"""Console passwords, hashed with argon2id."""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from billwarden.errors import InvalidInput

MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 256


class WeakPassword(InvalidInput):
    code = "WEAK_PASSWORD"


# argon2-cffi's defaults are RFC 9106's low-memory argon2id profile
_hasher = PasswordHasher()
_timing_hash: str | None = None


def use_password_hasher(hasher: PasswordHasher) -> PasswordHasher:
    """Swap the hasher (tests use cheaper parameters); returns the previous one."""
    global _hasher, _timing_hash
    previous, _hasher, _timing_hash = _hasher, hasher, None
    return previous


def check_password_policy(password: str) -> None:
    if not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
        raise WeakPassword(
            f"A password is {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters long.",
            details={"field": "password"},
        )


async def hash_password(password: str) -> str:
    # argon2 is deliberately slow: keep it off the event loop
    return await asyncio.to_thread(_hasher.hash, password)


async def verify_password(password_hash: str | None, password: str) -> bool:
    """Check a password; with no hash (unknown user) spend the same time and answer False."""
    global _timing_hash
    if password_hash is None:
        if _timing_hash is None:
            _timing_hash = await hash_password("billwarden timing equaliser")
        await asyncio.to_thread(_verify, _timing_hash, password)
        return False
    return await asyncio.to_thread(_verify, password_hash, password)


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    try:
        return _hasher.check_needs_rehash(password_hash)
    except InvalidHashError:
        return True
