"""Per-account fault injection for the emulator, set through `POST /_emulator/faults`.

The spec is JSON with three optional sections; each section sent replaces that section, sections
left out keep their current value, and `reset()` turns everything off:

    {
      "requests": [{"method": "POST", "path": "/v1/customers", "status": 500, "count": 2}],
      "latency":  [{"method": "GET", "path": "/v1/subscriptions*", "seconds": 0.2}],
      "webhooks": {"duplicate": true, "shuffle_window": 2.0, "shuffle_seed": 7, "delay": 1.0}
    }

- `requests`: fail the next `count` (default 1) matching requests with `status` (500 or 429);
  or, with `rate` (a fraction in (0, 1]) instead of `count`, fail that share of the matching
  requests, drawn at random, for as long as the rule is set. Rules are tried in order; the first
  with a remaining count takes the request, a rate rule takes it when its draw says so (else the
  next rules are tried).
- `latency`: sleep `seconds` before answering a matching request; the first matching rule wins.
- `path` is an exact path, or a prefix when it ends with `*`; `method` is optional (any method).
- `webhooks`: `duplicate` sends every delivery twice (`duplicate_rate`: that share of the
  events, drawn at random, is sent twice), `shuffle_window` reorders deliveries
  published within that many seconds of each other (`shuffle_seed` makes the order repeatable),
  `delay` holds every delivery back that many seconds. Fields left out are off.

`state()` returns the same shape with the remaining counts, so it can be posted back as is, plus
`injected`: how many requests each status has failed, and `checked`: how many requests were
checked against the rules, since the account's faults were last reset (both read only: ignored
when posted back).
All methods are synchronous, so they are atomic under a single asyncio event loop.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

__all__ = [
    "FAULT_STATUSES",
    "AccountFaults",
    "FaultError",
    "LatencyRule",
    "RequestFaultRule",
    "WebhookFaults",
]

FAULT_STATUSES = frozenset({500, 429})
HTTP_METHODS = frozenset({"GET", "POST", "DELETE", "PUT", "PATCH", "HEAD"})

_SECTIONS = ("requests", "latency", "webhooks")
_REQUEST_FIELDS = frozenset({"method", "path", "status", "count", "rate"})
_LATENCY_FIELDS = frozenset({"method", "path", "seconds"})
_WEBHOOK_FIELDS = frozenset(
    {"duplicate", "duplicate_rate", "shuffle_window", "shuffle_seed", "delay"}
)
_READ_ONLY = ("injected", "checked")


class FaultError(ValueError):
    """A fault spec that cannot be applied; the message names the offending field."""


@dataclass(frozen=True)
class PathMatcher:
    """An optional HTTP method plus an exact path, or a prefix when the pattern ends with `*`."""

    method: str | None
    path: str

    def matches(self, method: str, path: str) -> bool:
        if self.method is not None and self.method != method.upper():
            return False
        path = path.split("?", 1)[0]
        if self.path.endswith("*"):
            return path.startswith(self.path[:-1])
        return path == self.path

    def to_json(self) -> dict[str, Any]:
        return {"method": self.method, "path": self.path}


@dataclass(frozen=True)
class RequestFaultRule:
    """Fails the next `remaining` matching requests, or (with `rate`) that share of them."""

    matcher: PathMatcher
    status: int
    remaining: int
    rate: float | None = None

    def to_json(self) -> dict[str, Any]:
        if self.rate is not None:
            return {**self.matcher.to_json(), "status": self.status, "rate": self.rate}
        return {**self.matcher.to_json(), "status": self.status, "count": self.remaining}


@dataclass(frozen=True)
class LatencyRule:
    matcher: PathMatcher
    seconds: float

    def to_json(self) -> dict[str, Any]:
        return {**self.matcher.to_json(), "seconds": self.seconds}


@dataclass(frozen=True)
class WebhookFaults:
    """Delivery knobs read by the webhook dispatcher; the defaults mean no fault."""

    duplicate: bool = False
    duplicate_rate: float = 0.0
    shuffle_window: float = 0.0
    shuffle_seed: int | None = None
    delay: float = 0.0

    @property
    def active(self) -> bool:
        return (
            self.duplicate or self.duplicate_rate > 0 or self.shuffle_window > 0 or self.delay > 0
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "duplicate": self.duplicate,
            "duplicate_rate": self.duplicate_rate,
            "shuffle_window": self.shuffle_window,
            "shuffle_seed": self.shuffle_seed,
            "delay": self.delay,
        }


@dataclass
class AccountFaults:
    """The faults configured for one emulated account (one secret key)."""

    request_rules: list[RequestFaultRule] = field(default_factory=list)
    latency_rules: list[LatencyRule] = field(default_factory=list)
    webhooks: WebhookFaults = field(default_factory=WebhookFaults)
    # requests failed so far, by status (since the last reset)
    injected: dict[int, int] = field(default_factory=dict)
    checked: int = 0
    _shuffle_random: random.Random = field(default_factory=random.Random, repr=False)
    _duplicate_random: random.Random = field(default_factory=random.Random, repr=False)
    _request_random: random.Random = field(default_factory=random.Random, repr=False)

    def configure(self, spec: dict[str, Any]) -> None:
        """Apply a fault spec; nothing changes unless the whole spec is valid."""
        if not isinstance(spec, Mapping):
            raise FaultError("fault spec must be a JSON object")
        unknown = sorted(set(spec) - set(_SECTIONS) - set(_READ_ONLY))
        if unknown:
            raise FaultError(
                f"unknown fault section(s) {', '.join(map(repr, unknown))}; "
                f"expected any of {', '.join(_SECTIONS)}"
            )
        request_rules = (
            _parse_request_rules(spec["requests"]) if "requests" in spec else self.request_rules
        )
        latency_rules = (
            _parse_latency_rules(spec["latency"]) if "latency" in spec else self.latency_rules
        )
        webhooks = _parse_webhooks(spec["webhooks"]) if "webhooks" in spec else None
        self.request_rules = list(request_rules)
        self.latency_rules = list(latency_rules)
        if webhooks is not None:
            self.webhooks = webhooks
            self._shuffle_random = random.Random(webhooks.shuffle_seed)  # noqa: S311
            self._duplicate_random = random.Random(webhooks.shuffle_seed)  # noqa: S311

    def reset(self) -> None:
        """Turn every fault off."""
        self.request_rules = []
        self.latency_rules = []
        self.webhooks = WebhookFaults()
        self.injected = {}
        self.checked = 0
        self._shuffle_random = random.Random()  # noqa: S311
        self._duplicate_random = random.Random()  # noqa: S311

    def state(self) -> dict[str, Any]:
        """The current spec, with remaining counts; valid input for `configure`."""
        return {
            "requests": [rule.to_json() for rule in self.request_rules],
            "latency": [rule.to_json() for rule in self.latency_rules],
            "webhooks": self.webhooks.to_json(),
            "injected": {str(status): count for status, count in sorted(self.injected.items())},
            "checked": self.checked,
        }

    def take_request_fault(self, method: str, path: str) -> int | None:
        """The status (500 or 429) to fail this request with, consuming one count; else None."""
        self.checked += 1
        for index, rule in enumerate(self.request_rules):
            if not rule.matcher.matches(method, path):
                continue
            if rule.rate is not None:
                if self._request_random.random() >= rule.rate:
                    continue
            elif rule.remaining <= 1:
                del self.request_rules[index]
            else:
                self.request_rules[index] = replace(rule, remaining=rule.remaining - 1)
            self.injected[rule.status] = self.injected.get(rule.status, 0) + 1
            return rule.status
        return None

    def duplicates_delivery(self) -> bool:
        """Whether the event being published is delivered twice (`duplicate`, or the draw of
        `duplicate_rate`)."""
        if self.webhooks.duplicate:
            return True
        rate = self.webhooks.duplicate_rate
        return rate > 0 and self._duplicate_random.random() < rate

    def latency_for(self, method: str, path: str) -> float:
        """Seconds to wait before answering this request (0.0 when no rule matches)."""
        for rule in self.latency_rules:
            if rule.matcher.matches(method, path):
                return rule.seconds
        return 0.0

    # Delivery knobs, read by the dispatcher when an event is published.
    @property
    def duplicate_deliveries(self) -> bool:
        return self.webhooks.duplicate

    @property
    def shuffle_window(self) -> float:
        return self.webhooks.shuffle_window

    @property
    def delivery_delay(self) -> float:
        return self.webhooks.delay

    @property
    def shuffle_random(self) -> random.Random:
        """The generator that orders shuffled deliveries; seeded by `shuffle_seed` when set."""
        return self._shuffle_random


def _parse_rule_list(value: Any, section: str) -> list[Mapping[str, Any]]:
    if not isinstance(value, list):
        raise FaultError(f"{section} must be a list of rules")
    for index, item in enumerate(value):
        if not isinstance(item, Mapping):
            raise FaultError(f"{section}[{index}] must be an object")
    return value


def _check_fields(item: Mapping[str, Any], allowed: frozenset[str], where: str) -> None:
    unknown = sorted(set(item) - allowed)
    if unknown:
        raise FaultError(
            f"{where}: unknown field(s) {', '.join(map(repr, unknown))}; "
            f"allowed: {', '.join(sorted(allowed))}"
        )


def _parse_matcher(item: Mapping[str, Any], where: str) -> PathMatcher:
    method = item.get("method")
    if method is not None:
        if not isinstance(method, str) or method.upper() not in HTTP_METHODS:
            raise FaultError(
                f"{where}.method must be one of {', '.join(sorted(HTTP_METHODS))} "
                f"or null, got {method!r}"
            )
        method = method.upper()
    if "path" not in item:
        raise FaultError(f"{where}.path is required")
    path = item["path"]
    if not isinstance(path, str) or not path.startswith("/"):
        raise FaultError(f"{where}.path must be a string starting with '/', got {path!r}")
    if "*" in path[:-1] or "?" in path:
        raise FaultError(
            f"{where}.path may only contain '*' as its last character and no query string, "
            f"got {path!r}"
        )
    return PathMatcher(method=method, path=path)


def _parse_seconds(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise FaultError(f"{where} must be a number of seconds, got {value!r}")
    if value < 0:
        raise FaultError(f"{where} must be >= 0, got {value!r}")
    return float(value)


def _parse_rate(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 1:
        raise FaultError(f"{where} must be a fraction in (0, 1], got {value!r}")
    return float(value)


def _parse_request_rules(value: Any) -> list[RequestFaultRule]:
    rules = []
    for index, item in enumerate(_parse_rule_list(value, "requests")):
        where = f"requests[{index}]"
        _check_fields(item, _REQUEST_FIELDS, where)
        matcher = _parse_matcher(item, where)
        if "status" not in item:
            raise FaultError(f"{where}.status is required (500 or 429)")
        status = item["status"]
        if isinstance(status, bool) or status not in FAULT_STATUSES:
            raise FaultError(f"{where}.status must be 500 or 429, got {status!r}")
        if "rate" in item:
            if "count" in item:
                raise FaultError(f"{where}: give count or rate, not both")
            rate = _parse_rate(item["rate"], f"{where}.rate")
            rules.append(RequestFaultRule(matcher, int(status), remaining=0, rate=rate))
            continue
        count = item.get("count", 1)
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise FaultError(f"{where}.count must be an integer >= 1, got {count!r}")
        rules.append(RequestFaultRule(matcher=matcher, status=int(status), remaining=count))
    return rules


def _parse_latency_rules(value: Any) -> list[LatencyRule]:
    rules = []
    for index, item in enumerate(_parse_rule_list(value, "latency")):
        where = f"latency[{index}]"
        _check_fields(item, _LATENCY_FIELDS, where)
        matcher = _parse_matcher(item, where)
        if "seconds" not in item:
            raise FaultError(f"{where}.seconds is required")
        seconds = _parse_seconds(item["seconds"], f"{where}.seconds")
        rules.append(LatencyRule(matcher=matcher, seconds=seconds))
    return rules


def _parse_webhooks(value: Any) -> WebhookFaults:
    if not isinstance(value, Mapping):
        raise FaultError("webhooks must be an object")
    _check_fields(value, _WEBHOOK_FIELDS, "webhooks")
    duplicate = value.get("duplicate", False)
    if not isinstance(duplicate, bool):
        raise FaultError(f"webhooks.duplicate must be true or false, got {duplicate!r}")
    seed = value.get("shuffle_seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise FaultError(f"webhooks.shuffle_seed must be an integer or null, got {seed!r}")
    duplicate_rate = value.get("duplicate_rate", 0.0)
    if duplicate_rate != 0:
        duplicate_rate = _parse_rate(duplicate_rate, "webhooks.duplicate_rate")
    if isinstance(duplicate_rate, bool) or not isinstance(duplicate_rate, int | float):
        raise FaultError(
            f"webhooks.duplicate_rate must be a fraction in [0, 1], got {duplicate_rate!r}"
        )
    return WebhookFaults(
        duplicate=duplicate,
        duplicate_rate=float(duplicate_rate),
        shuffle_window=_parse_seconds(value.get("shuffle_window", 0.0), "webhooks.shuffle_window"),
        shuffle_seed=seed,
        delay=_parse_seconds(value.get("delay", 0.0), "webhooks.delay"),
    )
