"""The background workers' shared stop: with no embedded worker there is nothing to wait for."""

from __future__ import annotations

import asyncio

from billwarden.kit.workers import stop_all


class TestStopAll:
    async def test_no_workers_stop_at_once(self) -> None:
        await asyncio.wait_for(stop_all({}, [], wait=5.0), timeout=1.0)
