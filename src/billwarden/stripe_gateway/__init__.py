"""The only code in billwarden that talks to Stripe (or to the emulator standing in for it)."""

from billwarden.stripe_gateway.gateway import (
    STRIPE_API_VERSION,
    CredentialCheck,
    StripeGateway,
    StripeGatewayError,
    StripePrice,
)

__all__ = [
    "STRIPE_API_VERSION",
    "CredentialCheck",
    "StripeGateway",
    "StripeGatewayError",
    "StripePrice",
]
