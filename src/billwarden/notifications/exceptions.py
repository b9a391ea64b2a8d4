"""The notifications' errors, each with its stable code."""

from __future__ import annotations

from billwarden.errors import InvalidInput, NotFound


class NotificationEndpointNotFound(NotFound):
    code = "NOTIFICATION_ENDPOINT_NOT_FOUND"


class NotificationDeliveryNotFound(NotFound):
    code = "NOTIFICATION_DELIVERY_NOT_FOUND"


class UnsafeEndpointUrl(InvalidInput):
    code = "UNSAFE_ENDPOINT_URL"
