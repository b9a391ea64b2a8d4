"""Invitations: adding a member invites them; nothing is granted until the invitee, signed in
with the invited email, accepts. An unknown email answers exactly as a known one. Single use,
expiry, re-inviting, revoking, the invitee's own list, the audit log, and the token never kept
or shown after creation."""

from __future__ import annotations

import logging
import re
import uuid
from datetime import timedelta
from unittest.mock import patch

import httpx
import pytest
from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from billwarden.audit.models import AuditEntry
from billwarden.db.base import utcnow
from billwarden.identity import passwords
from billwarden.projects.models import ProjectInvitation, ProjectMember, ProjectRole
from tests.identity.factories import People
from tests.projects.factories import ProjectWithSecret, Tenants

PROJECTS = "/api/v1/projects"
MINE = "/api/v1/invitations"
ACCEPT = "/api/v1/invitations/accept"
# differs between any two answers
VOLATILE_HEADERS = {"x-request-id"}


def members_url(project: ProjectWithSecret) -> str:
    return f"{PROJECTS}/{project.id}/members"


async def invite(
    client: httpx.AsyncClient,
    project: ProjectWithSecret,
    headers: dict[str, str],
    email: str,
    role: str = "member",
) -> httpx.Response:
    return await client.post(
        members_url(project), json={"email": email, "role": role}, headers=headers
    )


class TestNoEnumeration:
    async def test_an_unknown_email_answers_exactly_as_a_known_one(
        self, client: httpx.AsyncClient, people: People, tenants: Tenants
    ) -> None:
        owner = await people.user()
        await people.user("alice@example.test")  # has an account; zelda has none
        project = await tenants.project(owner)
        headers = people.bearer(owner)
        known = await invite(client, project, headers, "alice@example.test")
        unknown = await invite(client, project, headers, "zelda@example.test")

        assert known.status_code == unknown.status_code == 201
        assert set(known.headers) == set(unknown.headers)
        for name in set(known.headers) - VOLATILE_HEADERS:
            assert known.headers[name] == unknown.headers[name], name
        known_body, unknown_body = known.json(), unknown.json()
        assert set(known_body) == set(unknown_body)
        assert "userId" not in known_body
        differing = {key for key in known_body if known_body[key] != unknown_body[key]}
        # only what belongs to each invitation differs, never a sign of an account
        assert differing <= {"id", "email", "token", "acceptUrl", "createdAt", "expiresAt"}
        assert {type(value) for value in known_body.values()} == {
            type(value) for value in unknown_body.values()
        }
        listed = await client.get(f"{PROJECTS}/{project.id}/invitations", headers=headers)
        rows = {row["email"]: row for row in listed.json()["items"]}
        assert set(rows["alice@example.test"]) == set(rows["zelda@example.test"])
        assert rows["alice@example.test"]["status"] == rows["zelda@example.test"]["status"]

    async def test_both_answers_run_the_same_statements(
        self,
        client: httpx.AsyncClient,
        people: People,
        tenants: Tenants,
        engine: AsyncEngine,
    ) -> None:
        """The same work for a known and an unknown email: the same SQL, in the same order, and
        no password hashed, so the time taken says nothing about an account either."""
        owner = await people.user()
        await people.user("alice@example.test")
        project = await tenants.project(owner)
        headers = people.bearer(owner)
        statements: list[str] = []

        def record(_conn: object, _cursor: object, statement: str, *_: object) -> None:
            statements.append(re.sub(r"sa_savepoint_\d+", "sa_savepoint", statement))

        run: dict[str, list[str]] = {}
        event.listen(engine.sync_engine, "before_cursor_execute", record)
        try:
            for email in ("alice@example.test", "zelda@example.test"):
                statements.clear()
                with patch.object(passwords, "hash_password", side_effect=AssertionError):
                    answer = await invite(client, project, headers, email)
                assert answer.status_code == 201
                run[email] = list(statements)
        finally:
            event.remove(engine.sync_engine, "before_cursor_execute", record)
        assert run["alice@example.test"] == run["zelda@example.test"]
        assert not any(
            "FROM users" in statement and "WHERE users.email" in statement
            for statement in run["zelda@example.test"]
        )

    async def test_an_account_created_later_with_the_email_can_accept(
        self, client: httpx.AsyncClient, people: People, tenants: Tenants
    ) -> None:
        owner = await people.user()
        project = await tenants.project(owner)
        invited = await invite(client, project, people.bearer(owner), "Newcomer@Example.test")
        assert invited.status_code == 201 and invited.json()["email"] == "newcomer@example.test"
        newcomer = await people.user("newcomer@example.test")
        accepted = await client.post(
            ACCEPT, json={"token": invited.json()["token"]}, headers=people.bearer(newcomer)
        )
        assert accepted.status_code == 200
        assert accepted.json()["id"] == str(project.id) and accepted.json()["role"] == "member"


