"""Closing a webhook outage without waiting for Stripe's retries (`events catch-up`, by the API
and the command), and `billwarden reconcile` run as a user runs it."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from billwarden.db.engine import create_sessionmaker
from billwarden.webhooks.models import WebhookEvent
from tests.checkout.loop import Loop, billing_loop
from tests.conftest import Scratch
from tests.reconciliation.test_reconcile import by_subject, quiet, reconciled, subscribed
from tests.test_cli import run_cli


async def inbox_counts(scratch: Scratch) -> tuple[int, int]:
    """Stored events, and distinct event ids among them."""
    async with create_sessionmaker(scratch.engine)() as session:
        total = await session.scalar(select(func.count()).select_from(WebhookEvent))
        distinct = await session.scalar(select(func.count(func.distinct(WebhookEvent.event_id))))
    return int(total or 0), int(distinct or 0)


async def outage(loop: Loop, scratch: Scratch) -> dict[str, str]:
    """ada and bob subscribe; then, with the webhook endpoint down, ada moves to premium_plus
    and bob cancels in Stripe: billwarden has heard of neither."""
    subscriptions = {name: await subscribed(loop, name) for name in ("ada", "bob")}
    await quiet(loop, scratch)
    ada = loop.stripe.v1.subscriptions.retrieve(subscriptions["ada"])
    loop.stripe.v1.subscriptions.update(
        ada.id,
        {
            "items": [{"id": ada["items"].data[0].id, "price": loop.prices["premium_plus"]}],
            "proration_behavior": "none",
        },
    )
    loop.stripe.v1.subscriptions.cancel(subscriptions["bob"])
    assert (await loop.entitlement(loop.token("bob")))["hasPremiumAccess"] is True
    return subscriptions


async def caught_up(loop: Loop) -> bool:
    ada = await loop.entitlement(loop.token("ada"))
    bob = await loop.entitlement(loop.token("bob"))
    return ada["plans"] == ["premium_plus"] and bob["entitlement"]["plan"] == "FREE"


class TestCatchUp:
    async def test_the_api_stores_what_the_inbox_lacks_and_the_worker_applies_it(
        self, scratch: Scratch, emulator_url: str
    ) -> None:
        async with billing_loop(scratch, emulator_url) as loop:
            await outage(loop, scratch)
            before, _ = await inbox_counts(scratch)
            url = "/api/v1/admin/webhook-events/catch-up"
            body: dict[str, Any] = {"projectId": str(loop.project.id)}
            first = await loop.http.post(url, json=body, headers=loop.owner)
            assert first.status_code == 200, first.text
            stored = first.json()["stored"]
            assert stored >= 2 and first.json()["seen"] >= before + stored
            deadline = time.monotonic() + 10
            while not await caught_up(loop):
                assert time.monotonic() < deadline
                await asyncio.sleep(0.05)
            again = await loop.http.post(url, json=body, headers=loop.owner)
            assert again.json()["stored"] == 0  # nothing stored, nor applied, twice
            total, distinct = await inbox_counts(scratch)
            assert total == distinct == before + stored
            result = await reconciled(loop.http, loop)
            assert result["summary"]["mismatched"] == 0

            member_only = await loop.http.post(
                url, json={"projectId": str(loop.project.id), "mode": "sandbox"}, headers=loop.owner
            )
            assert member_only.status_code == 400
            assert member_only.json()["code"] == "VALIDATION_ERROR"

    async def test_the_command_stores_and_applies(
        self, scratch: Scratch, emulator_url: str, cli_env: dict[str, str], tmp_path: Path
    ) -> None:
        env = {**cli_env, "BILLWARDEN_STRIPE_API_BASE": emulator_url}
        async with billing_loop(scratch, emulator_url) as loop:
            await outage(loop, scratch)
            slug = loop.project.project.slug
            done = run_cli(
                "events", "catch-up", "--project", slug, "--since", "1h", env=env, cwd=tmp_path
            )
            assert done.returncode == 0, done.stderr
            assert "the inbox lacked, stored" in done.stdout
            # the command applies what it stored (the served worker may take some of them)
            deadline = time.monotonic() + 10
            while not await caught_up(loop):
                assert time.monotonic() < deadline
                await asyncio.sleep(0.05)
            bad = run_cli(
                "events", "catch-up", "--project", slug, "--since", "soon", env=env, cwd=tmp_path
            )
            assert bad.returncode == 2
            assert "--since takes" in bad.stderr


class TestReconcileCommand:
    async def test_a_run_with_its_summary_then_repairs(
        self, scratch: Scratch, emulator_url: str, cli_env: dict[str, str], tmp_path: Path
    ) -> None:
        env = {**cli_env, "BILLWARDEN_STRIPE_API_BASE": emulator_url}
        async with billing_loop(scratch, emulator_url) as loop:
            await outage(loop, scratch)
            slug = loop.project.project.slug
            found = run_cli("reconcile", "--project", slug, env=env, cwd=tmp_path)
            assert found.returncode == 0, found.stderr
            assert "mismatched" in found.stdout and "price_mismatch" in found.stdout
            assert "status_mismatch" in found.stdout
            repaired = run_cli(
                "reconcile", "--project", slug, "--repair", "sync_from_stripe",
                env=env, cwd=tmp_path,
            )  # fmt: skip
            assert repaired.returncode == 0, repaired.stderr
            assert "repaired now" in repaired.stdout
            result = await reconciled(loop.http, loop)
            assert result["summary"]["mismatched"] == 0
            assert by_subject(result)["bob"]["local"]["entitlement"]["plan"] == "FREE"
            audit = await loop.http.get(
                "/api/v1/admin/audit",
                params={"projectId": str(loop.project.id)},
                headers=loop.owner,
            )
            repairs = [
                entry
                for entry in audit.json()["items"]
                if entry["action"] == "reconciliation.sync_from_stripe"
            ]
            assert repairs and {entry["actor"] for entry in repairs} == {"command line"}
            unknown = run_cli(
                "reconcile", "--project", slug, "--repair", "shrug", env=env, cwd=tmp_path
            )
            assert unknown.returncode == 2
            assert "unknown repair" in unknown.stderr
