"""Lists (`{object: "list", data, has_more, url}`, cursors, `created` filters) and `expand`."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from billwarden_emulator.errors import invalid_request, invalid_value
from billwarden_emulator.forms import Params
from billwarden_emulator.state import JSON, Account


def page(params: Params, url: str, newest_first: Iterable[JSON], *, object_name: str) -> JSON:
    """One page of `newest_first`, honouring `limit`, `starting_after` and `ending_before`."""
    limit = params.int("limit", minimum=1, maximum=100) or 10
    starting_after = params.str("starting_after")
    ending_before = params.str("ending_before")
    items = list(newest_first)
    if starting_after is not None:
        index = _index_of(items, starting_after, "starting_after", object_name)
        data = items[index + 1 : index + 1 + limit]
        has_more = len(items) > index + 1 + limit
    elif ending_before is not None:
        index = _index_of(items, ending_before, "ending_before", object_name)
        start = max(0, index - limit)
        data = items[start:index]
        has_more = start > 0
    else:
        data = items[:limit]
        has_more = len(items) > limit
    return {"object": "list", "data": data, "has_more": has_more, "url": url}


def _index_of(items: list[JSON], object_id: str, param: str, object_name: str) -> int:
    for index, item in enumerate(items):
        if item["id"] == object_id:
            return index
    raise invalid_request(
        f"No such {object_name}: '{object_id}'", param=param, code="resource_missing"
    )


def newest_first(
    objects: dict[str, JSON], keep: Callable[[JSON], bool] | None = None
) -> list[JSON]:
    values = reversed(objects.values())
    return [obj for obj in values if keep is None or keep(obj)]


def range_filter(params: Params, name: str) -> Callable[[int], bool] | None:
    """`created=123` or `created[gt|gte|lt|lte]=123`."""
    if not params.has(name):
        return None
    raw = params.raw(name)
    if isinstance(raw, str):
        exact = params.int(name)
        return None if exact is None else (lambda value: value == exact)
    bounds = params.nested(name)
    if bounds is None:
        return None
    gt, gte = bounds.int("gt"), bounds.int("gte")
    lt, lte = bounds.int("lt"), bounds.int("lte")
    bounds.finish()

    def keep(value: int) -> bool:
        return (
            (gt is None or value > gt)
            and (gte is None or value >= gte)
            and (lt is None or value < lt)
            and (lte is None or value <= lte)
        )

    return keep


Includer = Callable[[Account, JSON], Any]
# Fields Stripe only returns when expanded (e.g. a checkout session's `line_items`).
INCLUDABLE: dict[tuple[str, str], Includer] = {}


def expand(account: Account, obj: JSON, paths: list[str]) -> JSON:
    """Replace ids along each dotted path by the objects they name (copy-on-write)."""
    for path in paths:
        if path.count(".") > 3:
            raise invalid_value(
                "expand", f"You cannot expand more than 4 levels of a property. Property: {path}"
            )
        obj = _expand(account, obj, path.split("."), path)
    return obj


def _expand(account: Account, node: Any, parts: list[str], path: str) -> Any:
    if not parts:
        return node
    if isinstance(node, list):
        return [_expand(account, item, parts, path) for item in node]
    if not isinstance(node, dict):
        return node
    head, rest = parts[0], parts[1:]
    if head in node:
        value = node[head]
    else:
        includer = INCLUDABLE.get((str(node.get("object")), head))
        if includer is None:
            raise invalid_request(f"This property cannot be expanded ({path}).", param="expand")
        value = includer(account, node)
    if isinstance(value, str):
        found = account.find(value)
        if found is not None:
            value = found
    elif value is None:
        return node
    expanded = dict(node)
    expanded[head] = _expand(account, value, rest, path)
    return expanded
