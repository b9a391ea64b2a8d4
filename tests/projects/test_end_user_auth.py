"""End users' own tokens: a project accepts a shared HS256 secret or its identity provider's
JWKS (a key server on a local port), under its own claim names, from a cookie with the Origin
checked, and `?test_mode=` where the token leaves the mode open."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from billwarden.auth import end_users
from billwarden.auth.end_users import EndUserKeysUnavailable
from billwarden.core.modes import Mode
from billwarden.core.subjects import Subject, SubjectType
from billwarden.errors import InvalidInput
from billwarden.projects.end_user_auth import EndUserAuthInput, EndUserAuthService, validate
from billwarden.projects.models import EndUserAuthMethod
from billwarden.projects.single_tenant import sync_single_tenant_project
from billwarden_emulator.testing import serving
from tests.compat.single_tenant import single_tenant
from tests.conftest import Scratch
from tests.entitlements.factories import Snapshots
from tests.identity.factories import People
from tests.projects.factories import ProjectWithSecret, Tenants

ISSUER = "https://id.example.test/"
AUDIENCE = "billing-api"
SHARED = "the-apps-own-session-secret-0123456789abcdef"
ORIGIN = "https://app.example.test"


@dataclass
class KeyServer:
    """An identity provider's JWKS endpoint: its keys can change, its fetches are counted."""

    url: str = ""
    keys: dict[str, Any] = field(default_factory=dict)
    fetches: int = 0

    def add_rsa(self, kid: str) -> rsa.RSAPrivateKey:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.keys[kid] = ("RS256", key)
        return key

    def add_ec(self, kid: str) -> ec.EllipticCurvePrivateKey:
        key = ec.generate_private_key(ec.SECP256R1())
        self.keys[kid] = ("ES256", key)
        return key

    def jwks(self) -> dict[str, Any]:
        found = []
        for kid, (algorithm, key) in self.keys.items():
            if algorithm == "RS256":
                jwk = jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
            else:
                jwk = jwt.algorithms.ECAlgorithm.to_jwk(key.public_key(), as_dict=True)
            found.append({**jwk, "kid": kid, "use": "sig", "alg": algorithm})
        return {"keys": found}

    def token(self, kid: str, *, key: Any = None, **claims: Any) -> str:
        algorithm, own = self.keys[kid]
        body = {"sub": "idp-user-1", "iss": ISSUER, "aud": AUDIENCE, "exp": time.time() + 600}
        return jwt.encode({**body, **claims}, key or own, algorithm=algorithm, headers={"kid": kid})


@pytest.fixture
def key_server() -> Iterator[KeyServer]:
    server = KeyServer()

    async def jwks(request: Request) -> JSONResponse:
        server.fetches += 1
        return JSONResponse(server.jwks())

    with serving(Starlette(routes=[Route("/.well-known/jwks.json", jwks)])) as url:
        server.url = f"{url}/.well-known/jwks.json"
        yield server


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _project(people: People, tenants: Tenants) -> tuple[ProjectWithSecret, dict[str, str]]:
    owner = await people.user()
    return await tenants.project(owner), people.bearer(owner)


def _path(project: ProjectWithSecret) -> str:
    return f"/api/v1/projects/{project.id}/end-user-auth"


ME = "/api/v1/entitlements/me"


