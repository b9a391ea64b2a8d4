"""Run the Stripe CLI's `stripe trigger` fixtures against the emulator, the way the CLI runs them.

A fixture file (`../shared/stripe/cli-triggers/<event type>.json`, copied from stripe/stripe-cli's
`pkg/fixtures/triggers/`) is a list of steps, each one HTTP request. As the CLI does:

- `/v1` parameters are form-encoded: nested maps as `a[b][c]=v`, maps inside lists numbered
  `a[0][b]=v` (counting the maps only), scalars inside lists as `a[]=v`; whole numbers are written
  without a decimal point, booleans as `true`/`false`, nulls left out. GET and DELETE send them in
  the query string, POST in the body. A POST to `/v2` sends its parameters as JSON.
- `${step:path}` is replaced by the value at the dotted `path` (list indexes as numbers,
  `items.data.0.id`) of an earlier step's answer, `${step:path|default}` falls back to `default`,
  and a value found nowhere leaves the text as written (the CLI's behaviour too). `${.env:NAME}`
  reads the environment, `${generate-uuid}` and `${time-now-RFC3339}` make a fresh value. Unlike
  the CLI, which replaces the whole string by the referenced value, a reference inside a longer
  string (`Bearer ${session:authentication_token}`) is replaced in place.
- A step with `expected_error_type` may fail with that Stripe error type (`error.type`) and the run
  goes on; its answer is then empty, so later references to it stay unresolved. Any other failure
  (status 300 or above) stops the run.
- Every request carries the account's secret key as a Bearer token; a step's `headers` are added
  after (and may replace it). A step's `api_base` (`https://meter-events.stripe.com` for
  `/v2/billing/meter_event_stream`) is ignored: every request goes to the emulator.

A run passes when every step went through and the emulator emitted the event the fixture is named
after (and each of its `_meta.aliases`, which the CLI triggers with the same file) on that account:
listed by `GET /v1/events?type=...`, or for the `v1.billing.meter.*` thin events by
`GET /v2/core/events`, where Stripe lists them.
"""

from __future__ import annotations

import configparser
import datetime as dt
import os
import re
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import orjson

JSON = dict[str, Any]

_REFERENCE = re.compile(r"\$\{([^|}]+?)(?::([^|}]+))?(?:\|([^}\n]*))?\}")
THIN_EVENT_PREFIX = "v1.billing.meter."


def find_cli_triggers() -> Path:
    """The folder of the CLI's trigger fixtures, beside the project (`../shared/stripe/
    cli-triggers`), not in it: beside this checkout, or beside the checkout it was cloned from;
    BILLWARDEN_STRIPE_CLI_TRIGGERS names the folder explicitly."""
    relative = Path("shared") / "stripe" / "cli-triggers"
    repo = Path(__file__).resolve().parents[2]
    candidates = []
    if explicit := os.environ.get("BILLWARDEN_STRIPE_CLI_TRIGGERS"):
        candidates.append(Path(explicit))
    candidates.append(repo.parent / relative)
    git_config = configparser.ConfigParser()
    git_config.read(repo / ".git" / "config")
    origin = git_config.get('remote "origin"', "url", fallback="")
    if origin and Path(origin).is_dir():
        candidates.append(Path(origin).resolve().parent / relative)
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(
        "The Stripe CLI's trigger fixtures were not found; looked at "
        + ", ".join(str(c) for c in candidates)
        + " (set BILLWARDEN_STRIPE_CLI_TRIGGERS)"
    )


@dataclass(frozen=True)
class Step:
    """One request of a fixture, as written in the file (references unresolved)."""

    name: str
    method: str
    path: str
    params: JSON
    expected_error_type: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Fixture:
    """A trigger fixture: the event type it is named after, its aliases and its steps."""

    event_type: str
    aliases: tuple[str, ...]
    steps: tuple[Step, ...]

    @classmethod
    def load(cls, path: Path) -> Fixture:
        data = orjson.loads(path.read_bytes())
        meta = data.get("_meta") or {}
        steps = tuple(
            Step(
                name=raw["name"],
                method=raw["method"].upper(),
                path=raw["path"],
                params=raw.get("params") or {},
                expected_error_type=raw.get("expected_error_type") or None,
                headers=raw.get("headers") or {},
            )
            for raw in data["fixtures"]
        )
        return cls(path.name.removesuffix(".json"), tuple(meta.get("aliases") or ()), steps)

    @property
    def event_types(self) -> tuple[str, ...]:
        return (self.event_type, *self.aliases)


