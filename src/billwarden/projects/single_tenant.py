"""Single-tenant mode: `STRIPE_SECRET_KEY` and `STRIPE_WEBHOOK_SECRET` define a default project.

At start-up billwarden creates the project (slug `default`) and keeps its Stripe configuration
and, when `BILLWARDEN_END_USER_*` is set, its end-user authentication in step with the
environment, so a one-app team needs no console set-up.
"""

from __future__ import annotations

import logging

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from billwarden.config import Settings
from billwarden.core.modes import Mode
from billwarden.crypto import SecretBox
from billwarden.db.unit_of_work import unit_of_work
from billwarden.projects.end_user_auth import EndUserAuthService
from billwarden.projects.exceptions import SlugTaken
from billwarden.projects.models import Project
from billwarden.projects.service import ProjectService
from billwarden.projects.stripe_config import StripeConfigService

logger = logging.getLogger("billwarden.projects")


def single_tenant_mode(secret_key: str) -> Mode:
    return Mode.LIVE if secret_key.startswith(("sk_live_", "rk_live_")) else Mode.TEST


async def sync_single_tenant_project(
    session: AsyncSession, secret_box: SecretBox, settings: Settings
) -> Project | None:
    """Create or update the default project from the environment; None when not configured."""
    if settings.single_tenant_secret_key is None:
        return None
    secret_key = settings.single_tenant_secret_key.get_secret_value()
    webhook_secrets = [
        secret.get_secret_value() for secret in settings.single_tenant_webhook_secrets
    ]
    mode = single_tenant_mode(secret_key)
    projects = ProjectService(session)
    configs = StripeConfigService(session, secret_box)
    slug = settings.single_tenant_project_slug
    project = await projects.find_by_slug(slug)
    if project is None:
        project = await projects.create_project("Default project", slug)
        logger.info("created the single-tenant project %s", slug)
    if await EndUserAuthService(session, secret_box).sync_from_environment(project.id, settings):
        logger.info("synchronised the single-tenant project's end-user authentication")
    config = await configs.get_active(project.id, mode)
    if config is not None:
        current = await configs.get_credentials(project.id, mode)
        if current.secret_key == secret_key and set(current.webhook_secrets) == set(
            webhook_secrets
        ):
            return project
    await configs.set_stripe_config(
        project, mode, secret_key=secret_key, webhook_secrets=webhook_secrets
    )
    logger.info("synchronised the single-tenant project's %s-mode Stripe credentials", mode.value)
    return project


async def bootstrap_single_tenant(
    sessionmaker: async_sessionmaker[AsyncSession], secret_box: SecretBox, settings: Settings
) -> None:
    """Run the sync as one unit of work (a writer: on SQLite it queues behind other writers). A
    concurrent process (`serve --workers N` on an empty database) creating the project or its
    configuration first is not an error: the retry finds what it made."""
    for attempt in range(2):
        try:
            async with unit_of_work(sessionmaker) as session:
                await sync_single_tenant_project(session, secret_box, settings)
            return
        except (IntegrityError, SlugTaken):
            if attempt == 1:
                raise
