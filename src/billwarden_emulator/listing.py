"""Lists (`{object: "list", data, has_more, url}`, cursors, `created` filters) and `expand`."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from typing import Any

from billwarden_emulator.errors import invalid_request, invalid_value
from billwarden_emulator.forms import Params
from billwarden_emulator.state import JSON, Account


def page(params: Params, url: str, newest_first: Iterable[JSON], *, object_name: str) -> JSON:
    """One page of `newest_first`, honouring `limit`, `starting_after` and `ending_before`.
    A page after a cursor (or the first page) reads the collection only up to the cursor and
    then `limit + 1` matching objects, so paging through a large collection costs a page, not
    the whole collection, each time."""
    limit = params.int("limit", minimum=1, maximum=100) or 10
    starting_after = params.str("starting_after")
    ending_before = params.str("ending_before")
    if ending_before is not None and starting_after is None:
        items = list(newest_first)
        index = _index_of(items, ending_before, "ending_before", object_name)
        start = max(0, index - limit)
        return {
            "object": "list",
            "data": items[start:index],
            "has_more": start > 0,
            "url": url,
        }
    following = (
        iter(newest_first)
        if starting_after is None
        else _after(newest_first, starting_after, object_name)
    )
    data = list(islice(following, limit + 1))
    return {"object": "list", "data": data[:limit], "has_more": len(data) > limit, "url": url}


def _after(items: Iterable[JSON], object_id: str, object_name: str) -> Iterator[JSON]:
    """What follows the object `object_id` in `items`, which must hold it."""
    if isinstance(items, NewestFirst):
        # compare ids up to the cursor, and test the filter only on the cursor itself
        objects = reversed(items.objects.values())
        for obj in objects:
            if obj["id"] == object_id:
                if items.keep is None or items.keep(obj):
                    return (o for o in objects if items.keep is None or items.keep(o))
                break
    else:
        remaining = iter(items)
        for obj in remaining:
            if obj["id"] == object_id:
                return remaining
    raise invalid_request(
        f"No such {object_name}: '{object_id}'", param="starting_after", code="resource_missing"
    )


def _index_of(items: list[JSON], object_id: str, param: str, object_name: str) -> int:
    for index, item in enumerate(items):
        if item["id"] == object_id:
            return index
    raise invalid_request(
        f"No such {object_name}: '{object_id}'", param=param, code="resource_missing"
    )


@dataclass(frozen=True)
class NewestFirst:
    """A collection's objects, newest first, those `keep` accepts; read lazily by `page`."""

    objects: dict[str, JSON]
    keep: Callable[[JSON], bool] | None = None

    def __iter__(self) -> Iterator[JSON]:
        keep = self.keep
        return (obj for obj in reversed(self.objects.values()) if keep is None or keep(obj))


def newest_first(
    objects: dict[str, JSON], keep: Callable[[JSON], bool] | None = None
) -> NewestFirst:
    return NewestFirst(objects, keep)


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
    elif isinstance(value, list):  # a list of ids (a subscription's `discounts`, ...)
        value = [(account.find(item) or item) if isinstance(item, str) else item for item in value]
    elif value is None:
        return node
    expanded = dict(node)
    expanded[head] = _expand(account, value, rest, path)
    return expanded
