"""Stripe configuration routes: a project's credentials per mode (`?test_mode=true` by default),
its webhook URLs and a credential check against Stripe."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from billwarden.audit.service import audit
from billwarden.auth import ProjectAdminAccess, ProjectMemberAccess
from billwarden.config import Settings
from billwarden.core.modes import Mode
from billwarden.db.unit_of_work import DbSession
from billwarden.errors import error_responses
from billwarden.kit.state import AppSecretBox, AppSettings, AppStripeGateway
from billwarden.projects.models import StripeConfig
from billwarden.projects.stripe_config import StripeConfigService
from billwarden.projects.stripe_schemas import (
    CredentialValidation,
    StripeConfigUpdate,
    StripeConfigView,
    WebhookSecretView,
    WebhookUrls,
)

router = APIRouter(
    prefix="/api/v1/payments/stripe/projects/{project_id}",
    tags=["stripe configuration"],
    responses=error_responses(400, 401, 403, 404),
)

TestMode = Annotated[
    bool, Query(description="true: the test-mode configuration (default); false: live mode.")
]


def _mode(test_mode: bool) -> Mode:
    return Mode.TEST if test_mode else Mode.LIVE


# where Stripe delivers a project's events; its raw body is verified byte for byte
STRIPE_WEBHOOK_PREFIX = "/api/v1/payments/stripe/webhooks/"


def webhook_url(settings: Settings, project_id: uuid.UUID, mode: Mode) -> str:
    return f"{settings.public_url}{STRIPE_WEBHOOK_PREFIX}{project_id}/{mode.value}"


async def _service(session: DbSession, secret_box: AppSecretBox) -> StripeConfigService:
    return StripeConfigService(session, secret_box)


StripeConfigs = Annotated[StripeConfigService, Depends(_service)]


def _view(
    settings: Settings, project_id: uuid.UUID, mode: Mode, config: StripeConfig | None
) -> StripeConfigView:
    return StripeConfigView(
        project_id=project_id,
        mode=mode,
        status="configured" if config is not None else "not_configured",
        secret_key=config.secret_key_hint if config else None,
        publishable_key=config.publishable_key if config else None,
        webhook_secrets=[
            WebhookSecretView(
                id=secret.id,
                secret=secret.secret_hint,
                active=secret.is_active,
                created_at=secret.created_at,
            )
            for secret in (config.webhook_secrets if config else [])
        ],
        webhook_url=webhook_url(settings, project_id, mode),
        updated_at=config.created_at if config else None,
    )


@router.get("/config", response_model=StripeConfigView, response_model_by_alias=True)
async def get_stripe_config(
    access: ProjectMemberAccess,
    configs: StripeConfigs,
    settings: AppSettings,
    test_mode: TestMode = True,
) -> StripeConfigView:
    """The project's Stripe configuration for one mode, secrets masked."""
    mode = _mode(test_mode)
    config = await configs.get_active(access.project.id, mode)
    return _view(settings, access.project.id, mode, config)


def _audited(config: StripeConfig | None) -> dict[str, object] | None:
    """What the audit log keeps of a configuration: hints and counts, never a secret."""
    if config is None:
        return None
    return {
        "secretKeyHint": config.secret_key_hint,
        "publishableKey": config.publishable_key,
        "activeWebhookSecrets": sum(1 for secret in config.webhook_secrets if secret.is_active),
    }


@router.put(
    "/config",
    response_model=StripeConfigView,
    response_model_by_alias=True,
    responses=error_responses(400),
)
async def put_stripe_config(
    body: StripeConfigUpdate,
    access: ProjectAdminAccess,
    configs: StripeConfigs,
    settings: AppSettings,
    test_mode: TestMode = True,
) -> StripeConfigView:
    """Create or update the configuration. Keys must match the mode (`sk_test_`/`rk_test_` in
    test mode, `sk_live_`/`rk_live_` in live mode, `pk_` for the publishable key); secrets are
    stored encrypted and never returned."""
    mode = _mode(test_mode)
    before = _audited(await configs.get_active(access.project.id, mode))
    config = await configs.set_stripe_config(
        access.project,
        mode,
        secret_key=body.secret_key,
        publishable_key=body.publishable_key,
        webhook_secrets=body.webhook_secrets,
    )
    await audit(
        configs.session,
        access.user,
        "stripe.config_updated",
        project_id=access.project.id,
        target_type="stripe_config",
        target_id=config.id,
        mode=mode,
        before=before,
        after=_audited(config),
    )
    return _view(settings, access.project.id, mode, config)


@router.delete("/config", response_model=StripeConfigView, response_model_by_alias=True)
async def delete_stripe_config(
    access: ProjectAdminAccess,
    configs: StripeConfigs,
    settings: AppSettings,
    test_mode: TestMode = True,
) -> StripeConfigView:
    """Deactivate the configuration; earlier versions stay in the history."""
    mode = _mode(test_mode)
    config = await configs.deactivate(access.project.id, mode)
    await audit(
        configs.session,
        access.user,
        "stripe.config_deactivated",
        project_id=access.project.id,
        target_type="stripe_config",
        target_id=config.id,
        mode=mode,
        before=_audited(config),
    )
    return _view(settings, access.project.id, mode, None)


@router.get("/webhook-urls", response_model=WebhookUrls, response_model_by_alias=True)
async def get_webhook_urls(access: ProjectMemberAccess, settings: AppSettings) -> WebhookUrls:
    """The absolute URLs to paste into Stripe's dashboard, one per mode."""
    project_id = access.project.id
    return WebhookUrls(
        project_id=project_id,
        test=webhook_url(settings, project_id, Mode.TEST),
        live=webhook_url(settings, project_id, Mode.LIVE),
    )


@router.post(
    "/validate-credentials",
    response_model=CredentialValidation,
    response_model_by_alias=True,
    responses=error_responses(502),
)
async def validate_credentials(
    access: ProjectAdminAccess,
    configs: StripeConfigs,
    gateway: AppStripeGateway,
    test_mode: TestMode = True,
) -> CredentialValidation:
    """Check the stored secret key against Stripe. A refused key answers `valid: false` with
    Stripe's message; Stripe being unreachable answers 502."""
    mode = _mode(test_mode)
    credentials = await configs.get_credentials(access.project.id, mode)
    check = await gateway.check_credentials(access.project.id, mode, credentials.secret_key)
    await configs.record_check(access.project.id, mode, valid=check.valid)
    return CredentialValidation(
        project_id=access.project.id,
        mode=mode,
        valid=check.valid,
        livemode=check.livemode,
        error=check.error,
    )
