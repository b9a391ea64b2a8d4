"""Liveness, readiness and metrics routes."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from billwarden import __version__
from billwarden.core.metrics import metrics_endpoint
from billwarden.db.migrate import current_revision, head_revision
from billwarden.errors import BillwardenError, error_responses

router = APIRouter(tags=["service"])


class Health(BaseModel):
    status: Literal["ok"]
    version: str


class Readiness(BaseModel):
    status: Literal["ready"]
    database: Literal["ok"]
    migration: str | None


class NotReady(BillwardenError):
    code = "NOT_READY"
    status_code = 503


@router.get("/healthz", response_model=Health)
async def healthz() -> Health:
    """The process is up. Says nothing about the database."""
    return Health(status="ok", version=__version__)


@router.get("/readyz", response_model=Readiness, responses=error_responses(503))
async def readyz(request: Request) -> Readiness:
    """The database answers and its schema is at the newest migration."""
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
    return Readiness(status="ready", database="ok", migration=current)


router.add_route("/metrics", metrics_endpoint, methods=["GET"], include_in_schema=False)
