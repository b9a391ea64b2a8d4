"""Wire shapes of the Stripe configuration routes: masked credentials per mode, webhook URLs,
credential checks (camelCase)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints

from billwarden.core.modes import Mode
from billwarden.kit.schemas import CamelModel
from billwarden.projects.stripe_config import (
    PUBLISHABLE_KEY_PATTERN,
    SECRET_KEY_PATTERN,
    WEBHOOK_SECRET_PATTERN,
)


def _documented(pattern: str) -> Any:
    """A pattern shown in OpenAPI but not applied by pydantic: the service applies it, with the
    mode's prefix, and refuses every malformed or wrong-mode key with one code,
    INVALID_STRIPE_KEY (a schema pattern would answer VALIDATION_ERROR for some of them)."""
    # JSON Schema patterns search (ECMA-262: `$` is the end of the text): anchored, a full match
    return Field(json_schema_extra={"pattern": f"^(?:{pattern})$"})


SecretKey = Annotated[
    str, StringConstraints(min_length=9, max_length=255), _documented(SECRET_KEY_PATTERN)
]
PublishableKey = Annotated[
    str, StringConstraints(min_length=9, max_length=255), _documented(PUBLISHABLE_KEY_PATTERN)
]
WebhookSecret = Annotated[
    str, StringConstraints(max_length=255), _documented(WEBHOOK_SECRET_PATTERN)
]


class StripeConfigUpdate(CamelModel):
    """PUT body. Omitted fields keep their current values."""

    secret_key: SecretKey | None = Field(
        default=None,
        description="sk_/rk_ key for the mode: sk_test_/rk_test_ in test mode, sk_live_/rk_live_ "
        "in live mode (another mode's key answers INVALID_STRIPE_KEY).",
    )
    publishable_key: PublishableKey | None = Field(
        default=None, description="pk_test_ in test mode, pk_live_ in live mode."
    )
    webhook_secrets: list[WebhookSecret] | None = Field(
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
