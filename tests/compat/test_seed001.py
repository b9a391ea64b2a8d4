"""Seed 001 (the entitlement store) through its own paths, in single-tenant mode: a user checks
out a plan with the app's own token and holds an INCOMPLETE, then ACTIVE entitlement with the
seed's fields; owners and admins see every entitlement compared with Stripe as it is now, and
repair one with sync_from_stripe or reset_to_free, audited in their name."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select

from billwarden.app import create_app
from billwarden.webhooks.models import InboxStatus, WebhookEvent
from billwarden_emulator.testing import serving
from tests.compat.single_tenant import SingleTenant, single_tenant
from tests.conftest import Scratch

CHECKOUT = "/api/checkout"
ENTITLEMENT = "/api/premium/entitlement"
RECONCILIATION = "/api/admin/billing/reconciliation"
ADMIN_ROLES = ["OWNER", "ADMIN"]
ENTITLEMENT_FIELDS = {
    "id",
    "userExternalId",
    "userEmail",
    "plan",
    "status",
    "stripeCustomerId",
    "stripeSubscriptionId",
    "stripePriceId",
    "currentPeriodStart",
    "currentPeriodEnd",
    "cancelAtPeriodEnd",
    "lastSyncedAt",
    "lastEventId",
}


def active(answer: dict[str, Any]) -> bool:
    return bool(answer["entitlement"]["status"] == "ACTIVE")


async def entitlement(st: SingleTenant, token: str) -> dict[str, Any]:
    answer = await st.http.get(ENTITLEMENT, headers=st.bearer(token))
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


async def subscribed(st: SingleTenant, user: str, plan: str = "premium_monthly") -> dict[str, Any]:
    """`user` checks out `plan` through the seed's route and pays; their ACTIVE entitlement."""
    token = st.token(user, email=f"{user}@example.test")
    started = await st.http.post(CHECKOUT, json={"plan": plan}, headers=st.bearer(token))
    assert started.status_code == 200, started.text
    await st.pay(started.json()["sessionId"])
    answer: dict[str, Any] = await st.eventually(lambda: entitlement(st, token), active)
    return answer["entitlement"]


async def deafen(st: SingleTenant) -> None:
    """Delete the emulator's webhook endpoint and wait until every event already sent is
    applied: from now on billwarden hears nothing of what changes in Stripe."""
    for endpoint in st.stripe.v1.webhook_endpoints.list().data:
        st.stripe.v1.webhook_endpoints.delete(endpoint.id)
    deadline = time.monotonic() + 10
    seen = (-1, -1)
    while True:
        async with st.scratch.session() as session:
            counts = (
                await session.scalar(select(func.count()).select_from(WebhookEvent)) or 0,
                await session.scalar(
                    select(func.count())
                    .select_from(WebhookEvent)
                    .where(WebhookEvent.status == InboxStatus.PENDING)
                )
                or 0,
            )
        if counts == seen and counts[1] == 0:
            return
        assert time.monotonic() < deadline, counts
        seen = counts
        await asyncio.sleep(0.3)


