"""Login throttling: per email and per client address, stored in the database."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from billwarden.config import Settings
from billwarden.db.base import utcnow
from billwarden.identity.models import LoginFailure
from tests.conftest import Scratch
from tests.factories import Factories
from tests.identity.factories import PASSWORD, People, SignedIn

LOGIN = "/api/v1/auth/login"
PASSWORD_CHANGE = "/api/v1/auth/password"


@pytest.fixture(autouse=True)
def strict_limits(app: FastAPI, settings: Settings) -> None:
    app.state.settings = settings.model_copy(
        update={
            "login_throttle_max_failures_per_email": 3,
            "login_throttle_max_failures_per_address": 5,
            "login_throttle_window_seconds": 600,
        }
    )


@pytest.fixture
async def other_address(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=("203.0.113.9", 4321))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


async def fail(client: httpx.AsyncClient, email: str) -> httpx.Response:
    return await client.post(LOGIN, json={"email": email, "password": "wrong password"})


class TestPerEmail:
    async def test_locked_email_refuses_even_the_right_password(
        self,
        client: httpx.AsyncClient,
        other_address: httpx.AsyncClient,
        people: People,
    ) -> None:
        await people.user("alice@example.test")
        for _ in range(3):
            failed = await fail(client, "alice@example.test")
            assert failed.status_code == 401
            assert failed.json()["code"] == "INVALID_CREDENTIALS"
        # the lock follows the email, whatever address the next attempt comes from
        response = await other_address.post(
            LOGIN, json={"email": "alice@example.test", "password": PASSWORD}
        )
        assert response.status_code == 429
        assert response.json()["code"] == "TOO_MANY_ATTEMPTS"
        retry_after = int(response.headers["retry-after"])
        assert 0 < retry_after <= 600
        assert response.json()["details"]["retryAfterSeconds"] == retry_after
        token = await other_address.post(
            "/api/v1/auth/token", data={"username": "alice@example.test", "password": PASSWORD}
        )
        assert token.status_code == 429
        assert token.json()["code"] == "TOO_MANY_ATTEMPTS"

    async def test_other_emails_are_not_locked(
        self,
        client: httpx.AsyncClient,
        people: People,
    ) -> None:
        await people.user("bob@example.test")
        for _ in range(3):
            await fail(client, "alice@example.test")
        response = await client.post(
            LOGIN, json={"email": "bob@example.test", "password": PASSWORD}
        )
        assert response.status_code == 200

    async def test_lock_lifts_when_the_window_passes(
        self, client: httpx.AsyncClient, people: People, session: AsyncSession
    ) -> None:
        await people.user("alice@example.test")
        for _ in range(3):
            await fail(client, "alice@example.test")
        await session.execute(
            update(LoginFailure).values(created_at=utcnow() - timedelta(seconds=601))
        )
        response = await client.post(
            LOGIN, json={"email": "alice@example.test", "password": PASSWORD}
        )
        assert response.status_code == 200

    async def test_success_clears_the_email_count(
        self,
        client: httpx.AsyncClient,
        people: People,
    ) -> None:
        await people.user("alice@example.test")
        for _ in range(2):
            await fail(client, "alice@example.test")
        ok = await client.post(LOGIN, json={"email": "alice@example.test", "password": PASSWORD})
        assert ok.status_code == 200
        for _ in range(2):
            failed = await fail(client, "alice@example.test")
            assert failed.status_code == 401
            assert failed.json()["code"] == "INVALID_CREDENTIALS"


class TestPerAddress:
    async def test_address_guessing_many_emails_is_locked(
        self,
        client: httpx.AsyncClient,
        other_address: httpx.AsyncClient,
        people: People,
    ) -> None:
        await people.user("victim@example.test")
        for number in range(5):
            failed = await fail(client, f"guess{number}@example.test")
            assert failed.status_code == 401
            assert failed.json()["code"] == "INVALID_CREDENTIALS"
        locked = await client.post(
            LOGIN, json={"email": "victim@example.test", "password": PASSWORD}
        )
        assert locked.status_code == 429
        assert locked.json()["code"] == "TOO_MANY_ATTEMPTS"
        assert "address" in locked.json()["message"]
        # the same person signing in from elsewhere is not affected
        elsewhere = await other_address.post(
            LOGIN, json={"email": "victim@example.test", "password": PASSWORD}
        )
        assert elsewhere.status_code == 200


class TestPasswordChange:
    async def test_wrong_current_passwords_lock_the_email(
        self,
        client: httpx.AsyncClient,
        people: People,
    ) -> None:
        user = await people.user("alice@example.test")
        here = await people.sign_in(user)

        async def change(current: str) -> httpx.Response:
            return await client.post(
                PASSWORD_CHANGE,
                json={"currentPassword": current, "newPassword": "a brand new passphrase"},
                headers=here.unsafe,
            )

        for _ in range(3):
            wrong = await change("wrong password")
            assert wrong.status_code == 400 and wrong.json()["code"] == "WRONG_PASSWORD"
        locked = await change("wrong password")
        assert locked.status_code == 429
        assert locked.json()["code"] == "TOO_MANY_ATTEMPTS"
        assert 0 < int(locked.headers["retry-after"]) <= 600
        # while locked, even the right password changes nothing and sign-in is refused too
        right = await change(PASSWORD)
        assert right.status_code == 429
        assert right.json()["code"] == "TOO_MANY_ATTEMPTS"
        assert (await client.get("/api/v1/auth/me", headers=here.cookie)).status_code == 200
        signed_in = await client.post(
            LOGIN, json={"email": "alice@example.test", "password": PASSWORD}
        )
        assert signed_in.status_code == 429
        assert signed_in.json()["code"] == "TOO_MANY_ATTEMPTS"


class TestConcurrentFailures:
    async def test_simultaneous_wrong_passwords_get_exactly_the_limit(
        self, scratch: Scratch
    ) -> None:
        """Twenty wrong passwords at once, on a database of their own with real transactions:
        each attempt sees the failures committed before it, so the limit is not overshot."""
        scratch.app.state.settings = scratch.settings.model_copy(
            update={
                "login_throttle_max_failures_per_email": 3,
                "login_throttle_max_failures_per_address": 50,
                "login_throttle_window_seconds": 600,
            }
        )
        await scratch.setup(lambda made: made.people.user("alice@example.test"))
        responses = await asyncio.gather(
            *(fail(scratch.client, "alice@example.test") for _ in range(20))
        )
        statuses = sorted(response.status_code for response in responses)
        assert statuses == [401] * 3 + [429] * 17, [
            response.text for response in responses if response.status_code not in {401, 429}
        ]
        assert {(response.status_code, response.json()["code"]) for response in responses} == {
            (401, "INVALID_CREDENTIALS"),
            (429, "TOO_MANY_ATTEMPTS"),
        }
        async with scratch.session() as session:
            recorded = await session.scalar(
                select(func.count(LoginFailure.id)).where(LoginFailure.scope == "email")
            )
        assert recorded == 3


class TestCountedThroughTheRealUnitOfWork:
    async def test_wrong_current_passwords_stay_counted_in_committed_transactions(
        self, scratch: Scratch
    ) -> None:
        """On a database of its own with production sessions: each refused change is committed
        before the 400 is answered, so the limit holds across requests."""
        scratch.app.state.settings = scratch.settings.model_copy(
            update={"login_throttle_max_failures_per_email": 2}
        )

        async def build(made: Factories) -> SignedIn:
            return await made.people.sign_in(await made.people.user("carol@example.test"))

        here = await scratch.setup(build)
        body = {"currentPassword": "wrong password", "newPassword": "a brand new passphrase"}
        for _ in range(2):
            wrong = await scratch.client.post(PASSWORD_CHANGE, json=body, headers=here.unsafe)
            assert wrong.status_code == 400
            assert wrong.json()["code"] == "WRONG_PASSWORD"
        locked = await scratch.client.post(PASSWORD_CHANGE, json=body, headers=here.unsafe)
        assert locked.status_code == 429
        assert locked.json()["code"] == "TOO_MANY_ATTEMPTS"
        async with scratch.session() as session:
            assert await session.scalar(select(func.count()).select_from(LoginFailure)) == 2
