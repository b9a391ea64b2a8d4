"""What projects accept, over HTTP: a value with a trailing newline is not a slug or a Stripe key
(Python's `$` also matches before a final "\\n"), a refused value writes nothing, and
/openapi.json documents the rules the service applies."""

from __future__ import annotations

from typing import Annotated, Any

import httpx
import pytest
from pydantic import StringConstraints, TypeAdapter, ValidationError
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from billwarden.identity.models import User
from billwarden.projects.models import Project, StripeConfig
from billwarden.projects.schemas import ProjectCreate, ProjectUpdate
from tests.identity.factories import People
from tests.projects.factories import ProjectWithSecret, Tenants

PROJECTS = "/api/v1/projects"
NEWLINES = pytest.mark.parametrize("newline", ["\n", "\r\n"], ids=["lf", "crlf"])


async def slugs(session: AsyncSession) -> list[str]:
    return list((await session.scalars(select(Project.slug).order_by(Project.slug))).all())


@pytest.fixture
async def owner(people: People) -> User:
    return await people.user()


class TestSlugWithTrailingNewline:
    @NEWLINES
    async def test_create_is_refused_and_makes_no_near_duplicate(
        self,
        client: httpx.AsyncClient,
        people: People,
        owner: User,
        session: AsyncSession,
        newline: str,
    ) -> None:
        headers = people.bearer(owner)
        first = await client.post(PROJECTS, json={"name": "Main", "slug": "main"}, headers=headers)
        assert first.status_code == 201, first.text
        response = await client.post(
            PROJECTS, json={"name": "Main again", "slug": f"main{newline}"}, headers=headers
        )
        assert response.status_code == 400, response.text
        assert response.json()["code"] == "VALIDATION_ERROR"
        assert await slugs(session) == ["main"]

    @NEWLINES
    async def test_patch_is_refused_and_keeps_the_slug(
        self,
        client: httpx.AsyncClient,
        people: People,
        tenants: Tenants,
        owner: User,
        session: AsyncSession,
        newline: str,
    ) -> None:
        main = await tenants.project(owner, "Main")
        other = await tenants.project(owner, "Other")
        response = await client.patch(
            f"{PROJECTS}/{other.id}", json={"slug": f"main{newline}"}, headers=people.bearer(owner)
        )
        assert response.status_code == 400, response.text
        assert response.json()["code"] == "VALIDATION_ERROR"
        assert main.project.slug == "main"
        assert await slugs(session) == ["main", "other"]


SECRET_KEYS = {"test": "sk_test_51Validation0000abcd", "live": "sk_live_51Validation0000abcd"}
PUBLISHABLE_KEYS = {"test": "pk_test_51Validation0000", "live": "pk_live_51Validation0000"}
WEBHOOK_SECRET = "whsec_validation0000000001"


def config_url(project: ProjectWithSecret, mode: str) -> str:
    test_mode = "true" if mode == "test" else "false"
    return f"/api/v1/payments/stripe/projects/{project.id}/config?test_mode={test_mode}"


class TestStripeKeyWithTrailingNewline:
    @NEWLINES
    @pytest.mark.parametrize(
        ("mode", "field", "value"),
        [
            ("test", "secretKey", "sk_test_51Newline0000abcd"),
            ("test", "secretKey", "rk_test_51Newline0000abcd"),
            ("live", "secretKey", "sk_live_51Newline0000abcd"),
            ("live", "secretKey", "rk_live_51Newline0000abcd"),
            ("test", "publishableKey", "pk_test_51Newline0000"),
            ("live", "publishableKey", "pk_live_51Newline0000"),
            ("test", "webhookSecrets", "whsec_newline0000000001"),
            ("live", "webhookSecrets", "whsec_newline0000000001"),
        ],
    )
    async def test_refused_and_the_configuration_is_unchanged(
        self,
        client: httpx.AsyncClient,
        people: People,
        tenants: Tenants,
        owner: User,
        session: AsyncSession,
        mode: str,
        field: str,
        value: str,
        newline: str,
    ) -> None:
        project = await tenants.project(owner)
        headers = people.bearer(owner)
        url = config_url(project, mode)
        stored = await client.put(
            url,
            headers=headers,
            json={
                "secretKey": SECRET_KEYS[mode],
                "publishableKey": PUBLISHABLE_KEYS[mode],
                "webhookSecrets": [WEBHOOK_SECRET],
            },
        )
        assert stored.status_code == 200, stored.text
        # the same value without the newline is accepted: only the newline is refused
        assert (await client.put(url, headers=headers, json=_body(field, value))).is_success
        before = await client.get(url, headers=headers)

        response = await client.put(url, headers=headers, json=_body(field, value + newline))
        assert response.status_code == 400, response.text
        assert response.json()["code"] == "INVALID_STRIPE_KEY"
        assert response.json()["details"]["field"] == field
        assert (await client.get(url, headers=headers)).json() == before.json()
        versions = await session.scalar(
            select(func.count(StripeConfig.id)).where(StripeConfig.project_id == project.id)
        )
        assert versions == 2  # the first PUT and the accepted one; none for the refused