@dataclass(frozen=True)
class SentRequest:
    """A request the run made and how the emulator answered it."""

    step: str
    method: str
    path: str
    status: int
    error_type: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    tolerated: bool = False  # failed with the step's expected_error_type

    def describe(self) -> str:
        answer = f"{self.method} {self.path} answered {self.status}"
        detail = " ".join(
            part for part in (self.error_type, self.error_code, self.error_message) if part
        )
        return f"step {self.step!r}: {answer}" + (f": {detail}" if detail else "")


@dataclass(frozen=True)
class TriggerOutcome:
    """The result of running one fixture: passed, or the reason it did not."""

    fixture: str
    passed: bool
    reason: str | None
    requests: list[SentRequest]
    failed_step: Step | None = None  # the step that stopped the run, if one did
    missing_events: tuple[str, ...] = ()


class UndeclaredStep(Exception):
    """A `${step:path}` naming a step that has not run (the CLI refuses these too)."""


@dataclass
class Answers:
    """The JSON answers of the steps run so far, by step name, for `${step:path}` references."""

    by_step: dict[str, Any] = field(default_factory=dict)

    def resolve(self, text: str) -> str:
        return _REFERENCE.sub(self._replacement, text)

    def _replacement(self, match: re.Match[str]) -> str:
        name, query, default = match.group(1), match.group(2), match.group(3)
        fallback = default if default else match.group(0)
        if query is None:
            if name == "generate-uuid":
                return str(uuid.uuid4())
            if name == "time-now-RFC3339":
                return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            return match.group(0)
        if name == ".env":
            return os.environ.get(query) or fallback
        if name not in self.by_step:
            raise UndeclaredStep(f"{match.group(0)} names no earlier step")
        found = _lookup(self.by_step[name], query)
        text = _as_text(found)
        return text if text else fallback


def _lookup(answer: Any, query: str) -> Any:
    node = answer
    for part in query.split("."):
        if isinstance(node, dict):
            node = node.get(part)
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return None
    return node


def _as_text(value: Any) -> str:
    """A JSON value as the CLI writes a found value into a request (gjson's String())."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return _number(value)
    if isinstance(value, (dict, list)):
        return orjson.dumps(value).decode()
    return str(value)


def _number(value: float) -> str:
    return str(int(value)) if value.is_integer() else repr(value)


def form_pairs(params: Mapping[str, Any], answers: Answers) -> list[tuple[str, str]]:
    """`params` form-encoded as the CLI encodes them, references resolved."""
    return list(_encode_map(params, "", answers))


def _encode_map(
    params: Mapping[str, Any], parent: str, answers: Answers
) -> Iterator[tuple[str, str]]:
    for key, value in params.items():
        name = f"{parent}[{key}]" if parent else key
        yield from _encode_value(value, name, answers)


def _encode_value(value: Any, name: str, answers: Answers) -> Iterator[tuple[str, str]]:
    if isinstance(value, dict):
        yield from _encode_map(value, name, answers)
    elif isinstance(value, list):
        yield from _encode_list(value, name, answers)
    elif value is not None:
        yield name, _scalar(value, answers)


def _encode_list(values: list[Any], parent: str, answers: Answers) -> Iterator[tuple[str, str]]:
    index = -1
    for value in values:
        if isinstance(value, dict):
            index += 1
            yield from _encode_map(value, f"{parent}[{index}]", answers)
        elif isinstance(value, list):
            yield from _encode_list(value, parent, answers)
        elif value is not None:
            yield f"{parent}[]", _scalar(value, answers)


def _scalar(value: Any, answers: Answers) -> str:
    if isinstance(value, str):
        return answers.resolve(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return _number(value)
    return str(value)


def _resolve_json(value: Any, answers: Answers) -> Any:
    if isinstance(value, str):
        return answers.resolve(value)
    if isinstance(value, dict):
        return {key: _resolve_json(item, answers) for key, item in value.items()}
    if isinstance(value, list):
        return [_resolve_json(item, answers) for item in value]
    return value


def _error_of(response: httpx.Response) -> tuple[str | None, str | None, str | None]:
    """Stripe's error type, code and message from an error answer (any body, even not JSON)."""
    try:
        body = response.json()
    except ValueError:
        return None, None, response.text.strip()[:200] or None
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return None, None, response.text.strip()[:200] or None
    return error.get("type"), error.get("code"), error.get("message")


