"""Console sign-in: cookies, CSRF, expiry and revocation, as a browser sees them."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from billwarden.config import Environment, Settings
from billwarden.db.base import utcnow
from billwarden.identity.models import ConsoleSession
from tests.identity.factories import PASSWORD, People, SignedIn
from tests.projects.factories import Tenants

LOGIN = "/api/v1/auth/login"
ME = "/api/v1/auth/me"


def client_cookie(client: httpx.AsyncClient) -> dict[str, str]:
    return {"Cookie": "; ".join(f"{name}={value}" for name, value in client.cookies.items())}


async def sign_in_over_http(client: httpx.AsyncClient, email: str) -> str:
    response = await client.post(LOGIN, json={"email": email, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return str(response.json()["csrfToken"])


class TestLogin:
    async def test_login_sets_http_only_session_and_readable_csrf_cookie(
        self,
        client: httpx.AsyncClient,
        people: People,
    ) -> None:
        await people.user("alice@example.test")
        response = await client.post(
            LOGIN, json={"email": "Alice@Example.test ", "password": PASSWORD}
        )
        assert response.status_code == 200
        body = response.json()
        assert body["user"]["email"] == "alice@example.test"
        cookies = {c.split("=", 1)[0]: c for c in response.headers.get_list("set-cookie")}
        assert "HttpOnly" in cookies["bw_session"] and "SameSite=lax" in cookies["bw_session"]
        assert "HttpOnly" not in cookies["bw_csrf"]
        assert body["csrfToken"] in cookies["bw_csrf"]
        me = await client.get(ME)
        assert me.status_code == 200
        assert me.json()["user"]["email"] == "alice@example.test"
        assert me.json()["authMethod"] == "session"

    async def test_cookies_are_secure_outside_development(
        self,
        app: FastAPI,
        settings: Settings,
        people: People,
        client: httpx.AsyncClient,
    ) -> None:
        await people.user("alice@example.test")
        app.state.settings = settings.model_copy(update={"environment": Environment.PRODUCTION})
        response = await client.post(
            LOGIN, json={"email": "alice@example.test", "password": PASSWORD}
        )
        assert response.status_code == 200
        assert all("Secure" in c for c in response.headers.get_list("set-cookie"))

    @pytest.mark.parametrize(
        "credentials",
        [
            {"email": "alice@example.test", "password": "wrong password"},
            {"email": "nobody@example.test", "password": PASSWORD},
        ],
    )
    async def test_wrong_credentials_are_one_401(
        self,
        client: httpx.AsyncClient,
        people: People,
        credentials: dict[str, str],
    ) -> None:
        await people.user("alice@example.test")
        response = await client.post(LOGIN, json=credentials)
        assert response.status_code == 401
        assert response.json()["code"] == "INVALID_CREDENTIALS"
        assert "set-cookie" not in response.headers

    async def test_missing_password_is_a_400(self, client: httpx.AsyncClient) -> None:
        response = await client.post(LOGIN, json={"email": "alice@example.test"})
        assert response.status_code == 400
        assert response.json()["code"] == "VALIDATION_ERROR"

    async def test_cross_site_form_cannot_sign_anyone_in(
        self,
        client: httpx.AsyncClient,
        people: People,
    ) -> None:
        await people.user("alice@example.test")
        # a form on another site can send text/plain but not JSON without a CORS preflight
        response = await client.post(
            LOGIN,
            content=f'{{"email": "alice@example.test", "password": "{PASSWORD}"}}',
            headers={"content-type": "text/plain"},
        )
        assert response.status_code == 400
        assert response.json()["code"] == "VALIDATION_ERROR"
        assert "set-cookie" not in response.headers

    async def test_anonymous_me_is_401(self, client: httpx.AsyncClient) -> None:
        response = await client.get(ME)
        assert response.status_code == 401
        assert response.json()["code"] == "UNAUTHENTICATED"
        assert "Sign in" in response.json()["message"]

    async def test_login_page_posts_to_the_login_route(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/login", params={"next": "https://evil.example/"})
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/html")
        assert LOGIN in response.text
        assert "evil.example" not in response.text

    @pytest.mark.parametrize(
        "target",
        [
            "/\t/evil.example",
            "/\r/evil.example",
            "/\n/evil.example",
            "/ /evil.example",
            "//evil.example",
            "/\\evil.example",
            "\\/evil.example",
            "https://evil.example/",
            "javascript:alert('evil.example')",
            "evil.example",
            "/docs\x00//evil.example",
        ],
    )
    async def test_login_page_never_redirects_off_site(
        self, client: httpx.AsyncClient, target: str
    ) -> None:
        # httpx percent-encodes the value; the route sees it decoded, as from a browser link
        response = await client.get("/login", params={"next": target})
        assert response.status_code in {200, 400}
        if response.status_code == 400:
            assert response.json()["code"] == "VALIDATION_ERROR"
        assert "evil.example" not in response.text

    async def test_login_page_refuses_an_encoded_tab_in_the_link(
        self, client: httpx.AsyncClient
    ) -> None:
        # the reviewer's link, exactly as a victim would follow it
        response = await client.get("/login?next=/%09/evil.example")
        assert response.status_code == 200
        assert "evil.example" not in response.text

    async def test_login_page_keeps_a_same_site_path(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/login", params={"next": "/api/v1/projects?limit=5"})
        assert response.status_code == 200
        assert '"/api/v1/projects?limit=5"' in response.text.replace("\\u0026", "&")


class TestCsrf:
    async def test_cookie_post_without_token_is_403_and_with_token_succeeds(
        self,
        client: httpx.AsyncClient,
        people: People,
        tenants: Tenants,
    ) -> None:
        owner = await people.user("alice@example.test")
        project = await tenants.project(owner)
        csrf = await sign_in_over_http(client, "alice@example.test")
        payload = {"name": "sync job", "projectId": str(project.id)}

        refused = await client.post("/api-dashboard/keys/generate", json=payload)
        assert refused.status_code == 403
        assert refused.json()["code"] == "CSRF_FAILED"
        wrong = await client.post(
            "/api-dashboard/keys/generate", json=payload, headers={"X-CSRF-Token": "0" * 64}
        )
        assert wrong.status_code == 403
        assert wrong.json()["code"] == "CSRF_FAILED"
        listed = await client.get("/api-dashboard/keys")
        assert listed.json()["total"] == 0  # nothing was created by the refused requests

        accepted = await client.post(
            "/api-dashboard/keys/generate", json=payload, headers={"X-CSRF-Token": csrf}
        )
        assert accepted.status_code == 201

    @pytest.mark.parametrize("token", ["é" * 64, "\u00ff", "ü-not-the-token"])
    async def test_non_ascii_token_is_403(
        self, client: httpx.AsyncClient, people: People, token: str
    ) -> None:
        user = await people.user()
        here = await people.sign_in(user)
        response = await client.post(
            "/api/v1/auth/logout",
            headers=[
                *((name.encode(), value.encode()) for name, value in here.cookie.items()),
                (b"X-CSRF-Token", token.encode("utf-8")),  # raw UTF-8 bytes on the wire
            ],
        )
        assert response.status_code == 403
        assert response.json()["code"] == "CSRF_FAILED"
        assert (await client.get(ME, headers=here.cookie)).status_code == 200

    async def test_another_sessions_token_does_not_pass(
        self,
        client: httpx.AsyncClient,
        people: People,
    ) -> None:
        alice = await people.user("alice@example.test")
        other = await people.sign_in(alice)
        await sign_in_over_http(client, "alice@example.test")
        response = await client.post(
            "/api/v1/auth/logout",
            headers={**client_cookie(client), "X-CSRF-Token": other.started.csrf_token},
        )
        assert response.status_code == 403
        assert response.json()["code"] == "CSRF_FAILED"

    async def test_developer_token_needs_no_csrf(
        self,
        client: httpx.AsyncClient,
        people: People,
        tenants: Tenants,
    ) -> None:
        owner = await people.user()
        project = await tenants.project(owner)
        response = await client.post(
            "/api-dashboard/keys/generate",
            json={"name": "ci", "projectId": str(project.id)},
            headers=people.bearer(owner),
        )
        assert response.status_code == 201


async def _set_session_times(session: AsyncSession, signed_in: SignedIn, **values: object) -> None:
    await session.execute(
        update(ConsoleSession)
        .where(ConsoleSession.id == signed_in.started.session.id)
        .values(**values)
    )
    await session.flush()


class TestExpiry:
    async def test_idle_session_is_refused(
        self, client: httpx.AsyncClient, people: People, session: AsyncSession
    ) -> None:
        signed_in = await people.sign_in(await people.user())
        assert (await client.get(ME, headers=signed_in.cookie)).status_code == 200
        await _set_session_times(
            session, signed_in, idle_expires_at=utcnow() - timedelta(seconds=1)
        )
        response = await client.get(ME, headers=signed_in.cookie)
        assert response.status_code == 401
        assert response.json()["code"] == "UNAUTHENTICATED"
        assert "inactivity" in response.json()["message"]

    async def test_activity_extends_the_idle_deadline(
        self, client: httpx.AsyncClient, people: People, session: AsyncSession
    ) -> None:
        signed_in = await people.sign_in(await people.user())
        soon = utcnow() + timedelta(seconds=30)
        await _set_session_times(
            session, signed_in, idle_expires_at=soon, last_seen_at=utcnow() - timedelta(hours=1)
        )
        assert (await client.get(ME, headers=signed_in.cookie)).status_code == 200
        await session.refresh(signed_in.started.session)
        assert signed_in.started.session.idle_expires_at > soon + timedelta(minutes=10)

    async def test_absolute_expiry_holds_despite_activity(
        self, client: httpx.AsyncClient, people: People, session: AsyncSession
    ) -> None:
        signed_in = await people.sign_in(await people.user())
        await _set_session_times(session, signed_in, expires_at=utcnow() - timedelta(seconds=1))
        response = await client.get(ME, headers=signed_in.cookie)
        assert response.status_code == 401
        assert response.json()["code"] == "UNAUTHENTICATED"
        assert "expired" in response.json()["message"]


class TestRevocation:
    async def test_logout_revokes_the_session_server_side(
        self,
        client: httpx.AsyncClient,
        people: People,
    ) -> None:
        signed_in = await people.sign_in(await people.user())
        response = await client.post("/api/v1/auth/logout", headers=signed_in.unsafe)
        assert response.status_code == 204
        # a copy of the cookie kept by an attacker is useless now
        copied = await client.get(ME, headers=signed_in.cookie)
        assert copied.status_code == 401
        assert copied.json()["code"] == "UNAUTHENTICATED"

    async def test_password_change_revokes_other_sessions_and_tokens(
        self,
        client: httpx.AsyncClient,
        people: People,
    ) -> None:
        user = await people.user("alice@example.test")
        elsewhere = await people.sign_in(user)
        token = people.bearer(user)
        here = await people.sign_in(user)
        response = await client.post(
            "/api/v1/auth/password",
            json={"currentPassword": PASSWORD, "newPassword": "a brand new passphrase"},
            headers=here.unsafe,
        )
        assert response.status_code == 200
        new_csrf = response.json()["csrfToken"]
        other_session = await client.get(ME, headers=elsewhere.cookie)
        assert other_session.status_code == 401
        assert other_session.json()["code"] == "UNAUTHENTICATED"
        this_session = await client.get(ME, headers=here.cookie)
        assert this_session.status_code == 401
        assert this_session.json()["code"] == "UNAUTHENTICATED"
        developer_token = await client.get(ME, headers=token)
        assert developer_token.status_code == 401
        assert developer_token.json()["code"] == "UNAUTHENTICATED"
        # the browser that changed it got a fresh session
        client.cookies.clear()
        fresh = response.cookies.get("bw_session")
        assert (
            fresh
            and (await client.get(ME, headers={"Cookie": f"bw_session={fresh}"})).status_code == 200
        )
        assert new_csrf
        old = await client.post(LOGIN, json={"email": "alice@example.test", "password": PASSWORD})
        assert old.status_code == 401
        assert old.json()["code"] == "INVALID_CREDENTIALS"
        new = await client.post(
            LOGIN, json={"email": "alice@example.test", "password": "a brand new passphrase"}
        )
        assert new.status_code == 200

    async def test_wrong_current_password_changes_nothing(
        self,
        client: httpx.AsyncClient,
        people: People,
    ) -> None:
        user = await people.user()
        here = await people.sign_in(user)
        response = await client.post(
            "/api/v1/auth/password",
            json={"currentPassword": "not it at all", "newPassword": "a brand new passphrase"},
            headers=here.unsafe,
        )
        assert response.status_code == 400
        assert response.json()["code"] == "WRONG_PASSWORD"
        assert (await client.get(ME, headers=here.cookie)).status_code == 200

    async def test_weak_new_password_is_refused(
        self,
        client: httpx.AsyncClient,
        people: People,
    ) -> None:
        user = await people.user()
        response = await client.post(
            "/api/v1/auth/password",
            json={"currentPassword": PASSWORD, "newPassword": "short"},
            headers=people.bearer(user),
        )
        assert response.status_code == 400
        assert response.json()["code"] == "WEAK_PASSWORD"
