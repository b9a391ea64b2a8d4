"""Transaction-scoped locks on a name, for work that must not run twice at once for one thing
(one Stripe subscription re-fetched and applied by two workers)."""

from __future__ import annotations

import hashlib

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession


def _lock_id(name: str) -> int:
    # PostgreSQL's advisory locks take a signed 64-bit key
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


async def lock_name(session: AsyncSession, name: str) -> None:
    """Hold a lock on `name` until the transaction ends; a second holder waits.

    PostgreSQL: `pg_advisory_xact_lock`. SQLite has one writer for the whole database: the
    transaction takes the write lock here (an empty write), which serializes the same way."""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _lock_id(name)})
    else:
        await session.execute(text("UPDATE projects SET id = id WHERE 1 = 0"))
