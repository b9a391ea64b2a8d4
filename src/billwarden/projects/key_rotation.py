"""Re-encrypt every secret billwarden stores under the current `BILLWARDEN_SECRET_KEY`."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from billwarden.crypto import SecretBox
from billwarden.notifications.models import WebhookEndpoint
from billwarden.projects.models import EndUserAuth, EndUserSecret
from billwarden.projects.stripe_config import StripeConfigService


async def re_encrypt_stored_secrets(session: AsyncSession, secret_box: SecretBox) -> int:
    """Stripe keys, webhook secrets, end-user secrets, end users' shared secrets (a project's
    end-user authentication) and the signing secrets of the tenant apps' notification
    endpoints; returns how many were re-encrypted.

    Hash-only values (API keys, session tokens) cannot be re-keyed: they keep verifying while
    the old key stays in the fallbacks."""
    count = await StripeConfigService(session, secret_box).rotate_encryption()
    for secret in (await session.scalars(select(EndUserSecret))).all():
        secret.secret_ciphertext = secret_box.rotate(secret.secret_ciphertext)
        count += 1
    shared = select(EndUserAuth).where(EndUserAuth.shared_secret_ciphertext.is_not(None))
    for auth in (await session.scalars(shared)).all():
        assert auth.shared_secret_ciphertext is not None
        auth.shared_secret_ciphertext = secret_box.rotate(auth.shared_secret_ciphertext)
        count += 1
    for endpoint in (await session.scalars(select(WebhookEndpoint))).all():
        endpoint.secret_ciphertext = secret_box.rotate(endpoint.secret_ciphertext)
        count += 1
    await session.flush()
    return count
