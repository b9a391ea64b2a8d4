"""Seed 000 (the Parchment console) pointed at billwarden in single-tenant mode: its Stripe
lifecycle routes with the app's own end-user tokens, its admin discrepancy tooling, its legacy
docs handoff and its console key routes, each through the console's own paths."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from billwarden.audit.models import AuditEntry
from billwarden.core.subjects import Subject, SubjectType
from billwarden.entitlements.models import Entitlement
from billwarden.projects.models import Project, ProjectMember, ProjectRole
from tests.compat.single_tenant import SingleTenant, single_tenant
from tests.conftest import Scratch
from tests.factories import Factories

STRIPE = "/api/stripe"
DISCREPANCIES = "/api/admin/billing-entitlement-discrepancies"
ROLE_DISCREPANCIES = "/api/admin/stripe-role-discrepancies"


def refused(answer: httpx.Response, status: int, code: str) -> None:
    assert answer.status_code == status, answer.text
    assert answer.json()["code"] == code, answer.text


async def checkout(st: SingleTenant, token: str, **body: Any) -> dict[str, Any]:
    answer = await st.http.post(
        f"{STRIPE}/create-checkout-session", json=body, headers=st.bearer(token)
    )
    assert answer.status_code == 200, answer.text  # 200, where the canonical route answers 201
    created: dict[str, Any] = answer.json()
    return created


async def bought(st: SingleTenant, token: str, **body: Any) -> dict[str, Any]:
    """Checkout, paid, then the success page's reconcile-session: its answer."""
    created = await checkout(st, token, **body)
    await st.pay(created["sessionId"])
    answer = await st.http.post(
        f"{STRIPE}/reconcile-session",
        json={"sessionId": created["sessionId"]},
        headers=st.bearer(token),
    )
    assert answer.status_code == 200, answer.text
    reconciled: dict[str, Any] = answer.json()
    return reconciled


