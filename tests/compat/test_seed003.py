"""Seed 003 (the accounts service): its local test-mode runbook end to end against billwarden in
single-tenant mode, then its checkout's refusals. Through the seed's own paths, with the app's
own tokens."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from tests.compat.single_tenant import SingleTenant, single_tenant
from tests.conftest import Scratch

WEBHOOK = "/api/billing/stripe/webhook"
CHECKOUT = "/api/auth/stripe/checkout"
PORTAL = "/api/auth/stripe/portal"
SUBSCRIPTIONS = "/api/auth/subscriptions"
CONSOLE = "https://console.example.test"
# the seed's own example: allowed, but no such price exists in Stripe
ALLOWED = ["price_xstream_paygo"]


async def subscriptions_of(st: SingleTenant, token: str) -> list[dict[str, Any]]:
    answer = await st.http.get(SUBSCRIPTIONS, headers=st.bearer(token))
    assert answer.status_code == 200, answer.text
    assert set(answer.json()) == {"subscriptions"}
    rows: list[dict[str, Any]] = answer.json()["subscriptions"]
    return rows


class TestRunbook:
    async def test_checkout_by_price_pays_lists_the_stripe_subscription_and_opens_the_portal(
        self, scratch: Scratch, emulator_url: str, tmp_path: Path
    ) -> None:
        async with single_tenant(
            scratch, emulator_url, tmp_path, webhook_path=WEBHOOK, allowed_prices=ALLOWED
        ) as st:
            token = st.token("user-ada", email="ada@example.test")
            assert await subscriptions_of(st, token) == []
            no_customer = await st.http.post(PORTAL, json={}, headers=st.bearer(token))
            assert (no_customer.status_code, no_customer.json()["code"]) == (404, "NO_CUSTOMER")

            # 6. sign in through the console and start a checkout flow (by Stripe price)
            monthly = st.prices["premium_monthly"]
            started = await st.http.post(
                CHECKOUT,
                json={
                    "price_id": monthly,
                    "success_url": f"{CONSOLE}/billing?checkout=success",
                    "cancel_url": f"{CONSOLE}/billing?checkout=cancel",
                },
                headers=st.bearer(token),
            )
            assert started.status_code == 200, started.text
            assert set(started.json()) == {"url", "sessionId"}
            session_id = started.json()["sessionId"]
            assert started.json()["url"].startswith("http")
            # checkout redirects back to the console
            stripe_session = st.stripe.v1.checkout.sessions.retrieve(session_id)
            assert stripe_session.success_url == f"{CONSOLE}/billing?checkout=success"
            assert stripe_session.cancel_url == f"{CONSOLE}/billing?checkout=cancel"

            # 7. pay; 8. the webhook delivery lands and the subscription appears
            await st.pay(session_id)
            rows = await st.eventually(
                lambda: subscriptions_of(st, token),
                lambda found: any(row["status"] == "active" for row in found),
            )
            (row,) = rows
            assert set(row) == {
                "provider",
                "id",
                "status",
                "priceId",
                "currentPeriodEnd",
                "cancelAtPeriodEnd",
            }
            assert row["provider"] == "stripe"
            assert row["id"].startswith("sub_")
            assert row["priceId"] == monthly
            assert row["currentPeriodEnd"] is not None
            assert row["cancelAtPeriodEnd"] is False
            # another user sees none of it
            assert await subscriptions_of(st, st.token("user-bob")) == []

            # the same family again: the existing subscription is changed, not bought twice
            again = await st.http.post(
                CHECKOUT, json={"priceId": st.prices["premium_yearly"]}, headers=st.bearer(token)
            )
            assert (again.status_code, again.json()["code"]) == (409, "ALREADY_SUBSCRIBED")

            # the Stripe portal opens for the same user
            portal = await st.http.post(
                PORTAL, json={"return_url": f"{CONSOLE}/account"}, headers=st.bearer(token)
            )
            assert portal.status_code == 200, portal.text
            assert set(portal.json()) == {"url"}
            async with httpx.AsyncClient() as browser:
                page = await browser.get(portal.json()["url"])
            assert page.status_code == 200
            assert "text/html" in page.headers["content-type"]


class TestCheckoutRefusals:
    async def test_prices_outside_the_catalog_and_allowlist_and_bad_requests(
        self, scratch: Scratch, emulator_url: str, tmp_path: Path
    ) -> None:
        async with single_tenant(
            scratch,
            emulator_url,
            tmp_path,
            webhook_path=WEBHOOK,
            allowed_prices=lambda prices: [*ALLOWED, prices["outside_catalog"]],
        ) as st:
            token = st.token("user-cy")

            async def checkout(body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
                return await st.http.post(
                    CHECKOUT, json=body, headers=st.bearer(token) if headers is None else headers
                )

            product = st.stripe.v1.products.create({"name": "Stray"})
            stray = st.stripe.v1.prices.create(
                {"product": product.id, "unit_amount": 500, "currency": "usd"}
            )
            refusals = {
                # a real Stripe price, in neither the catalog nor STRIPE_ALLOWED_PRICE_IDS
                "stray": (await checkout({"price_id": stray.id}), 400, "PRICE_NOT_ALLOWED"),
                # allowed, but Stripe has no such price
                "missing": (await checkout({"price_id": ALLOWED[0]}), 400, "PRICE_NOT_ALLOWED"),
                # in the catalog, but not sold through self-service
                "enterprise": (
                    await checkout({"price_id": st.prices["enterprise"]}),
                    400,
                    "NOT_SELF_SERVE",
                ),
                "no price": (await checkout({"success_url": CONSOLE}), 400, "VALIDATION_ERROR"),
                "not a price": (await checkout({"price_id": "prod_1"}), 400, "VALIDATION_ERROR"),
                "not a url": (
                    await checkout({"price_id": st.prices["api_pro"], "cancel_url": "home"}),
                    400,
                    "VALIDATION_ERROR",
                ),
                "signed out": (
                    await checkout({"price_id": st.prices["api_pro"]}, headers={}),
                    401,
                    "UNAUTHENTICATED",
                ),
                "another secret": (
                    await checkout(
                        {"price_id": st.prices["api_pro"]},
                        headers=st.bearer(st.token("user-cy", secret="x" * 40)),
                    ),
                    401,
                    "UNAUTHENTICATED",
                ),
            }
            for name, (answer, status, code) in refusals.items():
                assert (answer.status_code, answer.json()["code"]) == (status, code), name
                assert set(answer.json()) == {"code", "message", "details"}, name
            for path in (PORTAL, SUBSCRIPTIONS):
                method = "GET" if path == SUBSCRIPTIONS else "POST"
                signed_out = await st.http.request(method, path)
                assert signed_out.status_code == 401, path

            # a real price outside the catalog that STRIPE_ALLOWED_PRICE_IDS lists is sold
            allowed = await checkout({"price_id": st.prices["outside_catalog"]})
            assert allowed.status_code == 200, allowed.text
            assert set(allowed.json()) == {"url", "sessionId"}
            sold = st.stripe.v1.checkout.sessions.retrieve(
                allowed.json()["sessionId"], {"expand": ["line_items"]}
            )
            assert sold.line_items is not None
            assert [item.price.id for item in sold.line_items.data if item.price] == [
                st.prices["outside_catalog"]
            ]

            # camelCase priceId is the same field
            camel = await checkout({"priceId": st.prices["api_pro"]})
            assert camel.status_code == 200, camel.text
            sold = st.stripe.v1.checkout.sessions.retrieve(camel.json()["sessionId"])
            assert sold.success_url == f"{st.settings.public_url}/billing/success"
