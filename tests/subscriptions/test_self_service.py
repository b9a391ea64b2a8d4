"""Self-service end to end: a served billwarden, the emulator delivering webhooks, end users
cancelling, resuming, changing plan and opening the portal."""

from __future__ import annotations

import time
from typing import Any

import httpx
import jwt

from tests.checkout.loop import Loop, billing_loop
from tests.conftest import Scratch
from tests.identity.factories import People
from tests.projects.factories import Tenants

DAY = 86400
BASE = "/api/v1/payments/stripe"


def active(answer: dict[str, Any]) -> bool:
    return bool(answer["hasPremiumAccess"]) and answer["entitlement"]["status"] == "ACTIVE"


async def subscribed(loop: Loop, token: str, *, clock: bool = False, **body: Any) -> str | None:
    """Check out and pay; the test clock the customer is on, when asked for one."""
    session_id = await loop.checkout(token, **(body or {"purchaseKey": "premium_monthly"}))
    clock_id = None
    if clock:
        clock_id = loop.clock()
        customer = await loop.customer_of(session_id)
        await loop.emulator(f"/_emulator/customers/{customer}/test_clock", test_clock=clock_id)
    await loop.pay(session_id)
    await loop.eventually(token, active)
    return clock_id


async def post(loop: Loop, token: str, path: str, **body: Any) -> httpx.Response:
    return await loop.http.post(f"{BASE}/{path}", json=body, headers=loop.bearer(token))


class TestMySubscription:
    async def test_none_then_the_bought_one(self, scratch: Scratch, emulator_url: str) -> None:
        async with billing_loop(scratch, emulator_url) as loop:
            token = loop.token("ada")
            empty = await loop.http.get(f"{BASE}/my-subscription", headers=loop.bearer(token))
            assert empty.status_code == 200
            assert empty.json() == {"subscription": None, "subscriptions": []}
            await subscribed(loop, token)
            mine = await loop.http.get(f"{BASE}/my-subscription", headers=loop.bearer(token))
        body = mine.json()
        assert len(body["subscriptions"]) == 1
        subscription = body["subscription"]
        assert subscription == body["subscriptions"][0]
        assert subscription["id"].startswith("sub_")
        assert subscription["status"] == "active"
        assert subscription["plans"] == ["premium_monthly"]
        assert subscription["priceId"] == loop.prices["premium_monthly"]
        assert (subscription["amount"], subscription["currency"]) == (900, "usd")
        assert subscription["interval"] == "month"
        assert subscription["cancelAtPeriodEnd"] is False
        assert subscription["currentPeriodEnd"] is not None
        assert subscription["trialEnd"] is None and subscription["pausedUntil"] is None