class TestStripeLifecycle:
    async def test_checkout_reconcile_cancel_and_resume_through_the_consoles_routes(
        self, scratch: Scratch, emulator_url: str, tmp_path: Path
    ) -> None:
        async with single_tenant(scratch, emulator_url, tmp_path) as st:
            ada = st.token("ada", email="ada@example.test")
            bob = st.token("bob", email="bob@example.test")
            http = st.http

            # the caller's customer: made once, then reused
            first = await http.post(f"{STRIPE}/create-customer", headers=st.bearer(ada))
            assert first.status_code == 200, first.text
            assert first.json()["customerId"].startswith("cus_")
            assert first.json()["created"] is True
            again = await http.post(f"{STRIPE}/create-customer", headers=st.bearer(ada))
            assert again.json() == {"customerId": first.json()["customerId"], "created": False}
            refused(await http.post(f"{STRIPE}/create-customer"), 401, "UNAUTHENTICATED")

            # what checkout refuses
            path = f"{STRIPE}/create-checkout-session"
            for body, status, code in (
                ({"purchaseKey": "no_such_plan"}, 400, "UNKNOWN_PURCHASE_KEY"),
                ({"purchaseKeys": ["premium_monthly", "nope"]}, 400, "UNKNOWN_PURCHASE_KEY"),
                ({"purchaseKey": "enterprise"}, 400, "NOT_SELF_SERVE"),
                ({"purchaseKeys": ["premium_monthly", "premium_yearly"]}, 409, "FAMILY_CONFLICT"),
                ({"purchaseKey": "a", "purchaseKeys": ["b"]}, 400, "VALIDATION_ERROR"),
            ):
                refused(await http.post(path, json=body, headers=st.bearer(ada)), status, code)
            refused(
                await http.post(path, json={"purchaseKey": "premium_monthly"}),
                401,
                "UNAUTHENTICATED",
            )

            # an embedded checkout of two families, inspected before and after payment
            created = await checkout(st, ada, purchaseKeys=["premium_monthly", "api_pro"])
            assert set(created) == {"clientSecret", "sessionId"}
            assert created["clientSecret"] and created["sessionId"].startswith("cs_")
            session_id = created["sessionId"]
            check = f"{STRIPE}/check-session"
            open_ = await http.get(check, params={"session_id": session_id}, headers=st.bearer(ada))
            assert open_.status_code == 200, open_.text
            assert open_.json()["status"] == "open"
            assert open_.json()["paymentStatus"] == "unpaid"
            assert open_.json()["subscriptionId"] is None
            assert "customerEmail" in open_.json()
            refused(
                await http.get(check, params={"session_id": session_id}, headers=st.bearer(bob)),
                404,
                "CHECKOUT_SESSION_NOT_FOUND",
            )
            refused(await http.get(check, headers=st.bearer(ada)), 400, "VALIDATION_ERROR")

            await st.pay(session_id)
            reconciled = await http.post(
                f"{STRIPE}/reconcile-session",
                json={"sessionId": session_id},
                headers=st.bearer(ada),
            )
            assert reconciled.status_code == 200, reconciled.text
            answer = reconciled.json()
            assert answer["processed"] is True
            assert isinstance(answer["alreadyProcessed"], bool)  # its webhook may have come first
            assert answer["hasPremiumAccess"] is True
            assert answer["role"] == "premium"
            assert answer["entitlement"]["plan"] == "PREMIUM_MONTHLY"
            assert answer["entitlement"]["status"] == "ACTIVE"
            # the older success flows' name: the same handler, applied once
            legacy = await http.post(
                f"{STRIPE}/verify-and-update-role",
                json={"sessionId": session_id},
                headers=st.bearer(ada),
            )
            assert legacy.status_code == 200, legacy.text
            assert legacy.json()["processed"] is True
            assert legacy.json()["alreadyProcessed"] is True
            assert legacy.json()["role"] == "premium"
            refused(
                await http.post(
                    f"{STRIPE}/reconcile-session",
                    json={"sessionId": session_id},
                    headers=st.bearer(bob),
                ),
                404,
                "CHECKOUT_SESSION_NOT_FOUND",
            )
            paid = await http.get(check, params={"session_id": session_id}, headers=st.bearer(ada))
            assert paid.json()["status"] == "complete"
            assert paid.json()["paymentStatus"] == "paid"
            assert paid.json()["customerEmail"] == "ada@example.test"
            bundled = paid.json()["subscriptionId"]
            assert bundled.startswith("sub_")

            # a family ada holds already is not sold again
            refused(
                await http.post(
                    path, json={"purchaseKey": "premium_yearly"}, headers=st.bearer(ada)
                ),
                409,
                "ALREADY_SUBSCRIBED",
            )
            # the membership bundled with the API plan is not cancelled or resumed here
            for action in ("cancel-subscription", "resume-subscription"):
                refused(
                    await http.post(
                        f"{STRIPE}/{action}",
                        json={"subscriptionId": bundled},
                        headers=st.bearer(ada),
                    ),
                    409,
                    "BUNDLED_SUBSCRIPTION",
                )

            # a membership alone: cancelled at the period's end, then resumed
            membership = (await bought(st, bob, purchaseKey="premium_monthly"))["entitlement"][
                "stripeSubscriptionId"
            ]
            cancel = await http.post(
                f"{STRIPE}/cancel-subscription",
                json={"subscriptionId": membership},
                headers=st.bearer(bob),
            )
            assert cancel.status_code == 200, cancel.text
            assert cancel.json()["subscription"]["id"] == membership
            assert cancel.json()["subscription"]["cancelAtPeriodEnd"] is True
            assert cancel.json()["hasPremiumAccess"] is True  # paid until the period ends
            assert st.stripe.v1.subscriptions.retrieve(membership).cancel_at_period_end is True
            resume = await http.post(
                f"{STRIPE}/resume-subscription",
                json={"subscriptionId": membership},
                headers=st.bearer(bob),
            )
            assert resume.status_code == 200, resume.text
            assert resume.json()["subscription"]["cancelAtPeriodEnd"] is False
            assert st.stripe.v1.subscriptions.retrieve(membership).cancel_at_period_end is False
            # someone else's subscription, or none named
            refused(
                await http.post(
                    f"{STRIPE}/cancel-subscription",
                    json={"subscriptionId": membership},
                    headers=st.bearer(ada),
                ),
                404,
                "SUBSCRIPTION_NOT_FOUND",
            )
            refused(
                await http.post(f"{STRIPE}/resume-subscription", json={}, headers=st.bearer(bob)),
                400,
                "VALIDATION_ERROR",
            )


async def _drifted(scratch: Scratch, project_id: Any) -> dict[str, str]:
    """Two snapshots that differ from the mirror (which holds no subscription for either): a
    stale premium grant, and one whose role the catalog does not give its plans."""

    async def build(made: Factories) -> dict[str, str]:
        stale = await made.snapshots.granted(project_id, Subject(SubjectType.USER, "stale"))
        odd = await made.snapshots.granted(project_id, Subject(SubjectType.USER, "odd"))
        odd.role = "editor"
        await made.snapshots.session.flush()
        return {"stale": str(stale.id), "odd": str(odd.id)}

    return await scratch.setup(build)


