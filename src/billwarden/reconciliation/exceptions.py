"""Errors of reconciliation, each with its code and status."""

from __future__ import annotations

from billwarden.errors import BillwardenError


class UnknownRepair(BillwardenError):
    code = "UNKNOWN_REPAIR"
    status_code = 400


class RecordNotFound(BillwardenError):
    code = "RECORD_NOT_FOUND"
    status_code = 404


class RunNotFound(BillwardenError):
    code = "RUN_NOT_FOUND"
    status_code = 404
