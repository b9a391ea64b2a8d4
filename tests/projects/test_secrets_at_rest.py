"""Stripe secrets are stored encrypted and never shown whole again."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from billwarden.core.modes import Mode
from billwarden.crypto import SecretBox, SecretDecryptionError, SecretKeyError, mask_secret
from billwarden.notifications.service import EndpointService
from billwarden.projects.end_user_auth import EndUserAuthInput, EndUserAuthService
from billwarden.projects.exceptions import InvalidStripeKey, SlugTaken
from billwarden.projects.key_rotation import re_encrypt_stored_secrets
from billwarden.projects.models import EndUserAuthMethod, Project
from billwarden.projects.service import EndUserSecretService, ProjectService
from billwarden.projects.stripe_config import StripeConfigService

STRIPE_SECRET = "sk_test_51Secret0123456789abcdefWXYZ"
WEBHOOK_SECRET = "whsec_0123456789abcdefghijklmnopqrstuv"


@pytest.fixture
def service(session: AsyncSession, secret_box: SecretBox) -> StripeConfigService:
    return StripeConfigService(session, secret_box)


@pytest.fixture
async def project(session: AsyncSession) -> Project:
    return await ProjectService(session).create_project("Acme")


class TestEncryptedAtRest:
    async def test_plain_sql_reads_only_ciphertext(
        self, service: StripeConfigService, project: Project, session: AsyncSession
    ) -> None:
        await service.set_stripe_config(
            project, Mode.TEST, secret_key=STRIPE_SECRET, webhook_secrets=[WEBHOOK_SECRET]
        )
        rows = (await session.execute(text("SELECT * FROM stripe_configs"))).mappings().all()
        secrets_rows = (
            (await session.execute(text("SELECT * FROM stripe_webhook_secrets"))).mappings().all()
        )
        dumped = repr([dict(row) for row in rows]) + repr([dict(row) for row in secrets_rows])
        assert STRIPE_SECRET not in dumped
        assert WEBHOOK_SECRET not in dumped
        assert "51Secret0123456789" not in dumped
        assert rows[0]["secret_key_hint"] == "sk_test_...WXYZ"
        assert rows[0]["secret_key_ciphertext"].startswith("gAAAA")  # a Fernet token

    async def test_gateway_credentials_decrypt(
        self, service: StripeConfigService, project: Project
    ) -> None:
        await service.set_stripe_config(
            project, Mode.TEST, secret_key=STRIPE_SECRET, webhook_secrets=[WEBHOOK_SECRET]
        )
        credentials = await service.get_credentials(project.id, Mode.TEST)
        assert credentials.secret_key == STRIPE_SECRET
        assert credentials.webhook_secrets == (WEBHOOK_SECRET,)

    async def test_replacing_keeps_history_and_one_active(
        self, service: StripeConfigService, project: Project, session: AsyncSession
    ) -> None:
        await service.set_stripe_config(project, Mode.TEST, secret_key=STRIPE_SECRET)
        await service.set_stripe_config(project, Mode.TEST, secret_key="sk_test_second0000")
        rows = (
            await session.execute(
                text("SELECT is_active FROM stripe_configs ORDER BY created_at, is_active")
            )
        ).all()
        assert sorted(bool(row[0]) for row in rows) == [False, True]
        credentials = await service.get_credentials(project.id, Mode.TEST)
        assert credentials.secret_key == "sk_test_second0000"


class TestKeyRules:
    @pytest.mark.parametrize(
        ("mode", "key"),
        [
            (Mode.TEST, "sk_live_abc123"),
            (Mode.LIVE, "sk_test_abc123"),
            (Mode.TEST, "pk_test_abc123"),
            (Mode.TEST, "sk_test_"),
        ],
    )
    async def test_key_must_match_mode(
        self, service: StripeConfigService, project: Project, mode: Mode, key: str
    ) -> None:
        with pytest.raises(InvalidStripeKey):
            await service.set_stripe_config(project, mode, secret_key=key)

    async def test_restricted_keys_are_accepted(
        self, service: StripeConfigService, project: Project
    ) -> None:
        config = await service.set_stripe_config(
            project, Mode.LIVE, secret_key="rk_live_abcdef123456"
        )
        assert config.secret_key_hint == "rk_live_...3456"

    async def test_duplicate_slug_conflicts(self, session: AsyncSession, project: Project) -> None:
        with pytest.raises(SlugTaken):
            await ProjectService(session).create_project("ACME")


class TestKeyRotation:
    async def test_fallback_key_decrypts_and_rotation_moves_to_new_key(
        self, session: AsyncSession, project: Project
    ) -> None:
        old_key, new_key = "o" * 40, "n" * 40
        old = StripeConfigService(session, SecretBox(old_key))
        await old.set_stripe_config(project, Mode.TEST, secret_key=STRIPE_SECRET)

        rotating = StripeConfigService(session, SecretBox(new_key, [old_key]))
        assert (await rotating.get_credentials(project.id, Mode.TEST)).secret_key == STRIPE_SECRET
        assert await rotating.rotate_encryption() == 1

        new_only = StripeConfigService(session, SecretBox(new_key))
        assert (await new_only.get_credentials(project.id, Mode.TEST)).secret_key == STRIPE_SECRET
        with pytest.raises(SecretDecryptionError):
            await StripeConfigService(session, SecretBox(old_key)).get_credentials(
                project.id, Mode.TEST
            )


class TestSecretBox:
    def test_short_secret_key_is_refused(self) -> None:
        with pytest.raises(SecretKeyError):
            SecretBox("too-short")

    def test_mask_shows_prefix_and_last_four(self) -> None:
        assert mask_secret("sk_live_abcdefgh1234") == "sk_live_...1234"
        assert mask_secret("whsec_abcdefgh5678") == "whsec_...5678"

    def test_short_secret_shows_no_characters(self) -> None:
        assert mask_secret("sk_test_abc123") == "sk_test_..."

    def test_keyed_hash_is_stable_and_found_after_rotation(self) -> None:
        old_key, new_key = "o" * 40, "n" * 40
        stored = SecretBox(old_key).keyed_hash("bw_test_abc")
        assert stored == SecretBox(old_key).keyed_hash("bw_test_abc")
        assert "bw_test_abc" not in stored and len(stored) == 64
        rotated = SecretBox(new_key, [old_key])
        assert rotated.keyed_hash("bw_test_abc") != stored
        assert stored in rotated.lookup_hashes("bw_test_abc")


class TestRotateEverySecret:
    async def test_end_user_secrets_survive_dropping_the_old_key(
        self, session: AsyncSession, project: Project
    ) -> None:
        old_key, new_key = "o" * 40, "n" * 40
        old = SecretBox(old_key)
        await StripeConfigService(session, old).set_stripe_config(
            project, Mode.TEST, secret_key=STRIPE_SECRET, webhook_secrets=[WEBHOOK_SECRET]
        )
        end_user_secret, _ = await EndUserSecretService(session, old).rotate(project)

        assert await re_encrypt_stored_secrets(session, SecretBox(new_key, [old_key])) == 3

        new_only = SecretBox(new_key)
        assert await EndUserSecretService(session, new_only).live_secrets(project.id) == [
            end_user_secret
        ]
        credentials = await StripeConfigService(session, new_only).get_credentials(
            project.id, Mode.TEST
        )
        assert credentials.webhook_secrets == (WEBHOOK_SECRET,)

    async def test_shared_and_notification_secrets_survive_dropping_the_old_key(
        self, session: AsyncSession, project: Project
    ) -> None:
        """What a project's end users and its tenant app's endpoints are verified or signed
        with: unreadable after the old key is dropped unless re-encrypted."""
        old_key, new_key = "o" * 40, "n" * 40
        old = SecretBox(old_key)
        shared = "shared-secret-of-the-app-0123456789abcdef"
        await EndUserAuthService(session, old).put(
            project,
            EndUserAuthInput(method=EndUserAuthMethod.SHARED_SECRET, shared_secret=shared),
        )
        endpoint, signing_secret = await EndpointService(session, old).create(
            project.id, Mode.TEST, "https://app.example.test/hooks", ["*"]
        )

        assert await re_encrypt_stored_secrets(session, SecretBox(new_key, [old_key])) == 2

        new_only = SecretBox(new_key)
        effective = await EndUserAuthService(session, new_only).effective(project.id)
        assert effective.shared_secret == shared
        assert new_only.decrypt(endpoint.secret_ciphertext) == signing_secret