class TestAdminDiscrepancies:
    async def test_admins_list_drift_from_the_database_and_repair_by_recompute(
        self, scratch: Scratch, emulator_url: str, tmp_path: Path
    ) -> None:
        async with single_tenant(
            scratch, emulator_url, tmp_path, end_user_admin_roles=["ADMIN"]
        ) as st:
            ids = await _drifted(scratch, st.project_id)
            console = st.bearer(await st.console_admin())
            staff = st.bearer(st.token("staff-1", email="staff@example.test", roles="ADMIN"))
            member = st.bearer(st.token("reader", roles=["MEMBER"]))
            http = st.http

            listed = await http.get(DISCREPANCIES, headers=console)
            assert listed.status_code == 200, listed.text
            body = listed.json()
            assert body["summary"] == {"total": 2, "inSync": 0, "mismatched": 2}
            assert body["matching"] == 2
            reasons = {
                record["subject"]["id"]: record["mismatchReasons"] for record in body["records"]
            }
            assert reasons == {
                "odd": ["snapshot_drift", "role_mismatch"],
                "stale": ["snapshot_drift"],
            }
            odd = next(r for r in body["records"] if r["subject"]["id"] == "odd")
            assert odd["entitlementId"] == ids["odd"]
            assert odd["stripe"] is None  # from the database alone
            assert {"reason": "role_mismatch", "field": "role", "local": "editor"}.items() <= next(
                d for d in odd["differences"] if d["reason"] == "role_mismatch"
            ).items()
            # the older name answers the same, for an end user with an admin role too
            alias = await http.get(ROLE_DISCREPANCIES, headers=staff)
            assert alias.status_code == 200, alias.text
            assert alias.json()["summary"] == body["summary"]

            # who may not
            outsiders = await scratch.setup(lambda made: _console_member_and_key(made, st))
            refused(await http.get(DISCREPANCIES, headers=member), 403, "FORBIDDEN")
            refused(
                await http.get(DISCREPANCIES, headers=outsiders["member"]),
                403,
                "PROJECT_ADMIN_REQUIRED",
            )
            refused(await http.get(DISCREPANCIES, headers=outsiders["key"]), 401, "UNAUTHENTICATED")
            refused(await http.get(DISCREPANCIES), 401, "UNAUTHENTICATED")
            refused(
                await http.post(DISCREPANCIES, json={"all": True}, headers=member),
                403,
                "FORBIDDEN",
            )

            # what a repair refuses
            for body_, status, code in (
                (
                    {"entitlementId": ids["odd"], "action": "sync_from_stripe"},
                    400,
                    "UNKNOWN_REPAIR",
                ),
                ({"action": "recompute"}, 400, "VALIDATION_ERROR"),
                ({"entitlementId": ids["odd"], "all": True}, 400, "VALIDATION_ERROR"),
                ({"all": 1}, 400, "VALIDATION_ERROR"),  # true/false only, not 1 for true
                (
                    {
                        "entitlementId": "00000000-0000-0000-0000-000000000000",
                        "action": "recompute",
                    },
                    404,
                    "RECORD_NOT_FOUND",
                ),
            ):
                refused(await http.post(DISCREPANCIES, json=body_, headers=console), status, code)

            # one repaired by a console admin, then every other by an end user with the role
            one = await http.post(
                DISCREPANCIES,
                json={"entitlementId": ids["odd"], "action": "recompute"},
                headers=console,
            )
            assert one.status_code == 200, one.text
            assert one.json()["repaired"] == 1
            [record] = one.json()["records"]
            assert (record["entitlementId"], record["inSync"]) == (ids["odd"], True)
            assert record["mismatchReasons"] == []
            assert record["local"]["entitlement"]["role"] is None
            assert record["local"]["entitlement"]["plan"] == "FREE"
            rest = await http.post(ROLE_DISCREPANCIES, json={"all": True}, headers=staff)
            assert rest.status_code == 200, rest.text
            assert rest.json()["repaired"] == 1
            assert [r["subject"]["id"] for r in rest.json()["records"]] == ["stale"]
            clean = await http.get(DISCREPANCIES, headers=console)
            assert clean.json()["summary"] == {"total": 2, "inSync": 2, "mismatched": 0}
            assert clean.json()["records"] == []
            nothing = await http.post(DISCREPANCIES, json={"all": True}, headers=console)
            assert nothing.json() == {"repaired": 0, "records": []}

        async with scratch.session() as session:
            entries = (
                await session.scalars(
                    select(AuditEntry)
                    .where(AuditEntry.action == "reconciliation.recompute")
                    .order_by(AuditEntry.created_at)
                )
            ).all()
            snapshots = {
                row.subject_id: row
                for row in await session.scalars(
                    select(Entitlement).where(Entitlement.project_id == st.project_id)
                )
            }
        assert [(e.target_id, e.actor_type) for e in entries] == [
            (ids["odd"], "user"),
            (ids["stale"], "end_user"),
        ]
        assert entries[1].actor_id == "staff-1"
        assert (
            entries[0].before is not None and entries[0].before["entitlement"]["role"] == "editor"
        )
        assert entries[0].after is not None and entries[0].after["entitlement"]["role"] is None
        assert {row.plan for row in snapshots.values()} == {"FREE"}