class TestCancelAndResume:
    async def test_cancel_at_period_end_keeps_access_until_then_free(
        self, scratch: Scratch, emulator_url: str
    ) -> None:
        async with billing_loop(scratch, emulator_url) as loop:
            token = loop.token("bea")
            clock = await subscribed(loop, token, clock=True)
            assert clock is not None
            cancel = await post(loop, token, "cancel-subscription")
            assert cancel.status_code == 200, cancel.text
            assert cancel.json()["subscription"]["cancelAtPeriodEnd"] is True
            assert cancel.json()["entitlement"]["cancelAtPeriodEnd"] is True
            assert cancel.json()["hasPremiumAccess"] is True  # paid until the period ends
            await loop.advance(clock, 32 * DAY)
            ended = await loop.eventually(token, lambda a: a["entitlement"]["status"] == "CANCELED")
        assert ended["entitlement"]["plan"] == "FREE" and ended["hasPremiumAccess"] is False

    async def test_resume_before_the_end_keeps_it(
        self, scratch: Scratch, emulator_url: str
    ) -> None:
        async with billing_loop(scratch, emulator_url) as loop:
            token = loop.token("cal")
            clock = await subscribed(loop, token, clock=True)
            assert clock is not None
            assert (await post(loop, token, "cancel-subscription")).status_code == 200
            resumed = await post(loop, token, "resume-subscription")
            assert resumed.status_code == 200, resumed.text
            assert resumed.json()["subscription"]["cancelAtPeriodEnd"] is False
            first_end = resumed.json()["subscription"]["currentPeriodEnd"]
            await loop.advance(clock, 32 * DAY)
            renewed = await loop.eventually(
                token, lambda a: a["entitlement"]["currentPeriodEnd"] != first_end
            )
        assert active(renewed)

    async def test_cancel_now_ends_access_at_once_and_an_ended_one_cannot_resume(
        self, scratch: Scratch, emulator_url: str
    ) -> None:
        async with billing_loop(scratch, emulator_url) as loop:
            token = loop.token("dan")
            await subscribed(loop, token)
            now = await post(loop, token, "cancel-subscription", atPeriodEnd=False)
            assert now.status_code == 200, now.text
            assert now.json()["subscription"]["status"] == "canceled"
            assert now.json()["hasPremiumAccess"] is False
            again = await post(
                loop, token, "resume-subscription", subscriptionId=now.json()["subscription"]["id"]
            )
        assert (again.status_code, again.json()["code"]) == (409, "NOT_RESUMABLE")
        assert "check out again" in again.json()["message"]

    async def test_a_bundle_with_another_family_is_409(
        self, scratch: Scratch, emulator_url: str
    ) -> None:
        async with billing_loop(scratch, emulator_url) as loop:
            token = loop.token("eli")
            await subscribed(loop, token, purchaseKeys=["premium_monthly", "api_pro"])
            refused = await post(loop, token, "cancel-subscription")
            resumed = await post(loop, token, "resume-subscription")
        assert (refused.status_code, refused.json()["code"]) == (409, "BUNDLED_SUBSCRIPTION")
        assert refused.json()["details"]["notCancellable"] == ["api"]
        assert (resumed.status_code, resumed.json()["code"]) == (409, "BUNDLED_SUBSCRIPTION")

    async def test_pause_then_resume(self, scratch: Scratch, emulator_url: str) -> None:
        async with billing_loop(scratch, emulator_url) as loop:
            token = loop.token("fio")
            await subscribed(loop, token)
            subscription = (await loop.entitlement(token))["entitlement"]["stripeSubscriptionId"]
            async with httpx.AsyncClient(base_url=emulator_url) as http:
                paused = await http.post(
                    f"/v1/subscriptions/{subscription}/pause",
                    headers={"Authorization": f"Bearer {loop.stripe_key}"},
                )
                assert paused.status_code == 200, paused.text
            await loop.eventually(token, lambda a: a["entitlement"]["status"] == "PAUSED")
            resumed = await post(loop, token, "resume-subscription", subscriptionId=subscription)
        assert resumed.status_code == 200, resumed.text
        assert resumed.json()["subscription"]["status"] == "active"
        assert active(resumed.json())

    async def test_another_subjects_subscription_is_404(
        self, scratch: Scratch, emulator_url: str
    ) -> None:
        async with billing_loop(scratch, emulator_url) as loop:
            owner = loop.token("gil")
            await subscribed(loop, owner)
            subscription = (await loop.entitlement(owner))["entitlement"]["stripeSubscriptionId"]
            stranger = loop.token("hal")
            answers = [
                await post(loop, stranger, path, subscriptionId=subscription)
                for path in ("cancel-subscription", "resume-subscription")
            ]
            changed = await post(
                loop,
                stranger,
                "update-subscription",
                purchaseKey="premium_yearly",
                subscriptionId=subscription,
            )
            nothing = await post(loop, stranger, "cancel-subscription")
            still = await loop.entitlement(owner)
        for answer in [*answers, changed, nothing]:
            assert (answer.status_code, answer.json()["code"]) == (404, "SUBSCRIPTION_NOT_FOUND")
        assert active(still) and still["entitlement"]["cancelAtPeriodEnd"] is False


