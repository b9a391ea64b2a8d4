"""Stripe's two worlds, test and live: every tenant row, credential and Stripe call has one."""

from __future__ import annotations

from enum import StrEnum


class Mode(StrEnum):
    TEST = "test"
    LIVE = "live"