def by_user(answer: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {record["userExternalId"]: record for record in answer["records"]}


class TestCheckoutAndEntitlement:
    async def test_a_checkout_seeds_incomplete_then_the_payment_grants_premium(
        self, scratch: Scratch, emulator_url: str, tmp_path: Path
    ) -> None:
        async with single_tenant(scratch, emulator_url, tmp_path) as st:
            ada = st.token("ada", email="ada@example.test")
            before = await entitlement(st, ada)
            assert set(before) >= {"entitlement", "hasPremiumAccess"}
            assert set(before["entitlement"]) >= ENTITLEMENT_FIELDS
            assert before["hasPremiumAccess"] is False
            assert before["entitlement"]["userExternalId"] == "ada"
            assert (before["entitlement"]["plan"], before["entitlement"]["status"]) == (
                "FREE",
                "NONE",
            )

            started = await st.http.post(
                CHECKOUT, json={"plan": "premium_yearly"}, headers=st.bearer(ada)
            )
            assert started.status_code == 200, started.text
            assert set(started.json()) == {"url", "sessionId"}
            assert started.json()["url"].startswith("http")
            session_id = started.json()["sessionId"]
            pending = await entitlement(st, ada)
            assert pending["entitlement"]["status"] == "INCOMPLETE"
            assert pending["entitlement"]["userEmail"] == "ada@example.test"
            assert pending["entitlement"]["stripeCustomerId"].startswith("cus_")
            assert pending["hasPremiumAccess"] is False
            # the user's metadata rides on the checkout, and on the subscription it makes
            checkout = st.stripe.v1.checkout.sessions.retrieve(session_id)
            assert checkout.metadata is not None
            assert checkout.metadata["userExternalId"] == "ada"
            assert checkout.metadata["userEmail"] == "ada@example.test"

            await st.pay(session_id)
            paid = await st.eventually(lambda: entitlement(st, ada), active)
            record = paid["entitlement"]
            assert paid["hasPremiumAccess"] is True
            assert record["plan"] == "PREMIUM_YEARLY"
            assert record["stripePriceId"] == st.prices["premium_yearly"]
            assert record["stripeSubscriptionId"].startswith("sub_")
            assert record["currentPeriodEnd"] is not None
            assert record["lastSyncedAt"] is not None
            assert record["id"] == pending["entitlement"]["id"]
            subscription = st.stripe.v1.subscriptions.retrieve(record["stripeSubscriptionId"])
            assert subscription.metadata["userExternalId"] == "ada"
            assert subscription.metadata["userEmail"] == "ada@example.test"

            # without a plan: the catalog's default_purchase_key (premium_monthly)
            bob = st.token("bob")
            default = await st.http.post(CHECKOUT, json={}, headers=st.bearer(bob))
            assert default.status_code == 200, default.text
            await st.pay(default.json()["sessionId"])
            bobs = await st.eventually(lambda: entitlement(st, bob), active)
            assert bobs["entitlement"]["plan"] == "PREMIUM_MONTHLY"

            # a subscription the seed made before the move: its metadata names the user the
            # seed's way only, so it grants nobody until billwarden's keys are added to it
            dan = st.token("dan")
            customer = st.stripe.v1.customers.create({"email": "dan@example.test"})
            legacy = st.stripe.v1.subscriptions.create(
                {
                    "customer": customer.id,
                    "items": [{"price": st.prices["premium_monthly"]}],
                    "metadata": {"userExternalId": "dan"},
                }
            )
            await asyncio.sleep(0.5)  # its events are delivered, and tie it to no one
            assert (await entitlement(st, dan))["hasPremiumAccess"] is False
            st.stripe.v1.subscriptions.update(
                legacy.id,
                {
                    "metadata": {
                        "bw_project": str(st.project_id),
                        "bw_mode": "test",
                        "bw_subject_type": "user",
                        "bw_subject_id": "dan",
                    }
                },
            )
            dans = await st.eventually(lambda: entitlement(st, dan), active)
            assert dans["entitlement"]["stripeSubscriptionId"] == legacy.id
            assert dans["entitlement"]["plan"] == "PREMIUM_MONTHLY"

            refusals = [
                ({"plan": "premium_monthly"}, ada, 409, "ALREADY_SUBSCRIBED"),
                ({"plan": "platinum"}, bob, 400, "UNKNOWN_PURCHASE_KEY"),
                ({"plan": "enterprise"}, st.token("cat"), 400, "NOT_SELF_SERVE"),
                ({"plan": "premium monthly!"}, st.token("cat"), 400, "VALIDATION_ERROR"),
                (
                    {"plan": "premium_monthly", "coupon": "x"},
                    st.token("cat"),
                    400,
                    "VALIDATION_ERROR",
                ),
            ]
            for body, token, status, code in refusals:
                refused = await st.http.post(CHECKOUT, json=body, headers=st.bearer(token))
                assert (refused.status_code, refused.json()["code"]) == (status, code), body
            for method, path in (("POST", CHECKOUT), ("GET", ENTITLEMENT)):
                for headers in (
                    {},
                    st.bearer(st.token("ada", secret="someone-elses-secret-0123456789abcdef")),
                ):
                    anonymous = await st.http.request(method, path, json={}, headers=headers)
                    assert anonymous.status_code == 401, (path, anonymous.text)
                    assert anonymous.json()["code"] == "UNAUTHENTICATED"


class TestReconciliation:
    async def test_stripe_changes_show_as_mismatches_and_the_repairs_fix_them(
        self, scratch: Scratch, emulator_url: str, tmp_path: Path
    ) -> None:
        async with single_tenant(
            scratch, emulator_url, tmp_path, end_user_admin_roles=ADMIN_ROLES
        ) as st:
            owner = st.bearer(st.token("owner-1", email="owner@example.test", roles="OWNER"))
            subscriptions = {
                user: (await subscribed(st, user))["stripeSubscriptionId"]
                for user in ("ada", "bob", "cat")
            }
            clean = await st.http.get(RECONCILIATION, headers=owner)
            assert clean.status_code == 200, clean.text
            assert clean.json()["stripeAvailable"] is True
            assert clean.json()["summary"] == {"total": 3, "inSync": 3, "mismatched": 0}
            assert all(r["mismatchReasons"] == [] for r in clean.json()["records"])

            # changes made in Stripe that billwarden never hears of
            await deafen(st)
            st.stripe.v1.subscriptions.cancel(subscriptions["bob"])
            cats = st.stripe.v1.subscriptions.retrieve(subscriptions["cat"])
            st.stripe.v1.subscriptions.update(
                cats.id,
                {
                    "items": [
                        {"id": cats["items"].data[0].id, "price": st.prices["premium_yearly"]}
                    ],
                    "proration_behavior": "none",
                },
            )
            stale = await entitlement(st, st.token("bob"))
            assert stale["entitlement"]["status"] == "ACTIVE"  # no webhook: still premium

            drifted = await st.http.get(RECONCILIATION, headers=owner)
            assert drifted.status_code == 200, drifted.text
            assert drifted.json()["summary"] == {"total": 3, "inSync": 1, "mismatched": 2}
            records = by_user(drifted.json())
            assert [r["userExternalId"] for r in drifted.json()["records"]][2] == "ada"
            assert records["bob"]["mismatchReasons"] == ["status_mismatch"]
            assert "price_mismatch" in records["cat"]["mismatchReasons"]
            assert records["ada"]["mismatchReasons"] == []
            bob = records["bob"]
            assert bob["local"]["subscriptions"][0]["status"] == "active"
            assert bob["stripe"]["subscriptions"][0]["status"] == "canceled"
            assert bob["local"]["entitlement"]["status"] == "ACTIVE"
            assert bob["entitlementId"] == stale["entitlement"]["id"]

            synced = await st.http.post(
                RECONCILIATION,
                json={"entitlementId": bob["entitlementId"], "action": "sync_from_stripe"},
                headers=owner,
            )
            assert synced.status_code == 200, synced.text
            assert synced.json()["record"]["inSync"] is True
            assert synced.json()["record"]["mismatchReasons"] == []
            assert synced.json()["entitlement"]["status"] == "CANCELED"
            assert synced.json()["hasPremiumAccess"] is False
            bobs = await entitlement(st, st.token("bob"))
            assert (bobs["entitlement"]["plan"], bobs["hasPremiumAccess"]) == ("FREE", False)

            admin = st.bearer(st.token("admin-1", roles=["MEMBER", "ADMIN"]))
            cat = await st.http.post(
                RECONCILIATION,
                json={
                    "entitlementId": records["cat"]["entitlementId"],
                    "action": "sync_from_stripe",
                },
                headers=admin,
            )
            assert cat.status_code == 200, cat.text
            assert cat.json()["record"]["inSync"] is True
            assert cat.json()["entitlement"]["plan"] == "PREMIUM_YEARLY"
            assert cat.json()["entitlement"]["stripePriceId"] == st.prices["premium_yearly"]

            # reset_to_free: the entitlement only; Stripe still bills ada, which the record says
            reset = await st.http.post(
                RECONCILIATION,
                json={
                    "entitlementId": records["ada"]["entitlementId"],
                    "action": "reset_to_free",
                    "reason": "refunded by support",
                },
                headers=owner,
            )
            assert reset.status_code == 200, reset.text
            assert reset.json()["entitlement"]["plan"] == "FREE"
            assert reset.json()["entitlement"]["status"] == "NONE"
            assert reset.json()["entitlement"]["stripeSubscriptionId"] is None
            assert reset.json()["hasPremiumAccess"] is False
            assert reset.json()["record"]["mismatchReasons"] == ["snapshot_drift"]
            adas = await entitlement(st, st.token("ada"))
            assert (adas["entitlement"]["plan"], adas["hasPremiumAccess"]) == ("FREE", False)

            # the next read shows the state as it is now, not as it was
            now = await st.http.get(RECONCILIATION, headers=owner)
            assert now.json()["summary"] == {"total": 3, "inSync": 2, "mismatched": 1}
            assert by_user(now.json())["ada"]["mismatchReasons"] == ["snapshot_drift"]

            # the repairs are audited in the caller's name
            console = st.bearer(await st.console_admin())
            audit = await st.http.get(
                "/api/v1/admin/audit",
                params={"projectId": str(st.project_id), "limit": 50},
                headers=console,
            )
            assert audit.status_code == 200, audit.text
            entries = {entry["action"]: entry for entry in audit.json()["items"]}
            resets = entries["reconciliation.reset_to_free"]
            assert (resets["actorType"], resets["actorId"]) == ("end_user", "owner-1")
            assert resets["reason"] == "refunded by support"
            assert resets["targetId"] == records["ada"]["entitlementId"]
            assert resets["after"]["entitlement"]["plan"] == "FREE"
            synced_entries = [
                entry
                for entry in audit.json()["items"]
                if entry["action"] == "reconciliation.sync_from_stripe"
            ]
            assert {entry["actorId"] for entry in synced_entries} == {"owner-1", "admin-1"}

            # console admins too; the console's billing page answers them
            by_console = await st.http.get(RECONCILIATION, headers=console)
            assert by_console.status_code == 200, by_console.text
            assert by_console.json()["summary"]["total"] == 3
            page = await st.http.get("/admin/billing", headers=console)
            assert page.status_code == 200, page.text
            assert "Billing" in page.text

    async def test_refusals_and_stripe_unavailable(
        self, scratch: Scratch, emulator_url: str, tmp_path: Path
    ) -> None:
        async with single_tenant(
            scratch, emulator_url, tmp_path, end_user_admin_roles=ADMIN_ROLES
        ) as st:
            owner = st.bearer(st.token("owner-1", roles="OWNER"))
            ada = await subscribed(st, "ada")
            target = {"entitlementId": ada["id"]}
            refusals = [
                ({**target, "action": "delete_everything"}, 400, "UNKNOWN_REPAIR"),
                ({**target}, 400, "VALIDATION_ERROR"),
                (
                    {"entitlementId": "not-an-id", "action": "reset_to_free"},
                    400,
                    "VALIDATION_ERROR",
                ),
                (
                    {
                        "entitlementId": "00000000-0000-0000-0000-000000000000",
                        "action": "reset_to_free",
                    },
                    404,
                    "RECORD_NOT_FOUND",
                ),
            ]
            for body, status, code in refusals:
                refused = await st.http.post(RECONCILIATION, json=body, headers=owner)
                assert (refused.status_code, refused.json()["code"]) == (status, code), body
            for method in ("GET", "POST"):
                body = {**target, "action": "reset_to_free"}
                anonymous = await st.http.request(method, RECONCILIATION, json=body)
                assert anonymous.status_code == 401, anonymous.text
                assert anonymous.json()["code"] in ("UNAUTHENTICATED", "UNAUTHORIZED")
                for roles in (None, "MEMBER", ["owner"]):  # roles match exactly
                    user = st.bearer(st.token("ada", roles=roles))
                    forbidden = await st.http.request(
                        method, RECONCILIATION, json=body, headers=user
                    )
                    assert forbidden.status_code == 403, forbidden.text
                    assert forbidden.json()["code"] == "FORBIDDEN"
            still = await entitlement(st, st.token("ada"))
            assert still["entitlement"]["plan"] == "PREMIUM_MONTHLY"  # nothing was reset

            # the same database served by a billwarden whose Stripe refuses connections
            offline = st.settings.model_copy(
                update={"stripe_api_base": "http://127.0.0.1:9", "stripe_max_network_retries": 0}
            )
            with serving(create_app(offline, configure_logs=False)) as url:
                async with httpx.AsyncClient(base_url=url, timeout=30) as http:
                    answer = await http.get(RECONCILIATION, headers=owner)
                    assert answer.status_code == 200, answer.text
                    assert answer.json()["stripeAvailable"] is False
                    assert answer.json()["stripeError"]
                    (record,) = answer.json()["records"]
                    assert record["userExternalId"] == "ada"
                    assert record["stripe"] is None
                    assert record["mismatchReasons"] == []  # the database agrees with itself
                    failed = await http.post(
                        RECONCILIATION, json={**target, "action": "sync_from_stripe"}, headers=owner
                    )
                    assert failed.status_code == 502, failed.text
