"""Object ids with Stripe's prefixes."""

from __future__ import annotations

import secrets
import string

_ALPHABET = string.ascii_letters + string.digits

# Length of the random part, as in Stripe's own ids.
_LENGTHS = {"cus": 14, "prod": 14, "si": 14, "bps": 24, "clock": 24, "whsec": 32, "req": 14}


def random_part(length: int) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


def new_id(prefix: str) -> str:
    """`cus_...`, `sub_...`, `cs_test_...` etc.; prefixes ending in `_` are used as given."""
    base = prefix.rstrip("_")
    if prefix.startswith("cs_"):
        return f"{prefix}{random_part(58)}"
    return f"{base}_{random_part(_LENGTHS.get(base, 24))}"
