"""Projects, members and roles over HTTP: who may see and change what."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import jwt
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from billwarden.db.base import utcnow
from billwarden.identity.models import User
from billwarden.identity.tokens import DeveloperTokens
from billwarden.projects.models import EndUserSecret, Project, ProjectRole
from billwarden.projects.repository import (
    EndUserSecretRepository,
    InvitationRepository,
    ProjectMemberRepository,
    ProjectRepository,
)
from billwarden.projects.service import EndUserSecretService
from tests.concurrency import Rendezvous
from tests.conftest import Scratch
from tests.factories import Factories
from tests.identity.factories import People
from tests.probes import END_USER_PROBE, install_probes
from tests.projects.factories import Tenants

PROJECTS = "/api/v1/projects"
ACCEPT = "/api/v1/invitations/accept"


class TestProjects:
    async def test_creator_becomes_owner_and_gets_the_end_user_secret_once(
        self,
        client: httpx.AsyncClient,
        people: People,
    ) -> None:
        alice = await people.user()
        headers = people.bearer(alice)
        created = await client.post(PROJECTS, json={"name": "Acme Inc"}, headers=headers)
        assert created.status_code == 201
        body = created.json()
        assert body["slug"] == "acme-inc" and body["role"] == "owner"
        assert len(body["endUserSecret"]) >= 43
        shown = await client.get(f"{PROJECTS}/{body['id']}", headers=headers)
        assert shown.status_code == 200 and "endUserSecret" not in shown.json()
        assert shown.json()["createdAt"] and shown.json()["role"] == "owner"

    async def test_list_shows_only_my_projects_and_superusers_see_all(
        self,
        client: httpx.AsyncClient,
        people: People,
        tenants: Tenants,
    ) -> None:
        alice, bob = await people.user(), await people.user()
        root = await people.user(superuser=True)
        mine = await tenants.project(alice)
        await tenants.project(bob)
        listed = await client.get(PROJECTS, headers=people.bearer(alice))
        assert listed.status_code == 200
        assert [item["id"] for item in listed.json()["items"]] == [str(mine.id)]
        assert listed.json()["total"] == 1
        everything = await client.get(PROJECTS, headers=people.bearer(root))
        assert everything.json()["total"] == 2
        assert {item["role"] for item in everything.json()["items"]} == {None}

    async def test_list_is_paginated(
        self, client: httpx.AsyncClient, people: People, tenants: Tenants
    ) -> None:
        alice = await people.user()
        ids = [str((await tenants.project(alice)).id) for _ in range(3)]
        first = await client.get(PROJECTS, params={"limit": 2}, headers=people.bearer(alice))
        second = await client.get(
            PROJECTS, params={"limit": 2, "offset": 2}, headers=people.bearer(alice)
        )
        assert first.json()["total"] == 3 and len(first.json()["items"]) == 2
        seen = [item["id"] for item in first.json()["items"] + second.json()["items"]]
        assert seen == ids
        bad = await client.get(PROJECTS, params={"limit": 0}, headers=people.bearer(alice))
        assert bad.status_code == 400
        assert bad.json()["code"] == "VALIDATION_ERROR"

    @pytest.mark.parametrize(
        "params",
        [
            {"offset": "9223372036854775808"},
            {"offset": "9223372036854775807"},
            {"offset": str(10**30)},
            {"offset": "1000001"},
            {"limit": "9223372036854775808"},
            {"offset": "-1"},
        ],
    )
    async def test_out_of_range_paging_is_400(
        self, client: httpx.AsyncClient, people: People, tenants: Tenants, params: dict[str, str]
    ) -> None:
        alice = await people.user()
        project = await tenants.project(alice)
        headers = people.bearer(alice)
        for url in (PROJECTS, f"{PROJECTS}/{project.id}/members", "/api-dashboard/keys"):
            response = await client.get(url, params=params, headers=headers)
            assert response.status_code == 400, (url, response.text)
            assert response.json()["code"] == "VALIDATION_ERROR"
        last_page = await client.get(PROJECTS, params={"offset": 1_000_000}, headers=headers)
        assert last_page.status_code == 200 and last_page.json()["items"] == []

    async def test_duplicate_slug_and_empty_name(
        self,
        client: httpx.AsyncClient,
        people: People,
    ) -> None:
        headers = people.bearer(await people.user())
        assert (await client.post(PROJECTS, json={"name": "Acme"}, headers=headers)).is_success
        again = await client.post(PROJECTS, json={"name": "ACME"}, headers=headers)
        assert again.status_code == 409 and again.json()["code"] == "PROJECT_SLUG_TAKEN"
        empty = await client.post(PROJECTS, json={"name": " "}, headers=headers)
        assert empty.status_code == 400
        assert empty.json()["code"] == "VALIDATION_ERROR"

    async def test_admin_renames_member_cannot(
        self,
        client: httpx.AsyncClient,
        people: People,
        tenants: Tenants,
    ) -> None:
        owner, member = await people.user(), await people.user()
        project = await tenants.project(owner)
        await tenants.add_member(project, member, ProjectRole.MEMBER)
        url = f"{PROJECTS}/{project.id}"
        refused = await client.patch(url, json={"name": "Mine"}, headers=people.bearer(member))
        assert refused.status_code == 403
        assert refused.json()["code"] == "PROJECT_ADMIN_REQUIRED"
        renamed = await client.patch(
            url, json={"name": "Renamed", "slug": "renamed"}, headers=people.bearer(owner)
        )
        assert renamed.status_code == 200
        assert (renamed.json()["name"], renamed.json()["slug"]) == ("Renamed", "renamed")
        bad_slug = await client.patch(
            url, json={"slug": "Not A Slug"}, headers=people.bearer(owner)
        )
        assert bad_slug.status_code == 400
        assert bad_slug.json()["code"] == "VALIDATION_ERROR"

    async def test_other_projects_are_404_for_every_route(
        self,
        client: httpx.AsyncClient,
        people: People,
        tenants: Tenants,
    ) -> None:
        owner, outsider = await people.user(), await people.user()
        project = await tenants.project(owner)
        await tenants.project(outsider)  # an admin, but of another project
        headers = people.bearer(outsider)
        base = f"{PROJECTS}/{project.id}"
        attempts = [
            await client.get(base, headers=headers),
            await client.patch(base, json={"name": "pwned"}, headers=headers),
            await client.get(f"{base}/members", headers=headers),
            await client.post(f"{base}/members", json={"email": outsider.email}, headers=headers),
            await client.get(f"{base}/invitations", headers=headers),
            await client.delete(f"{base}/invitations/{uuid.uuid4()}", headers=headers),
            await client.delete(f"{base}/members/{owner.id}", headers=headers),
            await client.post(f"{base}/end-user-secret/rotate", headers=headers),
        ]
        for response in attempts:
            assert response.status_code == 404, response.request.url
            assert response.json()["code"] == "PROJECT_NOT_FOUND"
        missing = await client.get(f"{PROJECTS}/{uuid.uuid4()}", headers=headers)
        assert missing.status_code == 404
        assert missing.json()["code"] == "PROJECT_NOT_FOUND"

    async def test_member_cannot_rotate_the_end_user_secret(
        self,
        client: httpx.AsyncClient,
        people: People,
        tenants: Tenants,
    ) -> None:
        owner, member = await people.user(), await people.user()
        project = await tenants.project(owner)
        await tenants.add_member(project, member, ProjectRole.MEMBER)
        response = await client.post(
            f"{PROJECTS}/{project.id}/end-user-secret/rotate", headers=people.bearer(member)
        )
        assert response.status_code == 403
        assert response.json()["code"] == "PROJECT_ADMIN_REQUIRED"


class TestMembers:
    async def test_admin_invites_then_lists_changes_and_removes_members(
        self,
        client: httpx.AsyncClient,
        people: People,
        tenants: Tenants,
    ) -> None:
        owner = await people.user("owner@example.test")
        bob = await people.user("bob@example.test")
        project = await tenants.project(owner)
        headers = people.bearer(owner)
        members = f"{PROJECTS}/{project.id}/members"

        invited = await client.post(members, json={"email": "Bob@example.test"}, headers=headers)
        assert invited.status_code == 201
        assert invited.json()["role"] == "member" and invited.json()["status"] == "pending"
        # nothing granted until bob accepts
        hidden = await client.get(f"{PROJECTS}/{project.id}", headers=people.bearer(bob))
        assert hidden.status_code == 404 and hidden.json()["code"] == "PROJECT_NOT_FOUND"
        accepted = await client.post(
            ACCEPT, json={"token": invited.json()["token"]}, headers=people.bearer(bob)
        )
        assert accepted.status_code == 200 and accepted.json()["role"] == "member"
        assert (await client.get(f"{PROJECTS}/{project.id}", headers=people.bearer(bob))).is_success
        again = await client.post(members, json={"email": bob.email}, headers=headers)
        assert again.status_code == 409
        assert again.json()["code"] == "ALREADY_MEMBER"

        promoted = await client.patch(
            f"{members}/{bob.id}", json={"role": "admin"}, headers=headers
        )
        assert promoted.status_code == 200 and promoted.json()["role"] == "admin"
        listed = await client.get(members, headers=headers)
        assert {(m["email"], m["role"]) for m in listed.json()["items"]} == {
            ("owner@example.test", "owner"),
            ("bob@example.test", "admin"),
        }
        removed = await client.delete(f"{members}/{bob.id}", headers=headers)
        assert removed.status_code == 204
        gone = await client.get(f"{PROJECTS}/{project.id}", headers=people.bearer(bob))
        assert gone.status_code == 404
        assert gone.json()["code"] == "PROJECT_NOT_FOUND"

    @pytest.mark.parametrize(
        "body",
        [
            {"role": "admin"},
            {"email": "x@example.test", "role": "god"},
            {"userId": str(uuid.uuid4())},
            {"email": "not an address"},
            {"email": ""},
        ],
    )
    async def test_a_bad_invitation_body_is_400(
        self, client: httpx.AsyncClient, people: People, tenants: Tenants, body: dict[str, str]
    ) -> None:
        owner = await people.user()
        project = await tenants.project(owner)
        refused = await client.post(
            f"{PROJECTS}/{project.id}/members", json=body, headers=people.bearer(owner)
        )
        assert refused.status_code == 400
        assert refused.json()["code"] == "VALIDATION_ERROR"

    async def test_member_cannot_manage_members(
        self,
        client: httpx.AsyncClient,
        people: People,
        tenants: Tenants,
    ) -> None:
        owner, member, newcomer = await people.user(), await people.user(), await people.user()
        project = await tenants.project(owner)
        await tenants.add_member(project, member, ProjectRole.MEMBER)
        members = f"{PROJECTS}/{project.id}/members"
        headers = people.bearer(member)
        for response in (
            await client.get(members, headers=headers),
            await client.post(members, json={"email": newcomer.email}, headers=headers),
            await client.patch(f"{members}/{member.id}", json={"role": "owner"}, headers=headers),
            await client.delete(f"{members}/{owner.id}", headers=headers),
        ):
            assert response.status_code == 403
            assert response.json()["code"] == "PROJECT_ADMIN_REQUIRED"

    async def test_last_owner_cannot_leave_or_be_demoted(
        self,
        client: httpx.AsyncClient,
        people: People,
        tenants: Tenants,
    ) -> None:
        owner = await people.user()
        project = await tenants.project(owner)
        members = f"{PROJECTS}/{project.id}/members"
        headers = people.bearer(owner)
        demoted = await client.patch(
            f"{members}/{owner.id}", json={"role": "admin"}, headers=headers
        )
        assert demoted.status_code == 409 and demoted.json()["code"] == "LAST_OWNER"
        removed = await client.delete(f"{members}/{owner.id}", headers=headers)
        assert removed.status_code == 409
        assert removed.json()["code"] == "LAST_OWNER"
        # with a second owner, the first may step down
        second = await people.user()
        await tenants.add_member(project, second, ProjectRole.OWNER)
        stepped_down = await client.patch(
            f"{members}/{owner.id}", json={"role": "member"}, headers=headers
        )
        assert stepped_down.status_code == 200

    async def test_admin_cannot_touch_owners(
        self,
        client: httpx.AsyncClient,
        people: People,
        tenants: Tenants,
    ) -> None:
        owner, admin, other = await people.user(), await people.user(), await people.user()
        project = await tenants.project(owner)
        await tenants.add_member(project, admin, ProjectRole.ADMIN)
        await tenants.add_member(project, other, ProjectRole.MEMBER)
        members = f"{PROJECTS}/{project.id}/members"
        headers = people.bearer(admin)
        make_owner = await client.patch(
            f"{members}/{other.id}", json={"role": "owner"}, headers=headers
        )
        assert make_owner.status_code == 403
        assert make_owner.json()["code"] == "PROJECT_OWNER_REQUIRED"
        remove_owner = await client.delete(f"{members}/{owner.id}", headers=headers)
        assert remove_owner.status_code == 403
        assert remove_owner.json()["code"] == "PROJECT_OWNER_REQUIRED"
        promote = await client.patch(
            f"{members}/{other.id}", json={"role": "admin"}, headers=headers
        )
        assert promote.status_code == 200

    async def test_superuser_administers_any_project(
        self,
        client: httpx.AsyncClient,
        people: People,
        tenants: Tenants,
    ) -> None:
        owner, root = await people.user(), await people.user(superuser=True)
        project = await tenants.project(owner)
        listed = await client.get(f"{PROJECTS}/{project.id}/members", headers=people.bearer(root))
        assert listed.status_code == 200 and listed.json()["total"] == 1


def _end_user_token(secret: str, project_id: uuid.UUID) -> dict[str, str]:
    claims = {
        "sub": "user-42",
        "project_id": str(project_id),
        "exp": datetime.now(UTC) + timedelta(minutes=5),
    }
    return {"Authorization": f"Bearer {jwt.encode(claims, secret, algorithm='HS256')}"}


@pytest.fixture
def probe(app: FastAPI) -> None:
    install_probes(app)


@pytest.mark.usefixtures("probe")
class TestEndUserSecretRotation:
    async def test_only_the_current_and_the_previous_secret_verify(
        self, client: httpx.AsyncClient, people: People, tenants: Tenants, session: AsyncSession
    ) -> None:
        owner = await people.user()
        project = await tenants.project(owner)
        issued = [project.end_user_secret]
        for _ in range(5):
            rotated = await client.post(
                f"{PROJECTS}/{project.id}/end-user-secret/rotate", headers=people.bearer(owner)
            )
            assert rotated.status_code == 200, rotated.text
            assert rotated.json()["previousSecretExpiresAt"]
            issued.append(rotated.json()["endUserSecret"])
        *older, previous, current = issued

        for secret in (current, previous):
            accepted = await client.get(END_USER_PROBE, headers=_end_user_token(secret, project.id))
            assert accepted.status_code == 200, accepted.text
        for secret in older:
            refused = await client.get(END_USER_PROBE, headers=_end_user_token(secret, project.id))
            assert refused.status_code == 401, refused.text
            assert refused.json()["code"] == "UNAUTHENTICATED"
        live = await EndUserSecretRepository(session).list_live(project.id, utcnow())
        assert len(live) == 2
        assert live[0].expires_at is None  # the current one first

    async def test_the_previous_secret_keeps_its_overlap_and_older_ones_stay_as_history(
        self, client: httpx.AsyncClient, people: People, tenants: Tenants, session: AsyncSession
    ) -> None:
        owner = await people.user()
        project = await tenants.project(owner)
        url = f"{PROJECTS}/{project.id}/end-user-secret/rotate"
        for _ in range(3):
            rotated = await client.post(url, headers=people.bearer(owner))
            assert rotated.status_code == 200, rotated.text
        previous_until = datetime.fromisoformat(rotated.json()["previousSecretExpiresAt"])
        overlap = timedelta(seconds=tenants.settings.end_user_secret_overlap_seconds)
        assert abs(previous_until - (utcnow() + overlap)) < timedelta(minutes=1)
        rows = (
            await session.scalars(
                select(EndUserSecret).where(EndUserSecret.project_id == project.id)
            )
        ).all()
        assert len(rows) == 4  # every secret is kept; the two oldest no longer verify
        expired = [row for row in rows if row.expires_at is not None and row.expires_at <= utcnow()]
        assert len(expired) == 2


def _bearer(scratch: Scratch, user: User) -> dict[str, str]:
    token = DeveloperTokens.from_settings(scratch.settings).issue(user.id, user.password_changed_at)
    return {"Authorization": f"Bearer {token}"}


async def _owner_with_project(scratch: Scratch) -> tuple[User, Project]:
    async def build(made: Factories) -> tuple[User, Project]:
        owner = await made.people.user()
        return owner, (await made.tenants.project(owner)).project

    result: tuple[User, Project] = await scratch.setup(build)
    return result


class TestConcurrentWrites:
    """Two requests at once, on a database of their own; a rendezvous makes both pass every
    check before either writes, so without the fix the race happens on every run."""

    async def test_two_creates_with_one_slug_one_wins(
        self, scratch: Scratch, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        alice: User = await scratch.setup(lambda made: made.people.user())
        Rendezvous(2).after(monkeypatch, ProjectRepository, "get_by_slug")
        responses = await asyncio.gather(
            *(
                scratch.client.post(
                    PROJECTS, json={"name": "Acme", "slug": "acme"}, headers=_bearer(scratch, alice)
                )
                for _ in range(2)
            )
        )
        assert sorted(response.status_code for response in responses) == [201, 409]
        (refused,) = [response for response in responses if response.status_code == 409]
        assert refused.json()["code"] == "PROJECT_SLUG_TAKEN"

    async def test_two_renames_to_one_slug_one_wins(
        self, scratch: Scratch, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        owner, first = await _owner_with_project(scratch)
        second = await scratch.setup(lambda made: made.tenants.project(owner))
        Rendezvous(2).after(
            monkeypatch, ProjectRepository, "get_by_slug", lambda slug: slug == "shared"
        )
        responses = await asyncio.gather(
            *(
                scratch.client.patch(
                    f"{PROJECTS}/{project_id}",
                    json={"slug": "shared"},
                    headers=_bearer(scratch, owner),
                )
                for project_id in (first.id, second.id)
            )
        )
        assert sorted(response.status_code for response in responses) == [200, 409]
        (refused,) = [response for response in responses if response.status_code == 409]
        assert refused.json()["code"] == "PROJECT_SLUG_TAKEN"

    async def test_two_acceptances_of_one_invitation_one_wins(
        self, scratch: Scratch, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        owner, project = await _owner_with_project(scratch)

        async def build(made: Factories) -> tuple[User, str]:
            bob = await made.people.user()
            created = await made.tenants.invite(project, bob.email, invited_by=owner)
            return bob, created.token

        bob, token = await scratch.setup(build)
        Rendezvous(2).after(monkeypatch, InvitationRepository, "get_by_hashes")
        responses = await asyncio.gather(
            *(
                scratch.client.post(ACCEPT, json={"token": token}, headers=_bearer(scratch, bob))
                for _ in range(2)
            )
        )
        assert sorted(response.status_code for response in responses) == [200, 410]
        (refused,) = [response for response in responses if response.status_code == 410]
        assert refused.json()["code"] == "INVITATION_NO_LONGER_VALID"
        async with scratch.session() as session:
            membership = await ProjectMemberRepository(session).get_membership(project.id, bob.id)
            assert membership is not None and membership.role is ProjectRole.MEMBER

    async def test_two_invitations_of_one_email_at_once_leave_one_outstanding(
        self, scratch: Scratch, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        owner, project = await _owner_with_project(scratch)
        Rendezvous(2).after(monkeypatch, ProjectMemberRepository, "get_by_email")
        responses = await asyncio.gather(
            *(
                scratch.client.post(
                    f"{PROJECTS}/{project.id}/members",
                    json={"email": "carol@example.test", "role": role},
                    headers=_bearer(scratch, owner),
                )
                for role in ("member", "admin")
            )
        )
        assert [response.status_code for response in responses] == [201, 201]
        listed = await scratch.client.get(
            f"{PROJECTS}/{project.id}/invitations", headers=_bearer(scratch, owner)
        )
        assert listed.json()["total"] == 1

    async def test_removing_two_owners_at_once_keeps_one(
        self, scratch: Scratch, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        first, project = await _owner_with_project(scratch)

        async def build(made: Factories) -> tuple[User, User]:
            second = await made.people.user()
            await made.tenants.add_member(project, second, ProjectRole.OWNER)
            return second, await made.people.user(superuser=True)

        second, root = await scratch.setup(build)
        Rendezvous(2).after(monkeypatch, ProjectMemberRepository, "count_owners")
        responses = await asyncio.gather(
            *(
                scratch.client.delete(
                    f"{PROJECTS}/{project.id}/members/{owner.id}", headers=_bearer(scratch, root)
                )
                for owner in (first, second)
            )
        )
        assert sorted(response.status_code for response in responses) == [204, 409]
        (refused,) = [response for response in responses if response.status_code == 409]
        assert refused.json()["code"] == "LAST_OWNER"
        async with scratch.session() as session:
            assert await ProjectMemberRepository(session).count_owners(project.id) == 1

    async def test_two_rotations_at_once_leave_one_current_secret(
        self, scratch: Scratch, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        owner, project = await _owner_with_project(scratch)
        Rendezvous(2).after(monkeypatch, EndUserSecretRepository, "get_current")
        url = f"{PROJECTS}/{project.id}/end-user-secret/rotate"
        responses = await asyncio.gather(
            *(scratch.client.post(url, headers=_bearer(scratch, owner)) for _ in range(2))
        )
        assert [response.status_code for response in responses] == [200, 200], [
            response.text for response in responses
        ]
        async with scratch.session() as session:
            current = await session.scalar(
                select(func.count(EndUserSecret.id)).where(
                    EndUserSecret.project_id == project.id, EndUserSecret.expires_at.is_(None)
                )
            )
            assert current == 1
            live = await EndUserSecretService(session, scratch.secret_box).live_secrets(project.id)
        # whichever rotation came last holds the current secret
        assert live[0] in {response.json()["endUserSecret"] for response in responses}
