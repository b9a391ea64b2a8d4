"""Who may call the webhook routes: Stripe's route takes a signature, not a principal; the inbox
is for project admins."""

from __future__ import annotations

import uuid

from tests.authz import PRINCIPALS, PROJECT_ADMIN, Declaration, Routes, World, policy
from tests.factories import Factories
from tests.webhooks.factories import Events

# no caller's credentials matter: without a Stripe-Signature every one gets 400
SIGNED_ONLY = policy(**dict.fromkeys(PRINCIPALS, 400))

ROUTES: Routes = {
    ("POST", "/api/v1/payments/stripe/webhooks/{project_id}/{mode}"): Declaration(
        SIGNED_ONLY, path=lambda w: {"project_id": str(w.project.id), "mode": "test"}
    ),
    ("GET", "/api/v1/admin/webhook-events"): Declaration(
        PROJECT_ADMIN, path=lambda w: {}, query=lambda w: {"projectId": str(w.project.id)}
    ),
    ("POST", "/api/v1/admin/webhook-events/catch-up"): Declaration(
        PROJECT_ADMIN, json=lambda w: {"projectId": str(w.project.id)}
    ),
    ("POST", "/api/v1/admin/webhook-events/{event_row_id}/replay"): Declaration(
        PROJECT_ADMIN, path=lambda w: {"event_row_id": str(w.extra["inbox_event"])}
    ),
}


async def prepare(world: World, made: Factories) -> None:
    """Project A's inbox holds one event to list and replay."""
    row = await Events(made.people.session).stored(world.project.id, f"evt_{uuid.uuid4().hex}")
    world.extra["inbox_event"] = row.id