class TestTheSetting:
    async def test_defaults_refusals_and_a_write_only_secret(
        self, client: httpx.AsyncClient, people: People, tenants: Tenants
    ) -> None:
        project, owner = await _project(people, tenants)
        default = await client.get(_path(project), headers=owner)
        assert default.status_code == 200, default.text
        assert default.json()["method"] == "project_secret"
        assert default.json()["sharedSecretSet"] is False
        assert default.json()["claims"] == {
            "user": "sub",
            "organization": "organization_id",
            "email": "email",
            "roles": "role",
        }
        refused = {
            "sharedSecret": {"method": "shared_secret"},
            "issuer": {"method": "jwks", "jwksUrl": "https://id.example.test/jwks"},
            "jwksUrl": {
                "method": "jwks",
                "jwksUrl": "https://user:password@id.example.test/jwks",
                "issuer": ISSUER,
                "audience": AUDIENCE,
            },
            "cookie": {"cookie": "bw_session"},
            "allowedOrigins": {"allowedOrigins": ["https://app.example.test/path"]},
        }
        for field_name, body in refused.items():
            answer = await client.put(_path(project), json=body, headers=owner)
            assert answer.status_code == 400, (field_name, answer.text)
            assert answer.json()["code"] == "VALIDATION_ERROR"
            assert answer.json()["details"].get("field") == field_name, answer.json()
        short = await client.put(
            _path(project), json={"method": "shared_secret", "sharedSecret": "short"}, headers=owner
        )
        assert short.status_code == 400
        assert short.json()["code"] == "VALIDATION_ERROR"
        unchanged = await client.get(_path(project), headers=owner)
        assert unchanged.json()["method"] == "project_secret"  # nothing half-written

        written = await client.put(
            _path(project),
            json={"method": "shared_secret", "sharedSecret": SHARED, "adminRoles": ["OWNER"]},
            headers=owner,
        )
        assert written.status_code == 200, written.text
        assert written.json()["sharedSecretSet"] is True
        assert written.json()["adminRoles"] == ["OWNER"]
        # the secret is kept when left out, and never answered or audited
        kept = await client.put(
            _path(project), json={"method": "shared_secret", "cookie": "app_session"}, headers=owner
        )
        assert kept.status_code == 200, kept.text
        assert kept.json()["sharedSecretSet"] is True
        audit = await client.get(f"/api/v1/admin/audit?projectId={project.id}", headers=owner)
        assert audit.status_code == 200
        actions = [entry["action"] for entry in audit.json()["items"]]
        assert actions.count("project.end_user_auth_updated") == 2
        for answer in (written, kept, audit, await client.get(_path(project), headers=owner)):
            assert SHARED not in answer.text
        token = jwt.encode(
            {"sub": "u1", "project_id": str(project.id), "exp": time.time() + 60}, SHARED
        )
        assert (await client.get(ME, headers=_bearer(token))).status_code == 200


class TestSharedSecret:
    async def test_the_apps_tokens_under_its_own_claim_names(
        self, client: httpx.AsyncClient, people: People, tenants: Tenants
    ) -> None:
        project, owner = await _project(people, tenants)
        answer = await client.put(
            _path(project),
            json={
                "method": "shared_secret",
                "sharedSecret": SHARED,
                "claims": {
                    "user": "uid",
                    "organization": "team",
                    "email": "mail",
                    "roles": "roles",
                },
            },
            headers=owner,
        )
        assert answer.status_code == 200, answer.text
        claims = {"project_id": str(project.id), "exp": time.time() + 60}
        token = jwt.encode(
            {**claims, "uid": 42, "team": "acme", "mail": "a@example.test", "roles": ["ADMIN"]},
            SHARED,
        )
        me = await client.get(ME, headers=_bearer(token))
        assert me.status_code == 200, me.text
        assert me.json()["entitlement"]["subjectType"] == "organization"
        assert me.json()["entitlement"]["subjectId"] == "acme"
        assert me.json()["entitlement"]["userEmail"] == "a@example.test"

        cases = {
            "the project's own secret no longer verifies": jwt.encode(
                {**claims, "uid": "u1"}, project.end_user_secret
            ),
            "no user claim": jwt.encode({**claims, "sub": "u1"}, SHARED),
            "roles of the wrong type": jwt.encode({**claims, "uid": "u1", "roles": 7}, SHARED),
            "expired": jwt.encode({**claims, "uid": "u1", "exp": time.time() - 10}, SHARED),
        }
        for case, token in cases.items():
            answer = await client.get(ME, headers=_bearer(token))
            assert answer.status_code == 401, (case, answer.text)
            assert answer.json()["code"] == "UNAUTHENTICATED", case


