"""`billwarden trigger`, run as a user runs it: the emulator emits a real event for a project,
delivered signed to a served billwarden whose worker applies it; anything but the emulator, and
an event it cannot make, are refused."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import orjson
from sqlalchemy import select

from billwarden.subscriptions.models import Subscription
from billwarden.webhooks.models import InboxStatus, WebhookEvent
from tests.checkout.loop import Loop, billing_loop
from tests.conftest import Scratch

SUPPORTED = (
    "checkout.session.completed",
    "customer.subscription.updated",
    "customer.subscription.deleted",
    "invoice.payment_failed",
)


async def run_trigger(
    *args: str, env: dict[str, str], cwd: Path
) -> subprocess.CompletedProcess[str]:
    """`billwarden trigger ARGS` in its own process (the served app and the emulator run in
    threads of this one, so the test's loop must not block on it)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("BILLWARDEN_", "STRIPE_"))}
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "billwarden", "trigger", *args],
        env={**clean, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def printed_object(output: str) -> str:
    match = re.search(r"^\s+object\s+(\S+)$", output, re.MULTILINE)
    assert match, output
    return match.group(1)


async def applied(scratch: Scratch, event_type: str, object_id: str) -> WebhookEvent:
    """The stored event of that type about that object, once the worker is done with it."""
    deadline = time.monotonic() + 10
    while True:
        async with scratch.session() as session:
            row = await session.scalar(
                select(WebhookEvent).where(
                    WebhookEvent.event_type == event_type, WebhookEvent.object_id == object_id
                )
            )
        if row is not None and row.status is not InboxStatus.PENDING:
            return row
        assert time.monotonic() < deadline, row
        await asyncio.sleep(0.05)


async def mirrored(scratch: Scratch, loop: Loop, stripe_subscription_id: str) -> Subscription:
    async with scratch.session() as session:
        row = await session.scalar(
            select(Subscription).where(
                Subscription.project_id == loop.project.id,
                Subscription.stripe_subscription_id == stripe_subscription_id,
            )
        )
    assert row is not None, stripe_subscription_id
    return row


class TestTriggerDelivers:
    async def test_checkout_completed_is_applied_and_its_subscription_mirrored(
        self, scratch: Scratch, emulator_url: str, cli_env: dict[str, str], tmp_path: Path
    ) -> None:
        async with billing_loop(scratch, emulator_url) as loop:
            result = await run_trigger(
                "checkout.session.completed",
                *("--project", loop.project.project.slug),
                env={**cli_env, "BILLWARDEN_STRIPE_API_BASE": emulator_url},
                cwd=tmp_path,
            )
            assert result.returncode == 0, result.stderr
            assert "Triggered checkout.session.completed" in result.stdout
            assert "POST /v1/checkout/sessions" in result.stdout
            session_id = printed_object(result.stdout)
            event = await applied(scratch, "checkout.session.completed", session_id)
            stripe_session = loop.stripe.v1.checkout.sessions.retrieve(session_id)
            assert isinstance(stripe_session.subscription, str)
            subscription = await mirrored(scratch, loop, stripe_session.subscription)
            answer = await loop.entitlement(loop.token("trigger-user"))

        assert event.status is InboxStatus.PROCESSED, event.last_error
        metadata = orjson.loads(event.payload)["data"]["object"]["metadata"]
        assert metadata["bw_project"] == str(loop.project.id)
        assert (subscription.subject_type, subscription.subject_id) == ("user", "trigger-user")
        assert subscription.status == "active"
        # the trigger sells a price of its own, which is no plan of the catalog: paid for, so
        # access, but no plan's features
        assert subscription.purchase_keys == []
        assert answer["hasPremiumAccess"] is True
        assert answer["entitlement"]["plan"] == "CUSTOM"
        assert answer["entitlement"]["stripeSubscriptionId"] == subscription.stripe_subscription_id
        assert answer["plans"] == []

    async def test_subscription_update_is_mirrored_for_the_subject_given(
        self, scratch: Scratch, emulator_url: str, cli_env: dict[str, str], tmp_path: Path
    ) -> None:
        async with billing_loop(scratch, emulator_url) as loop:
            result = await run_trigger(
                "customer.subscription.updated",
                *("--project", str(loop.project.id), "--mode", "test", "--subject", "ada"),
                env={**cli_env, "BILLWARDEN_STRIPE_API_BASE": emulator_url},
                cwd=tmp_path,
            )
            assert result.returncode == 0, result.stderr
            subscription_id = printed_object(result.stdout)
            assert subscription_id.startswith("sub_")
            await applied(scratch, "customer.subscription.updated", subscription_id)
            subscription = await mirrored(scratch, loop, subscription_id)

        assert (subscription.subject_type, subscription.subject_id) == ("user", "ada")
        assert subscription.cancel_at_period_end is True


class TestTriggerRefuses:
    async def test_a_stripe_api_base_that_is_not_the_emulator(
        self, scratch: Scratch, emulator_url: str, cli_env: dict[str, str], tmp_path: Path
    ) -> None:
        async with billing_loop(scratch, emulator_url) as loop:
            slug = loop.project.project.slug
            # billwarden itself answers there, but not as the emulator
            elsewhere = await run_trigger(
                "checkout.session.completed",
                *("--project", slug),
                env={**cli_env, "BILLWARDEN_STRIPE_API_BASE": loop.url},
                cwd=tmp_path,
            )
            # the default: Stripe itself
            stripe_itself = await run_trigger(
                "checkout.session.completed", *("--project", slug), env=cli_env, cwd=tmp_path
            )
            async with httpx.AsyncClient(base_url=emulator_url) as http:
                sessions = await http.get(
                    "/v1/checkout/sessions",
                    headers={"Authorization": f"Bearer {loop.stripe_key}"},
                )

        assert elsewhere.returncode == 2
        assert f"BILLWARDEN_STRIPE_API_BASE is {loop.url}, not a billwarden Stripe emulator" in (
            elsewhere.stderr
        )
        assert "GET /_emulator/health answered 404" in elsewhere.stderr
        assert stripe_itself.returncode == 2
        assert "https://api.stripe.com, not a billwarden Stripe emulator" in stripe_itself.stderr
        assert "stripe trigger" in stripe_itself.stderr
        assert elsewhere.stdout == stripe_itself.stdout == ""
        assert sessions.json()["data"] == []

    async def test_an_event_it_cannot_make_names_those_it_can(
        self, emulator_url: str, cli_env: dict[str, str], tmp_path: Path
    ) -> None:
        result = await run_trigger(
            "invoice.paid",
            *("--project", "acme"),
            env={**cli_env, "BILLWARDEN_STRIPE_API_BASE": emulator_url},
            cwd=tmp_path,
        )
        assert result.returncode == 2
        assert "cannot trigger 'invoice.paid'" in result.stderr
        assert f"supported events: {', '.join(SUPPORTED)}" in result.stderr
