"""The seeds' unscoped Stripe webhook routes: `/api/stripe/webhook` (seeds 000 and 001),
`/api/billing/stripe/webhook` (seed 003) and `/api/v1/billing/webhook` (seed 004).

They verify against the single-tenant project's `STRIPE_WEBHOOK_SECRET` and feed the same inbox
as the scoped route, with seed 004's answers: 400 VALIDATION_ERROR "Missing Stripe-Signature
header.", 400 STRIPE_SIGNATURE_INVALID, 200 `{"received": true}`. Without a single-tenant
project they answer 404 USE_PROJECT_WEBHOOK_URL naming the scoped URL.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Header, Request

from billwarden.compat.endpoints.seeds import SEED_000, SEED_001, SEED_003, SEED_004
from billwarden.compat.exceptions import UseProjectWebhookUrl
from billwarden.db.unit_of_work import DbSession
from billwarden.errors import error_responses
from billwarden.kit.state import AppReadCache, AppSecretBox, AppSettings
from billwarden.projects.service import ProjectService
from billwarden.projects.single_tenant import single_tenant_mode
from billwarden.projects.stripe_endpoints import STRIPE_WEBHOOK_PREFIX
from billwarden.webhooks.endpoints import wake_inbox_worker
from billwarden.webhooks.schemas import Received
from billwarden.webhooks.service import InboxService

# each path under the tags of the seeds that used it
UNSCOPED_WEBHOOKS = {
    "/api/stripe/webhook": [SEED_000, SEED_001],
    "/api/billing/stripe/webhook": [SEED_003],
    "/api/v1/billing/webhook": [SEED_004],
}
UNSCOPED_WEBHOOK_PATHS = tuple(UNSCOPED_WEBHOOKS)
# Stripe's body is verified byte for byte: the request guard leaves it as sent
RAW_BODY_PREFIXES = UNSCOPED_WEBHOOK_PATHS

webhooks = APIRouter()
routers = [webhooks]


async def _wake(request: Request) -> None:
    wake_inbox_worker(request.app)


async def receive_unscoped(
    request: Request,
    session: DbSession,
    settings: AppSettings,
    secret_box: AppSecretBox,
    cache: AppReadCache,
    background: BackgroundTasks,
    stripe_signature: Annotated[str | None, Header(alias="Stripe-Signature")] = None,
) -> Received:
    """The single-tenant project's Stripe events: stored durably, then acknowledged (as the
    scoped route, /api/v1/payments/stripe/webhooks/{project_id}/{mode})."""
    if settings.single_tenant_secret_key is None:
        raise UseProjectWebhookUrl(
            "No single-tenant project (STRIPE_SECRET_KEY is not set): point Stripe at the "
            f"project's own URL, {STRIPE_WEBHOOK_PREFIX}{{project_id}}/{{mode}} (GET "
            "/api/v1/payments/stripe/projects/{project_id}/webhook-urls prints it).",
            details={"webhookUrl": f"{STRIPE_WEBHOOK_PREFIX}{{project_id}}/{{mode}}"},
        )
    project = await ProjectService(session).find_by_slug(settings.single_tenant_project_slug)
    if project is None:  # configured, but the start-up has not made it (yet)
        raise UseProjectWebhookUrl("The single-tenant project does not exist yet.")
    mode = single_tenant_mode(settings.single_tenant_secret_key.get_secret_value())
    payload = await request.body()
    stored = await InboxService(session).receive(
        secret_box, str(project.id), mode.value, payload, stripe_signature, cache
    )
    if stored:
        background.add_task(_wake, request)  # after the commit and the answer
    return Received()


for _path, _tags in UNSCOPED_WEBHOOKS.items():
    webhooks.add_api_route(
        _path,
        receive_unscoped,
        tags=list(_tags),
        methods=["POST"],
        response_model=Received,
        responses=error_responses(400, 404, 413, 503),
        summary="Stripe's events for the single-tenant project (a seed's webhook path)",
        name=f"receive_unscoped_{_path.strip('/').replace('/', '_')}",
    )
