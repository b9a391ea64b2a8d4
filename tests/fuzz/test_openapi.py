"""Schemathesis over the whole OpenAPI document the app serves at `/openapi.json`, on each backend.

Every operation gets `BILLWARDEN_FUZZ_EXAMPLES` generated requests (30 in `make test`, many more
in `make fuzz`), from a caller who gets past authentication: the route's declaration in the
authorization matrix says which of the callers below it lets in (a console admin's browser
session with its CSRF token, a superuser's developer token, project A's API key in test and in
live mode, an end user of project A). Half the requests name project A's own resources (the
matrix's path and query values), so the fuzzer reaches past "not found"; the rest are generated
freely, a quarter of them as invalid data (schemathesis's negative mode).

Each answer must be no 5xx, have a documented status code, content type, headers and body
schema, reject invalid data with a 4xx, and every 4xx must be the error envelope. Each request
runs in a savepoint rolled back after it, so a destructive route (deleting a member, rotating the
end-user secret, changing the password, signing out) never takes the callers' credentials away
from the requests after it. The log lines the run wrote are scanned for secrets.

The app runs in-process on the suite's own event loop through httpx's ASGI transport (the
`app` fixture: the test's session, no lifespan, as every other in-process test): schemathesis's
ASGI client runs the app on an event loop of its own in another thread, where the suite's
database connections cannot be used. So schemathesis generates the cases and validates the
answers, and the requests are sent here.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import time
import zlib
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from pydantic import ValidationError
from schemathesis import Case, GenerationMode
from schemathesis.core.failures import FailureGroup
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from billwarden.config import Settings
from billwarden.core.modes import Mode
from billwarden.crypto import SecretBox
from billwarden.errors import ErrorEnvelope
from billwarden.identity.service import ApiKeyService
from billwarden.projects.models import ProjectRole
from tests.authz import SAFE, Declaration, World
from tests.factories import Factories
from tests.identity.factories import PASSWORD, People
from tests.projects.factories import Tenants
from tests.secret_scan import scan_text
from tests.test_authorization_matrix import DOMAIN_DECLARATIONS, ROUTES, end_user_token

# `make test` sends each operation the matrix's own request and DEFAULT_EXAMPLES generated ones,
# the same every run (seed 0): 2,148 requests per backend pass, measured on this 2-core machine
# shared with other runs at 22-28 s of CPU on SQLite (half of it drawing the cases, done once for
# both passes) and 11-16 s on PostgreSQL: 34 s and 18 s of wall time at a load of 5, 45-50 s each
# at a load of 7. `make fuzz` sends many more, drawn anew each run unless BILLWARDEN_FUZZ_SEED
# names the seed
DEFAULT_EXAMPLES = 30
# the end user's token lives as long as tests/fuzz/conftest.py lets the console credentials live
DAY = 86400
EXAMPLES = int(os.environ.get("BILLWARDEN_FUZZ_EXAMPLES") or DEFAULT_EXAMPLES)
SEED = int(
    os.environ.get("BILLWARDEN_FUZZ_SEED")
    or (0 if EXAMPLES == DEFAULT_EXAMPLES else random.randrange(2**32))
)

# the checks every answer goes through. Left out: positive_data_acceptance (the document gives
# the shape of a request, not which ids exist, whether Stripe is configured or a conflict: a
# well-formed request may rightly get 404 or 409), max_response_time (timing belongs to the
# benches), and the checks that send requests of their own (ignored_auth,
# missing_required_header, unsupported_method, use_after_free, ensure_resource_availability):
# they send through schemathesis's transports, which cannot reach this in-process app; the
# authorization matrix covers what ignored_auth and unsupported_method would
CHECKS = [
    schemathesis.checks.not_a_server_error,
    schemathesis.checks.status_code_conformance,
    schemathesis.checks.content_type_conformance,
    schemathesis.checks.response_headers_conformance,
    schemathesis.checks.response_schema_conformance,
    schemathesis.checks.negative_data_rejection,
]

# the matrix's principal each fuzzing caller answers as
CALLERS = {
    "console": "admin",  # browser session of project A's admin, CSRF token on unsafe requests
    "superuser": "superuser",  # developer token
    "key_test": "key",
    "key_live": "key",
    "end_user": "end_user",
}


@dataclass
class Credentials:
    headers: dict[str, dict[str, str]] = field(default_factory=dict)
    csrf: dict[str, str] = field(default_factory=dict)
    secrets: list[str] = field(default_factory=list)


@dataclass
class FuzzWorld:
    world: World
    credentials: Credentials


async def build_world(
    session: AsyncSession, secret_box: SecretBox, settings: Settings
) -> FuzzWorld:
    """The authorization matrix's world (with every domain's `prepare`), and a credential of
    each kind of caller."""
    people = People(session, secret_box, settings)
    tenants = Tenants(session, secret_box, settings)
    owner = await people.user()
    member = await people.user()
    admin = await people.user()
    superuser = await people.user(superuser=True)
    stranger = await people.user()
    candidate = await people.user()
    project = await tenants.project(owner)
    other_project = await tenants.project(stranger)
    await tenants.add_member(project, member, ProjectRole.MEMBER)
    await tenants.add_member(project, admin, ProjectRole.ADMIN)
    keys = ApiKeyService(session, secret_box)
    test_key = await keys.create_key(project.id, Mode.TEST, "fuzz test key", owner)
    live_key = await keys.create_key(project.id, Mode.LIVE, "fuzz live key", owner)
    world = World(project, other_project, owner, member, admin, candidate, test_key.key.id)
    made = Factories.on(session, secret_box, settings)
    for module in DOMAIN_DECLARATIONS:
        prepare = getattr(module, "prepare", None)
        if prepare is not None:
            await prepare(world, made)

    signed_in = await people.sign_in(admin)
    superuser_token = people.bearer(superuser)
    end_user = end_user_token(project, project.end_user_secret, expires_in=DAY)
    credentials = Credentials(
        headers={
            "anonymous": {},
            "console": signed_in.cookie,
            "superuser": superuser_token,
            "key_test": {"Authorization": f"Bearer {test_key.plaintext}"},
            "key_live": {"Authorization": f"Bearer {live_key.plaintext}"},
            "end_user": {"Authorization": f"Bearer {end_user}"},
        },
        csrf={"console": signed_in.unsafe},
        secrets=[
            PASSWORD,
            project.end_user_secret,
            other_project.end_user_secret,
            test_key.plaintext,
            live_key.plaintext,
            signed_in.started.token,
            signed_in.started.csrf_token,
            superuser_token["Authorization"].removeprefix("Bearer "),
            end_user,
        ],
    )
    return FuzzWorld(world, credentials)


def callers_of(declaration: Declaration) -> list[str]:
    """The callers the route lets past authentication and authorization; anonymous for routes
    that take no principal (Stripe's deliveries)."""
    allowed = [
        caller
        for caller, principal in CALLERS.items()
        if declaration.expected[principal] not in (401, 403)
    ]
    return allowed or ["anonymous"]


def collect(strategy: st.SearchStrategy[Case], count: int, label: str) -> list[Case]:
    """`count` cases drawn from `strategy` (fewer when it has fewer distinct ones)."""
    cases: list[Case] = []
    if count <= 0:
        return cases

    @hypothesis_settings(
        max_examples=count,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def draw(case: Case) -> None:
        cases.append(case)

    draw = seed(SEED + zlib.crc32(label.encode()))(draw)
    with contextlib.suppress(Unsatisfiable):  # nothing to make invalid: no parameters, no body
        draw()
    return cases


@dataclass
class Planned:
    case: Case
    caller: str
    kind: str  # declared / anchored / free / negative


@dataclass(frozen=True)
class Anchors:
    """A route's request in the authorization matrix, read before any request is fuzzed (a
    rolled-back request expires the world's objects)."""

    path: dict[str, str]
    query: dict[str, str]
    body: Any

    @classmethod
    def of(cls, declaration: Declaration, world: World) -> Anchors:
        body = declaration.json(world)
        return cls(
            declaration.path(world),
            declaration.query(world),
            body if body is not None else declaration.form(world),
        )


# the generated cases of each operation, drawn in the first backend pass and sent again in the
# second with that pass's own path and query values: values given to the generator are never the
# part a case makes invalid, so replacing them keeps every case what it was drawn as
GENERATED: dict[str, list[tuple[str, Case]]] = {}


def generated(operation: Any, anchors: Anchors) -> list[tuple[str, Case]]:
    """(kind, case) of the operation's generated requests, naming `anchors`' resources."""
    label = operation.label
    if label not in GENERATED:
        path, query = anchors.path or None, anchors.query or None
        anchored = EXAMPLES - EXAMPLES // 2
        negative = EXAMPLES // 4
        free = EXAMPLES - anchored - negative
        positive = operation.as_strategy(GenerationMode.POSITIVE, path_parameters=path, query=query)
        free_strategy = operation.as_strategy(GenerationMode.POSITIVE)
        invalid = operation.as_strategy(GenerationMode.NEGATIVE, path_parameters=path)
        GENERATED[label] = [
            *(("anchored", case) for case in collect(positive, anchored, f"{label} anchored")),
            *(("free", case) for case in collect(free_strategy, free, f"{label} free")),
            *(("negative", case) for case in collect(invalid, negative, f"{label} negative")),
        ]
    for kind, case in GENERATED[label]:
        if kind != "free" and anchors.path:
            case.path_parameters = {**case.path_parameters, **anchors.path}
        if kind == "anchored" and anchors.query:
            case.query = {**case.query, **anchors.query}
    return GENERATED[label]


def plan(operation: Any, declaration: Declaration, anchors: Anchors) -> list[Planned]:
    """The requests for one operation: the matrix's own request, then generated ones, each
    from one of the callers the route lets in, in turn."""
    declared_body: dict[str, Any] = {}
    if anchors.body is not None and operation.body:
        declared_body = {"body": anchors.body, "media_type": operation.body[0].media_type}
    declared = operation.Case(
        path_parameters=anchors.path, query=anchors.query or None, **declared_body
    )
    callers = callers_of(declaration)
    planned = []
    for kind, case in [("declared", declared), *generated(operation, anchors)]:
        planned.append(Planned(case, callers[len(planned) % len(callers)], kind))
    return planned


REQUEST_ARGUMENTS = {
    "method",
    "url",
    "headers",
    "files",
    "data",
    "params",
    "auth",
    "cookies",
    "json",
}


def prepared_request(case: Case, caller: str, credentials: Credentials) -> requests.PreparedRequest:
    """The case as bytes on the wire, with the caller's credentials in place of any the fuzzer
    generated (a bearer token would be taken before a session cookie)."""
    arguments = case.as_transport_kwargs(base_url="http://testserver")
    unexpected = set(arguments) - REQUEST_ARGUMENTS
    assert not unexpected, f"transport arguments this test does not send: {unexpected}"
    prepared = requests.Request(**arguments).prepare()
    for name in ("Authorization", "Cookie", "Content-Length"):
        prepared.headers.pop(name, None)
    own = credentials.headers[caller]
    if caller in credentials.csrf and case.method.upper() not in SAFE:
        own = credentials.csrf[caller]
    prepared.headers.update(own)
    return prepared


def envelope_problem(response: httpx.Response) -> str | None:
    if not 400 <= response.status_code < 500:
        return None
    try:
        ErrorEnvelope.model_validate_json(response.content)
    except ValidationError as exc:
        return f"a {response.status_code} answer that is not the error envelope: {exc}"
    return None


async def send(
    client: httpx.AsyncClient, session: AsyncSession, prepared: requests.PreparedRequest
) -> httpx.Response:
    body = prepared.body
    content = body.encode() if isinstance(body, str) else body
    cell = await session.begin_nested()
    nested = (await session.connection()).sync_connection.get_nested_transaction()
    assert nested is not None
    savepoint = nested._savepoint
    try:
        assert prepared.method is not None and prepared.url is not None
        return await client.request(
            prepared.method, prepared.url, headers=dict(prepared.headers), content=content
        )
    finally:
        await cell.rollback()
        # ROLLBACK TO SAVEPOINT keeps the savepoint, so the next request's would nest inside
        # it, every level keeping its lock until the test's transaction ends: PostgreSQL's
        # lock table ran out after some 14,000 requests (make fuzz). Releasing it ends the level
        await session.execute(text(f"RELEASE SAVEPOINT {savepoint}"))


def describe(planned: Planned, response: httpx.Response, problem: str) -> str:
    case = planned.case
    mutation = ""
    if case.meta is not None and case.meta.phase.data.description:
        mutation = f" ({case.meta.phase.data.description})"
    return (
        f"{case.operation.label} [{planned.kind}{mutation}, as {planned.caller}]: {problem}\n"
        f"    request: path={case.path_parameters} query={case.query} "
        f"headers={case.headers} body={case.body!r:.300}\n"
        f"    answer: {response.status_code} {response.text[:300]}"
    )


async def test_openapi_fuzz(
    client: httpx.AsyncClient,
    session: AsyncSession,
    secret_box: SecretBox,
    settings: Settings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.DEBUG, logger="billwarden")
    fuzz = await build_world(session, secret_box, settings)
    document = (await client.get("/openapi.json")).json()
    # the callers' credentials replace any the fuzzer would make up
    config = schemathesis.Config.from_dict({"generation": {"with-security-parameters": False}})
    schema = schemathesis.openapi.from_dict(document, config=config)

    started, cpu = time.monotonic(), time.process_time()
    operations = [result.ok() for result in schema.get_all_operations()]
    undeclared = [op.label for op in operations if (op.method.upper(), op.path) not in ROUTES]
    assert not undeclared, f"operations the authorization matrix does not declare: {undeclared}"
    routes = [(op, ROUTES[(op.method.upper(), op.path)]) for op in operations]
    anchors = [Anchors.of(declaration, fuzz.world) for _, declaration in routes]
    problems: list[str] = []
    sent = 0
    generating = 0.0
    for (operation, declaration), anchored in zip(routes, anchors, strict=True):
        drawn = time.monotonic()
        requests_planned = plan(operation, declaration, anchored)
        generating += time.monotonic() - drawn
        for planned in requests_planned:
            prepared = prepared_request(planned.case, planned.caller, fuzz.credentials)
            response = await send(client, session, prepared)
            sent += 1
            found = []
            try:
                planned.case.validate_response(response, checks=CHECKS)
            except FailureGroup as group:
                found.extend(failure.title for failure in group.exceptions)
            envelope = envelope_problem(response)
            if envelope:
                found.append(envelope)
            problems.extend(describe(planned, response, problem) for problem in found)
    elapsed = time.monotonic() - started
    print(
        f"fuzzed {len(operations)} operations with {sent} requests in {elapsed:.1f}s "
        f"({generating:.1f}s generating them; {time.process_time() - cpu:.1f}s of CPU) "
        f"({EXAMPLES} generated per operation, BILLWARDEN_FUZZ_SEED={SEED})"
    )

    assert caplog.records, "the fuzz run's log was not captured: nothing to scan"
    findings = scan_text(caplog.text, source="fuzz run log", known=fuzz.credentials.secrets)
    assert not problems, (
        f"{len(problems)} problems in {sent} requests (BILLWARDEN_FUZZ_SEED={SEED} "
        f"BILLWARDEN_FUZZ_EXAMPLES={EXAMPLES} draws them again):\n" + "\n".join(problems)
    )
    assert not findings, "secrets in the fuzz run's log:\n" + "\n".join(map(str, findings))
    assert sent >= len(operations) * 2
