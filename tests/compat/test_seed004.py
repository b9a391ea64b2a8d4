"""Seed 004 (the OpenAPI'd billing service, base path /api/v1): checkout of the catalog's default
plan for the token's organization, paid and delivered through its webhook path, and the day's
usage, each answer checked against the schemas of the seed's own OpenAPI document
(CheckoutResponse, UsageSummary, ErrorResponse)."""

from __future__ import annotations

import configparser
import re
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import cache
from pathlib import Path
from typing import Any

import httpx

from tests.checkout.factories import catalog_document
from tests.compat.single_tenant import SingleTenant, single_tenant
from tests.conftest import Scratch

WEBHOOK = "/api/v1/billing/webhook"
CHECKOUT = "/api/v1/billing/checkout"
USAGE = "/api/v1/billing/usage"
APP = "https://my-app.example.com"
COOKIE = "sa_session"


# --- the seed's OpenAPI document ------------------------------------------------------------


def _seed_document() -> Path:
    """The seeds live beside the project (`../shared/seeds/004_*.txt`), not in it: beside this
    checkout, or beside the checkout it was cloned from."""
    repo = Path(__file__).resolve().parents[2]
    roots = [repo.parent]
    git_config = configparser.ConfigParser()
    git_config.read(repo / ".git" / "config")
    origin = git_config.get('remote "origin"', "url", fallback="")
    if origin and Path(origin).is_dir():
        roots.append(Path(origin).resolve().parent)
    for root in roots:
        found = sorted((root / "shared" / "seeds").glob("004_*.txt"))
        if found:
            return found[0]
    raise FileNotFoundError(f"seed 004's document was not found under {roots}")


@dataclass
class SeedSchema:
    name: str
    required: list[str] = field(default_factory=list)
    properties: dict[str, dict[str, str]] = field(default_factory=dict)


# the OpenAPI words a schema's lines start with; any other `name:` line in `properties` is a field
KEYWORDS = {"type", "format", "description", "example", "minimum", "additionalProperties"}
# what follows a schema in components: the next schema (capitalised) or another section
SECTIONS = {"responses:", "paths:", "securitySchemes:", "schemas:", "parameters:"}


@cache
def seed_schema(name: str) -> SeedSchema:
    """`components.schemas.<name>` of the seed's YAML. The stored document lost its indentation
    (one key per line, `|` lines between), so it is read line by line, not as YAML."""
    lines = [
        line.strip()
        for line in _seed_document().read_text().splitlines()
        if line.strip() not in ("", "|")
    ]
    start = lines.index(f"{name}:")
    end = next(
        index
        for index in range(start + 1, len(lines))
        if re.fullmatch(r"[A-Z]\w*:", lines[index]) or lines[index] in SECTIONS
    )
    schema = SeedSchema(name)
    section: str | None = None
    current: dict[str, str] | None = None
    for line in lines[start + 1 : end]:
        if line in ("required:", "properties:"):
            section = line[:-1]
            continue
        if section == "required" and line.startswith("- "):
            schema.required.append(line[2:].strip())
            continue
        matched = re.fullmatch(r"(\w+):\s*(.*)", line)
        if section != "properties" or matched is None:
            continue
        key, value = matched.groups()
        if key not in KEYWORDS and value == "":
            current = schema.properties.setdefault(key, {})
        elif key in KEYWORDS and current is not None:
            current[key] = value.strip('"')
    assert schema.properties and set(schema.required) <= set(schema.properties), schema
    return schema


TYPES: dict[str, type | tuple[type, ...]] = {
    "string": str,
    "integer": int,
    "boolean": bool,
    "object": dict,
}


