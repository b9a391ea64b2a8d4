"""Business rules for a project's Stripe credentials: validated, encrypted, masked, rotated."""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from billwarden.core.modes import Mode
from billwarden.crypto import SecretBox, mask_secret
from billwarden.db.base import utcnow
from billwarden.errors import InvalidInput
from billwarden.projects.exceptions import InvalidStripeKey, StripeNotConfigured
from billwarden.projects.models import Project, StripeConfig, StripeWebhookSecret
from billwarden.projects.repository import StripeConfigRepository

_SECRET_KEY_PREFIXES = {Mode.TEST: ("sk_test_", "rk_test_"), Mode.LIVE: ("sk_live_", "rk_live_")}
_PUBLISHABLE_KEY_PREFIXES = {Mode.TEST: "pk_test_", Mode.LIVE: "pk_live_"}
# Stripe's keys and signing secrets are ASCII letters and digits after their prefix; always
# applied in full (fullmatch: `$` would also match before a final newline)
KEY_BODY_PATTERN = r"[A-Za-z0-9]+"
WEBHOOK_SECRET_PATTERN = r"whsec_[A-Za-z0-9+/=]+"  # noqa: S105 (a pattern, not a secret)
# the shapes the wire schema documents; which mode's prefix a key needs is checked here
SECRET_KEY_PATTERN = rf"(?:sk|rk)_(?:test|live)_{KEY_BODY_PATTERN}"
PUBLISHABLE_KEY_PATTERN = rf"pk_(?:test|live)_{KEY_BODY_PATTERN}"
_KEY_BODY = re.compile(KEY_BODY_PATTERN)
_WEBHOOK_SECRET = re.compile(WEBHOOK_SECRET_PATTERN)


@dataclass(frozen=True)
class StripeCredentials:
    """Decrypted credentials, handed only to the Stripe gateway."""

    project_id: uuid.UUID
    mode: Mode
    secret_key: str
    webhook_secrets: tuple[str, ...]


class StripeConfigService:
    def __init__(self, session: AsyncSession, secret_box: SecretBox) -> None:
        self.session = session
        self.secret_box = secret_box
        self.configs = StripeConfigRepository(session)

    async def get_active(self, project_id: uuid.UUID, mode: Mode) -> StripeConfig | None:
        return await self.configs.get_active(project_id, mode)

    async def set_stripe_config(
        self,
        project: Project,
        mode: Mode,
        *,
        secret_key: str | None,
        publishable_key: str | None = None,
        webhook_secrets: Sequence[str] | None = None,
    ) -> StripeConfig:
        """Create or update the active configuration as a new version; the previous version is
        kept, deactivated. Omitted fields keep their current values; `webhook_secrets`, when
        given, becomes the whole set of active signing secrets."""
        if secret_key is not None:
            _check_secret_key(secret_key, mode)
        if publishable_key is not None and not (
            publishable_key.startswith(_PUBLISHABLE_KEY_PREFIXES[mode])
            and _KEY_BODY.fullmatch(publishable_key[len(_PUBLISHABLE_KEY_PREFIXES[mode]) :])
        ):
            raise InvalidStripeKey(
                f"A {mode.value}-mode publishable key starts with "
                f"{_PUBLISHABLE_KEY_PREFIXES[mode]}.",
                details={"field": "publishableKey"},
            )
        for secret in webhook_secrets or ():
            if not _WEBHOOK_SECRET.fullmatch(secret):
                raise InvalidStripeKey(
                    "A webhook signing secret is whsec_ followed by letters and digits.",
                    details={"field": "webhookSecrets"},
                )
        previous = await self.configs.get_active(project.id, mode)
        if secret_key is None and previous is None:
            raise InvalidInput(
                "secretKey is required to create a Stripe configuration.",
                details={"field": "secretKey"},
            )
        if previous is not None:
            previous.is_active = False
            previous.deactivated_at = utcnow()
            await self.session.flush()
        config = StripeConfig(project_id=project.id, mode=mode, is_active=True)
        if secret_key is not None:
            config.secret_key_ciphertext = self.secret_box.encrypt(secret_key)
            config.secret_key_hint = mask_secret(secret_key)
        else:
            assert previous is not None
            config.secret_key_ciphertext = previous.secret_key_ciphertext
            config.secret_key_hint = previous.secret_key_hint
        config.publishable_key = (
            publishable_key
            if publishable_key is not None
            else (previous.publishable_key if previous else None)
        )
        if webhook_secrets is not None:
            config.webhook_secrets = [
                StripeWebhookSecret(
                    project_id=project.id,
                    mode=mode,
                    secret_ciphertext=self.secret_box.encrypt(secret),
                    secret_hint=mask_secret(secret),
                )
                for secret in dict.fromkeys(webhook_secrets)
            ]
        elif previous is None:
            config.webhook_secrets = []
        else:
            config.webhook_secrets = [
                StripeWebhookSecret(
                    project_id=project.id,
                    mode=mode,
                    secret_ciphertext=secret.secret_ciphertext,
                    secret_hint=secret.secret_hint,
                    created_at=secret.created_at,
                )
                for secret in previous.webhook_secrets
                if secret.is_active
            ]
        return await self.configs.add(config)

    async def deactivate(self, project_id: uuid.UUID, mode: Mode) -> StripeConfig:
        config = await self.configs.get_active(project_id, mode)
        if config is None:
            raise StripeNotConfigured(
                f"The project has no active {mode.value}-mode Stripe configuration."
            )
        config.is_active = False
        config.deactivated_at = utcnow()
        await self.session.flush()
        return config

    async def record_check(self, project_id: uuid.UUID, mode: Mode, *, valid: bool) -> None:
        """Keep the outcome of a credentials check on the active configuration (the payments
        overview shows it)."""
        config = await self.configs.get_active(project_id, mode)
        if config is not None:
            config.checked_at = utcnow()
            config.check_valid = valid
            await self.session.flush()

    async def get_credentials(self, project_id: uuid.UUID, mode: Mode) -> StripeCredentials:
        config = await self.configs.get_active(project_id, mode)
        if config is None:
            raise StripeNotConfigured(
                f"The project has no active {mode.value}-mode Stripe configuration."
            )
        return StripeCredentials(
            project_id=project_id,
            mode=mode,
            secret_key=self.secret_box.decrypt(config.secret_key_ciphertext),
            webhook_secrets=tuple(
                self.secret_box.decrypt(secret.secret_ciphertext)
                for secret in config.webhook_secrets
                if secret.is_active
            ),
        )

    async def rotate_encryption(self) -> int:
        """Re-encrypt every stored secret under the current secret key; returns the count."""
        count = 0
        for config in await self.configs.list_all():
            config.secret_key_ciphertext = self.secret_box.rotate(config.secret_key_ciphertext)
            count += 1
            for secret in config.webhook_secrets:
                secret.secret_ciphertext = self.secret_box.rotate(secret.secret_ciphertext)
                count += 1
        await self.session.flush()
        return count


def _check_secret_key(secret_key: str, mode: Mode) -> None:
    allowed = _SECRET_KEY_PREFIXES[mode]
    if not secret_key.startswith(allowed) or not _KEY_BODY.fullmatch(secret_key[len(allowed[0]) :]):
        raise InvalidStripeKey(
            f"A {mode.value}-mode Stripe secret key is {' or '.join(allowed)} followed by "
            "letters and digits.",
            details={"field": "secretKey", "mode": mode.value},
        )