class TestJwks:
    async def test_identity_provider_tokens_keys_refreshed_on_an_unknown_kid(
        self,
        client: httpx.AsyncClient,
        people: People,
        tenants: Tenants,
        key_server: KeyServer,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        # an unknown kid makes billwarden fetch the keys again at most every 30 s: the test moves
        # the windows' clock on rather than waiting (a wall-clock window failed on a busy machine)
        elapsed = [0.0]
        monkeypatch.setattr(end_users, "_clock", lambda: time.monotonic() + elapsed[0])
        project, owner = await _project(people, tenants)
        key_server.add_rsa("k1")
        key_server.add_ec("e1")
        answer = await client.put(
            _path(project),
            json={
                "method": "jwks",
                "jwksUrl": key_server.url,
                "issuer": ISSUER,
                "audience": AUDIENCE,
            },
            headers=owner,
        )
        assert answer.status_code == 200, answer.text
        pid = {"project_id": str(project.id)}
        for kid in ("k1", "e1"):
            me = await client.get(ME, headers=_bearer(key_server.token(kid, **pid)))
            assert me.status_code == 200, (kid, me.text)
            assert me.json()["entitlement"]["subjectId"] == "idp-user-1"
        assert key_server.fetches == 1  # the keys are kept

        stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        public_pem = (
            key_server.keys["k1"][1]
            .public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
        refused = {
            "signed by another key": key_server.token("k1", key=stranger, **pid),
            "expired": key_server.token("k1", exp=time.time() - 120, **pid),
            "for another audience": key_server.token("k1", aud="someone-else", **pid),
            "from another issuer": key_server.token("k1", iss="https://evil.example.test/", **pid),
            # HS256 keyed with the public key: the classic algorithm confusion
            "HS256 with the public key": _hs256_with(public_pem, pid),
            # an RSA signature naming the EC key (key ids are public)
            "RS256 naming an EC key": jwt.encode(
                {"sub": "x", "iss": ISSUER, "aud": AUDIENCE, "exp": time.time() + 60, **pid},
                stranger,
                algorithm="RS256",
                headers={"kid": "e1"},
            ),
        }
        for case, token in refused.items():
            answer = await client.get(ME, headers=_bearer(token))
            assert answer.status_code == 401, (case, answer.text)
            assert answer.json()["code"] == "UNAUTHENTICATED", case

        key_server.add_rsa("k2")  # the provider rotates: billwarden fetches the keys again
        elapsed[0] += end_users.JWKS_MIN_REFETCH + 1
        rotated = await client.get(ME, headers=_bearer(key_server.token("k2", **pid)))
        assert rotated.status_code == 200, rotated.text
        assert key_server.fetches == 2
        key_server.add_rsa("k3")  # another unknown kid at once: not fetched again yet
        too_soon = await client.get(ME, headers=_bearer(key_server.token("k3", **pid)))
        assert too_soon.status_code == 401
        assert key_server.fetches == 2

    async def test_an_unreachable_provider_with_no_keys_is_503(
        self, client: httpx.AsyncClient, people: People, tenants: Tenants, key_server: KeyServer
    ) -> None:
        project, owner = await _project(people, tenants)
        key_server.add_rsa("k1")
        answer = await client.put(
            _path(project),
            json={
                "method": "jwks",
                "jwksUrl": "http://127.0.0.1:9/jwks.json",  # nothing listens on the discard port
                "issuer": ISSUER,
                "audience": AUDIENCE,
            },
            headers=owner,
        )
        assert answer.status_code == 200, answer.text
        token = key_server.token("k1", project_id=str(project.id))
        down = await client.get(ME, headers=_bearer(token))
        assert down.status_code == 503, down.text
        assert down.json()["code"] == "END_USER_KEYS_UNAVAILABLE"


def _hs256_with(public_pem: bytes, claims: dict[str, str]) -> str:
    """A token an attacker makes by HMAC-signing with the provider's public key (PyJWT refuses
    to encode it, so the signature is made by hand)."""
    import base64
    import hashlib
    import hmac
    import json

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    header = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "k1"}).encode())
    body = b64(
        json.dumps(
            {"sub": "x", "iss": ISSUER, "aud": AUDIENCE, "exp": int(time.time()) + 60, **claims}
        ).encode()
    )
    signature = hmac.new(public_pem, f"{header}.{body}".encode(), hashlib.sha256).digest()
    return f"{header}.{body}.{b64(signature)}"


