"""Projects, members and roles over HTTP: who may see and change what."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest
from sqlalchemy import func, select

from billwarden.identity.auth import developer_tokens
from billwarden.identity.models import User
from billwarden.projects.models import EndUserSecret, Project, ProjectRole
from billwarden.projects.repository import (
    EndUserSecretRepository,
    ProjectMemberRepository,
    ProjectRepository,
)
from billwarden.projects.service import EndUserSecretService, MembershipService, ProjectAccess
from tests.actors import Actors
from tests.identity.conftest import Rendezvous, Scratch, scratch_fixture  # noqa: F401

PROJECTS = "/api/v1/projects"


class TestProjects:
    async def test_creator_becomes_owner_and_gets_the_end_user_secret_once(
        self, client: httpx.AsyncClient, actors: Actors
    ) -> None:
        alice = await actors.user()
        headers = actors.bearer(alice)
        created = await client.post(PROJECTS, json={"name": "Acme Inc"}, headers=headers)
        assert created.status_code == 201
        body = created.json()
        assert body["slug"] == "acme-inc" and body["role"] == "owner"
        assert len(body["endUserSecret"]) >= 43
        shown = await client.get(f"{PROJECTS}/{body['id']}", headers=headers)
        assert shown.status_code == 200 and "endUserSecret" not in shown.json()
        assert shown.json()["createdAt"] and shown.json()["role"] == "owner"

    async def test_list_shows_only_my_projects_and_superusers_see_all(
        self, client: httpx.AsyncClient, actors: Actors
    ) -> None:
        alice, bob = await actors.user(), await actors.user()
        root = await actors.user(superuser=True)
        mine = await actors.project(alice)
        await actors.project(bob)
        listed = await client.get(PROJECTS, headers=actors.bearer(alice))
        assert listed.status_code == 200
        assert [item["id"] for item in listed.json()["items"]] == [str(mine.id)]
        assert listed.json()["total"] == 1
        everything = await client.get(PROJECTS, headers=actors.bearer(root))
        assert everything.json()["total"] == 2
        assert {item["role"] for item in everything.json()["items"]} == {None}

    async def test_list_is_paginated(self, client: httpx.AsyncClient, actors: Actors) -> None:
        alice = await actors.user()
        ids = [str((await actors.project(alice)).id) for _ in range(3)]
        first = await client.get(PROJECTS, params={"limit": 2}, headers=actors.bearer(alice))
        second = await client.get(
            PROJECTS, params={"limit": 2, "offset": 2}, headers=actors.bearer(alice)
        )
        assert first.json()["total"] == 3 and len(first.json()["items"]) == 2
        seen = [item["id"] for item in first.json()["items"] + second.json()["items"]]
        assert seen == ids
        bad = await client.get(PROJECTS, params={"limit": 0}, headers=actors.bearer(alice))
        assert bad.status_code == 400

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
        self, client: httpx.AsyncClient, actors: Actors, params: dict[str, str]
    ) -> None:
        alice = await actors.user()
        project = await actors.project(alice)
        headers = actors.bearer(alice)
        for url in (PROJECTS, f"{PROJECTS}/{project.id}/members", "/api-dashboard/keys"):
            response = await client.get(url, params=params, headers=headers)
            assert response.status_code == 400, (url, response.text)
            assert response.json()["code"] == "VALIDATION_ERROR"
        last_page = await client.get(PROJECTS, params={"offset": 1_000_000}, headers=headers)
        assert last_page.status_code == 200 and last_page.json()["items"] == []

    async def test_duplicate_slug_and_empty_name(
        self, client: httpx.AsyncClient, actors: Actors
    ) -> None:
        headers = actors.bearer(await actors.user())
        assert (await client.post(PROJECTS, json={"name": "Acme"}, headers=headers)).is_success
        again = await client.post(PROJECTS, json={"name": "ACME"}, headers=headers)
        assert again.status_code == 409 and again.json()["code"] == "PROJECT_SLUG_TAKEN"
        empty = await client.post(PROJECTS, json={"name": " "}, headers=headers)
        assert empty.status_code == 400

    async def test_admin_renames_member_cannot(
        self, client: httpx.AsyncClient, actors: Actors
    ) -> None:
        owner, member = await actors.user(), await actors.user()
        project = await actors.project(owner)
        await actors.add_member(project, member, ProjectRole.MEMBER)
        url = f"{PROJECTS}/{project.id}"
        refused = await client.patch(url, json={"name": "Mine"}, headers=actors.bearer(member))
        assert refused.status_code == 403
        assert refused.json()["code"] == "PROJECT_ADMIN_REQUIRED"
        renamed = await client.patch(
            url, json={"name": "Renamed", "slug": "renamed"}, headers=actors.bearer(owner)
        )
        assert renamed.status_code == 200
        assert (renamed.json()["name"], renamed.json()["slug"]) == ("Renamed", "renamed")
        bad_slug = await client.patch(
            url, json={"slug": "Not A Slug"}, headers=actors.bearer(owner)
        )
        assert bad_slug.status_code == 400

    async def test_other_projects_are_404_for_every_route(
        self, client: httpx.AsyncClient, actors: Actors
    ) -> None:
        owner, outsider = await actors.user(), await actors.user()
        project = await actors.project(owner)
        await actors.project(outsider)  # an admin, but of another project
        headers = actors.bearer(outsider)
        base = f"{PROJECTS}/{project.id}"
        attempts = [
            await client.get(base, headers=headers),
            await client.patch(base, json={"name": "pwned"}, headers=headers),
            await client.get(f"{base}/members", headers=headers),
            await client.post(
                f"{base}/members", json={"userId": str(outsider.id)}, headers=headers
            ),
            await client.delete(f"{base}/members/{owner.id}", headers=headers),
            await client.post(f"{base}/end-user-secret/rotate", headers=headers),
        ]
        for response in attempts:
            assert response.status_code == 404, response.request.url
            assert response.json()["code"] == "PROJECT_NOT_FOUND"
        missing = await client.get(f"{PROJECTS}/{uuid.uuid4()}", headers=headers)
        assert missing.status_code == 404

    async def test_member_cannot_rotate_the_end_user_secret(
        self, client: httpx.AsyncClient, actors: Actors
    ) -> None:
        owner, member = await actors.user(), await actors.user()
        project = await actors.project(owner)
        await actors.add_member(project, member, ProjectRole.MEMBER)
        response = await client.post(
            f"{PROJECTS}/{project.id}/end-user-secret/rotate", headers=actors.bearer(member)
        )
        assert response.status_code == 403


class TestMembers:
    async def test_admin_adds_lists_changes_and_removes_members(
        self, client: httpx.AsyncClient, actors: Actors
    ) -> None:
        owner = await actors.user("owner@example.test")
        bob = await actors.user("bob@example.test")
        project = await actors.project(owner)
        headers = actors.bearer(owner)
        members = f"{PROJECTS}/{project.id}/members"

        added = await client.post(members, json={"email": "Bob@example.test"}, headers=headers)
        assert added.status_code == 201
        assert added.json()["role"] == "member" and added.json()["userId"] == str(bob.id)
        assert (await client.get(f"{PROJECTS}/{project.id}", headers=actors.bearer(bob))).is_success
        again = await client.post(members, json={"userId": str(bob.id)}, headers=headers)
        assert again.status_code == 409

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
        gone = await client.get(f"{PROJECTS}/{project.id}", headers=actors.bearer(bob))
        assert gone.status_code == 404

    async def test_unknown_user_and_bad_body(
        self, client: httpx.AsyncClient, actors: Actors
    ) -> None:
        owner = await actors.user()
        project = await actors.project(owner)
        members = f"{PROJECTS}/{project.id}/members"
        unknown = await client.post(
            members, json={"email": "ghost@example.test"}, headers=actors.bearer(owner)
        )
        assert unknown.status_code == 404 and unknown.json()["code"] == "USER_NOT_FOUND"
        neither = await client.post(members, json={"role": "admin"}, headers=actors.bearer(owner))
        assert neither.status_code == 400
        bad_role = await client.post(
            members, json={"email": "x@example.test", "role": "god"}, headers=actors.bearer(owner)
        )
        assert bad_role.status_code == 400

    async def test_member_cannot_manage_members(
        self, client: httpx.AsyncClient, actors: Actors
    ) -> None:
        owner, member, newcomer = await actors.user(), await actors.user(), await actors.user()
        project = await actors.project(owner)
        await actors.add_member(project, member, ProjectRole.MEMBER)
        members = f"{PROJECTS}/{project.id}/members"
        headers = actors.bearer(member)
        for response in (
            await client.get(members, headers=headers),
            await client.post(members, json={"userId": str(newcomer.id)}, headers=headers),
            await client.patch(f"{members}/{member.id}", json={"role": "owner"}, headers=headers),
            await client.delete(f"{members}/{owner.id}", headers=headers),
        ):
            assert response.status_code == 403
            assert response.json()["code"] == "PROJECT_ADMIN_REQUIRED"

    async def test_last_owner_cannot_leave_or_be_demoted(
        self, client: httpx.AsyncClient, actors: Actors
    ) -> None:
        owner = await actors.user()
        project = await actors.project(owner)
        members = f"{PROJECTS}/{project.id}/members"
        headers = actors.bearer(owner)
        demoted = await client.patch(
            f"{members}/{owner.id}", json={"role": "admin"}, headers=headers
        )
        assert demoted.status_code == 409 and demoted.json()["code"] == "LAST_OWNER"
        removed = await client.delete(f"{members}/{owner.id}", headers=headers)
        assert removed.status_code == 409
        # with a second owner, the first may step down
        second = await actors.user()
        await client.post(
            members, json={"userId": str(second.id), "role": "owner"}, headers=headers
        )
        stepped_down = await client.patch(
            f"{members}/{owner.id}", json={"role": "member"}, headers=headers
        )
        assert stepped_down.status_code == 200

    async def test_admin_cannot_touch_owners(
        self, client: httpx.AsyncClient, actors: Actors
    ) -> None:
        owner, admin, other = await actors.user(), await actors.user(), await actors.user()
        project = await actors.project(owner)
        await actors.add_member(project, admin, ProjectRole.ADMIN)
        await actors.add_member(project, other, ProjectRole.MEMBER)
        members = f"{PROJECTS}/{project.id}/members"
        headers = actors.bearer(admin)
        make_owner = await client.patch(
            f"{members}/{other.id}", json={"role": "owner"}, headers=headers
        )
        assert make_owner.status_code == 403
        assert make_owner.json()["code"] == "PROJECT_OWNER_REQUIRED"
        remove_owner = await client.delete(f"{members}/{owner.id}", headers=headers)
        assert remove_owner.status_code == 403
        promote = await client.patch(
            f"{members}/{other.id}", json={"role": "admin"}, headers=headers
        )
        assert promote.status_code == 200

    async def test_superuser_administers_any_project(
        self, client: httpx.AsyncClient, actors: Actors
    ) -> None:
        owner, root = await actors.user(), await actors.user(superuser=True)
        project = await actors.project(owner)
        listed = await client.get(f"{PROJECTS}/{project.id}/members", headers=actors.bearer(root))
        assert listed.status_code == 200 and listed.json()["total"] == 1


def _bearer(scratch: Scratch, user: User) -> dict[str, str]:
    token = developer_tokens(scratch.settings).issue(user.id, user.password_changed_at)
    return {"Authorization": f"Bearer {token}"}


async def _owner_with_project(scratch: Scratch) -> tuple[User, Project]:
    async def build(actors: Actors) -> tuple[User, Project]:
        owner = await actors.user()
        return owner, (await actors.project(owner)).project

    result: tuple[User, Project] = await scratch.setup(build)
    return result


class TestConcurrentWrites:
    """Two requests at once, on a database of their own; a rendezvous makes both pass every
    check before either writes, so without the fix the race happens on every run."""

    async def test_two_creates_with_one_slug_one_wins(
        self, scratch: Scratch, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        alice: User = await scratch.setup(lambda actors: actors.user())
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
        second = await scratch.setup(lambda actors: actors.project(owner))
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

    async def test_two_adds_of_one_user_one_wins(
        self, scratch: Scratch, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        owner, project = await _owner_with_project(scratch)
        bob: User = await scratch.setup(lambda actors: actors.user())
        Rendezvous(2).after(
            monkeypatch,
            ProjectMemberRepository,
            "get_membership",
            lambda project_id, user_id, **_: user_id == bob.id,
        )
        responses = await asyncio.gather(
            *(
                scratch.client.post(
                    f"{PROJECTS}/{project.id}/members",
                    json={"userId": str(bob.id)},
                    headers=_bearer(scratch, owner),
                )
                for _ in range(2)
            )
        )
        assert sorted(response.status_code for response in responses) == [201, 409]
        (refused,) = [response for response in responses if response.status_code == 409]
        assert refused.json()["code"] == "ALREADY_MEMBER"

    async def test_removing_two_owners_at_once_keeps_one(
        self, scratch: Scratch, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        first, project = await _owner_with_project(scratch)

        async def build(actors: Actors) -> tuple[User, User]:
            second = await actors.user()
            access = ProjectAccess(project, first, ProjectRole.OWNER)
            await MembershipService(actors.session).add_member(access, second, ProjectRole.OWNER)
            return second, await actors.user(superuser=True)

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
