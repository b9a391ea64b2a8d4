"""Wire shapes of the Stripe configuration routes: masked credentials per mode, webhook URLs,
credential checks (camelCase)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from billwarden.core.modes import Mode
from billwarden.kit.schemas import CamelModel


class StripeConfigUpdate(CamelModel):
    """PUT body. Omitted fields keep their current values."""

    secret_key: str | None = Field(
        default=None, min_length=9, max_length=255, description="sk_/rk_ key for the mode."
    )
    publishable_key: str | None = Field(default=None, min_length=9, max_length=255)
    webhook_secrets: list[Annotated[str, StringConstraints(max_length=255)]] | None = Field(
        default=None,
        max_length=10,
        description="The whole set of active whsec_ signing secrets (several while rotating).",
    )


class WebhookSecretView(CamelModel):
    id: uuid.UUID
    secret: str = Field(description="Masked: whsec_...abcd")
    active: bool
    created_at: datetime


class StripeConfigView(CamelModel):
    project_id: uuid.UUID
    mode: Mode
    status: Literal["configured", "not_configured"]
    secret_key: str | None = Field(description="Masked: sk_test_...abcd")
    publishable_key: str | None
    webhook_secrets: list[WebhookSecretView]
    webhook_url: str
    updated_at: datetime | None


class WebhookUrls(CamelModel):
    project_id: uuid.UUID
    test: str
    live: str


class CredentialValidation(CamelModel):
    project_id: uuid.UUID
    mode: Mode
    valid: bool
    livemode: bool | None
    error: str | None = Field(description="Stripe's message when the key is refused.")
