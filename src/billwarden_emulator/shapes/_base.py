"""Helpers shared by the shape builders."""

from __future__ import annotations

from typing import Any

from billwarden_emulator.state import JSON


def _apply(base: JSON, overrides: dict[str, Any]) -> JSON:
    for key in overrides:
        if key not in base:
            raise KeyError(f"{base['object']} has no field {key!r}")
    base.update(overrides)
    return base


def _address() -> JSON:
    return {
        "city": None,
        "country": None,
        "line1": None,
        "line2": None,
        "postal_code": None,
        "state": None,
    }
