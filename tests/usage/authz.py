"""Who may record and read usage: project keys for any subject, end users for their own."""

from __future__ import annotations

from billwarden.catalog.service import CatalogService
from billwarden.core.modes import Mode
from billwarden.usage.service import UsageService
from tests.authz import END_USER, PRINCIPALS, PROJECT_KEY, Declaration, Routes, World, policy
from tests.factories import Factories
from tests.payments.authz import BILLING_CALLER


async def prepare(world: World, made: Factories) -> None:
    """Both projects' catalogs (whatever other domains put in them) know the metric api_calls."""
    catalogs = CatalogService(made.people.session)
    for project_id in (world.project.id, world.other_project.id):
        current = await catalogs.current(project_id)
        document = current.document.as_json() if current is not None else {}
        document["metrics"] = {**document.get("metrics", {}), "api_calls": {}}
        await made.catalogs.load(project_id, document)
    ingested = await UsageService(made.people.session).ingest(
        world.project.id,
        Mode.TEST,
        [{"id": "evt-matrix", "subjectId": "end-user-1", "metric": "api_calls"}],
        own=None,
    )
    assert ingested.accepted == 1


# project A's key reads project A's event; project B's key finds no such event
OWN_KEY = policy(**{**dict.fromkeys(PRINCIPALS, 401), "key": 200, "other_key": 404})


ROUTES: Routes = {
    ("POST", "/api/v1/usage/events"): Declaration(
        BILLING_CALLER,
        json=lambda w: {"events": [{"id": "evt-1", "subjectId": "end-user-1", "metric": "calls"}]},
    ),
    ("POST", "/api/v1/usage/consume"): Declaration(
        BILLING_CALLER,
        json=lambda w: {"id": "consume-1", "subjectId": "end-user-1", "metric": "api_calls"},
    ),
    ("GET", "/api/v1/billing/usage"): Declaration(END_USER),
    ("GET", "/api/v1/usage/events/{event_id}"): Declaration(
        OWN_KEY, path=lambda w: {"event_id": "evt-matrix"}
    ),
    ("GET", "/api/v1/usage/{subject_type}/{subject_id}"): Declaration(
        PROJECT_KEY, path=lambda w: {"subject_type": "user", "subject_id": "end-user-1"}
    ),
}
