"""Single-tenant mode: the environment's Stripe keys become a default project, kept in step."""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from billwarden.config import Settings
from billwarden.core.modes import Mode
from billwarden.crypto import SecretBox
from billwarden.db.engine import create_sessionmaker
from billwarden.projects.models import Project, StripeConfig
from billwarden.projects.single_tenant import bootstrap_single_tenant, sync_single_tenant_project
from billwarden.projects.stripe_config import StripeConfigService


def single_tenant_settings(settings: Settings, **env: str) -> Settings:
    return Settings(**settings.model_dump(exclude={"single_tenant_secret_key"}), **env)


class TestSingleTenantProject:
    async def test_not_configured_creates_nothing(
        self, session: AsyncSession, secret_box: SecretBox, settings: Settings
    ) -> None:
        assert await sync_single_tenant_project(session, secret_box, settings) is None
        assert await session.scalar(select(func.count()).select_from(Project)) == 0

    async def test_creates_default_project_with_credentials(
        self, session: AsyncSession, secret_box: SecretBox, settings: Settings
    ) -> None:
        env = single_tenant_settings(
            settings,
            STRIPE_SECRET_KEY="sk_test_singletenant0001",
            STRIPE_WEBHOOK_SECRET="whsec_first0001,whsec_second0002",
            STRIPE_ALLOWED_PRICE_IDS="price_a, price_b",
        )
        project = await sync_single_tenant_project(session, secret_box, env)
        assert project is not None and project.slug == "default"
        credentials = await StripeConfigService(session, secret_box).get_credentials(
            project.id, Mode.TEST
        )
        assert credentials.secret_key == "sk_test_singletenant0001"
        assert set(credentials.webhook_secrets) == {"whsec_first0001", "whsec_second0002"}
        assert env.single_tenant_allowed_price_ids == ["price_a", "price_b"]

    async def test_restart_with_same_env_changes_nothing(
        self, session: AsyncSession, secret_box: SecretBox, settings: Settings
    ) -> None:
        env = single_tenant_settings(settings, STRIPE_SECRET_KEY="sk_live_singletenant0001")
        first = await sync_single_tenant_project(session, secret_box, env)
        second = await sync_single_tenant_project(session, secret_box, env)
        assert first is not None and second is not None and first.id == second.id
        versions = await session.scalar(select(func.count()).select_from(StripeConfig))
        assert versions == 1
        config = await session.scalar(select(StripeConfig))
        assert config is not None and config.mode is Mode.LIVE

    async def test_changed_key_becomes_the_active_version(
        self, session: AsyncSession, secret_box: SecretBox, settings: Settings
    ) -> None:
        await sync_single_tenant_project(
            session,
            secret_box,
            single_tenant_settings(settings, STRIPE_SECRET_KEY="sk_test_singletenant0001"),
        )
        project = await sync_single_tenant_project(
            session,
            secret_box,
            single_tenant_settings(settings, STRIPE_SECRET_KEY="sk_test_singletenant0002"),
        )
        assert project is not None
        credentials = await StripeConfigService(session, secret_box).get_credentials(
            project.id, Mode.TEST
        )
        assert credentials.secret_key == "sk_test_singletenant0002"
        assert await session.scalar(select(func.count()).select_from(StripeConfig)) == 2


class TestConcurrentStartUp:
    async def test_workers_starting_together_on_an_empty_database_all_start(
        self, scratch_engine: AsyncEngine, settings: Settings, secret_box: SecretBox
    ) -> None:
        """`serve --workers 4` with STRIPE_SECRET_KEY: every worker's start-up succeeds and one
        project exists (on PostgreSQL the inserts race; on SQLite they queue)."""
        env = single_tenant_settings(settings, STRIPE_SECRET_KEY="sk_test_racingworkers0001")
        sessionmaker = create_sessionmaker(scratch_engine)
        await asyncio.gather(
            *(bootstrap_single_tenant(sessionmaker, secret_box, env) for _ in range(4))
        )
        async with sessionmaker() as session:
            assert await session.scalar(select(func.count()).select_from(Project)) == 1
            configs = await session.scalar(
                select(func.count()).select_from(StripeConfig).where(StripeConfig.is_active)
            )
            assert configs == 1
