"""Errors of usage, each with its code and status."""

from __future__ import annotations

from billwarden.errors import InvalidInput


class UnknownMetric(InvalidInput):
    code = "UNKNOWN_METRIC"
