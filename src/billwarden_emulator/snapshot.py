"""Save and restore the emulator's state as one JSON file (`billwarden demo` survives restarts)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import orjson

from billwarden_emulator.state import Store

FORMAT_VERSION = 1


def dump(store: Store) -> bytes:
    accounts: dict[str, Any] = {}
    for key, account in store.accounts.items():
        accounts[key] = {
            "created": account.created,
            "collections": account.collections,
            "deleted": account.deleted,
            "internal": account.internal,
        }
    return orjson.dumps(
        {"version": FORMAT_VERSION, "accounts": accounts, "revoked": sorted(store.revoked)}
    )


def load(store: Store, data: bytes) -> None:
    state = orjson.loads(data)
    if state.get("version") != FORMAT_VERSION:
        raise ValueError(f"unsupported emulator snapshot version: {state.get('version')!r}")
    store.revoked = set(state.get("revoked", []))
    for key, saved in state["accounts"].items():
        account = store.account_for(key)
        account.created = saved["created"]
        for name, objects in saved["collections"].items():
            account.collections[name] = objects
        account.deleted = saved["deleted"]
        account.internal.update(saved["internal"])


def save_file(store: Store, path: Path) -> None:
    """Write atomically: a crash mid-write leaves the previous snapshot intact."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(path.suffix + ".tmp")
    temporary.write_bytes(dump(store))
    os.replace(temporary, path)


def load_file(store: Store, path: Path) -> bool:
    if not path.exists():
        return False
    load(store, path.read_bytes())
    return True
