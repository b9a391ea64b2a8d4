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
from billwarden.kit.workers import run_until_stopped
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
        await run_until_stopped(
            self.run_once,
            wake=self.wake,
            stopping=self.stopping,
            poll_seconds=self.poll_seconds,
            name="reconciliation worker",
        )
