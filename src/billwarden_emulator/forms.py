"""Stripe's form encoding (`items[0][price]=...`, `metadata[k]=...`, `expand[]=...`).

Values arrive as strings; `Params` coerces them and records which names a handler read so that
anything left over is answered with Stripe's `parameter_unknown` error.
"""

from __future__ import annotations

import builtins
import re
from collections.abc import Iterable, Mapping
from typing import Any

from billwarden_emulator.errors import (
    invalid_value,
    missing_parameter,
    unknown_parameter,
)

_KEY = re.compile(r"\[([^\]]*)\]")


def decode_form(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """Turn flat `a[b][0]=v` pairs into nested dicts and lists."""
    root: dict[str, Any] = {}
    for raw_key, value in pairs:
        bracket = raw_key.find("[")
        if bracket <= 0:
            root[raw_key] = value
            continue
        parts = [raw_key[:bracket], *_KEY.findall(raw_key[bracket:])]
        node: dict[str, Any] = root
        for index, part in enumerate(parts):
            last = index == len(parts) - 1
            if part == "":
                # `expand[]=a` appends, numbered by arrival
                part = str(sum(1 for key in node if key.isdigit()))
            if last:
                node[part] = value
            else:
                child = node.get(part)
                if not isinstance(child, dict):
                    child = {}
                    node[part] = child
                node = child
    return _listify(root)


def _listify(node: dict[str, Any]) -> dict[str, Any]:
    for key, value in list(node.items()):
        if isinstance(value, dict):
            converted = _listify(value)
            if converted and all(k.isdigit() for k in converted):
                node[key] = [converted[k] for k in sorted(converted, key=int)]
            else:
                node[key] = converted
    return node


class Params:
    """Typed access to one request's decoded parameters."""

    def __init__(self, data: Mapping[builtins.str, Any], *, prefix: builtins.str = "") -> None:
        self.data = dict(data)
        self.prefix = prefix
        self.used: set[builtins.str] = {"expand"}

    def _name(self, name: builtins.str) -> builtins.str:
        return f"{self.prefix}[{name}]" if self.prefix else name

    def has(self, name: builtins.str) -> builtins.bool:
        self.used.add(name)
        return name in self.data

    def accept(self, *names: builtins.str) -> None:
        """Mark parameters Stripe accepts that the emulator does not act on."""
        self.used.update(names)

    def raw(self, name: builtins.str) -> Any:
        self.used.add(name)
        return self.data.get(name)

    def str(
        self, name: str, *, required: bool = False, choices: Iterable[str] | None = None
    ) -> builtins.str | None:
        self.used.add(name)
        value = self.data.get(name)
        if value is None or value == "":
            if required:
                raise missing_parameter(self._name(name))
            return None
        if not isinstance(value, str):
            raise invalid_value(self._name(name), f"Invalid string: {self._name(name)}")
        if choices is not None:
            allowed = list(choices)
            if value not in allowed:
                raise invalid_value(
                    self._name(name),
                    f"Invalid {self._name(name)}: must be one of {', '.join(allowed)}",
                )
        return value

    def int(
        self,
        name: builtins.str,
        *,
        required: builtins.bool = False,
        minimum: builtins.int | None = None,
        maximum: builtins.int | None = None,
    ) -> builtins.int | None:
        text = self.str(name, required=required)
        if text is None:
            return None
        try:
            value = int(text)
        except ValueError:
            raise invalid_value(self._name(name), f"Invalid integer: {text}") from None
        if minimum is not None and value < minimum:
            raise invalid_value(
                self._name(name), f"This value must be greater than or equal to {minimum}."
            )
        if maximum is not None and value > maximum:
            raise invalid_value(
                self._name(name), f"This value must be less than or equal to {maximum}."
            )
        return value

    def bool(self, name: builtins.str, *, required: builtins.bool = False) -> builtins.bool | None:
        text = self.str(name, required=required)
        if text is None:
            return None
        if text not in ("true", "false"):
            raise invalid_value(self._name(name), f"Invalid boolean: {text}")
        return text == "true"

    def timestamp_or_now(self, name: builtins.str) -> builtins.int | builtins.str | None:
        """An integer timestamp or the literal `now`."""
        text = self.str(name)
        if text == "now":
            return "now"
        return self.int(name)

    def nested(self, name: builtins.str, *, required: builtins.bool = False) -> Params | None:
        self.used.add(name)
        value = self.data.get(name)
        if value is None or value == "":
            if required:
                raise missing_parameter(self._name(name))
            return None
        if not isinstance(value, dict):
            raise invalid_value(self._name(name), f"Invalid object: {self._name(name)}")
        return Params(value, prefix=self._name(name))

    def nested_list(self, name: builtins.str, *, required: builtins.bool = False) -> list[Params]:
        self.used.add(name)
        value = self.data.get(name)
        if value is None or value == "":
            if required:
                raise missing_parameter(self._name(name))
            return []
        if isinstance(value, dict):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise invalid_value(self._name(name), f"Invalid array: {self._name(name)}")
        return [Params(v, prefix=f"{self._name(name)}[{i}]") for i, v in enumerate(value)]

    def strings(self, name: builtins.str) -> list[builtins.str] | None:
        self.used.add(name)
        value = self.data.get(name)
        if value is None:
            return None
        if isinstance(value, str):
            return [value] if value else []
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return list(value)
        raise invalid_value(self._name(name), f"Invalid array: {self._name(name)}")

    def metadata(self, name: builtins.str = "metadata") -> dict[builtins.str, builtins.str] | None:
        """Metadata as sent; None when absent. `metadata=""` clears all keys (empty dict)."""
        self.used.add(name)
        value = self.data.get(name)
        if value is None:
            return None
        if value == "":
            return {}
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise invalid_value(self._name(name), f"Invalid hash: {self._name(name)}")
        return dict(value)

    def finish(self) -> None:
        """Refuse any parameter no handler asked for, as Stripe does."""
        for key in self.data:
            if key not in self.used:
                raise unknown_parameter(self._name(key))


def merge_metadata(current: dict[str, str], update: dict[str, str] | None) -> dict[str, str]:
    """Stripe's metadata update: keys set to "" are removed, others set; "" as a whole clears."""
    if update is None:
        return current
    if not update:
        return {}
    merged = dict(current)
    for key, value in update.items():
        if value == "":
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


def expand_paths(params: Params) -> list[str]:
    return params.strings("expand") or []