class TestCookie:
    async def test_the_apps_cookie_reads_and_unsafe_calls_need_an_allowed_origin(
        self, client: httpx.AsyncClient, people: People, tenants: Tenants
    ) -> None:
        project, owner = await _project(people, tenants)
        answer = await client.put(
            _path(project),
            json={
                "method": "shared_secret",
                "sharedSecret": SHARED,
                "cookie": "app_session",
                "allowedOrigins": [ORIGIN],
            },
            headers=owner,
        )
        assert answer.status_code == 200, answer.text
        token = jwt.encode(
            {"sub": "u1", "project_id": str(project.id), "exp": time.time() + 60}, SHARED
        )
        cookie = {"Cookie": f"app_session={token}"}
        read = await client.get(ME, headers=cookie)
        assert read.status_code == 200, read.text
        check = "/api/v1/entitlements/check"
        body = {"feature": "premium"}
        for origin in (None, "https://evil.example.test"):
            headers = {**cookie, **({"Origin": origin} if origin else {})}
            refused = await client.post(check, json=body, headers=headers)
            assert refused.status_code == 403, (origin, refused.text)
            assert refused.json()["code"] == "ORIGIN_NOT_ALLOWED"
        allowed = await client.post(check, json=body, headers={**cookie, "Origin": ORIGIN})
        assert allowed.status_code == 200, allowed.text
        assert allowed.json()["allowed"] is False
        # another project's cookie name, sent too, does not shadow this project's
        other_project, other_owner = await _project(people, tenants)
        shadow = await client.put(
            _path(other_project),
            json={"method": "shared_secret", "sharedSecret": SHARED, "cookie": "_aa"},
            headers=other_owner,
        )
        assert shadow.status_code == 200, shadow.text
        both = await client.get(ME, headers={"Cookie": f"_aa=GA1.1.123; app_session={token}"})
        assert both.status_code == 200, both.text
        # another cookie name is not read; a bearer token needs no Origin
        other = await client.get(ME, headers={"Cookie": f"session={token}"})
        assert other.status_code == 401
        assert other.json()["code"] == "UNAUTHENTICATED"
        bearer = await client.post(check, json=body, headers=_bearer(token))
        assert bearer.status_code == 200


class TestTestMode:
    async def test_mode_from_query_takes_a_json_boolean_only(
        self, client: httpx.AsyncClient, people: People, tenants: Tenants
    ) -> None:
        owner = await people.user()
        project = await tenants.project(owner)
        for value in (1, "yes", "true", 0):
            refused = await client.put(
                _path(project), json={"modeFromQuery": value}, headers=people.bearer(owner)
            )
            assert refused.status_code == 400, (value, refused.text)
            assert refused.json()["code"] == "VALIDATION_ERROR"
            assert refused.json()["details"]["fields"][0]["field"] == "modeFromQuery"
        kept = await client.get(_path(project), headers=people.bearer(owner))
        assert kept.json()["modeFromQuery"] is False

    async def test_test_mode_picks_the_mode_only_where_the_project_lets_it(
        self, client: httpx.AsyncClient, session: AsyncSession, people: People, tenants: Tenants
    ) -> None:
        owner = await people.user()
        project = await tenants.project(owner)
        key = await people.api_key(project, owner)
        await Snapshots(session).granted(
            project.id, Subject(SubjectType.USER, "u1"), mode=Mode.LIVE
        )
        claims = {"sub": "u1", "project_id": str(project.id), "exp": time.time() + 60}
        open_token = jwt.encode(claims, project.end_user_secret)
        test_token = jwt.encode({**claims, "mode": "test"}, project.end_user_secret)
        default = await client.get(ME, headers=_bearer(open_token))
        assert default.json()["hasPremiumAccess"] is False  # test mode: nothing bought
        same = await client.get(f"{ME}?test_mode=true", headers=_bearer(open_token))
        assert same.status_code == 200, same.text
        # a token's default mode is fixed unless the project lets the query choose
        fixed = await client.get(f"{ME}?test_mode=false", headers=_bearer(open_token))
        assert fixed.status_code == 403, fixed.text
        assert fixed.json()["code"] == "MODE_MISMATCH"
        allowed = await client.put(
            _path(project), json={"modeFromQuery": True}, headers=people.bearer(owner)
        )
        assert allowed.status_code == 200, allowed.text
        assert allowed.json()["modeFromQuery"] is True
        live = await client.get(f"{ME}?test_mode=false", headers=_bearer(open_token))
        assert live.status_code == 200, live.text
        assert live.json()["hasPremiumAccess"] is True
        for credential in (test_token, key):  # a mode claim and a key's mode stay fixed
            refused = await client.post(
                "/api/v1/entitlements/check?test_mode=false",
                json={"feature": "premium", "subjectId": "u1"}
                if credential == key
                else {"feature": "premium"},
                headers=_bearer(credential),
            )
            assert refused.status_code == 403, refused.text
            assert refused.json()["code"] == "MODE_MISMATCH"