class TriggerRunner:
    """Runs fixtures against one emulator through one HTTP client, each on a fresh account."""

    def __init__(self, http: httpx.Client, *, event_wait: float = 2.0) -> None:
        self.http = http
        self.event_wait = event_wait

    def run(
        self, fixture: Fixture, *, api_key: str | None = None, event_wait: float | None = None
    ) -> TriggerOutcome:
        key = api_key or f"sk_test_{uuid.uuid4().hex}"
        answers = Answers()
        sent: list[SentRequest] = []
        for step in fixture.steps:
            try:
                request = self._request(step, key, answers)
            except UndeclaredStep as error:
                return TriggerOutcome(
                    fixture.event_type, False, f"step {step.name!r}: {error}", sent, step
                )
            response = self.http.send(request)
            if response.status_code < 300:
                sent.append(
                    SentRequest(step.name, step.method, request.url.path, response.status_code)
                )
                answers.by_step[step.name] = _json_or_empty(response)
                continue
            error_type, code, message = _error_of(response)
            tolerated = error_type is not None and error_type == step.expected_error_type
            result = SentRequest(
                step.name,
                step.method,
                request.url.path,
                response.status_code,
                error_type,
                code,
                message,
                tolerated,
            )
            sent.append(result)
            if not tolerated:
                return TriggerOutcome(fixture.event_type, False, result.describe(), sent, step)
            answers.by_step[step.name] = {}
        missing = self._missing_events(
            fixture, key, self.event_wait if event_wait is None else event_wait
        )
        if missing:
            reason = "event never emitted: " + ", ".join(missing)
            return TriggerOutcome(fixture.event_type, False, reason, sent, missing_events=missing)
        return TriggerOutcome(fixture.event_type, True, None, sent)

    def _request(self, step: Step, key: str, answers: Answers) -> httpx.Request:
        path = answers.resolve(step.path)
        headers = {"Authorization": f"Bearer {key}"}
        content: bytes | None = None
        query = ""
        if path.startswith("/v2/") and step.method == "POST":
            headers["Content-Type"] = "application/json"
            content = orjson.dumps(_resolve_json(step.params, answers))
        else:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            pairs = form_pairs(step.params, answers)
            if step.method == "POST":
                content = urlencode(pairs).encode()
            else:
                query = urlencode(pairs)
        for name, value in step.headers.items():
            headers[name] = answers.resolve(value)
        return self.http.build_request(
            step.method, path, params=query, content=content, headers=headers
        )

    def _missing_events(self, fixture: Fixture, key: str, wait: float) -> tuple[str, ...]:
        deadline = time.monotonic() + wait
        while True:
            missing = tuple(t for t in fixture.event_types if not self._emitted(t, key))
            if not missing or time.monotonic() >= deadline:
                return missing
            time.sleep(0.02)

    def _emitted(self, event_type: str, key: str) -> bool:
        headers = {"Authorization": f"Bearer {key}"}
        if event_type.startswith(THIN_EVENT_PREFIX):
            response = self.http.get("/v2/core/events", headers=headers)
            if response.status_code != 200:
                return False
            return any(
                event.get("type") == event_type
                for event in _json_or_empty(response).get("data", [])
            )
        response = self.http.get(
            "/v1/events", params={"type": event_type, "limit": 1}, headers=headers
        )
        return response.status_code == 200 and bool(_json_or_empty(response).get("data"))


def _json_or_empty(response: httpx.Response) -> JSON:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def load_fixtures(folder: Path) -> list[Fixture]:
    """Every fixture in `folder`, by file name."""
    return [Fixture.load(path) for path in sorted(folder.glob("*.json"))]
