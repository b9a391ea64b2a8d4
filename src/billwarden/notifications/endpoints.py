"""HTTP routes for the tenant app's webhook endpoints and their delivery log (project admins)."""

from __future__ import annotations

import ipaddress
import uuid
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Response

from billwarden.audit.service import audit
from billwarden.auth import ProjectAdminAccess
from billwarden.db.unit_of_work import DbSession
from billwarden.errors import error_responses
from billwarden.kit.schemas import Page, Pages
from billwarden.kit.state import AppSecretBox
from billwarden.notifications.exceptions import UnsafeEndpointUrl
from billwarden.notifications.schemas import (
    DeliveryRead,
    EndpointCreate,
    EndpointCreated,
    EndpointRead,
)
from billwarden.notifications.service import EndpointService

router = APIRouter(prefix="/api/v1/projects", tags=["notifications"])
routers = [router]


async def _service(session: DbSession, secret_box: AppSecretBox) -> EndpointService:
    return EndpointService(session, secret_box)


Endpoints = Annotated[EndpointService, Depends(_service)]


def refuse_internal_url(url: str) -> None:
    """A tenant's endpoint must be on the internet: not billwarden's own host or network
    (loopback, private, link-local such as cloud metadata at 169.254.169.254, reserved)."""
    host = (urlsplit(url).hostname or "").rstrip(".").lower()
    internal = host == "localhost" or host.endswith((".localhost", ".internal", ".local"))
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        address = None
    if address is not None and (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_reserved
        or address.is_multicast
        or address.is_unspecified
    ):
        internal = True
    if internal:
        raise UnsafeEndpointUrl(
            "A notification endpoint must be a public address, not a loopback, private, "
            "link-local or reserved one.",
            details={"field": "url"},
        )


@router.post(
    "/{project_id}/webhook-endpoints",
    status_code=201,
    response_model=EndpointCreated,
    responses=error_responses(400, 401, 403, 404),
    summary="Register a URL of your app for signed notifications; its secret is shown once",
)
async def create_endpoint(
    body: EndpointCreate, access: ProjectAdminAccess, endpoints: Endpoints
) -> EndpointCreated:
    refuse_internal_url(str(body.url))
    row, secret = await endpoints.create(
        access.project.id, body.mode, str(body.url), list(body.events)
    )
    await audit(
        endpoints.session,
        access.user,
        "notifications.endpoint_created",
        project_id=access.project.id,
        target_type="notification_endpoint",
        target_id=row.id,
        mode=body.mode,
        after={"url": row.url, "events": list(row.events)},
    )
    return EndpointCreated(**EndpointRead.of(row).model_dump(by_alias=False), secret=secret)


@router.get(
    "/{project_id}/webhook-endpoints",
    response_model=Page[EndpointRead],
    responses=error_responses(400, 401, 403, 404),
    summary="The project's notification endpoints (never their secrets)",
)
async def list_endpoints(
    access: ProjectAdminAccess, endpoints: Endpoints, pages: Pages
) -> Page[EndpointRead]:
    rows, total = await endpoints.of_project(access.project.id, **pages.window)
    return Page[EndpointRead].of(rows, total, pages, EndpointRead.of)


@router.delete(
    "/{project_id}/webhook-endpoints/{endpoint_id}",
    status_code=204,
    responses=error_responses(400, 401, 403, 404),
    summary="Remove a notification endpoint and its delivery log",
)
async def delete_endpoint(
    endpoint_id: uuid.UUID, access: ProjectAdminAccess, endpoints: Endpoints
) -> Response:
    await endpoints.delete(access.project.id, endpoint_id)
    await audit(
        endpoints.session,
        access.user,
        "notifications.endpoint_deleted",
        project_id=access.project.id,
        target_type="notification_endpoint",
        target_id=endpoint_id,
    )
    return Response(status_code=204)


@router.get(
    "/{project_id}/webhook-endpoints/{endpoint_id}/deliveries",
    response_model=Page[DeliveryRead],
    responses=error_responses(400, 401, 403, 404),
    summary="The endpoint's delivery log, newest first",
)
async def list_deliveries(
    endpoint_id: uuid.UUID, access: ProjectAdminAccess, endpoints: Endpoints, pages: Pages
) -> Page[DeliveryRead]:
    rows, total = await endpoints.deliveries(access.project.id, endpoint_id, **pages.window)
    return Page[DeliveryRead].of(rows, total, pages, DeliveryRead.of)


@router.post(
    "/{project_id}/webhook-endpoints/{endpoint_id}/deliveries/{delivery_id}/retry",
    response_model=DeliveryRead,
    responses=error_responses(400, 401, 403, 404),
    summary="Send a delivery again now, with every attempt again",
)
async def retry_delivery(
    endpoint_id: uuid.UUID,
    delivery_id: uuid.UUID,
    access: ProjectAdminAccess,
    endpoints: Endpoints,
) -> DeliveryRead:
    row = await endpoints.retry(access.project.id, endpoint_id, delivery_id)
    await audit(
        endpoints.session,
        access.user,
        "notifications.delivery_retried",
        project_id=access.project.id,
        target_type="notification_delivery",
        target_id=delivery_id,
    )
    return DeliveryRead.of(row)