def _body(field: str, value: str) -> dict[str, Any]:
    return {field: [WEBHOOK_SECRET, value] if field == "webhookSecrets" else value}


def documented_pattern_accepts(pattern: str, value: str) -> bool:
    """Whether a client checking `value` against a documented pattern accepts it. pydantic-core
    evaluates patterns with Rust's regex, which searches and whose `$` is the end of the text,
    as JSON Schema's ECMA-262 patterns do (Python's `$` would also match before a final "\\n")."""
    try:
        TypeAdapter(Annotated[str, StringConstraints(pattern=pattern)]).validate_python(value)
    except ValidationError:
        return False
    return True


def string_branch(schema: dict[str, Any]) -> dict[str, Any]:
    """The string alternative of an optional field's `anyOf`."""
    (branch,) = [option for option in schema["anyOf"] if option.get("type") in {"string", "array"}]
    return branch


@pytest.fixture
async def openapi(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    schemas: dict[str, Any] = response.json()["components"]["schemas"]
    return schemas


class TestOpenApiDocumentsTheSlugRule:
    @pytest.mark.parametrize("model", ["ProjectCreate", "ProjectUpdate"])
    async def test_slug_pattern_is_documented_and_full(
        self, openapi: dict[str, Any], model: str
    ) -> None:
        slug = string_branch(openapi[model]["properties"]["slug"])
        pattern = slug["pattern"]
        assert (slug["minLength"], slug["maxLength"]) == (1, 100)
        for good in ("main", "a", "acme-inc-2", "a" * 100):
            assert documented_pattern_accepts(pattern, good), good
        for bad in ("main\n", "main\r\n", "\nmain", "Main", "-main", "main-", "a b", "main!"):
            assert not documented_pattern_accepts(pattern, bad), bad

    @pytest.mark.parametrize("model", [ProjectCreate, ProjectUpdate])
    def test_the_schema_itself_refuses_a_trailing_newline(
        self, model: type[ProjectCreate] | type[ProjectUpdate]
    ) -> None:
        with pytest.raises(ValidationError) as refused:
            model.model_validate({"name": "Main", "slug": "main\n"})
        assert [error["loc"] for error in refused.value.errors()] == [("slug",)]

    async def test_a_refused_slug_names_the_field_like_any_schema_refusal(
        self, client: httpx.AsyncClient, people: People, owner: User
    ) -> None:
        response = await client.post(
            PROJECTS, json={"name": "Main", "slug": "Not A Slug"}, headers=people.bearer(owner)
        )
        assert response.status_code == 400
        assert response.json()["code"] == "VALIDATION_ERROR"
        assert [field["field"] for field in response.json()["details"]["fields"]] == ["slug"]


class TestOpenApiDocumentsTheStripeKeyShapes:
    @pytest.mark.parametrize(
        ("field", "good", "bad"),
        [
            (
                "secretKey",
                ["sk_test_abc123", "rk_test_abc123", "sk_live_abc123", "rk_live_abc123"],
                [
                    "sk_test_abc123\n",
                    "pk_test_abc123",
                    "sk_prod_abc123",
                    "sk_test_ab c",
                    "sk_test_",
                ],
            ),
            (
                "publishableKey",
                ["pk_test_abc123", "pk_live_abc123"],
                ["pk_test_abc123\n", "sk_test_abc123", "pk_test_"],
            ),
            (
                "webhookSecrets",
                ["whsec_abc123", "whsec_ab+/c=="],
                ["whsec_abc123\n", "whsec_", "wh_abc123", "whsec_ab c"],
            ),
        ],
    )
    async def test_documented_pattern_matches_what_the_service_takes(
        self,
        openapi: dict[str, Any],
        client: httpx.AsyncClient,
        people: People,
        tenants: Tenants,
        owner: User,
        field: str,
        good: list[str],
        bad: list[str],
    ) -> None:
        documented = string_branch(openapi["StripeConfigUpdate"]["properties"][field])
        pattern = (documented["items"] if field == "webhookSecrets" else documented)["pattern"]
        project = await tenants.project(owner)
        headers = people.bearer(owner)
        for value in [*good, *bad]:
            mode = "live" if "_live_" in value else "test"
            body = {"secretKey": SECRET_KEYS[mode], **_body(field, value)}
            if field == "secretKey":
                body = {"secretKey": value}
            answer = await client.put(config_url(project, mode), headers=headers, json=body)
            assert answer.is_success is (value in good), (value, answer.text)
            assert documented_pattern_accepts(pattern, value) is (value in good), value


# the body a caller sends, and whether the document says exactly one of its branches holds
ACCEPT_BODIES: list[tuple[dict[str, Any], bool]] = [
    ({"token": "TOKEN"}, True),
    ({"invitationId": "INVITATION_ID"}, True),
    ({"token": "TOKEN", "invitationId": None}, True),
    ({"token": None, "invitationId": "INVITATION_ID"}, True),
    ({"token": "TOKEN", "invitationId": "INVITATION_ID"}, False),
    ({}, False),
    ({"role": "admin"}, False),
    ({"token": None, "invitationId": None}, False),
]


def _json_type(value: object) -> str:
    return "null" if value is None else "string" if isinstance(value, str) else "other"


def satisfies(branch: dict[str, Any], body: dict[str, Any]) -> bool:
    """The subset of JSON Schema the branches use: `required` and per-property `type`."""
    return all(name in body for name in branch.get("required", [])) and all(
        name not in body or _json_type(body[name]) == rule["type"]
        for name, rule in branch.get("properties", {}).items()
    )


class TestOpenApiDocumentsOneInvitationReference:
    async def test_exactly_one_of_token_or_invitation_id(self, openapi: dict[str, Any]) -> None:
        branches = openapi["InvitationAccept"]["oneOf"]
        assert sorted(tuple(branch["required"]) for branch in branches) == [
            ("invitationId",),
            ("token",),
        ]

    @pytest.mark.parametrize(("body", "one_branch_holds"), ACCEPT_BODIES)
    async def test_the_document_and_the_service_agree(
        self,
        openapi: dict[str, Any],
        client: httpx.AsyncClient,
        people: People,
        tenants: Tenants,
        owner: User,
        body: dict[str, Any],
        one_branch_holds: bool,
    ) -> None:
        bob = await people.user("bob@example.test")
        project = await tenants.project(owner)
        created = await tenants.invite(project, bob.email)
        values = {"TOKEN": created.token, "INVITATION_ID": str(created.invitation.id)}
        sent = {key: values.get(value, value) for key, value in body.items()}
        held = [satisfies(branch, sent) for branch in openapi["InvitationAccept"]["oneOf"]]
        assert (held.count(True) == 1) is one_branch_holds
        response = await client.post(
            "/api/v1/invitations/accept", json=sent, headers=people.bearer(bob)
        )
        if one_branch_holds:
            assert response.status_code == 200, response.text
            assert response.json()["id"] == str(project.id)
        else:
            assert response.status_code == 400, response.text
            assert response.json()["code"] == "VALIDATION_ERROR"
