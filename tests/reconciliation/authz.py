"""Who may reconcile: project members read the last run, project admins repair and start runs."""

from __future__ import annotations

from billwarden.core.modes import Mode
from billwarden.core.subjects import Subject, SubjectType
from billwarden.db.base import utcnow
from billwarden.reconciliation.models import ReconcileRecord, ReconcileRun, RunStatus
from tests.authz import PROJECT_ADMIN, PROJECT_MEMBER, Declaration, Routes, World
from tests.factories import Factories

BASE = "/api/v1/admin/billing/reconciliation"


async def prepare(world: World, made: Factories) -> None:
    """Project A has a finished run with one record: a subject's snapshot."""
    session = made.people.session
    snapshot = await made.snapshots.granted(world.project.id, Subject(SubjectType.USER, "ada"))
    run = ReconcileRun(
        project_id=world.project.id,
        mode=Mode.TEST,
        status=RunStatus.FINISHED,
        trigger="api",
        requested_by="matrix",
        requested_at=utcnow(),
        finished_at=utcnow(),
        stripe_available=False,
        total=1,
        in_sync=1,
        reasons={},
    )
    session.add(run)
    await session.flush()
    session.add(
        ReconcileRecord(
            run_id=run.id,
            project_id=world.project.id,
            mode=Mode.TEST,
            entitlement_id=snapshot.id,
            subject_type="user",
            subject_id="ada",
            subscription_ids=[],
            in_sync=True,
            reasons=[],
            reason_codes="",
            local={},
            stripe=None,
            differences=[],
        )
    )
    await session.flush()
    world.extra["reconcile_run"] = run.id
    world.extra["reconcile_entitlement"] = snapshot.id


def _project(world: World) -> dict[str, str]:
    return {"projectId": str(world.project.id)}


ROUTES: Routes = {
    ("GET", BASE): Declaration(PROJECT_MEMBER, query=_project),
    ("POST", BASE): Declaration(
        PROJECT_ADMIN,
        query=_project,
        json=lambda w: {
            "entitlementId": str(w.extra["reconcile_entitlement"]),
            "action": "recompute",
        },
    ),
    ("POST", BASE + "/runs"): Declaration(
        PROJECT_ADMIN, json=lambda w: {"projectId": str(w.project.id)}
    ),
    ("GET", BASE + "/runs/{run_id}"): Declaration(
        PROJECT_MEMBER, path=lambda w: {"run_id": str(w.extra["reconcile_run"])}
    ),
}
