"""The webhook inbox's errors, each with its stable code."""

from __future__ import annotations

from billwarden.errors import InvalidInput, NotFound


class MissingSignature(InvalidInput):
    code = "VALIDATION_ERROR"


class NotAStripeEvent(InvalidInput):
    code = "NOT_A_STRIPE_EVENT"


class WebhookEndpointUnknown(NotFound):
    code = "WEBHOOK_ENDPOINT_NOT_FOUND"


class WebhookEventNotFound(NotFound):
    code = "WEBHOOK_EVENT_NOT_FOUND"