class TestPlanChange:
    async def test_monthly_to_yearly(self, scratch: Scratch, emulator_url: str) -> None:
        async with billing_loop(scratch, emulator_url) as loop:
            token = loop.token("ivy")
            await subscribed(loop, token)
            changed = await post(loop, token, "update-subscription", purchaseKey="premium_yearly")
        assert changed.status_code == 200, changed.text
        assert changed.json()["subscription"]["plans"] == ["premium_yearly"]
        assert changed.json()["subscription"]["interval"] == "year"
        assert changed.json()["entitlement"]["plan"] == "PREMIUM_YEARLY"

    async def test_a_plan_change_shows_at_once_and_after_the_webhooks(
        self, scratch: Scratch, emulator_url: str
    ) -> None:
        async with billing_loop(scratch, emulator_url) as loop:
            token = loop.token("ida")
            await subscribed(loop, token, purchaseKeys=["premium_monthly", "api_pro"])
            changed = await post(
                loop,
                token,
                "update-subscription",
                purchaseKey="premium_plus",
                prorationBehavior="always_invoice",
            )
            assert changed.status_code == 200, changed.text
            body = changed.json()
            assert sorted(body["subscription"]["plans"]) == ["api_pro", "premium_plus"]  # api stays
            assert body["entitlement"]["plan"] == "CUSTOM"
            assert "priority" in body["features"] and "api" in body["features"]
            same = await post(loop, token, "update-subscription", purchaseKey="premium_plus")
            closed = await post(loop, token, "update-subscription", purchaseKey="enterprise")
            unknown = await post(loop, token, "update-subscription", purchaseKey="platinum")
            settled = await loop.eventually(token, lambda a: "priority" in a["features"])
            stripe_subscription = loop.stripe.v1.subscriptions.retrieve(body["subscription"]["id"])
        assert (same.status_code, same.json()["code"]) == (409, "ALREADY_ON_PLAN")
        assert (closed.status_code, closed.json()["code"]) == (400, "NOT_SELF_SERVE")
        assert (unknown.status_code, unknown.json()["code"]) == (400, "UNKNOWN_PURCHASE_KEY")
        assert settled["plans"] == ["api_pro", "premium_plus"]
        prices = sorted(item.price.id for item in stripe_subscription["items"].data)
        assert prices == sorted([loop.prices["premium_plus"], loop.prices["api_pro"]])

    async def test_another_family_is_409(self, scratch: Scratch, emulator_url: str) -> None:
        async with billing_loop(scratch, emulator_url) as loop:
            token = loop.token("jon")
            await subscribed(loop, token)
            subscription = (await loop.entitlement(token))["entitlement"]["stripeSubscriptionId"]
            mismatch = await post(
                loop,
                token,
                "update-subscription",
                purchaseKey="api_pro",
                subscriptionId=subscription,
            )
        assert (mismatch.status_code, mismatch.json()["code"]) == (409, "FAMILY_MISMATCH")


class TestPortal:
    async def test_the_portal_url_opens_the_portal_page(
        self, scratch: Scratch, emulator_url: str
    ) -> None:
        async with billing_loop(scratch, emulator_url) as loop:
            nobody = await post(loop, loop.token("kim"), "customer-portal")
            token = loop.token("lee")
            await subscribed(loop, token)
            portal = await post(
                loop, token, "customer-portal", returnUrl="https://app.example.test/account"
            )
            assert portal.status_code == 200, portal.text
            async with httpx.AsyncClient() as http:
                page = await http.get(portal.json()["url"])
        assert (nobody.status_code, nobody.json()["code"]) == (404, "NO_CUSTOMER")
        assert page.status_code == 200
        assert "text/html" in page.headers["content-type"]


class TestRequestBodies:
    async def test_at_period_end_takes_a_json_boolean_only(
        self, client: httpx.AsyncClient, people: People, tenants: Tenants
    ) -> None:
        project = await tenants.project(await people.user())
        claims = {"sub": "ada", "project_id": str(project.id), "exp": int(time.time()) + 60}
        token = jwt.encode(claims, project.end_user_secret, algorithm="HS256")
        for value in ("yes", 1, "false"):
            answer = await client.post(
                f"{BASE}/cancel-subscription",
                json={"atPeriodEnd": value},
                headers={"Authorization": f"Bearer {token}"},
            )
            assert answer.status_code == 400, (value, answer.text)
            assert answer.json()["code"] == "VALIDATION_ERROR"
            assert answer.json()["details"]["fields"][0]["field"] == "atPeriodEnd"
