"""Who may call the notification routes: project admins only."""

from __future__ import annotations

from sqlalchemy import select

from billwarden.core.modes import Mode
from billwarden.notifications.models import Delivery
from billwarden.notifications.service import Outbox
from tests.authz import PROJECT_ADMIN, Declaration, Routes, World, project_path
from tests.factories import Factories
from tests.notifications.factories import Endpoints

BASE = "/api/v1/projects/{project_id}/webhook-endpoints"


def _endpoint(world: World) -> dict[str, str]:
    return {**project_path(world), "endpoint_id": str(world.extra["notification_endpoint"])}


def _delivery(world: World) -> dict[str, str]:
    return {**_endpoint(world), "delivery_id": str(world.extra["notification_delivery"])}


ROUTES: Routes = {
    ("POST", BASE): Declaration(
        PROJECT_ADMIN,
        path=project_path,
        json=lambda w: {"url": "https://app.example.test/hooks", "events": ["*"]},
    ),
    ("GET", BASE): Declaration(PROJECT_ADMIN, path=project_path),
    ("DELETE", BASE + "/{endpoint_id}"): Declaration(PROJECT_ADMIN, path=_endpoint),
    ("GET", BASE + "/{endpoint_id}/deliveries"): Declaration(PROJECT_ADMIN, path=_endpoint),
    ("POST", BASE + "/{endpoint_id}/deliveries/{delivery_id}/retry"): Declaration(
        PROJECT_ADMIN, path=_delivery
    ),
}


async def prepare(world: World, made: Factories) -> None:
    """Project A has an endpoint with one delivery in its log."""
    session = made.people.session
    endpoint, _ = await Endpoints(session, made.people.secret_box).endpoint(world.project.id)
    message = await Outbox(session).emit(
        world.project.id, Mode.TEST, "entitlement.updated", {"plan": "FREE"}
    )
    assert message is not None
    delivery = await session.scalar(select(Delivery.id).where(Delivery.message_id == message.id))
    world.extra["notification_endpoint"] = endpoint.id
    world.extra["notification_delivery"] = delivery
