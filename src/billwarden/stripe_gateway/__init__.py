"""The only code in billwarden that talks to Stripe (or to the emulator standing in for it)."""

from billwarden.stripe_gateway.gateway import (
    STRIPE_API_VERSION,
    WEBHOOK_TOLERANCE_SECONDS,
    CredentialCheck,
    StripeGateway,
    StripeGatewayError,
    StripePrice,
    WebhookSignatureInvalid,
    verify_webhook_signature,
)

__all__ = [
    "STRIPE_API_VERSION",
    "WEBHOOK_TOLERANCE_SECONDS",
    "CredentialCheck",
    "StripeGateway",
    "StripeGatewayError",
    "StripePrice",
    "WebhookSignatureInvalid",
    "verify_webhook_signature",
]