class TestAcceptance:
    async def test_no_access_until_accepted_then_the_invited_role(
        self, client: httpx.AsyncClient, people: People, tenants: Tenants
    ) -> None:
        owner, bob = await people.user(), await people.user()
        project = await tenants.project(owner)
        invited = await invite(client, project, people.bearer(owner), bob.email, "admin")
        assert invited.status_code == 201
        assert invited.json()["acceptUrl"] == f"/admin/invitations#token={invited.json()['token']}"
        bobs = people.bearer(bob)
        for response in (
            await client.get(f"{PROJECTS}/{project.id}", headers=bobs),
            await client.get(f"{PROJECTS}/{project.id}/members", headers=bobs),
            await client.post(
                "/api-dashboard/keys/generate",
                json={"name": "early", "projectId": str(project.id)},
                headers=bobs,
            ),
        ):
            assert response.status_code == 404, response.text
            assert response.json()["code"] == "PROJECT_NOT_FOUND"
        assert (await client.get(PROJECTS, headers=bobs)).json()["total"] == 0

        accepted = await client.post(ACCEPT, json={"token": invited.json()["token"]}, headers=bobs)
        assert accepted.status_code == 200 and accepted.json()["role"] == "admin"
        assert (await client.get(f"{PROJECTS}/{project.id}/members", headers=bobs)).is_success

    async def test_the_invitee_lists_their_pending_invitations_and_accepts_one(
        self, client: httpx.AsyncClient, people: People, tenants: Tenants
    ) -> None:
        owner, bob = await people.user("owner@example.test"), await people.user()
        project = await tenants.project(owner, name="Acme")
        await invite(client, project, people.bearer(owner), bob.email)
        session = await people.sign_in(bob)
        mine = await client.get(MINE, headers=session.cookie)
        assert mine.status_code == 200
        assert mine.json()["total"] == 1
        (pending,) = mine.json()["items"]
        assert (pending["projectName"], pending["role"], pending["invitedBy"]) == (
            "Acme",
            "member",
            "owner@example.test",
        )
        assert "token" not in pending
        accepted = await client.post(
            ACCEPT, json={"invitationId": pending["id"]}, headers=session.unsafe
        )
        assert accepted.status_code == 200 and accepted.json()["name"] == "Acme"
        assert (await client.get(MINE, headers=session.cookie)).json()["items"] == []

    async def test_someone_else_cannot_accept(
        self, client: httpx.AsyncClient, people: People, tenants: Tenants
    ) -> None:
        owner, bob, mallory = await people.user(), await people.user(), await people.user()
        project = await tenants.project(owner)
        invited = (await invite(client, project, people.bearer(owner), bob.email)).json()
        with_token = await client.post(
            ACCEPT, json={"token": invited["token"]}, headers=people.bearer(mallory)
        )
        assert with_token.status_code == 403
        assert with_token.json()["code"] == "INVITATION_FOR_ANOTHER_EMAIL"
        assert bob.email not in with_token.text
        by_id = await client.post(
            ACCEPT, json={"invitationId": invited["id"]}, headers=people.bearer(mallory)
        )
        assert by_id.status_code == 404 and by_id.json()["code"] == "INVITATION_NOT_FOUND"
        assert (await client.get(MINE, headers=people.bearer(mallory))).json()["total"] == 0
        # still bob's to accept
        accepted = await client.post(
            ACCEPT, json={"token": invited["token"]}, headers=people.bearer(bob)
        )
        assert accepted.status_code == 200

    async def test_an_invitation_is_used_once(
        self, client: httpx.AsyncClient, people: People, tenants: Tenants
    ) -> None:
        owner, bob = await people.user(), await people.user()
        project = await tenants.project(owner)
        token = (await invite(client, project, people.bearer(owner), bob.email)).json()["token"]
        first = await client.post(ACCEPT, json={"token": token}, headers=people.bearer(bob))
        assert first.status_code == 200
        removed = await client.delete(
            f"{members_url(project)}/{bob.id}", headers=people.bearer(owner)
        )
        assert removed.status_code == 204
        again = await client.post(ACCEPT, json={"token": token}, headers=people.bearer(bob))
        assert again.status_code == 410
        assert again.json()["code"] == "INVITATION_NO_LONGER_VALID"
        hidden = await client.get(f"{PROJECTS}/{project.id}", headers=people.bearer(bob))
        assert hidden.status_code == 404

    async def test_an_expired_invitation_is_refused_and_listed_as_expired(
        self, client: httpx.AsyncClient, people: People, tenants: Tenants, session: AsyncSession
    ) -> None:
        owner, bob = await people.user(), await people.user()
        project = await tenants.project(owner)
        invited = await invite(client, project, people.bearer(owner), bob.email)
        expires_at = invited.json()["expiresAt"]
        row = await session.get(ProjectInvitation, uuid.UUID(invited.json()["id"]))
        assert row is not None
        assert abs(row.expires_at - (row.created_at + timedelta(days=7))) < timedelta(seconds=1)
        assert expires_at.startswith(row.expires_at.isoformat()[:19])
        row.expires_at = utcnow() - timedelta(seconds=1)
        await session.flush()
        refused = await client.post(
            ACCEPT, json={"token": invited.json()["token"]}, headers=people.bearer(bob)
        )
        assert refused.status_code == 410
        assert refused.json()["code"] == "INVITATION_NO_LONGER_VALID"
        assert (await client.get(MINE, headers=people.bearer(bob))).json()["total"] == 0
        listed = await client.get(
            f"{PROJECTS}/{project.id}/invitations", headers=people.bearer(owner)
        )
        assert [item["status"] for item in listed.json()["items"]] == ["expired"]

    @pytest.mark.parametrize(
        "token", ["bwi_" + "A" * 43, "bwi_short", "bw_test_" + "A" * 54, "x" * 200]
    )
    async def test_an_unknown_token_is_404(
        self, client: httpx.AsyncClient, people: People, token: str
    ) -> None:
        refused = await client.post(
            ACCEPT, json={"token": token}, headers=people.bearer(await people.user())
        )
        assert refused.status_code == 404
        assert refused.json()["code"] == "INVITATION_NOT_FOUND"

    async def test_signing_in_is_required(self, client: httpx.AsyncClient) -> None:
        for response in (
            await client.get(MINE),
            await client.post(ACCEPT, json={"token": "bwi_" + "A" * 43}),
        ):
            assert response.status_code == 401
            assert response.json()["code"] == "UNAUTHENTICATED"


