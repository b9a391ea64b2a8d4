"""Seed 002 (multi-tenant payments) through its own routes, which are billwarden's canonical
`/api/v1/payments/...` routes: a console user signs in for a developer token, makes a project
through the API and configures it (Stripe credentials of an emulator account, a catalog, the
end-user secret); end users buy, pay, change plan and cancel with tokens signed with that secret
while the emulator delivers Stripe's events to the project's webhook URL; the developer reads the
project's lists and the figures across projects. `test_mode` (default true) selects the mode of
every route that takes it; an end-user token carries its mode in its `mode` claim."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import orjson
import stripe

from billwarden.app import create_app
from billwarden_emulator.testing import serving
from tests.checkout.factories import MONTHLY, catalog_document, make_prices
from tests.conftest import Scratch
from tests.factories import Factories
from tests.identity.factories import PASSWORD
from tests.webhooks.factories import signed, stripe_event

STRIPE = "/api/v1/payments/stripe"
DAY = 86400
YEARLY = 9000
# the events the seed's webhook table names, each applied by the project's webhook route
SEED_EVENTS = {
    "checkout.session.completed",
    "customer.subscription.created",
    "customer.subscription.updated",
    "customer.subscription.deleted",
    "invoice.paid",
    "invoice.payment_failed",
}


@dataclass
class Account:
    """An emulator account (one Stripe secret key) with the catalog's prices and a webhook
    endpoint delivering to the project's webhook URL for the key's mode."""

    key: str
    stripe: stripe.StripeClient
    prices: dict[str, str]
    webhook_secret: str


@dataclass
class Tenant:
    """A served billwarden and a project made through its API by a console user."""

    scratch: Scratch
    url: str
    emulator_url: str
    http: httpx.AsyncClient
    developer: dict[str, str]
    project_id: str
    end_user_secret: str
    accounts: dict[str, Account] = field(default_factory=dict)

    def config(self, suffix: str = "config") -> str:
        return f"{STRIPE}/projects/{self.project_id}/{suffix}"

    def token(self, sub: str, *, mode: str | None = "test", secret: str | None = None) -> str:
        """An end user's token as the tenant's backend signs it (`mode=None`: no mode claim)."""
        claims: dict[str, Any] = {
            "sub": sub,
            "project_id": self.project_id,
            "email": f"{sub}@example.test",
            "exp": int(time.time()) + 600,
        }
        if mode is not None:
            claims["mode"] = mode
        return jwt.encode(claims, secret or self.end_user_secret, algorithm="HS256")

    @staticmethod
    def bearer(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    def account(self, mode: str) -> Account:
        """A new emulator account for `mode` (sk_test_/sk_live_), its webhook endpoint pointing
        at this project's webhook URL for that mode."""
        key = f"sk_{mode}_{uuid.uuid4().hex}"
        client = stripe.StripeClient(key, base_addresses={"api": self.emulator_url})
        endpoint = client.v1.webhook_endpoints.create(
            {
                "url": f"{self.url}{STRIPE}/webhooks/{self.project_id}/{mode}",
                "enabled_events": ["*"],
            }
        )
        assert endpoint.secret is not None
        account = Account(key, client, make_prices(client), endpoint.secret)
        self.accounts[mode] = account
        return account

    async def emulator(self, mode: str, path: str, **body: Any) -> dict[str, Any]:
        async with httpx.AsyncClient(base_url=self.emulator_url) as client:
            answer = await client.post(
                path, json=body, headers={"Authorization": f"Bearer {self.accounts[mode].key}"}
            )
        assert answer.status_code == 200, answer.text
        result: dict[str, Any] = answer.json()
        return result

    async def pay(self, session_id: str, mode: str = "test") -> None:
        """Complete the checkout as the customer would on Stripe's page."""
        await self.emulator(mode, f"/_emulator/checkout/sessions/{session_id}/complete")

    async def checkout(self, token: str, purchase_key: str) -> str:
        answer = await self.http.post(
            f"{STRIPE}/checkout-session",
            json={"purchaseKey": purchase_key},
            headers=self.bearer(token),
        )
        assert answer.status_code == 201, answer.text
        assert set(answer.json()) == {"sessionId", "url"}
        session_id: str = answer.json()["sessionId"]
        return session_id

    async def get(self, path: str, headers: dict[str, str], **params: Any) -> Any:
        """A 200 answer's body."""
        answer = await self.http.get(path, params=params, headers=headers)
        assert answer.status_code == 200, answer.text
        return answer.json()

    async def post(self, path: str, headers: dict[str, str], **body: Any) -> Any:
        """A 200 answer's body."""
        answer = await self.http.post(path, json=body, headers=headers)
        assert answer.status_code == 200, answer.text
        return answer.json()


