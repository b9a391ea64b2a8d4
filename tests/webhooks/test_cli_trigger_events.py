"""Every Stripe CLI billing trigger the emulator runs, delivered to a billwarden project: the
events its handlers know are applied, the others kept as ignored, none fails (real client
traffic, so real event shapes: draft invoices, refunds, discounts, schedules, paused trials...)."""

from __future__ import annotations

import asyncio
import time

import httpx
from sqlalchemy import select

from billwarden.webhooks.models import InboxStatus, WebhookEvent
from tests.checkout.loop import billing_loop
from tests.conftest import Scratch
from tests.emulator.cli_triggers import TriggerRunner, find_cli_triggers, load_fixtures
from tests.emulator.test_cli_triggers import NOT_YET


class TestCliTriggersIntoBillwarden:
    async def test_every_event_is_applied_or_kept_and_none_fails(
        self, scratch: Scratch, emulator_url: str
    ) -> None:
        fixtures = [
            fixture
            for fixture in load_fixtures(find_cli_triggers())
            if fixture.event_type not in NOT_YET
        ]
        async with billing_loop(scratch, emulator_url) as loop:
            with httpx.Client(base_url=emulator_url, timeout=30) as http:
                runner = TriggerRunner(http)
                for fixture in fixtures:
                    outcome = await asyncio.to_thread(
                        runner.run, fixture, api_key=loop.stripe_key, event_wait=2.0
                    )
                    assert outcome.passed, (fixture.event_type, outcome.reason)
            deadline = time.monotonic() + 60
            while True:
                async with scratch.session() as session:
                    rows = (
                        await session.scalars(
                            select(WebhookEvent).where(WebhookEvent.project_id == loop.project.id)
                        )
                    ).all()
                errors = {(row.event_type, row.last_error) for row in rows if row.last_error}
                assert not errors, errors
                if rows and all(row.status is not InboxStatus.PENDING for row in rows):
                    break
                assert time.monotonic() < deadline, [
                    (row.event_type, row.status)
                    for row in rows
                    if row.status is InboxStatus.PENDING
                ]
                await asyncio.sleep(0.2)
        kinds = {row.event_type for row in rows}
        for fixture in fixtures:
            # thin events (v1.billing.meter.*) go to event destinations, not webhook endpoints
            if not fixture.event_type.startswith("v1."):
                assert fixture.event_type in kinds, fixture.event_type
        assert {row.status for row in rows} <= {InboxStatus.PROCESSED, InboxStatus.IGNORED}
        processed = {row.event_type for row in rows if row.status is InboxStatus.PROCESSED}
        assert {"charge.refunded", "invoice.paid", "customer.subscription.paused"} <= processed