class TestManaging:
    async def test_inviting_again_replaces_the_pending_invitation(
        self, client: httpx.AsyncClient, people: People, tenants: Tenants
    ) -> None:
        owner, bob = await people.user(), await people.user()
        project = await tenants.project(owner)
        headers = people.bearer(owner)
        first = (await invite(client, project, headers, bob.email, "member")).json()
        second = (await invite(client, project, headers, bob.email.upper(), "admin")).json()
        assert first["token"] != second["token"]
        listed = await client.get(f"{PROJECTS}/{project.id}/invitations", headers=headers)
        assert [(item["id"], item["role"]) for item in listed.json()["items"]] == [
            (second["id"], "admin")
        ]
        stale = await client.post(
            ACCEPT, json={"token": first["token"]}, headers=people.bearer(bob)
        )
        assert stale.status_code == 410
        fresh = await client.post(
            ACCEPT, json={"token": second["token"]}, headers=people.bearer(bob)
        )
        assert fresh.status_code == 200 and fresh.json()["role"] == "admin"

    async def test_an_admin_revokes_and_the_link_stops_working(
        self, client: httpx.AsyncClient, people: People, tenants: Tenants
    ) -> None:
        owner, admin, bob = await people.user(), await people.user(), await people.user()
        project = await tenants.project(owner)
        await tenants.add_member(project, admin, ProjectRole.ADMIN)
        invited = (await invite(client, project, people.bearer(admin), bob.email)).json()
        url = f"{PROJECTS}/{project.id}/invitations/{invited['id']}"
        revoked = await client.delete(url, headers=people.bearer(admin))
        assert revoked.status_code == 204
        assert (await client.delete(url, headers=people.bearer(admin))).status_code == 204
        refused = await client.post(
            ACCEPT, json={"token": invited["token"]}, headers=people.bearer(bob)
        )
        assert refused.status_code == 410
        listed = await client.get(
            f"{PROJECTS}/{project.id}/invitations", headers=people.bearer(admin)
        )
        assert listed.json()["total"] == 0
        missing = await client.delete(
            f"{PROJECTS}/{project.id}/invitations/{uuid.uuid4()}", headers=people.bearer(admin)
        )
        assert missing.status_code == 404
        assert missing.json()["code"] == "INVITATION_NOT_FOUND"

    async def test_an_accepted_invitation_cannot_be_revoked(
        self, client: httpx.AsyncClient, people: People, tenants: Tenants
    ) -> None:
        owner, bob = await people.user(), await people.user()
        project = await tenants.project(owner)
        invited = (await invite(client, project, people.bearer(owner), bob.email)).json()
        await client.post(ACCEPT, json={"token": invited["token"]}, headers=people.bearer(bob))
        refused = await client.delete(
            f"{PROJECTS}/{project.id}/invitations/{invited['id']}", headers=people.bearer(owner)
        )
        assert refused.status_code == 410
        assert refused.json()["code"] == "INVITATION_NO_LONGER_VALID"

    async def test_only_owners_invite_owners_and_members_invite_nobody(
        self, client: httpx.AsyncClient, people: People, tenants: Tenants
    ) -> None:
        owner, admin, member = await people.user(), await people.user(), await people.user()
        project = await tenants.project(owner)
        await tenants.add_member(project, admin, ProjectRole.ADMIN)
        await tenants.add_member(project, member, ProjectRole.MEMBER)
        as_owner = await invite(client, project, people.bearer(admin), "boss@example.test", "owner")
        assert as_owner.status_code == 403
        assert as_owner.json()["code"] == "PROJECT_OWNER_REQUIRED"
        for response in (
            await invite(client, project, people.bearer(member), "friend@example.test"),
            await client.get(f"{PROJECTS}/{project.id}/invitations", headers=people.bearer(member)),
        ):
            assert response.status_code == 403
            assert response.json()["code"] == "PROJECT_ADMIN_REQUIRED"
        by_owner = await invite(client, project, people.bearer(owner), "boss@example.test", "owner")
        assert by_owner.status_code == 201 and by_owner.json()["role"] == "owner"
        # nor may an admin replace (or revoke) an owner's invitation with a lesser one
        replaced = await invite(client, project, people.bearer(admin), "boss@example.test")
        assert replaced.status_code == 403
        assert replaced.json()["code"] == "PROJECT_OWNER_REQUIRED"
        revoked = await client.delete(
            f"{PROJECTS}/{project.id}/invitations/{by_owner.json()['id']}",
            headers=people.bearer(admin),
        )
        assert revoked.status_code == 403
        assert revoked.json()["code"] == "PROJECT_OWNER_REQUIRED"
        listed = await client.get(
            f"{PROJECTS}/{project.id}/invitations", headers=people.bearer(owner)
        )
        assert [(item["id"], item["role"]) for item in listed.json()["items"]] == [
            (by_owner.json()["id"], "owner")
        ]

    async def test_every_step_is_audited_without_the_token(
        self,
        client: httpx.AsyncClient,
        people: People,
        tenants: Tenants,
        session: AsyncSession,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        caplog.set_level(logging.DEBUG)
        owner, bob = await people.user(), await people.user()
        project = await tenants.project(owner)
        headers = people.bearer(owner)
        revoked = (await invite(client, project, headers, "carol@example.test")).json()
        await client.delete(f"{PROJECTS}/{project.id}/invitations/{revoked['id']}", headers=headers)
        invited = (await invite(client, project, headers, bob.email, "admin")).json()
        await client.post(ACCEPT, json={"token": invited["token"]}, headers=people.bearer(bob))

        log = await client.get(
            "/api/v1/admin/audit", params={"projectId": str(project.id)}, headers=headers
        )
        actions = [(entry["action"], entry["actor"]) for entry in log.json()["items"]]
        assert actions[:4] == [
            ("project.member_added", bob.email),
            ("project.member_invited", owner.email),
            ("project.invitation_revoked", owner.email),
            ("project.member_invited", owner.email),
        ]
        added = log.json()["items"][0]
        assert added["after"] == {
            "email": bob.email,
            "role": "admin",
            "invitationId": invited["id"],
        }
        for token in (revoked["token"], invited["token"]):
            assert token not in log.text and token not in caplog.text
        rows = (await session.scalars(select(ProjectInvitation))).all()
        stored = " ".join(str(vars(row)) for row in rows)
        for token in (revoked["token"], invited["token"]):
            assert token not in stored
        entries = (await session.scalars(select(AuditEntry))).all()
        assert all(invited["token"] not in str(entry.after) for entry in entries)
        members = (
            await session.scalars(
                select(ProjectMember).where(ProjectMember.project_id == project.id)
            )
        ).all()
        assert len(members) == 2
