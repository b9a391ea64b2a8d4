"""Reconciliation end to end: drift made on purpose in the emulator (with the webhook endpoint
off, so billwarden never hears of it) and in the database shows each reason; each repair fixes
its record and is audited with before and after; the next run shows everything in sync."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest
from pydantic import ValidationError
from sqlalchemy import func, select, update

from billwarden.app import create_app
from billwarden.audit.service import Actor
from billwarden.config import Settings
from billwarden.core.modes import Mode
from billwarden.db.engine import create_sessionmaker
from billwarden.db.unit_of_work import unit_of_work
from billwarden.entitlements.models import Entitlement
from billwarden.reconciliation.models import ReconcileRecord, ReconcileRun, RunStatus
from billwarden.reconciliation.service import RunPolicy, Runs
from billwarden.stripe_gateway import StripeGateway
from billwarden.subscriptions.models import Subscription
from billwarden.webhooks.models import InboxStatus, WebhookEvent
from billwarden_emulator.testing import serving
from tests.checkout.loop import Loop, billing_loop
from tests.conftest import Scratch

RECONCILIATION = "/api/v1/admin/billing/reconciliation"


def active(answer: dict[str, Any]) -> bool:
    return bool(answer["entitlement"]["status"] == "ACTIVE")


async def subscribed(loop: Loop, name: str) -> str:
    """`name` checks out and pays for premium_monthly; its subscription id."""
    token = loop.token(name)
    session_id = await loop.checkout(token, purchaseKey="premium_monthly")
    await loop.pay(session_id)
    answer = await loop.eventually(token, active)
    return str(answer["entitlement"]["stripeSubscriptionId"])


async def quiet(loop: Loop, scratch: Scratch) -> None:
    """Turn the emulator's webhook endpoint off and wait until every event already sent is
    applied, so nothing billwarden hears afterwards undoes the drift a test makes."""
    for endpoint in loop.stripe.v1.webhook_endpoints.list().data:
        loop.stripe.v1.webhook_endpoints.update(endpoint.id, {"disabled": True})
    sessions = create_sessionmaker(scratch.engine)
    deadline = time.monotonic() + 10
    seen = (-1, -1)
    while True:
        async with sessions() as session:
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


async def reconciled(http: httpx.AsyncClient, loop: Loop, **filters: Any) -> dict[str, Any]:
    """Start a run, wait for it to finish, and read its records."""
    started = await http.post(
        f"{RECONCILIATION}/runs", json={"projectId": str(loop.project.id)}, headers=loop.owner
    )
    assert started.status_code == 202, started.text
    run_id = started.json()["id"]
    deadline = time.monotonic() + 30
    while True:
        run = (await http.get(f"{RECONCILIATION}/runs/{run_id}", headers=loop.owner)).json()
        if run["status"] in ("finished", "failed"):
            break
        assert time.monotonic() < deadline, run
        await asyncio.sleep(0.05)
    assert run["status"] == "finished", run
    answer = await http.get(
        RECONCILIATION,
        params={"projectId": str(loop.project.id), "limit": 200, **filters},
        headers=loop.owner,
    )
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    assert result["run"]["id"] == run_id
    return result


def by_subject(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        (record["subject"]["id"] if record["subject"] else record["subscriptionIds"][0]): record
        for record in result["records"]
    }


async def repair(http: httpx.AsyncClient, loop: Loop, action: str, **target: str) -> httpx.Response:
    return await http.post(
        RECONCILIATION,
        params={"projectId": str(loop.project.id)},
        json={"action": action, "reason": f"ticket: {action}", **target},
        headers=loop.owner,
    )


class TestDriftRepairedAndAudited:
    async def test_each_reason_each_repair_then_all_in_sync(
        self, scratch: Scratch, emulator_url: str
    ) -> None:
        async with billing_loop(scratch, emulator_url) as loop:
            http = loop.http
            subscriptions = {
                name: await subscribed(loop, name)
                for name in ("ada", "bob", "cat", "dan", "fay", "gus", "hal")
            }
            clean = await reconciled(http, loop)
            assert clean["stripeAvailable"] is True
            assert clean["summary"] == {"total": 7, "inSync": 7, "mismatched": 0}

            # Stripe changes billwarden never hears of: the webhook endpoint is off
            await quiet(loop, scratch)
            stripe = loop.stripe
            ada = stripe.v1.subscriptions.retrieve(subscriptions["ada"])
            stripe.v1.subscriptions.update(
                ada.id,
                {
                    "items": [
                        {"id": ada["items"].data[0].id, "price": loop.prices["premium_plus"]}
                    ],
                    "proration_behavior": "none",
                },
            )
            stripe.v1.subscriptions.cancel(subscriptions["bob"])
            stripe.v1.subscriptions.update(subscriptions["fay"], {"cancel_at_period_end": True})
            stranger = stripe.v1.customers.create({"email": "stranger@example.test"})
            unknown = stripe.v1.subscriptions.create(
                {"customer": stranger.id, "items": [{"price": loop.prices["premium_monthly"]}]}
            )
            # and changes made in the database
            sessions = create_sessionmaker(scratch.engine)
            async with unit_of_work(sessions) as session:
                tenant = (Entitlement.project_id == loop.project.id) & (
                    Entitlement.mode == Mode.TEST
                )
                await session.execute(
                    update(Entitlement)
                    .where(tenant, Entitlement.subject_id == "cat")
                    .values(plan="PREMIUM_YEARLY")
                )
                await session.execute(
                    update(Entitlement)
                    .where(tenant, Entitlement.subject_id == "dan")
                    .values(role="admin")
                )
                mirror = Subscription.project_id == loop.project.id
                await session.execute(
                    update(Subscription)
                    .where(mirror, Subscription.stripe_subscription_id == subscriptions["gus"])
                    .values(stripe_customer_id="cus_someone_else")
                )
                row = await session.scalar(
                    select(Subscription).where(
                        mirror, Subscription.stripe_subscription_id == subscriptions["hal"]
                    )
                )
                assert row is not None
                await session.execute(
                    update(Subscription)
                    .where(mirror, Subscription.stripe_subscription_id == subscriptions["hal"])
                    .values(current_period_end=row.current_period_end + timedelta(days=3))
                )
                session.add(
                    Subscription(
                        project_id=loop.project.id,
                        mode=Mode.TEST,
                        stripe_subscription_id="sub_ghost",
                        stripe_customer_id="cus_ghost",
                        subject_type="user",
                        subject_id="eve",
                        status="active",
                        price_ids=[loop.prices["premium_monthly"]],
                        purchase_keys=["premium_monthly"],
                        raw={},
                    )
                )

            drifted = await reconciled(http, loop)
            records = by_subject(drifted)
            reasons = {key: record["mismatchReasons"] for key, record in records.items()}
            assert "price_mismatch" in reasons["ada"]
            assert reasons["bob"] == ["status_mismatch"]
            assert reasons["cat"] == ["snapshot_drift"]
            assert reasons["dan"] == ["role_mismatch"]
            assert reasons["eve"] == ["missing_in_stripe", "snapshot_drift"]
            assert reasons["fay"] == ["cancel_state_mismatch"]
            assert reasons["gus"] == ["customer_mismatch", "snapshot_drift"]
            assert reasons["hal"] == ["period_mismatch", "snapshot_drift"]
            assert reasons[unknown.id] == ["missing_locally"]
            assert records[unknown.id]["subject"] is None
            assert drifted["summary"] == {"total": 9, "inSync": 0, "mismatched": 9}
            # the diagnostics say what differs, field by field
            (status,) = [d for d in records["bob"]["differences"] if d["field"] == "status"]
            assert (status["local"], status["expected"]) == ("active", "canceled")
            assert records["bob"]["stripe"]["subscriptions"][0]["status"] == "canceled"
            only_roles = await http.get(
                RECONCILIATION,
                params={"projectId": str(loop.project.id), "reason": "role_mismatch"},
                headers=loop.owner,
            )
            assert [r["subject"]["id"] for r in only_roles.json()["records"]] == ["dan"]

            # reset_to_free leaves Stripe and the mirror alone: the snapshot now drifts
            reset = await repair(
                http, loop, "reset_to_free", entitlementId=records["dan"]["entitlementId"]
            )
            assert reset.status_code == 200, reset.text
            assert reset.json()["record"]["mismatchReasons"] == ["snapshot_drift"]
            assert reset.json()["record"]["local"]["entitlement"]["plan"] == "FREE"
            repairs = {
                "ada": "sync_from_stripe",
                "bob": "sync_from_stripe",
                "cat": "recompute",
                "dan": "recompute",
                "eve": "sync_from_stripe",
                "fay": "sync_from_stripe",
                "gus": "sync_from_stripe",
                "hal": "sync_from_stripe",
            }
            for name, action in repairs.items():
                # eve has no snapshot: her record is named by its subscription
                target = (
                    {"entitlementId": records[name]["entitlementId"]}
                    if records[name]["entitlementId"]
                    else {"subscriptionId": records[name]["subscriptionIds"][0]}
                )
                fixed = await repair(http, loop, action, **target)
                assert fixed.status_code == 200, (name, fixed.text)
                assert fixed.json()["record"]["inSync"] is True, (name, fixed.json())
            adopted = await repair(http, loop, "sync_from_stripe", subscriptionId=unknown.id)
            assert adopted.status_code == 200, adopted.text
            assert adopted.json()["record"]["inSync"] is True
            assert adopted.json()["summary"] == {"total": 9, "inSync": 9, "mismatched": 0}

            # what the repairs did shows where a user notices it
            bob = await loop.entitlement(loop.token("bob"))
            assert bob["entitlement"]["plan"] == "FREE" and bob["hasPremiumAccess"] is False
            ada_now = await loop.entitlement(loop.token("ada"))
            assert ada_now["plans"] == ["premium_plus"]

            audit = await http.get(
                "/api/v1/admin/audit",
                params={"projectId": str(loop.project.id), "limit": 50},
                headers=loop.owner,
            )
            assert audit.status_code == 200, audit.text
            entries = audit.json()["items"]
            runs = [e for e in entries if e["action"] == "reconciliation.run_requested"]
            assert len(runs) == 2  # the two runs asked for so far
            entries = [e for e in entries if e not in runs]
            assert len(entries) == 10  # one per repair
            resets = [e for e in entries if e["action"] == "reconciliation.reset_to_free"]
            assert len(resets) == 1
            assert resets[0]["before"]["entitlement"]["role"] == "admin"
            assert resets[0]["after"]["entitlement"]["plan"] == "FREE"
            assert resets[0]["reason"] == "ticket: reset_to_free"
            assert resets[0]["targetId"] == records["dan"]["entitlementId"]
            assert {e["actorType"] for e in entries} == {"user"}

            again = await reconciled(http, loop)
            assert again["summary"] == {"total": 9, "inSync": 9, "mismatched": 0}
            assert again["run"]["reasons"] == {}

    async def test_refusals(self, scratch: Scratch, emulator_url: str) -> None:
        async with billing_loop(scratch, emulator_url) as loop:
            http = loop.http
            await subscribed(loop, "ada")
            result = await reconciled(http, loop)
            (record,) = result["records"]
            unknown_action = await repair(
                http, loop, "delete_everything", entitlementId=record["entitlementId"]
            )
            assert unknown_action.status_code == 400
            assert unknown_action.json()["code"] == "UNKNOWN_REPAIR"
            missing = await repair(
                http, loop, "recompute", entitlementId="00000000-0000-0000-0000-000000000000"
            )
            assert missing.status_code == 404
            assert missing.json()["code"] == "RECORD_NOT_FOUND"
            unnamed = await repair(http, loop, "recompute")
            assert unnamed.status_code == 400
            assert unnamed.json()["code"] == "VALIDATION_ERROR"
            bad_reason = await http.get(
                RECONCILIATION,
                params={"projectId": str(loop.project.id), "reason": "bad_luck"},
                headers=loop.owner,
            )
            assert bad_reason.status_code == 400
            assert bad_reason.json()["code"] == "VALIDATION_ERROR"


class TestStripeUnreachable:
    async def test_local_records_and_stripe_available_false(
        self, scratch: Scratch, emulator_url: str
    ) -> None:
        async with billing_loop(scratch, emulator_url) as loop:
            await subscribed(loop, "ada")
            await quiet(loop, scratch)
            async with unit_of_work(create_sessionmaker(scratch.engine)) as session:
                await session.execute(
                    update(Entitlement)
                    .where(Entitlement.subject_id == "ada")
                    .values(plan="PREMIUM_YEARLY")
                )
            # the same database served by a billwarden whose Stripe refuses connections
            offline = scratch.settings.model_copy(
                update={"stripe_api_base": "http://127.0.0.1:9", "stripe_max_network_retries": 0}
            )
            with serving(create_app(offline, configure_logs=False)) as url:
                async with httpx.AsyncClient(base_url=url, timeout=30) as http:
                    result = await reconciled(http, loop)
        assert result["stripeAvailable"] is False
        assert result["run"]["stripeError"]
        (record,) = result["records"]
        assert record["mismatchReasons"] == ["snapshot_drift"]
        assert record["stripe"] is None


class TestScheduledRuns:
    async def test_a_scheduled_run_repairs_the_reasons_it_may_by_itself(
        self, scratch: Scratch, emulator_url: str
    ) -> None:
        async with billing_loop(scratch, emulator_url) as loop:
            await subscribed(loop, "ada")
            await subscribed(loop, "bob")
            await quiet(loop, scratch)
            loop.stripe.v1.subscriptions.cancel(
                (await loop.entitlement(loop.token("bob")))["entitlement"]["stripeSubscriptionId"]
            )
            async with unit_of_work(create_sessionmaker(scratch.engine)) as session:
                await session.execute(
                    update(Entitlement)
                    .where(Entitlement.subject_id == "ada")
                    .values(features=["everything"])
                )
            project, owner = loop.project, loop.owner
        # a billwarden that reconciles every minute and repairs snapshot drift by itself; its
        # worker asks for the first run as it starts
        scheduled = scratch.settings.model_copy(
            update={
                "stripe_api_base": emulator_url,
                "reconcile_interval_seconds": 60,
                "reconcile_auto_repair": ["snapshot_drift"],
            }
        )
        with serving(create_app(scheduled, configure_logs=False)) as url:
            async with httpx.AsyncClient(base_url=url, timeout=30) as http:
                deadline = time.monotonic() + 30
                while True:
                    answer = await http.get(
                        RECONCILIATION, params={"projectId": str(project.id)}, headers=owner
                    )
                    if answer.json()["run"] is not None:
                        break
                    assert time.monotonic() < deadline, answer.json()
                    await asyncio.sleep(0.1)
                audit = await http.get(
                    "/api/v1/admin/audit", params={"projectId": str(project.id)}, headers=owner
                )
        result = answer.json()
        assert result["run"]["trigger"] == "schedule"
        assert result["run"]["requestedBy"] == "schedule"
        assert result["run"]["repaired"] == 1
        records = by_subject(result)
        assert records["ada"]["inSync"] is True  # repaired: only its snapshot drifted
        assert records["bob"]["mismatchReasons"] == ["status_mismatch"]  # not on the list
        (entry,) = audit.json()["items"]
        assert (entry["action"], entry["actorType"], entry["actor"]) == (
            "reconciliation.recompute",
            "system",
            "schedule",
        )
        assert entry["before"]["entitlement"]["features"] == ["everything"]
        assert entry["after"]["entitlement"]["features"] == ["export", "premium"]


class TestRunners:
    async def test_a_runner_whose_run_was_taken_over_stops_and_writes_nothing(
        self, scratch: Scratch, emulator_url: str
    ) -> None:
        async with billing_loop(scratch, emulator_url) as loop:
            await subscribed(loop, "ada")
            sessions = create_sessionmaker(scratch.engine)
            runs = Runs(
                sessions,
                StripeGateway(api_base=emulator_url),
                scratch.secret_box,
                RunPolicy.from_settings(scratch.settings),
            )
            async with unit_of_work(sessions) as session:
                run, new = await Runs.request(
                    session, loop.project.id, Mode.TEST, Actor.system("test"), "cli"
                )
                mine = await runs.claim(session, run.id)
            assert new and mine is not None
            theirs = uuid.uuid4()
            async with unit_of_work(sessions) as session:  # another runner took it over
                await session.execute(
                    update(ReconcileRun).where(ReconcileRun.id == run.id).values(claim_token=theirs)
                )
            assert await runs.execute(run.id, token=mine) is False
            async with sessions() as session:
                after = await session.get(ReconcileRun, run.id)
                records = await session.scalar(
                    select(func.count())
                    .select_from(ReconcileRecord)
                    .where(ReconcileRecord.run_id == run.id)
                )
            assert after is not None
            assert (after.status, after.claim_token, records) == (
                RunStatus.RUNNING,
                theirs,
                0,
            )
            await runs.gateway.close()

    def test_missing_in_stripe_is_never_repaired_by_a_schedule(self) -> None:
        with pytest.raises(ValidationError, match="missing_in_stripe is repaired by hand only"):
            Settings(reconcile_auto_repair=["snapshot_drift", "missing_in_stripe"])
        with pytest.raises(ValidationError, match="unknown reasons bad_luck"):
            Settings(reconcile_auto_repair=["bad_luck"])
        assert Settings(
            reconcile_auto_repair="snapshot_drift, status_mismatch"
        ).reconcile_auto_repair == [
            "snapshot_drift",
            "status_mismatch",
        ]