async def _console_member_and_key(made: Factories, st: SingleTenant) -> dict[str, dict[str, str]]:
    """A console user who is only a member of the single-tenant project, and a project API key:
    neither is an admin."""
    member = await made.people.user()
    made.people.session.add(
        ProjectMember(project_id=st.project_id, user_id=member.id, role=ProjectRole.MEMBER)
    )
    await made.people.session.flush()
    key = await made.people.api_key(Project(id=st.project_id), member)
    return {"member": made.people.bearer(member), "key": st.bearer(key)}


class TestDocsKeysAndUnservedRoutes:
    async def test_docs_handoff_key_management_and_no_backfill_route(
        self, scratch: Scratch, emulator_url: str, tmp_path: Path
    ) -> None:
        async with single_tenant(scratch, emulator_url, tmp_path) as st:
            http = st.http
            for legacy in ("/api/docs", "/api-dashboard/docs"):
                moved = await http.get(legacy)
                assert moved.status_code == 307, legacy
                assert moved.headers["location"] == "/docs/api/overview"
            page = await http.get("/docs/api/overview")
            assert page.status_code == 200
            assert page.headers["content-type"].startswith("text/html")
            policy = page.headers["content-security-policy"]
            assert "default-src 'none'" in policy and "script" not in policy
            assert "<script" not in page.text
            assert 'href="/docs"' in page.text and 'href="/openapi.json"' in page.text
            assert "seed 000: Parchment console" in page.text
            assert "docs/migrating/000-parchment-console.md" in page.text

            # the console's own roasting maintenance is not billing: billwarden has no such route
            refused(await http.post("/api/admin/backfill-milestones", json={}), 404, "NOT_FOUND")

            # the console's key routes, with a signed-in browser session
            sessions = await scratch.setup(lambda made: _signed_in(made, st))
            owner, stranger = sessions
            generate = "/api-dashboard/keys/generate"
            refused(
                await http.post(
                    generate, json={"name": " ", "projectId": str(st.project_id)}, headers=owner
                ),
                400,
                "VALIDATION_ERROR",
            )
            # the seed's own request: a name only (the single-tenant project's key)
            made = await http.post(generate, json={"name": "local sync job"}, headers=owner)
            assert made.status_code == 201, made.text
            assert made.json()["projectId"] == str(st.project_id)
            key_id, secret = made.json()["keyId"], made.json()["apiKey"]
            assert secret.startswith("bw_test_")
            listed = await http.get("/api-dashboard/keys", headers=owner)
            assert [item["keyId"] for item in listed.json()["items"]] == [key_id]
            assert secret not in listed.text and "apiKey" not in listed.json()["items"][0]
            deactivate = "/api-dashboard/keys/deactivate"
            refused(
                await http.post(deactivate, json={"keyId": key_id}, headers=stranger),
                404,
                "API_KEY_NOT_FOUND",
            )
            done = await http.post(deactivate, json={"keyId": key_id}, headers=owner)
            assert done.status_code == 200, done.text
            assert done.json()["active"] is False
            refused(await http.post(deactivate, json={}, headers=owner), 400, "VALIDATION_ERROR")


async def _signed_in(made: Factories, st: SingleTenant) -> tuple[dict[str, str], dict[str, str]]:
    """A member of the single-tenant project and a console user of no project: their browser
    sessions' headers for unsafe requests."""
    member = await made.people.user()
    stranger = await made.people.user()
    made.people.session.add(
        ProjectMember(project_id=st.project_id, user_id=member.id, role=ProjectRole.MEMBER)
    )
    await made.people.session.flush()
    return (await made.people.sign_in(member)).unsafe, (await made.people.sign_in(stranger)).unsafe
