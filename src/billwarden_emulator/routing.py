"""Match `/v1` paths to handlers: exact paths by dict lookup, templated ones by regex."""

from __future__ import annotations

import importlib
import pkgutil
import re

from billwarden_emulator.resources import ROUTES, Route


class Router:
    def __init__(self, routes: list[Route]) -> None:
        self._exact: dict[tuple[str, str], Route] = {}
        self._templated: dict[str, list[tuple[re.Pattern[str], Route]]] = {}
        for route in routes:
            if "{" not in route.path:
                self._exact[(route.method, route.path)] = route
            else:
                pattern = re.compile(re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", route.path))
                self._templated.setdefault(route.method, []).append((pattern, route))

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        route = self._exact.get((method, path))
        if route is not None:
            return route, {}
        for pattern, candidate in self._templated.get(method, ()):
            found = pattern.fullmatch(path)  # not match + `$`: that also takes a final "\n"
            if found is not None:
                return candidate, found.groupdict()
        return None


def build_router() -> Router:
    # importing the modules registers their routes: every module of the resources package
    from billwarden_emulator import resources

    for module in pkgutil.iter_modules(resources.__path__):
        importlib.import_module(f"{resources.__name__}.{module.name}")
    return Router(ROUTES)
