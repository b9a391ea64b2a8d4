"""The reconciliation worker: runs queued runs (and runs whose runner died), and asks for a run
of every configured project and mode each BILLWARDEN_RECONCILE_INTERVAL_SECONDS.

It runs where the other workers run: embedded in `serve` and in `billwarden worker`. Several
processes may run it: the database holds one active run per project and mode, and a run is
claimed under a lease before it starts.
"""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from billwarden.db.base import utcnow
from billwarden.db.unit_of_work import unit_of_work
from billwarden.projects.models import StripeConfig
from billwarden.reconciliation.repository import RunRepository
from billwarden.reconciliation.service import SCHEDULE, Runs

logger = logging.getLogger("billwarden.reconciliation")


class ReconcileWorker:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        runs: Runs,
        *,
        poll_seconds: float = 5.0,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.runs = runs
        self.poll_seconds = poll_seconds
        self.wake = asyncio.Event()  # a run was asked for in this process
        self.stopping = asyncio.Event()

    async def schedule(self) -> int:
        """Ask for a run of each configured (project, mode) whose last run was asked for more
        than an interval ago; how many were asked for."""
        interval = self.runs.policy.interval
        if interval is None:
            return 0
        asked = 0
        async with unit_of_work(self.sessionmaker) as session:
            configured = (
                await session.execute(
                    select(StripeConfig.project_id, StripeConfig.mode).where(StripeConfig.is_active)
                )
            ).all()
            runs = RunRepository(session)
            for project_id, mode in configured:
                latest = await runs.latest_requested(project_id, mode)
                if latest is None or latest <= utcnow() - interval:
                    _, new = await Runs.request(session, project_id, mode, SCHEDULE, "schedule")
                    asked += int(new)
        return asked

    async def run_once(self) -> int:
        """Schedule, then run the runs waiting for a runner; how many ran."""
        await self.schedule()
        async with unit_of_work(self.sessionmaker, write=False) as session:
            due = await RunRepository(session).due(utcnow(), limit=10)
        ran = 0
        for run_id in due:
            if self.stopping.is_set():
                break
            ran += int(await self.runs.execute(run_id))
        return ran

    async def run_forever(self) -> None:
        """Until `stopping`: run what is due, then sleep until woken or the next poll."""
        while not self.stopping.is_set():
            self.wake.clear()
            try:
                await self.run_once()
            except Exception:  # the database away for a moment: try again after the poll
                logger.exception("the reconciliation worker could not run")
            sleep = asyncio.ensure_future(self.wake.wait())
            stop = asyncio.ensure_future(self.stopping.wait())
            _, pending = await asyncio.wait(
                {sleep, stop}, timeout=self.poll_seconds, return_when=asyncio.FIRST_COMPLETED
            )
            for task in pending:
                task.cancel()