class TestPrivateHosts:
    def test_outside_development_the_api_takes_public_https_hosts_only(self) -> None:
        for url in (
            "http://id.example.test/jwks",
            "https://10.0.0.1/jwks",
            "https://169.254.169.254/latest/meta-data",
            "https://[::ffff:a9fe:a9fe]/jwks",
            "https://127.0.0.1:8443/jwks",
            "https://localhost/jwks",
        ):
            config = EndUserAuthInput(
                method=EndUserAuthMethod.JWKS, jwks_url=url, issuer=ISSUER, audience=AUDIENCE
            )
            with pytest.raises(InvalidInput) as refused:
                validate(config)
            assert refused.value.details == {"field": "jwksUrl"}, url
        validate(
            EndUserAuthInput(
                method=EndUserAuthMethod.JWKS,
                jwks_url="https://id.example.test/.well-known/jwks.json",
                issuer=ISSUER,
                audience=AUDIENCE,
            )
        )

    async def test_a_fetch_outside_development_refuses_a_host_on_a_private_network(
        self, key_server: KeyServer
    ) -> None:
        key_server.add_rsa("k1")
        loopback_https = key_server.url.replace("http://", "https://")
        with pytest.raises(EndUserKeysUnavailable):
            await end_users.JwksKeys().key(loopback_https, "k1", "RS256")
        assert key_server.fetches == 0
        # the operator's own URL, and development, may be anywhere
        trusted = end_users.JwksKeys(trusted=frozenset([key_server.url]))
        assert await trusted.key(key_server.url, "k1", "RS256") is not None
        assert key_server.fetches == 1


class TestSingleTenantEnvironment:
    async def test_identity_provider_tokens_without_project_id_and_the_setting_is_the_envs(
        self, scratch: Scratch, emulator_url: str, tmp_path: Path, key_server: KeyServer
    ) -> None:
        key_server.add_rsa("k1")
        async with single_tenant(
            scratch,
            emulator_url,
            tmp_path,
            end_user_secret=None,
            end_user_jwks_url=key_server.url,
            end_user_issuer=ISSUER,
            end_user_audience=AUDIENCE,
            end_user_admin_roles=["OWNER"],
        ) as st:
            me = await st.http.get(ME, headers=_bearer(key_server.token("k1")))
            assert me.status_code == 200, me.text
            assert me.json()["entitlement"]["userExternalId"] == "idp-user-1"
            # the shared secret is not accepted: the environment chose the provider
            hs = await st.http.get(ME, headers=_bearer(st.token("u1")))
            assert hs.status_code == 401
            admin = await st.console_admin()
            path = f"/api/v1/projects/{st.project_id}/end-user-auth"
            shown = await st.http.get(path, headers=_bearer(admin))
            assert shown.status_code == 200, shown.text
            assert shown.json()["method"] == "jwks"
            assert shown.json()["fromEnvironment"] is True
            assert shown.json()["adminRoles"] == ["OWNER"]
            refused = await st.http.put(path, json={}, headers=_bearer(admin))
            assert refused.status_code == 409, refused.text
            assert refused.json()["code"] == "CONFIGURED_BY_ENVIRONMENT"

    async def test_a_shared_secret_from_the_environment(
        self, scratch: Scratch, emulator_url: str, tmp_path: Path
    ) -> None:
        async with single_tenant(
            scratch, emulator_url, tmp_path, end_user_secret=SecretStr(SHARED)
        ) as st:
            token = st.token("u-42", email="u42@example.test", secret=SHARED)
            me = await st.http.get(ME, headers=st.bearer(token))
            assert me.status_code == 200, me.text
            assert me.json()["entitlement"]["userEmail"] == "u42@example.test"
            named = jwt.encode(
                {"sub": "u1", "project_id": str(uuid.uuid4()), "exp": time.time() + 60}, SHARED
            )
            other = await st.http.get(ME, headers=st.bearer(named))
            assert other.status_code == 401  # a token naming another project is that project's
            # an identity provider's numeric user id is its decimal string
            numeric = jwt.encode({"sub": 1234, "exp": time.time() + 60}, SHARED)
            as_number = await st.http.get(ME, headers=st.bearer(numeric))
            assert as_number.status_code == 200, as_number.text
            assert as_number.json()["entitlement"]["userExternalId"] == "1234"

        # the variables removed, the next start removes what they set: the secret stops working
        plain = scratch.settings.model_copy(
            update={"single_tenant_secret_key": st.settings.single_tenant_secret_key}
        )
        async with scratch.writing() as session:
            await sync_single_tenant_project(session, scratch.secret_box, plain)
        async with scratch.session() as session:
            assert await EndUserAuthService(session, scratch.secret_box).get(st.project_id) is None
