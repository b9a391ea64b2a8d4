"""Liveness, readiness and metrics routes."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.responses import Response

from billwarden import __version__
from billwarden.config import Settings
from billwarden.db.migrate import current_revision, head_revision
from billwarden.errors import BillwardenError, error_responses
from billwarden.kit.operations import Figures, Operations
from billwarden.kit.schemas import CamelModel

router = APIRouter(tags=["service"])


class Health(BaseModel):
    status: Literal["ok"]
    version: str


class WorkerReadiness(CamelModel):
    """Whether the workers keep up: `stalled` once due work (inbox events, notifications, meter
    events) has waited longer than BILLWARDEN_WORKER_STALL_SECONDS."""

    status: Literal["ok", "stalled"]
    threshold_seconds: int
    oldest_wait_seconds: float
    stalled_queues: list[str]


class Readiness(BaseModel):
    status: Literal["ready"]
    database: Literal["ok"]
    migration: str | None
    worker: WorkerReadiness


class NotReady(BillwardenError):
    code = "NOT_READY"
    status_code = 503


@router.get("/healthz", response_model=Health)
async def healthz() -> Health:
    """The process is up. Says nothing about the database."""
    return Health(status="ok", version=__version__)


@router.get("/readyz", response_model=Readiness, responses=error_responses(503))
async def readyz(request: Request) -> Readiness:
    """The database answers and its schema is at the newest migration (503 otherwise); `worker`
    says whether due work waits too long. A stalled worker answers 503 only with
    BILLWARDEN_WORKER_STALL_NOT_READY=true: webhooks are stored durably by any process, so by
    default a process serving requests stays in the load balancer while the workers lag."""
    engine: AsyncEngine = request.app.state.engine
    try:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
            current = await current_revision(connection)
    except Exception as exc:
        raise NotReady(
            "The database is unreachable.", details={"error": type(exc).__name__}
        ) from exc
    head = head_revision()
    if current != head:
        raise NotReady(
            "The database schema is not at the newest migration; run `billwarden migrate`.",
            details={"current": current, "head": head},
        )
    settings: Settings = request.app.state.settings
    operations: Operations = request.app.state.operations
    try:
        figures = await operations.figures()
    except Exception as exc:
        raise NotReady(
            "The database is unreachable.", details={"error": type(exc).__name__}
        ) from exc
    worker = worker_readiness(figures, settings.worker_stall_seconds)
    if worker.status == "stalled" and settings.worker_stall_not_ready:
        raise NotReady(
            "The workers are stalled: due work has waited longer than "
            f"{settings.worker_stall_seconds} seconds.",
            details={"worker": worker.model_dump(mode="json", by_alias=True)},
        )
    return Readiness(status="ready", database="ok", migration=current, worker=worker)


def worker_readiness(figures: Figures, threshold_seconds: int) -> WorkerReadiness:
    lags = figures.lags()
    stalled = sorted(name for name, lag in lags.items() if lag > threshold_seconds)
    return WorkerReadiness(
        status="stalled" if stalled else "ok",
        threshold_seconds=threshold_seconds,
        oldest_wait_seconds=round(max(lags.values(), default=0.0), 3),
        stalled_queues=stalled,
    )


async def metrics(request: Request) -> Response:
    """This process's request counts and latencies, then the operational figures every process
    reads alike from the database (kept a few seconds)."""
    operations: Operations = request.app.state.operations
    body = generate_latest() + await operations.exposition()
    return Response(body, media_type=CONTENT_TYPE_LATEST)


router.add_route("/metrics", metrics, methods=["GET"], include_in_schema=False)
