"""Encryption of secrets at rest (Fernet), keyed from `BILLWARDEN_SECRET_KEY`.

The Fernet key is derived with HKDF-SHA256 so any sufficiently long secret works. Old secret keys
listed in `BILLWARDEN_SECRET_KEY_FALLBACKS` still decrypt; `billwarden re-encrypt-secrets`
re-encrypts every stored secret under the current key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

MIN_SECRET_KEY_LENGTH = 32
_HKDF_SALT = b"billwarden/secrets-at-rest"
_HKDF_INFO = b"fernet-v1"


class SecretKeyError(ValueError):
    """The configured secret key is missing or too weak."""


class SecretDecryptionError(Exception):
    """A stored secret cannot be decrypted with the current or fallback keys."""


def derive_fernet_key(secret_key: str) -> bytes:
    if len(secret_key) < MIN_SECRET_KEY_LENGTH:
        raise SecretKeyError(
            f"the secret key must be at least {MIN_SECRET_KEY_LENGTH} characters long"
        )
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=_HKDF_SALT, info=_HKDF_INFO)
    return base64.urlsafe_b64encode(hkdf.derive(secret_key.encode()))


def _derive_hash_key(secret_key: str) -> bytes:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=_HKDF_SALT, info=b"keyed-hash-v1")
    return hkdf.derive(secret_key.encode())


class SecretBox:
    """Encrypts with the primary key; decrypts with the primary key or any fallback.

    Also computes keyed hashes (HMAC-SHA256) for values stored only as hashes (API keys,
    session tokens): `keyed_hash` for storing, `lookup_hashes` (one per key, primary first) for
    finding a row while a rotated key's hashes are still in the database.
    """

    def __init__(self, secret_key: str, fallbacks: Sequence[str] = ()) -> None:
        keys = [Fernet(derive_fernet_key(key)) for key in (secret_key, *fallbacks)]
        self._fernet = MultiFernet(keys)
        self._hash_keys = [_derive_hash_key(key) for key in (secret_key, *fallbacks)]

    def keyed_hash(self, value: str) -> str:
        return hmac.new(self._hash_keys[0], value.encode(), hashlib.sha256).hexdigest()

    def lookup_hashes(self, value: str) -> list[str]:
        return [
            hmac.new(key, value.encode(), hashlib.sha256).hexdigest() for key in self._hash_keys
        ]

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, ciphertext: str) -> str:
        try:
            return self._fernet.decrypt(ciphertext.encode()).decode()
        except InvalidToken as exc:
            raise SecretDecryptionError(
                "stored secret cannot be decrypted: was BILLWARDEN_SECRET_KEY changed "
                "without listing the old key in BILLWARDEN_SECRET_KEY_FALLBACKS?"
            ) from exc

    def rotate(self, ciphertext: str) -> str:
        """Re-encrypt under the primary key (no-op in meaning, new token)."""
        try:
            return self._fernet.rotate(ciphertext.encode()).decode()
        except InvalidToken as exc:
            raise SecretDecryptionError("stored secret cannot be decrypted for rotation") from exc


_KNOWN_PREFIX = re.compile(r"^(?:(?:sk|rk|pk|bw)_(?:test|live)_|whsec_)")


def mask_secret(value: str, *, visible: int = 4) -> str:
    """`sk_test_...abcd`: the key's kind and its last characters, as Stripe's dashboard shows."""
    match = _KNOWN_PREFIX.match(value)
    prefix = match.group(0) if match else ""
    secret_part = value[len(prefix) :]
    tail = secret_part[-visible:] if len(secret_part) > 2 * visible else ""
    return f"{prefix}...{tail}"