def assert_conforms(body: Any, name: str) -> None:
    """`body` validates against the seed's schema `name`: its required fields, their types,
    minimums and formats (uri, uuid, date)."""
    schema = seed_schema(name)
    assert isinstance(body, dict), body
    missing = [key for key in schema.required if key not in body]
    assert not missing, f"{name} lacks {missing}: {body}"
    for key, spec in schema.properties.items():
        if key not in body:
            continue
        value = body[key]
        expected = TYPES[spec["type"]]
        wrong_bool = isinstance(value, bool) and spec["type"] != "boolean"
        assert isinstance(value, expected) and not wrong_bool, f"{name}.{key}: {value!r}"
        if "minimum" in spec:
            assert value >= int(spec["minimum"]), f"{name}.{key}: {value!r}"
        if spec.get("format") == "uri":
            assert re.fullmatch(r"https?://\S+", value), f"{name}.{key}: {value!r}"
        elif spec.get("format") == "uuid":
            uuid.UUID(value)
        elif spec.get("format") == "date":
            date.fromisoformat(value)


def assert_error(answer: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert (answer.status_code, answer.json().get("code")) == (status, code), answer.text
    assert_conforms(answer.json(), "ErrorResponse")
    body: dict[str, Any] = answer.json()
    return body


# --- the flows ------------------------------------------------------------------------------


async def checkout(st: SingleTenant, token: str | None, body: Any = None) -> httpx.Response:
    headers = st.bearer(token) if token is not None else {}
    return await st.http.post(CHECKOUT, json=body, headers=headers)


class TestCheckout:
    async def test_the_organizations_default_plan_paid_through_the_seeds_webhook(
        self, scratch: Scratch, emulator_url: str, tmp_path: Path
    ) -> None:
        async with single_tenant(scratch, emulator_url, tmp_path, webhook_path=WEBHOOK) as st:
            organization = str(uuid.uuid4())
            token = st.token("user-dee", email="dee@example.test", organization=organization)

            plain = await checkout(st, token)  # no body: the platform's default URLs
            assert plain.status_code == 201, plain.text
            assert set(plain.json()) == {"checkoutUrl"}
            assert_conforms(plain.json(), "CheckoutResponse")

            chosen = await checkout(
                st,
                token,
                {"successUrl": f"{APP}/dashboard?billing=success", "cancelUrl": f"{APP}/x"},
            )
            assert chosen.status_code == 201, chosen.text
            assert_conforms(chosen.json(), "CheckoutResponse")
            # the emulator's hosted page ends with the session's id
            session_id = chosen.json()["checkoutUrl"].rsplit("/", 1)[1]
            assert session_id.startswith("cs_")
            sold = st.stripe.v1.checkout.sessions.retrieve(session_id, {"expand": ["line_items"]})
            assert sold.success_url == f"{APP}/dashboard?billing=success"
            assert sold.cancel_url == f"{APP}/x"
            assert sold.line_items is not None
            assert [item.price.id for item in sold.line_items.data if item.price] == [
                st.prices["premium_monthly"]  # the catalog's default_purchase_key
            ]

            await st.pay(session_id)
            entitled = await st.eventually(
                lambda: st.http.get("/api/v1/entitlements/me", headers=st.bearer(token)),
                lambda answer: answer.status_code == 200 and answer.json()["hasPremiumAccess"],
            )
            # the organization bought it: another member of it has it too
            assert entitled.json()["plans"] == ["premium_monthly"]
            colleague = await st.http.get(
                "/api/v1/entitlements/me",
                headers=st.bearer(st.token("user-fay", organization=organization)),
            )
            assert colleague.json()["hasPremiumAccess"] is True
            held = await checkout(st, token)
            assert_error(held, 409, "ALREADY_SUBSCRIBED")

    async def test_refusals_answer_the_seeds_error_response(
        self, scratch: Scratch, emulator_url: str, tmp_path: Path
    ) -> None:
        async with single_tenant(
            scratch,
            emulator_url,
            tmp_path,
            webhook_path=WEBHOOK,
            end_user_cookie=COOKIE,
            end_user_allowed_origins=[APP],
        ) as st:
            organization = str(uuid.uuid4())
            no_organization = assert_error(
                await checkout(st, st.token("user-eve")), 400, "VALIDATION_ERROR"
            )
            assert no_organization["message"] == "organization_id is required in token."
            signed_out = assert_error(await checkout(st, None), 401, "UNAUTHORIZED")
            assert signed_out["message"] == (
                "A valid Bearer token is required to access this resource."
            )
            expired = st.token("user-eve", organization=organization, exp=int(time.time()) - 120)
            assert_error(await checkout(st, expired), 401, "UNAUTHORIZED")
            forged = st.token("user-eve", organization=organization, secret="y" * 40)
            assert_error(await checkout(st, forged), 401, "UNAUTHORIZED")
            token = st.token("user-eve", organization=organization)
            assert_error(
                await checkout(st, token, {"successUrl": "dashboard"}), 400, "VALIDATION_ERROR"
            )
            assert_error(await checkout(st, token, {"plan": "enterprise"}), 400, "VALIDATION_ERROR")

            # the app's session cookie, from a page of another origin: 403 FORBIDDEN
            cookie = {"Cookie": f"{COOKIE}={token}"}
            elsewhere = await st.http.post(
                CHECKOUT, headers={**cookie, "Origin": "https://elsewhere.example"}
            )
            assert_error(elsewhere, 403, "FORBIDDEN")
            from_the_app = await st.http.post(CHECKOUT, headers={**cookie, "Origin": APP})
            assert from_the_app.status_code == 201, from_the_app.text

            # the day's usage refuses the same callers with the same codes
            assert_error(await st.http.get(USAGE), 401, "UNAUTHORIZED")
            assert_error(await st.http.get(USAGE, headers=st.bearer(expired)), 401, "UNAUTHORIZED")


class TestUsage:
    async def test_todays_usage_summary_of_the_tokens_organization(
        self, scratch: Scratch, emulator_url: str, tmp_path: Path
    ) -> None:
        async with single_tenant(scratch, emulator_url, tmp_path, webhook_path=WEBHOOK) as st:
            # the team declares its counters as the catalog's metrics
            document = catalog_document(st.prices)
            document["metrics"] = {
                name: {}
                for name in (
                    "tokens_issued",
                    "agents_registered",
                    "credentials_generated",
                    "api_calls_total",
                )
            }
            admin = st.bearer(await st.console_admin())
            loaded = await st.http.put(
                f"/api/v1/projects/{st.project_id}/catalog", json=document, headers=admin
            )
            assert loaded.status_code == 200, loaded.text

            organization = str(uuid.uuid4())
            token = st.token("user-gus", organization=organization)
            quiet = await st.http.get(USAGE, headers=st.bearer(token))
            assert quiet.status_code == 200, quiet.text
            assert_conforms(quiet.json(), "UsageSummary")
            assert (quiet.json()["tokensIssued"], quiet.json()["agentsRegistered"]) == (0, 0)

            recorded = await st.http.post(
                "/api/v1/usage/events",
                json={
                    "events": [
                        {"id": "t1", "metric": "tokens_issued", "value": 4200},
                        {"id": "t2", "metric": "tokens_issued"},
                        {"id": "a1", "metric": "agents_registered", "value": 3},
                        {"id": "c1", "metric": "credentials_generated", "value": 5},
                        {"id": "x1", "metric": "api_calls_total", "value": 12450},
                    ]
                },
                headers=st.bearer(token),
            )
            assert recorded.status_code == 202, recorded.text
            assert recorded.json()["accepted"] == 5

            today = await st.http.get(USAGE, headers=st.bearer(token))
            assert today.status_code == 200, today.text
            body = today.json()
            assert_conforms(body, "UsageSummary")
            assert body["organizationId"] == organization
            assert body["date"] == datetime.now(UTC).date().isoformat()
            assert (
                body["tokensIssued"],
                body["agentsRegistered"],
                body["credentialsGenerated"],
                body["apiCallsTotal"],
            ) == (4201, 3, 5, 12450)
            # another organization's day is its own
            other = await st.http.get(
                USAGE, headers=st.bearer(st.token("user-gus", organization=str(uuid.uuid4())))
            )
            assert other.json()["tokensIssued"] == 0
