"""Errors of usage, each with its code and status."""

from __future__ import annotations

from billwarden.errors import InvalidInput, NotFound


class UnknownMetric(InvalidInput):
    code = "UNKNOWN_METRIC"


class UsageEventNotFound(NotFound):
    code = "USAGE_EVENT_NOT_FOUND"
