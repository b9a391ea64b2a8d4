"""Credentials and headers with a trailing newline (Python's `$` also matches before a final
"\\n"): an email is trimmed to the same person, never a near-duplicate; an API key with a newline
is refused by its shape (over HTTP the header's surrounding whitespace is trimmed, leaving the key
itself). An X-Request-ID with a newline is tested in tests/core/test_service_routes.py."""

from __future__ import annotations

from collections.abc import Sequence

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from billwarden.crypto import SecretBox
from billwarden.identity.exceptions import Unauthenticated, UserExists
from billwarden.identity.models import ApiKey, User
from billwarden.identity.repository import ApiKeyRepository
from billwarden.identity.service import ApiKeyService
from billwarden.projects.models import ProjectMember
from tests.identity.factories import PASSWORD, People
from tests.probes import PROJECT_KEY_PROBE, install_probes
from tests.projects.factories import Tenants

NEWLINES = pytest.mark.parametrize("newline", ["\n", "\r\n"], ids=["lf", "crlf"])


async def user_count(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count(User.id))) or 0)


class TestEmailWithTrailingNewline:
    """Emails are trimmed and lower-cased before they are checked or looked up, so a newline at
    either end names the same console user."""

    @NEWLINES
    async def test_creating_it_again_is_the_same_user(
        self, people: People, session: AsyncSession, newline: str
    ) -> None:
        await people.user("bob@example.test")
        with pytest.raises(UserExists):
            await people.user(f"bob@example.test{newline}")
        assert await user_count(session) == 1

    @NEWLINES
    async def test_created_with_one_it_is_stored_without(
        self, people: People, newline: str
    ) -> None:
        user = await people.user(f"Carol@Example.test{newline}")
        assert user.email == "carol@example.test"

    @NEWLINES
    async def test_sign_in_reaches_the_same_account(
        self, client: httpx.AsyncClient, people: People, newline: str
    ) -> None:
        alice = await people.user("alice@example.test")
        response = await client.post(
            "/api/v1/auth/login",
            json={"email": f"alice@example.test{newline}", "password": PASSWORD},
        )
        assert response.status_code == 200, response.text
        assert response.json()["user"]["id"] == str(alice.id)

    @NEWLINES
    async def test_member_added_by_it_is_the_same_user(
        self,
        client: httpx.AsyncClient,
        people: People,
        tenants: Tenants,
        session: AsyncSession,
        newline: str,
    ) -> None:
        owner, bob = await people.user(), await people.user("bob@example.test")
        project = await tenants.project(owner)
        response = await client.post(
            f"/api/v1/projects/{project.id}/members",
            json={"email": f"bob@example.test{newline}"},
            headers=people.bearer(owner),
        )
        assert response.status_code == 201, response.text
        assert response.json()["email"] == "bob@example.test"
        accepted = await client.post(
            "/api/v1/invitations/accept",
            json={"token": response.json()["token"]},
            headers=people.bearer(bob),
        )
        assert accepted.status_code == 200, accepted.text
        assert await user_count(session) == 2

    @NEWLINES
    async def test_a_newline_inside_is_refused_and_nobody_is_added(
        self,
        client: httpx.AsyncClient,
        people: People,
        tenants: Tenants,
        session: AsyncSession,
        newline: str,
    ) -> None:
        owner = await people.user()
        await people.user("bob@example.test")
        project = await tenants.project(owner)
        response = await client.post(
            f"/api/v1/projects/{project.id}/members",
            json={"email": f"bob@example.test{newline}evil.test"},
            headers=people.bearer(owner),
        )
        assert response.status_code == 400, response.text
        assert response.json()["code"] == "VALIDATION_ERROR"
        assert response.json()["details"] == {"field": "email"}
        members = await session.scalar(
            select(func.count(ProjectMember.id)).where(ProjectMember.project_id == project.id)
        )
        assert members == 1  # the owner only


@pytest.fixture
def probe(app: FastAPI) -> None:
    install_probes(app)


class TestApiKeyWithTrailingNewline:
    @NEWLINES
    async def test_the_service_refuses_it_by_its_shape_before_any_lookup(
        self,
        people: People,
        tenants: Tenants,
        session: AsyncSession,
        secret_box: SecretBox,
        monkeypatch: pytest.MonkeyPatch,
        newline: str,
    ) -> None:
        owner = await people.user()
        key = await people.api_key(await tenants.project(owner), created_by=owner)
        looked_up: list[Sequence[str]] = []
        lookup = ApiKeyRepository.get_active_by_hashes

        async def recording(self: ApiKeyRepository, hashes: Sequence[str]) -> ApiKey | None:
            looked_up.append(hashes)
            return await lookup(self, hashes)

        monkeypatch.setattr(ApiKeyRepository, "get_active_by_hashes", recording)
        with pytest.raises(Unauthenticated):
            await ApiKeyService(session, secret_box).authenticate(f"{key}{newline}")
        assert looked_up == []
        assert (await ApiKeyService(session, secret_box).authenticate(key)).is_active
        assert len(looked_up) == 1

    @pytest.mark.usefixtures("probe")
    @NEWLINES
    async def test_over_http_the_header_is_trimmed_to_the_key_itself(
        self, client: httpx.AsyncClient, people: People, tenants: Tenants, newline: str
    ) -> None:
        """Whitespace around a header's value is not part of it (RFC 9110; FastAPI's bearer
        parsing trims it, and a real server refuses a bare newline in a header outright): the
        caller who holds the key is the key's project, never another or a malformed key."""
        owner = await people.user()
        project = await tenants.project(owner)
        key = await people.api_key(project, created_by=owner)
        response = await client.get(
            PROJECT_KEY_PROBE, headers={"Authorization": f"Bearer {key}{newline}"}
        )
        assert response.status_code == 200, response.text
        assert response.json()["projectId"] == str(project.id)
        inside = await client.get(
            PROJECT_KEY_PROBE, headers={"Authorization": f"Bearer {key[:12]}{newline}{key[12:]}"}
        )
        assert inside.status_code == 401
        assert inside.json()["code"] == "UNAUTHENTICATED"
