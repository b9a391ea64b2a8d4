"""Errors of the drop-in routes, each with its code and status."""

from __future__ import annotations

from billwarden.errors import NotFound


class UseProjectWebhookUrl(NotFound):
    code = "USE_PROJECT_WEBHOOK_URL"