def refused(answer: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The error envelope of a refusal with this status and code."""
    assert answer.status_code == status, answer.text
    body: dict[str, Any] = answer.json()
    assert body["code"] == code, body
    assert set(body) == {"code", "message", "details"}
    return body


async def eventually(
    read: Callable[[], Awaitable[Any]], done: Callable[[Any], bool], within: float = 15.0
) -> Any:
    """`await read()` once `done` holds for it (Stripe's events arrive asynchronously)."""
    deadline = time.monotonic() + within
    while True:
        answer = await read()
        if done(answer):
            return answer
        assert time.monotonic() < deadline, answer
        await asyncio.sleep(0.05)


async def console_user(scratch: Scratch) -> str:
    """A console user's email (password: the factories' PASSWORD)."""
    email = f"dev-{uuid.uuid4().hex[:8]}@example.test"

    async def build(made: Factories) -> None:
        await made.people.user(email)

    await scratch.setup(build)
    return email


@asynccontextmanager
async def tenant(scratch: Scratch, emulator_url: str) -> AsyncIterator[Tenant]:
    """billwarden served over HTTP with its embedded worker; a console user's developer token
    (POST /api/v1/auth/token) and a project made with it (POST /api/v1/projects), whose
    end-user secret is rotated once through the API."""
    email = await console_user(scratch)
    served = scratch.settings.model_copy(
        update={"stripe_api_base": emulator_url, "worker_poll_seconds": 0.5}
    )
    with serving(create_app(served, configure_logs=False)) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            grant = await http.post(
                "/api/v1/auth/token", data={"username": email, "password": PASSWORD}
            )
            assert grant.status_code == 200, grant.text
            developer = {"Authorization": f"Bearer {grant.json()['access_token']}"}
            created = await http.post(
                "/api/v1/projects", json={"name": "Acme payments"}, headers=developer
            )
            assert created.status_code == 201, created.text
            project_id = created.json()["id"]
            rotated = await http.post(
                f"/api/v1/projects/{project_id}/end-user-secret/rotate", headers=developer
            )
            assert rotated.status_code == 200, rotated.text
            secret = rotated.json()["endUserSecret"]
            assert secret != created.json()["endUserSecret"]
            yield Tenant(scratch, url, emulator_url, http, developer, project_id, secret)


async def put_catalog(tenant: Tenant, document: dict[str, Any]) -> None:
    answer = await tenant.http.put(
        f"/api/v1/projects/{tenant.project_id}/catalog", json=document, headers=tenant.developer
    )
    assert answer.status_code == 200, answer.text


async def another_console_user(tenant: Tenant) -> tuple[str, dict[str, str]]:
    """A console user of no project yet: their email and developer token."""
    email = await console_user(tenant.scratch)
    grant = await tenant.http.post(
        "/api/v1/auth/token", data={"username": email, "password": PASSWORD}
    )
    assert grant.status_code == 200, grant.text
    return email, {"Authorization": f"Bearer {grant.json()['access_token']}"}


def window() -> dict[str, str]:
    """A stats window around the test clocks' months ahead."""
    now = datetime.now(UTC)
    return {
        "from": (now - timedelta(days=1)).isoformat(),
        "to": (now + timedelta(days=90)).isoformat(),
    }


class TestStripeConfiguration:
    async def test_configure_validate_and_deactivate_per_mode_with_access_rules(
        self, scratch: Scratch, emulator_url: str
    ) -> None:
        async with tenant(scratch, emulator_url) as t:
            account = t.account("test")
            live_key = f"sk_live_{uuid.uuid4().hex}"
            empty = await t.get(t.config(), t.developer)
            assert empty["status"] == "not_configured"
            assert empty["mode"] == "test"
            assert empty["secretKey"] is None and empty["webhookSecrets"] == []
            live_empty = await t.get(t.config(), t.developer, test_mode="false")
            assert (live_empty["mode"], live_empty["status"]) == ("live", "not_configured")
            assert live_empty["webhookUrl"].endswith(f"/webhooks/{t.project_id}/live")
            refused(
                await t.http.post(t.config("validate-credentials"), headers=t.developer),
                404,
                "STRIPE_NOT_CONFIGURED",
            )

            # keys must match the mode the query selects
            wrong_mode = await t.http.put(
                t.config(), json={"secretKey": live_key}, headers=t.developer
            )
            assert refused(wrong_mode, 400, "INVALID_STRIPE_KEY")["details"]["field"] == (
                "secretKey"
            )
            refused(
                await t.http.put(
                    t.config(),
                    params={"test_mode": "false"},
                    json={"secretKey": account.key},
                    headers=t.developer,
                ),
                400,
                "INVALID_STRIPE_KEY",
            )
            refused(
                await t.http.put(
                    t.config(),
                    json={"secretKey": account.key, "publishableKey": "pk_live_abc123"},
                    headers=t.developer,
                ),
                400,
                "INVALID_STRIPE_KEY",
            )
            # a first configuration needs its secret key
            refused(
                await t.http.put(t.config(), json={"webhookSecrets": []}, headers=t.developer),
                400,
                "VALIDATION_ERROR",
            )
            refused(
                await t.http.get(t.config(), params={"test_mode": "maybe"}, headers=t.developer),
                400,
                "VALIDATION_ERROR",
            )

            put = await t.http.put(
                t.config(),
                json={
                    "secretKey": account.key,
                    "publishableKey": "pk_test_publishable0002",
                    "webhookSecrets": [account.webhook_secret],
                },
                headers=t.developer,
            )
            assert put.status_code == 200, put.text
            configured = put.json()
            assert set(configured) == {
                "projectId",
                "mode",
                "status",
                "secretKey",
                "publishableKey",
                "webhookSecrets",
                "webhookUrl",
                "updatedAt",
            }
            assert (configured["projectId"], configured["mode"]) == (t.project_id, "test")
            assert configured["status"] == "configured"
            assert configured["secretKey"] == f"sk_test_...{account.key[-4:]}"
            assert configured["publishableKey"] == "pk_test_publishable0002"
            (signing,) = configured["webhookSecrets"]
            assert signing["active"] is True
            assert signing["secret"] == f"whsec_...{account.webhook_secret[-4:]}"
            assert account.key not in put.text and account.webhook_secret not in put.text
            assert await t.get(t.config(), t.developer, test_mode="true") == configured
            # the live mode is a configuration of its own
            assert (await t.get(t.config(), t.developer, test_mode="false"))["status"] == (
                "not_configured"
            )

            urls = await t.get(t.config("webhook-urls"), t.developer)
            base = f"https://billing.example.test{STRIPE}/webhooks/{t.project_id}"
            assert urls == {
                "projectId": t.project_id,
                "test": f"{base}/test",
                "live": f"{base}/live",
            }
            assert configured["webhookUrl"] == urls["test"]

            valid = await t.post(t.config("validate-credentials"), t.developer)
            assert valid == {
                "projectId": t.project_id,
                "mode": "test",
                "valid": True,
                "livemode": False,
                "error": None,
            }
            refused(
                await t.http.post(
                    t.config("validate-credentials"),
                    params={"test_mode": "false"},
                    headers=t.developer,
                ),
                404,
                "STRIPE_NOT_CONFIGURED",
            )

            # live mode: sk_live_ keys, its own URL and its own credential check
            live = await t.http.put(
                t.config(),
                params={"test_mode": "false"},
                json={"secretKey": live_key, "publishableKey": "pk_live_publishable0003"},
                headers=t.developer,
            )
            assert live.status_code == 200, live.text
            assert (live.json()["mode"], live.json()["status"]) == ("live", "configured")
            assert live.json()["secretKey"] == f"sk_live_...{live_key[-4:]}"
            assert live.json()["webhookUrl"] == urls["live"]
            live_check = await t.http.post(
                t.config("validate-credentials"),
                params={"test_mode": "false"},
                headers=t.developer,
            )
            assert live_check.status_code == 200, live_check.text
            assert (live_check.json()["mode"], live_check.json()["valid"]) == ("live", True)
            assert live_check.json()["livemode"] is True
            assert (await t.get(t.config(), t.developer))["secretKey"] == configured["secretKey"]

            overview = await t.get("/api/v1/payments/projects", t.developer)
            (project,) = overview["data"]
            assert (project["projectId"], project["name"]) == (t.project_id, "Acme payments")
            for mode in ("test", "live"):
                assert project[mode]["configured"] is True
                assert project[mode]["credentialsValid"] is True
                assert project[mode]["credentialsCheckedAt"] is not None

            # who may do what: no credentials, an end user, a stranger, a member
            refused(await t.http.get(t.config()), 401, "UNAUTHENTICATED")
            end_user = t.bearer(t.token("ada"))
            refused(await t.http.get(t.config(), headers=end_user), 401, "UNAUTHENTICATED")
            refused(
                await t.http.get("/api/v1/payments/stats", headers=end_user),
                401,
                "UNAUTHENTICATED",
            )
            email, other = await another_console_user(t)
            for path in ("config", "webhook-urls", "subscriptions", "payments"):
                refused(await t.http.get(t.config(path), headers=other), 404, "PROJECT_NOT_FOUND")
            assert (await t.get("/api/v1/payments/projects", other))["data"] == []
            refused(
                await t.http.get(
                    "/api/v1/payments/subscriptions",
                    params={"projectId": t.project_id},
                    headers=other,
                ),
                404,
                "PROJECT_NOT_FOUND",
            )
            invited = await t.http.post(
                f"/api/v1/projects/{t.project_id}/members",
                json={"email": email, "role": "member"},
                headers=t.developer,
            )
            assert invited.status_code == 201, invited.text
            added = await t.http.post(
                "/api/v1/invitations/accept", json={"token": invited.json()["token"]}, headers=other
            )
            assert added.status_code == 200, added.text
            assert (await t.get(t.config(), other))["secretKey"] == configured["secretKey"]
            assert (await t.get(t.config("webhook-urls"), other)) == urls
            for write in (
                t.http.put(t.config(), json={"secretKey": account.key}, headers=other),
                t.http.delete(t.config(), headers=other),
                t.http.post(t.config("validate-credentials"), headers=other),
            ):
                refused(await write, 403, "PROJECT_ADMIN_REQUIRED")

            # deactivation, per mode; the history stays, a second one has nothing to deactivate
            gone = await t.http.delete(
                t.config(), params={"test_mode": "false"}, headers=t.developer
            )
            assert gone.status_code == 200, gone.text
            assert (gone.json()["mode"], gone.json()["status"]) == ("live", "not_configured")
            refused(
                await t.http.delete(t.config(), params={"test_mode": "false"}, headers=t.developer),
                404,
                "STRIPE_NOT_CONFIGURED",
            )
            assert (await t.get(t.config(), t.developer))["status"] == "configured"
            (project,) = (await t.get("/api/v1/payments/projects", t.developer))["data"]
            assert (project["test"]["configured"], project["live"]["configured"]) == (True, False)


class TestPaymentsEndToEnd:
    async def test_buy_pay_change_fail_and_cancel_through_the_seeds_routes(
        self, scratch: Scratch, emulator_url: str
    ) -> None:
        async with tenant(scratch, emulator_url) as t:
            account = t.account("test")
            await put_catalog(t, catalog_document(account.prices))
            ada, bo = t.token("ada"), t.token("bo")
            ada_h, bo_h = t.bearer(ada), t.bearer(bo)

            # no Stripe configuration yet: nothing to sell, nothing to receive
            refused(
                await t.http.post(
                    f"{STRIPE}/checkout-session",
                    json={"purchaseKey": "premium_monthly"},
                    headers=ada_h,
                ),
                409,
                "STRIPE_NOT_CONFIGURED",
            )
            body = orjson.dumps(stripe_event("balance.available", object_id="txn_1"))
            webhook = f"{STRIPE}/webhooks/{t.project_id}/test"
            refused(
                await t.http.post(
                    webhook, content=body, headers=signed(body, account.webhook_secret)
                ),
                404,
                "WEBHOOK_ENDPOINT_NOT_FOUND",
            )
            put = await t.http.put(
                t.config(),
                json={"secretKey": account.key, "webhookSecrets": [account.webhook_secret]},
                headers=t.developer,
            )
            assert put.status_code == 200, put.text

            # the webhook route: Stripe's signature or nothing
            refused(await t.http.post(webhook, content=body), 400, "VALIDATION_ERROR")
            refused(
                await t.http.post(
                    webhook, content=body, headers=signed(body, "whsec_someoneelse000000000")
                ),
                400,
                "STRIPE_SIGNATURE_INVALID",
            )
            refused(
                await t.http.post(
                    f"{STRIPE}/webhooks/{t.project_id}/live",
                    content=body,
                    headers=signed(body, account.webhook_secret),
                ),
                404,
                "WEBHOOK_ENDPOINT_NOT_FOUND",
            )
            received = await t.http.post(
                webhook, content=body, headers=signed(body, account.webhook_secret)
            )
            assert received.status_code == 200, received.text
            assert received.json() == {"received": True}

            # end users: their own token, nothing bought yet
            assert await t.get(f"{STRIPE}/my-subscription", ada_h) == {
                "subscription": None,
                "subscriptions": [],
            }
            assert await t.get(f"{STRIPE}/my-payments", ada_h) == {"data": [], "hasMore": False}
            refused(await t.http.get(f"{STRIPE}/my-subscription"), 401, "UNAUTHENTICATED")
            forged = t.bearer(t.token("ada", secret="not-the-projects-secret-0123456789abc"))
            refused(
                await t.http.get(f"{STRIPE}/my-subscription", headers=forged),
                401,
                "UNAUTHENTICATED",
            )
            refused(
                await t.http.get(f"{STRIPE}/my-payments", headers=t.developer),
                401,
                "UNAUTHENTICATED",
            )
            refused(
                await t.http.post(f"{STRIPE}/customer-portal", json={}, headers=ada_h),
                404,
                "NO_CUSTOMER",
            )
            refused(
                await t.http.post(f"{STRIPE}/cancel-subscription", json={}, headers=ada_h),
                404,
                "SUBSCRIPTION_NOT_FOUND",
            )
            for key, status, code in (
                ("nope", 400, "UNKNOWN_PURCHASE_KEY"),
                ("enterprise", 400, "NOT_SELF_SERVE"),
            ):
                refused(
                    await t.http.post(
                        f"{STRIPE}/checkout-session", json={"purchaseKey": key}, headers=ada_h
                    ),
                    status,
                    code,
                )

            # ada buys the monthly plan and pays
            session_id = await t.checkout(ada, "premium_monthly")
            assert session_id.startswith("cs_test_")
            await t.pay(session_id)
            mine = await eventually(
                lambda: t.get(f"{STRIPE}/my-subscription", ada_h),
                lambda body: (
                    body["subscription"] is not None and body["subscription"]["status"] == "active"
                ),
            )
            subscription = mine["subscription"]
            assert mine["subscriptions"] == [subscription]
            assert subscription["id"].startswith("sub_")
            assert subscription["plans"] == ["premium_monthly"]
            assert subscription["priceId"] == account.prices["premium_monthly"]
            assert (subscription["amount"], subscription["currency"]) == (MONTHLY, "usd")
            assert subscription["interval"] == "month"
            assert subscription["cancelAtPeriodEnd"] is False
            refused(
                await t.http.post(
                    f"{STRIPE}/checkout-session",
                    json={"purchaseKey": "premium_yearly"},
                    headers=ada_h,
                ),
                409,
                "ALREADY_SUBSCRIBED",
            )
            paid = await eventually(
                lambda: t.get(f"{STRIPE}/my-payments", ada_h), lambda body: bool(body["data"])
            )
            (invoice,) = paid["data"]
            assert invoice["id"].startswith("in_")
            assert (invoice["kind"], invoice["status"]) == ("invoice", "succeeded")
            assert (invoice["amount"], invoice["currency"]) == (MONTHLY, "usd")
            assert invoice["subscriptionId"] == subscription["id"]
            assert invoice["paidAt"] is not None

            portal = await t.post(
                f"{STRIPE}/customer-portal", ada_h, returnUrl="https://app.example.test/account"
            )
            assert set(portal) == {"url"} and portal["url"].startswith("http")

            # plan changes stay within the family
            refused(
                await t.http.post(
                    f"{STRIPE}/update-subscription",
                    json={"purchaseKey": "premium_monthly"},
                    headers=ada_h,
                ),
                409,
                "ALREADY_ON_PLAN",
            )
            refused(
                await t.http.post(
                    f"{STRIPE}/update-subscription",
                    json={"purchaseKey": "api_pro", "subscriptionId": subscription["id"]},
                    headers=ada_h,
                ),
                409,
                "FAMILY_MISMATCH",
            )
            refused(
                await t.http.post(
                    f"{STRIPE}/update-subscription", json={"purchaseKey": "api_pro"}, headers=ada_h
                ),
                404,
                "SUBSCRIPTION_NOT_FOUND",
            )
            refused(
                await t.http.post(f"{STRIPE}/update-subscription", json={}, headers=ada_h),
                400,
                "VALIDATION_ERROR",
            )
            changed = await t.post(
                f"{STRIPE}/update-subscription", ada_h, purchaseKey="premium_yearly"
            )
            assert changed["subscription"]["id"] == subscription["id"]
            assert changed["subscription"]["plans"] == ["premium_yearly"]
            assert changed["subscription"]["interval"] == "year"
            assert changed["entitlement"]["plan"] == "PREMIUM_YEARLY"
            assert changed["hasPremiumAccess"] is True
            await eventually(
                lambda: t.get(f"{STRIPE}/my-subscription", ada_h),
                lambda body: body["subscription"]["plans"] == ["premium_yearly"],
            )

            # bo pays once, then his card is declined at renewal (a test clock a month on)
            bo_session = await t.checkout(bo, "premium_monthly")
            customer = account.stripe.v1.checkout.sessions.retrieve(bo_session).customer
            clock = account.stripe.v1.test_helpers.test_clocks.create(
                {"frozen_time": int(time.time())}
            )
            await t.emulator(
                "test", f"/_emulator/customers/{customer}/test_clock", test_clock=clock.id
            )
            await t.pay(bo_session)
            await eventually(
                lambda: t.get(f"{STRIPE}/my-subscription", bo_h),
                lambda body: (
                    body["subscription"] is not None and body["subscription"]["status"] == "active"
                ),
            )
            await t.emulator("test", f"/_emulator/customers/{customer}/card", outcome="declined")
            await t.emulator("test", f"/_emulator/test_clocks/{clock.id}/advance", seconds=31 * DAY)
            lapsed = await eventually(
                lambda: t.get(f"{STRIPE}/my-payments", bo_h),
                lambda body: any(row["status"] == "failed" for row in body["data"]),
            )
            assert [row["status"] for row in lapsed["data"]] == ["failed", "succeeded"]
            assert lapsed["data"][0]["amount"] == MONTHLY
            assert (await t.get(f"{STRIPE}/my-payments", bo_h, limit=1))["hasMore"] is True
            await eventually(
                lambda: t.get(f"{STRIPE}/my-subscription", bo_h),
                lambda body: body["subscription"]["status"] == "past_due",
            )

            # the project's lists (members), in the mode test_mode selects
            lists = t.config("subscriptions")
            both = await t.get(lists, t.developer)
            assert {row["subjectId"]: row["status"] for row in both["data"]} == {
                "ada": "active",
                "bo": "past_due",
            }
            row = next(row for row in both["data"] if row["subjectId"] == "ada")
            assert row["id"] == subscription["id"]
            assert row["priceIds"] == [account.prices["premium_yearly"]]
            assert (row["subjectType"], row["plans"]) == ("user", ["premium_yearly"])
            assert row["customerId"].startswith("cus_")
            past_due = await t.get(lists, t.developer, status="past_due")
            assert [row["subjectId"] for row in past_due["data"]] == ["bo"]
            assert (await t.get(lists, t.developer, test_mode="false"))["data"] == []
            failed = await t.get(t.config("payments"), t.developer, status="failed")
            (failure,) = failed["data"]
            assert (failure["subjectId"], failure["amount"]) == ("bo", MONTHLY)
            everything = await t.get(t.config("payments"), t.developer, limit=100)
            assert {row["subjectId"] for row in everything["data"]} == {"ada", "bo"}
            assert (await t.get(t.config("payments"), t.developer, test_mode="false"))["data"] == []
            refused(
                await t.http.get(lists, params={"limit": 0}, headers=t.developer),
                400,
                "VALIDATION_ERROR",
            )

            # across the developer's projects
            across = await t.get("/api/v1/payments/subscriptions", t.developer)
            assert {row["projectId"] for row in across["data"]} == {t.project_id}
            assert {row["id"] for row in across["data"]} == {row["id"] for row in both["data"]}
            assert (await t.get("/api/v1/payments/subscriptions", t.developer, test_mode="false"))[
                "data"
            ] == []
            transactions = await t.get("/api/v1/payments/transactions", t.developer, limit=100)
            assert {row["id"] for row in transactions["data"]} == {
                row["id"] for row in everything["data"]
            }
            assert {row["projectId"] for row in transactions["data"]} == {t.project_id}
            assert (await t.get("/api/v1/payments/transactions", t.developer, test_mode="false"))[
                "data"
            ] == []
            (overview,) = (await t.get("/api/v1/payments/projects", t.developer))["data"]
            assert overview["test"]["configured"] is True
            assert overview["test"]["lastWebhookAt"] is not None
            assert overview["test"]["failedEvents"] == 0
            assert overview["live"]["configured"] is False
            stats = await t.get("/api/v1/payments/stats", t.developer, **window())
            assert stats["testMode"] is True
            figures = stats["total"]["subscriptions"]
            assert (figures["active"], figures["pastDue"], figures["new"]) == (1, 1, 2)
            (usd,) = stats["total"]["currencies"]
            assert usd["currency"] == "usd"
            assert usd["failedPayments"] == {"count": 1, "amount": MONTHLY}
            assert usd["mrr"] == YEARLY / 12 + MONTHLY  # past_due still bills
            assert [project["projectId"] for project in stats["projects"]] == [t.project_id]
            live_stats = await t.get(
                "/api/v1/payments/stats", t.developer, test_mode="false", **window()
            )
            assert live_stats["testMode"] is False
            assert live_stats["total"]["subscriptions"]["active"] == 0
            assert live_stats["total"]["currencies"] == []
            bad_window = await t.http.get(
                "/api/v1/payments/stats",
                params={"from": "2026-02-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"},
                headers=t.developer,
            )
            refused(bad_window, 400, "VALIDATION_ERROR")

            # ada cancels at the period's end, then at once
            scheduled = await t.post(f"{STRIPE}/cancel-subscription", ada_h)
            assert scheduled["subscription"]["cancelAtPeriodEnd"] is True
            assert scheduled["subscription"]["status"] == "active"
            assert scheduled["hasPremiumAccess"] is True
            ended = await t.post(f"{STRIPE}/cancel-subscription", ada_h, atPeriodEnd=False)
            assert ended["subscription"]["status"] == "canceled"
            assert ended["hasPremiumAccess"] is False
            await eventually(
                lambda: t.get(f"{STRIPE}/my-subscription", ada_h),
                lambda body: body["subscriptions"][0]["status"] == "canceled",
            )
            refused(
                await t.http.post(
                    f"{STRIPE}/cancel-subscription",
                    json={"subscriptionId": subscription["id"]},
                    headers=ada_h,
                ),
                409,
                "SUBSCRIPTION_ENDED",
            )
            refused(
                await t.http.post(f"{STRIPE}/cancel-subscription", json={}, headers=ada_h),
                404,
                "SUBSCRIPTION_NOT_FOUND",
            )

            # every event the seed's table names arrived through the webhook route and applied
            async def inbox() -> dict[str, set[str]]:
                page = await t.get(
                    "/api/v1/admin/webhook-events",
                    t.developer,
                    projectId=t.project_id,
                    mode="test",
                    limit=200,
                )
                statuses: dict[str, set[str]] = {}
                for event in page["items"]:
                    statuses.setdefault(event["type"], set()).add(event["status"])
                return statuses

            await eventually(
                inbox,
                lambda seen: all(seen.get(name) == {"processed"} for name in SEED_EVENTS),
            )

            # deactivated last: no more sales or events in test mode; the mirror stays readable
            gone = await t.http.delete(t.config(), headers=t.developer)
            assert gone.status_code == 200, gone.text
            assert (gone.json()["mode"], gone.json()["status"]) == ("test", "not_configured")
            refused(
                await t.http.delete(t.config(), headers=t.developer), 404, "STRIPE_NOT_CONFIGURED"
            )
            refused(
                await t.http.post(
                    f"{STRIPE}/checkout-session",
                    json={"purchaseKey": "premium_monthly"},
                    headers=t.bearer(t.token("cy")),
                ),
                409,
                "STRIPE_NOT_CONFIGURED",
            )
            refused(
                await t.http.post(
                    webhook, content=body, headers=signed(body, account.webhook_secret)
                ),
                404,
                "WEBHOOK_ENDPOINT_NOT_FOUND",
            )
            (overview,) = (await t.get("/api/v1/payments/projects", t.developer))["data"]
            assert overview["test"]["configured"] is False
            assert len((await t.get(f"{STRIPE}/my-subscription", bo_h))["subscriptions"]) == 1


class TestLiveMode:
    async def test_live_configuration_live_tokens_and_test_mode_false(
        self, scratch: Scratch, emulator_url: str
    ) -> None:
        async with tenant(scratch, emulator_url) as t:
            account = t.account("live")
            document = catalog_document(account.prices)
            for key, plan in document["plans"].items():
                plan["prices"] = {"live": account.prices[key]}
            await put_catalog(t, document)
            put = await t.http.put(
                t.config(),
                params={"test_mode": "false"},
                json={"secretKey": account.key, "webhookSecrets": [account.webhook_secret]},
                headers=t.developer,
            )
            assert put.status_code == 200, put.text
            assert put.json()["mode"] == "live"

            live, test = t.token("ada", mode="live"), t.token("ada")
            # the token's mode claim picks the mode of the end-user routes
            refused(
                await t.http.post(
                    f"{STRIPE}/checkout-session",
                    json={"purchaseKey": "premium_monthly"},
                    headers=t.bearer(test),
                ),
                409,
                "STRIPE_NOT_CONFIGURED",
            )
            session_id = await t.checkout(live, "premium_monthly")
            assert session_id.startswith("cs_live_")
            await t.pay(session_id, "live")
            mine = await eventually(
                lambda: t.get(f"{STRIPE}/my-subscription", t.bearer(live)),
                lambda body: (
                    body["subscription"] is not None and body["subscription"]["status"] == "active"
                ),
            )
            assert mine["subscription"]["priceId"] == account.prices["premium_monthly"]
            assert (await t.get(f"{STRIPE}/my-subscription", t.bearer(test)))["subscriptions"] == []
            # test_mode picks the mode of a token without a mode claim once the project lets it
            unclaimed = t.token("ada", mode=None)
            fixed = await t.http.get(
                f"{STRIPE}/my-subscription",
                params={"test_mode": "false"},
                headers=t.bearer(unclaimed),
            )
            refused(fixed, 403, "MODE_MISMATCH")
            allowed = await t.http.put(
                f"/api/v1/projects/{t.project_id}/end-user-auth",
                json={"modeFromQuery": True},
                headers=t.developer,
            )
            assert allowed.status_code == 200, allowed.text
            chosen = await t.get(
                f"{STRIPE}/my-subscription", t.bearer(unclaimed), test_mode="false"
            )
            assert chosen["subscription"]["id"] == mine["subscription"]["id"]
            refused(  # a token's own mode claim stays fixed
                await t.http.get(
                    f"{STRIPE}/my-subscription",
                    params={"test_mode": "true"},
                    headers=t.bearer(live),
                ),
                403,
                "MODE_MISMATCH",
            )
            paid = await eventually(
                lambda: t.get(f"{STRIPE}/my-payments", t.bearer(live)),
                lambda body: bool(body["data"]),
            )
            assert paid["data"][0]["status"] == "succeeded"

            # test_mode=false reads the live mirror; the default reads test mode's
            lists = t.config("subscriptions")
            (row,) = (await t.get(lists, t.developer, test_mode="false"))["data"]
            assert (row["id"], row["subjectId"]) == (mine["subscription"]["id"], "ada")
            assert (await t.get(lists, t.developer))["data"] == []
            assert (
                len((await t.get(t.config("payments"), t.developer, test_mode="false"))["data"])
                == 1
            )
            assert (await t.get(t.config("payments"), t.developer))["data"] == []
            (across,) = (
                await t.get("/api/v1/payments/subscriptions", t.developer, test_mode="false")
            )["data"]
            assert across["projectId"] == t.project_id
            assert (await t.get("/api/v1/payments/subscriptions", t.developer))["data"] == []
            transactions = await t.get(
                "/api/v1/payments/transactions", t.developer, test_mode="false"
            )
            assert [row["id"] for row in transactions["data"]] == [paid["data"][0]["id"]]
            assert (await t.get("/api/v1/payments/transactions", t.developer))["data"] == []
            stats = await t.get("/api/v1/payments/stats", t.developer, test_mode="false")
            assert stats["testMode"] is False
            assert stats["total"]["subscriptions"]["active"] == 1
            (usd,) = stats["total"]["currencies"]
            assert (usd["mrr"], usd["grossPaid"]) == (MONTHLY, MONTHLY)
            test_stats = await t.get("/api/v1/payments/stats", t.developer)
            assert test_stats["testMode"] is True
            assert test_stats["total"]["subscriptions"]["active"] == 0
            (overview,) = (await t.get("/api/v1/payments/projects", t.developer))["data"]
            assert overview["live"]["configured"] is True
            assert overview["live"]["lastWebhookAt"] is not None
            assert overview["test"] == {
                "configured": False,
                "credentialsValid": None,
                "credentialsCheckedAt": None,
                "lastWebhookAt": None,
                "failedEvents": 0,
            }

            gone = await t.http.delete(
                t.config(), params={"test_mode": "false"}, headers=t.developer
            )
            assert gone.status_code == 200, gone.text
            assert gone.json()["mode"] == "live"
            refused(
                await t.http.delete(t.config(), headers=t.developer), 404, "STRIPE_NOT_CONFIGURED"
            )
            refused(
                await t.http.post(
                    f"{STRIPE}/checkout-session",
                    json={"purchaseKey": "premium_yearly"},
                    headers=t.bearer(t.token("bo", mode="live")),
                ),
                409,
                "STRIPE_NOT_CONFIGURED",
            )
