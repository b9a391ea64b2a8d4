"""What the app holds once for every request: settings, the secret box, the Stripe gateway, and
objects built from the settings (policies, token issuers) on first use."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar, cast

from fastapi import Depends, Request

from billwarden.config import Settings
from billwarden.crypto import SecretBox, SecretKeyError
from billwarden.db.changes import GenerationCache
from billwarden.stripe_gateway import StripeGateway

T = TypeVar("T")


def build_secret_box(settings: Settings) -> SecretBox:
    """The box that encrypts secrets at rest; refuses to build without `BILLWARDEN_SECRET_KEY`."""
    if settings.secret_key is None:
        raise SecretKeyError(
            "BILLWARDEN_SECRET_KEY is not set; it encrypts Stripe secrets at rest. "
            'Generate one with: python -c "import secrets; print(secrets.token_urlsafe(48))"'
        )
    return SecretBox(
        settings.secret_key.get_secret_value(),
        [key.get_secret_value() for key in settings.secret_key_fallbacks],
    )


# async: FastAPI runs a plain `def` dependency in a worker thread, a hop per request
async def app_settings(request: Request) -> Settings:
    return cast(Settings, request.app.state.settings)


async def app_secret_box(request: Request) -> SecretBox:
    return cast(SecretBox, request.app.state.secret_box)


async def app_stripe_gateway(request: Request) -> StripeGateway:
    return cast(StripeGateway, request.app.state.stripe_gateway)


async def app_read_cache(request: Request) -> GenerationCache:
    return cast(GenerationCache, request.app.state.read_cache)


AppSettings = Annotated[Settings, Depends(app_settings)]
AppSecretBox = Annotated[SecretBox, Depends(app_secret_box)]
AppStripeGateway = Annotated[StripeGateway, Depends(app_stripe_gateway)]
# answers kept in memory while the database generation holds (db.changes)
AppReadCache = Annotated[GenerationCache, Depends(app_read_cache)]


def from_settings(build: Callable[[Settings], T]) -> Callable[[Request], Awaitable[T]]:
    """A dependency answering `build(settings)`, built once per app and kept in its state:
    `Annotated[IdentityPolicy, Depends(from_settings(IdentityPolicy.from_settings))]`."""

    async def dependency(request: Request) -> T:
        # async: no thread hop, so no two first calls build at once
        state = request.app.state
        if not hasattr(state, "built_from_settings"):
            state.built_from_settings = {}
        built: dict[Callable[[Settings], Any], tuple[Settings, Any]] = state.built_from_settings
        settings: Settings = state.settings
        cached = built.get(build)
        if cached is None or cached[0] is not settings:  # rebuilt when the settings are replaced
            cached = built[build] = (settings, build(settings))
        return cast(T, cached[1])

    return dependency
