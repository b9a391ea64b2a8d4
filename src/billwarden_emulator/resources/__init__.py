"""The `/v1` resources; each module exposes `ROUTES`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from billwarden_emulator.forms import Params
from billwarden_emulator.state import JSON, Ctx

Handler = Callable[..., JSON]


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # e.g. "/v1/customers/{id}"
    handler: Handler
    mutates: bool = True


def get(path: str) -> Callable[[Handler], Handler]:
    return _register("GET", path, mutates=False)


def post(path: str) -> Callable[[Handler], Handler]:
    return _register("POST", path, mutates=True)


def delete(path: str) -> Callable[[Handler], Handler]:
    return _register("DELETE", path, mutates=True)


ROUTES: list[Route] = []


def _register(method: str, path: str, *, mutates: bool) -> Callable[[Handler], Handler]:
    def decorator(handler: Handler) -> Handler:
        ROUTES.append(Route(method, path, handler, mutates))
        return handler

    return decorator


__all__ = ["JSON", "ROUTES", "Any", "Ctx", "Handler", "Params", "Route", "delete", "get", "post"]
