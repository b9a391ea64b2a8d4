"""Developer JWTs and end-user JWTs, accepted and refused as a caller sees it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import pytest
from fastapi import FastAPI
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from billwarden.config import Settings
from billwarden.db.base import utcnow
from billwarden.identity.tokens import DEVELOPER_AUDIENCE, derive_developer_jwt_key
from billwarden.projects.models import EndUserSecret
from tests.conftest import TEST_SECRET_KEY
from tests.identity.factories import PASSWORD, People
from tests.probes import END_USER_PROBE, install_probes
from tests.projects.factories import Tenants

ME = "/api/v1/auth/me"


@pytest.fixture
def probe(app: FastAPI) -> None:
    install_probes(app)


class TestDeveloperToken:
    async def test_password_grant_token_works_as_bearer(
        self,
        client: httpx.AsyncClient,
        people: People,
    ) -> None:
        await people.user("dev@example.test")
        response = await client.post(
            "/api/v1/auth/token",
            data={"grant_type": "password", "username": "dev@example.test", "password": PASSWORD},
        )
        assert response.status_code == 200
        body = response.json()
        assert body["token_type"] == "bearer" and body["expires_in"] == 900
        me = await client.get(ME, headers={"Authorization": f"Bearer {body['access_token']}"})
        assert me.status_code == 200
        assert me.json()["authMethod"] == "token"

    async def test_wrong_password_gets_no_token(
        self,
        client: httpx.AsyncClient,
        people: People,
    ) -> None:
        await people.user("dev@example.test")
        response = await client.post(
            "/api/v1/auth/token", data={"username": "dev@example.test", "password": "nope nope"}
        )
        assert response.status_code == 401
        assert response.json()["code"] == "INVALID_CREDENTIALS"

    async def test_signing_key_is_derived_not_the_secret_key(
        self,
        client: httpx.AsyncClient,
        people: People,
    ) -> None:
        user = await people.user()
        claims = {
            "sub": str(user.id),
            "aud": DEVELOPER_AUDIENCE,
            "iat": utcnow(),
            "exp": utcnow() + timedelta(minutes=5),
            "pwv": int(user.password_changed_at.timestamp() * 1_000_000),
        }
        raw = jwt.encode(claims, TEST_SECRET_KEY, algorithm="HS256")
        refused = await client.get(ME, headers={"Authorization": f"Bearer {raw}"})
        assert refused.status_code == 401
        assert refused.json()["code"] == "UNAUTHENTICATED"
        derived = jwt.encode(claims, derive_developer_jwt_key(TEST_SECRET_KEY), algorithm="HS256")
        ok = await client.get(ME, headers={"Authorization": f"Bearer {derived}"})
        assert ok.status_code == 200

    async def test_expired_token_is_401(self, client: httpx.AsyncClient, people: People) -> None:
        user = await people.user()
        claims = {
            "sub": str(user.id),
            "aud": DEVELOPER_AUDIENCE,
            "iat": utcnow() - timedelta(hours=1),
            "exp": utcnow() - timedelta(seconds=1),
            "pwv": int(user.password_changed_at.timestamp() * 1_000_000),
        }
        token = jwt.encode(claims, derive_developer_jwt_key(TEST_SECRET_KEY), algorithm="HS256")
        response = await client.get(ME, headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401
        assert response.json()["code"] == "UNAUTHENTICATED"
        assert "expired" in response.json()["message"]

    async def test_tampered_token_is_401(self, client: httpx.AsyncClient, people: People) -> None:
        user = await people.user()
        other = await people.user(superuser=True)
        token = people.bearer(user)["Authorization"].removeprefix("Bearer ")
        header, payload, signature = token.split(".")
        forged_payload = jwt.utils.base64url_encode(
            jwt.utils.base64url_decode(payload).replace(
                str(user.id).encode(), str(other.id).encode()
            )
        ).decode()
        forged = f"{header}.{forged_payload}.{signature}"
        response = await client.get(ME, headers={"Authorization": f"Bearer {forged}"})
        assert response.status_code == 401
        assert response.json()["code"] == "UNAUTHENTICATED"
        assert "signature" in response.json()["message"]

    @pytest.mark.parametrize("version", [1e999, 1.5, "1", True, None, [1], -1e308])
    async def test_non_integer_password_version_is_401(
        self, client: httpx.AsyncClient, people: People, version: object
    ) -> None:
        user = await people.user()
        claims = {
            "sub": str(user.id),
            "aud": DEVELOPER_AUDIENCE,
            "iat": utcnow(),
            "exp": utcnow() + timedelta(minutes=5),
            "pwv": version,
        }
        token = jwt.encode(claims, derive_developer_jwt_key(TEST_SECRET_KEY), algorithm="HS256")
        response = await client.get(ME, headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401
        assert response.json()["code"] == "UNAUTHENTICATED"

    async def test_token_for_unknown_user_is_401(
        self, client: httpx.AsyncClient, settings: Settings
    ) -> None:
        claims = {
            "sub": str(uuid.uuid4()),
            "aud": DEVELOPER_AUDIENCE,
            "iat": utcnow(),
            "exp": utcnow() + timedelta(minutes=5),
            "pwv": 1,
        }
        token = jwt.encode(claims, derive_developer_jwt_key(TEST_SECRET_KEY), algorithm="HS256")
        response = await client.get(ME, headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401
        assert response.json()["code"] == "UNAUTHENTICATED"


def end_user_token(secret: str, project_id: uuid.UUID, **claims: Any) -> dict[str, str]:
    body: dict[str, Any] = {
        "sub": "user-42",
        "project_id": str(project_id),
        "exp": datetime.now(UTC) + timedelta(minutes=5),
        **claims,
    }
    body = {key: value for key, value in body.items() if value is not None}
    return {"Authorization": f"Bearer {jwt.encode(body, secret, algorithm='HS256')}"}


@pytest.mark.usefixtures("probe")
class TestEndUserToken:
    async def test_valid_token_names_the_user_and_subject(
        self,
        client: httpx.AsyncClient,
        people: People,
        tenants: Tenants,
    ) -> None:
        project = await tenants.project(await people.user())
        response = await client.get(
            END_USER_PROBE,
            headers=end_user_token(project.end_user_secret, project.id, email="u@tenant.test"),
        )
        assert response.status_code == 200
        assert response.json() == {
            "projectId": str(project.id),
            "mode": "test",
            "sub": "user-42",
            "email": "u@tenant.test",
            "subject": "user-42",
        }

    async def test_organization_is_the_billing_subject(
        self,
        client: httpx.AsyncClient,
        people: People,
        tenants: Tenants,
    ) -> None:
        project = await tenants.project(await people.user())
        response = await client.get(
            END_USER_PROBE,
            headers=end_user_token(
                project.end_user_secret, project.id, organization_id="org-7", mode="live"
            ),
        )
        assert response.status_code == 200
        assert response.json()["subject"] == "org-7"
        assert response.json()["mode"] == "live"

    @pytest.mark.parametrize(
        ("claims", "message"),
        [
            ({"exp": datetime.now(UTC) - timedelta(seconds=5)}, "expired"),
            ({"sub": None}, "sub"),
            ({"exp": None}, "exp"),
            ({"mode": "staging"}, "mode"),
            # billing subjects and emails have bounds: a token beyond them is refused, not stored
            ({"sub": "u" * 256}, "sub"),
            ({"sub": "a\x00b"}, "sub"),
            ({"organization_id": "o" * 256}, "organization_id"),
            ({"organization_id": "line\nbreak"}, "organization_id"),
            ({"email": "e" * 321}, "email"),
        ],
    )
    async def test_bad_claims_are_401(
        self,
        client: httpx.AsyncClient,
        people: People,
        tenants: Tenants,
        claims: dict[str, Any],
        message: str,
    ) -> None:
        project = await tenants.project(await people.user())
        response = await client.get(
            END_USER_PROBE, headers=end_user_token(project.end_user_secret, project.id, **claims)
        )
        assert response.status_code == 401
        assert response.json()["code"] == "UNAUTHENTICATED"
        assert message in response.json()["message"]

    async def test_wrong_secret_is_401(
        self, client: httpx.AsyncClient, people: People, tenants: Tenants
    ) -> None:
        project = await tenants.project(await people.user())
        response = await client.get(
            END_USER_PROBE, headers=end_user_token("not-the-secret" * 4, project.id)
        )
        assert response.status_code == 401
        assert response.json()["code"] == "UNAUTHENTICATED"

    async def test_token_of_another_project_cannot_claim_this_one(
        self,
        client: httpx.AsyncClient,
        people: People,
        tenants: Tenants,
    ) -> None:
        owner = await people.user()
        ours, theirs = await tenants.project(owner), await tenants.project(owner)
        # signed with their secret but naming our project: refused
        response = await client.get(
            END_USER_PROBE, headers=end_user_token(theirs.end_user_secret, ours.id)
        )
        assert response.status_code == 401
        assert response.json()["code"] == "UNAUTHENTICATED"
        unknown = await client.get(
            END_USER_PROBE, headers=end_user_token(theirs.end_user_secret, uuid.uuid4())
        )
        assert unknown.status_code == 401
        assert unknown.json()["code"] == "UNAUTHENTICATED"

    async def test_missing_bearer_is_401(self, client: httpx.AsyncClient) -> None:
        response = await client.get(END_USER_PROBE)
        assert response.status_code == 401
        assert response.json()["code"] == "UNAUTHENTICATED"
        assert "end-user JWT" in response.json()["message"]

    async def test_rotation_overlap_then_old_secret_stops(
        self, client: httpx.AsyncClient, people: People, tenants: Tenants, session: AsyncSession
    ) -> None:
        owner = await people.user()
        project = await tenants.project(owner)
        old = project.end_user_secret
        rotated = await client.post(
            f"/api/v1/projects/{project.id}/end-user-secret/rotate", headers=people.bearer(owner)
        )
        assert rotated.status_code == 200
        new = rotated.json()["endUserSecret"]
        assert new != old and rotated.json()["previousSecretExpiresAt"]
        for secret in (old, new):
            response = await client.get(END_USER_PROBE, headers=end_user_token(secret, project.id))
            assert response.status_code == 200
        # the overlap window ends
        await session.execute(
            update(EndUserSecret)
            .where(EndUserSecret.expires_at.is_not(None))
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
        expired = await client.get(END_USER_PROBE, headers=end_user_token(old, project.id))
        assert expired.status_code == 401
        assert expired.json()["code"] == "UNAUTHENTICATED"
        current = await client.get(END_USER_PROBE, headers=end_user_token(new, project.id))
        assert current.status_code == 200
