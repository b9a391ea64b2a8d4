"""Projects, members and roles over HTTP: who may see and change what."""

from __future__ import annotations

import uuid

import httpx
import pytest

from billwarden.projects.models import ProjectRole
from tests.actors import Actors

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
