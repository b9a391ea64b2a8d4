"""HTTP routes for reconciliation: the last run's records (members), repairs and runs (admins)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, BackgroundTasks, Query, Request, Response

from billwarden.audit.service import Actor, audit
from billwarden.auth import CurrentConsoleUser, admin_access, member_access
from billwarden.config import RECONCILE_REASONS
from billwarden.core.modes import Mode
from billwarden.db.unit_of_work import DbSession
from billwarden.errors import InvalidInput, error_responses
from billwarden.kit.schemas import Pages
from billwarden.projects.exceptions import ProjectNotFound
from billwarden.reconciliation.exceptions import RunNotFound
from billwarden.reconciliation.models import ReconcileRecord
from billwarden.reconciliation.repository import RecordRepository, RunRepository
from billwarden.reconciliation.schemas import (
    Reconciliation,
    RecordRead,
    RepairRequest,
    RepairResult,
    RunRead,
    RunRequest,
    Summary,
)
from billwarden.reconciliation.service import Repairs, Runs

router = APIRouter(prefix="/api/v1/admin/billing/reconciliation", tags=["reconciliation"])
routers = [router]
ProjectId = Annotated[uuid.UUID, Query(alias="projectId")]


async def _wake_worker(app: Any) -> None:
    # async: runs on the event loop, where the worker's Event lives; without an embedded
    # worker, a `billwarden worker` process picks the run up at its next poll
    worker = getattr(app.state, "reconcile_worker", None)
    if worker is not None:
        worker.wake.set()


@router.get(
    "",
    response_model=Reconciliation,
    responses=error_responses(400, 401, 404),
    summary="The last reconciliation run's records, mismatched first (project members)",
)
async def reconciliation(
    user: CurrentConsoleUser,
    session: DbSession,
    pages: Pages,
    project_id: ProjectId,
    mode: Mode = Mode.TEST,
    reason: Annotated[str | None, Query(description="Only records with this reason.")] = None,
    status: Annotated[Literal["mismatched", "in_sync"] | None, Query()] = None,
) -> Reconciliation:
    """Read from the stored run: no Stripe call. Without any finished run, `run` is null and the
    records empty: start one with POST .../runs."""
    access = await member_access(session, user, project_id)
    if reason is not None and reason not in RECONCILE_REASONS:
        raise InvalidInput(
            f"Unknown reason {reason!r}: one of {', '.join(RECONCILE_REASONS)}.",
            details={"field": "reason"},
        )
    runs = RunRepository(session)
    run = await runs.latest(access.project.id, mode, finished=True)
    active = await runs.active(access.project.id, mode)
    rows: list[ReconcileRecord] = []
    matching = 0
    if run is not None:
        rows, matching = await RecordRepository(session).page(
            run.id,
            mismatched=None if status is None else status == "mismatched",
            reason=reason,
            **pages.window,
        )
    return Reconciliation(
        stripe_available=run.stripe_available if run is not None else None,
        summary=Summary(
            total=run.total if run else 0,
            in_sync=run.in_sync if run else 0,
            mismatched=run.mismatched if run else 0,
        ),
        records=[RecordRead.of(row) for row in rows],
        matching=matching,
        run=RunRead.of(run) if run is not None else None,
        active_run=RunRead.of(active) if active is not None else None,
    )


@router.post(
    "",
    response_model=RepairResult,
    responses=error_responses(400, 401, 403, 404, 409, 502),
    summary="Repair one record of the last run, audited; answers it checked again (admins)",
)
async def repair(
    body: RepairRequest,
    request: Request,
    user: CurrentConsoleUser,
    session: DbSession,
    project_id: ProjectId,
    mode: Mode = Mode.TEST,
) -> RepairResult:
    """`sync_from_stripe`: Stripe's subscriptions of the record into the mirror, then the
    snapshot; `reset_to_free`: the snapshot back to free (Stripe untouched); `recompute`: the
    snapshot from the mirror. Unknown action 400 UNKNOWN_REPAIR; no such record 404."""
    access = await admin_access(session, user, project_id)
    if body.entitlement_id is None and body.subscription_id is None:
        raise InvalidInput(
            "Name the record: entitlementId (or subscriptionId for a record of no subject).",
            details={"field": "entitlementId"},
        )
    state = request.app.state
    record, run = await Repairs(
        session, state.stripe_gateway, state.secret_box, access.project.id, mode
    ).repair(
        entitlement_id=body.entitlement_id,
        subscription_id=body.subscription_id,
        action=body.action,
        actor=Actor.user(user),
        reason=body.reason,
    )
    return RepairResult(
        record=RecordRead.of(record),
        summary=Summary(total=run.total, in_sync=run.in_sync, mismatched=run.mismatched),
    )


@router.post(
    "/runs",
    response_model=RunRead,
    status_code=202,
    responses=error_responses(400, 401, 403, 404),
    summary="Start a run (admins); one already queued or running is answered instead",
)
async def start_run(
    body: RunRequest,
    request: Request,
    response: Response,
    user: CurrentConsoleUser,
    session: DbSession,
    background: BackgroundTasks,
) -> RunRead:
    access = await admin_access(session, user, body.project_id)
    run, new = await Runs.request(session, access.project.id, body.mode, Actor.user(user), "api")
    if new:
        await audit(
            session,
            user,
            "reconciliation.run_requested",
            project_id=access.project.id,
            target_type="reconcile_run",
            target_id=run.id,
            mode=body.mode,
        )
        background.add_task(_wake_worker, request.app)  # after the commit and the answer
    else:
        response.status_code = 200
    return RunRead.of(run)


@router.get(
    "/runs/{run_id}",
    response_model=RunRead,
    responses=error_responses(400, 401, 404),
    summary="A run and its progress (project members)",
)
async def get_run(run_id: uuid.UUID, user: CurrentConsoleUser, session: DbSession) -> RunRead:
    run = await RunRepository(session).get(run_id)
    if run is None:
        raise RunNotFound("No such reconciliation run.", details={"id": str(run_id)})
    try:
        await member_access(session, user, run.project_id)
    except ProjectNotFound as exc:
        raise RunNotFound("No such reconciliation run.", details={"id": str(run_id)}) from exc
    return RunRead.of(run)
