"""Calling the emulator's `/_emulator/` helpers from billwarden's own tests."""

from __future__ import annotations

import httpx


async def emulator_helper(
    emulator_url: str, key: str, path: str, json: dict[str, object] | None = None
) -> None:
    """POST to a helper route as the account of `key`; the helper must accept it."""
    async with httpx.AsyncClient(base_url=emulator_url) as http:
        response = await http.post(path, headers={"Authorization": f"Bearer {key}"}, json=json)
    assert response.status_code == 200, response.text
