"""The admin console in a real browser (Playwright driving Debian's Chromium): sign in, the
billing cards, a record's diagnostics, a repair, a replay; a member sees no repair buttons and a
forged repair is refused. Screenshots go to BILLWARDEN_SCREENSHOTS (docs/admin/ refreshes the
documentation's), else to the test's temporary directory."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest
from playwright.async_api import Browser, Page, async_playwright, expect
from sqlalchemy import select

from billwarden.core.modes import Mode
from billwarden.db.base import utcnow
from billwarden.entitlements.models import Entitlement
from billwarden.identity.models import User
from billwarden.projects.models import ProjectRole
from billwarden.webhooks.models import InboxStatus, WebhookEvent
from tests.checkout.loop import Loop, billing_loop
from tests.conftest import Scratch
from tests.factories import Factories
from tests.identity.factories import PASSWORD
from tests.reconciliation.test_reconcile import quiet, reconciled, subscribed

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LAPTOP = {"width": 1280, "height": 860}
PHONE = {"width": 390, "height": 844}


def chromium_installed() -> bool:
    return CHROMIUM.exists()


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    if not chromium_installed():
        message = (
            "Chromium is not installed at /usr/bin/chromium: on Debian, "
            "`apt-get install chromium` (`.ci/run` does it) to run the console's browser tests"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=FLAGS, headless=True
        )
        yield launched
        await launched.close()


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    target = Path(os.environ.get("BILLWARDEN_SCREENSHOTS") or tmp_path)
    target.mkdir(parents=True, exist_ok=True)
    return target


async def console_users(scratch: Scratch, loop: Loop) -> tuple[User, User]:
    """An admin and a plain member of the loop's project, with known passwords."""

    async def build(made: Factories) -> tuple[User, User]:
        admin = await made.people.user(f"admin-{uuid.uuid4().hex[:6]}@example.test")
        member = await made.people.user(f"member-{uuid.uuid4().hex[:6]}@example.test")
        await made.tenants.add_member(loop.project, admin, ProjectRole.ADMIN)
        await made.tenants.add_member(loop.project, member, ProjectRole.MEMBER)
        return admin, member

    return await scratch.setup(build)


async def failed_event(scratch: Scratch, loop: Loop) -> str:
    """An event that failed for good: a customer billwarden never mapped, so replaying it
    succeeds (and changes nothing)."""
    event_id = f"evt_{uuid.uuid4().hex}"

    async def build(made: Factories) -> None:
        made.people.session.add(
            WebhookEvent(
                project_id=loop.project.id,
                mode=Mode.TEST,
                event_id=event_id,
                event_type="customer.updated",
                object_id="cus_nobody",
                event_created=utcnow(),
                payload=orjson.dumps(
                    {
                        "id": event_id,
                        "object": "event",
                        "type": "customer.updated",
                        "created": 1_800_000_000,
                        "data": {"object": {"id": "cus_nobody", "object": "customer"}},
                    }
                ).decode(),
                received_at=utcnow(),
                status=InboxStatus.FAILED,
                attempts=8,
                last_error="StripeGatewayError: Stripe could not be reached.",
            )
        )

    await scratch.setup(build)
    return event_id


async def sign_in(page: Page, base: str, user: User, target: str) -> None:
    await page.goto(base + target)
    await expect(page).to_have_url(
        f"{base}/login?next="
        + target.replace("/", "%2F").replace("?", "%3F").replace("=", "%3D").replace("&", "%26")
    )
    await page.get_by_label("Email").fill(user.email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(base + target)


class TestConsole:
    async def test_an_admin_finds_a_mismatch_repairs_it_and_replays_an_event(
        self, scratch: Scratch, emulator_url: str, browser: Browser, shots: Path
    ) -> None:
        async with billing_loop(scratch, emulator_url) as loop:
            admin, member = await console_users(scratch, loop)
            for name in ("ada", "bob"):
                await subscribed(loop, name)
            await quiet(loop, scratch)
            bob = await loop.entitlement(loop.token("bob"))
            loop.stripe.v1.subscriptions.cancel(bob["entitlement"]["stripeSubscriptionId"])
            await reconciled(loop.http, loop)
            event_id = await failed_event(scratch, loop)
            slug = loop.project.project.slug
            context = await browser.new_context(viewport=LAPTOP)
            page = await context.new_page()
            page.on("dialog", lambda dialog: dialog.accept())
            await sign_in(page, loop.url, admin, f"/admin/billing?project={slug}")

            await expect(page.locator("#card-total")).to_have_text("2")
            await expect(page.locator("#card-in-sync")).to_have_text("1")
            await expect(page.locator("#card-mismatched")).to_have_text("1")
            await expect(page.locator("td .badge", has_text="status_mismatch")).to_have_count(1)
            await page.screenshot(path=shots / "billing.png", full_page=True)

            await page.get_by_role("link", name="Diagnostics for bob").click()
            differing = page.locator("tr.differs")
            await expect(differing.filter(has_text="status")).to_have_count(1)
            await expect(differing.filter(has_text="status")).to_contain_text('"canceled"')
            await page.screenshot(path=shots / "record.png", full_page=True)
            await page.get_by_label("Reason for the audit log").fill("ticket 42")
            await page.get_by_role("button", name="Sync from Stripe").click()
            await expect(page.locator("#repair-result")).to_have_text("Repaired: in sync.")
            await expect(page.locator("#reasons")).to_have_text("in sync")
            await page.screenshot(path=shots / "repaired.png", full_page=True)

            await page.get_by_role("link", name="← All records").click()
            await expect(page.locator("#card-in-sync")).to_have_text("2")
            await expect(page.locator("#card-mismatched")).to_have_text("0")

            await page.get_by_role("link", name="Webhook events").click()
            await page.get_by_label("Status").select_option("failed")
            await page.get_by_role("button", name="Filter").click()
            row = page.locator("tr", has_text=event_id)
            await expect(row.locator("[data-status]")).to_have_text("failed")
            await expect(row).to_contain_text("Stripe could not be reached")
            await page.screenshot(path=shots / "webhooks.png", full_page=True)
            await row.get_by_role("button", name=f"Replay {event_id}").click()
            await expect(page.locator("#webhook-result")).to_contain_text(f"Replayed {event_id}")
            deadline = time.monotonic() + 10  # the worker applies it in a moment
            while True:
                await page.goto(f"{loop.url}/admin/webhooks?project={slug}&type=customer.updated")
                status = page.locator("tr", has_text=event_id).locator("[data-status]")
                if await status.text_content() == "processed":
                    break
                assert time.monotonic() < deadline, await status.text_content()
                await page.wait_for_timeout(200)

            await page.get_by_role("link", name="Subscriptions and payments").click()
            await expect(page.locator("figure.chart").first).to_be_visible()
            await expect(page.get_by_text("MRR USD").first).to_be_visible()
            await page.screenshot(path=shots / "payments.png", full_page=True)
            await page.get_by_role("link", name="Audit log").click()
            repair = page.locator("tbody tr", has_text="reconciliation.sync_from_stripe")
            await expect(repair).to_contain_text("ticket 42")
            await expect(
                page.locator("tbody tr", has_text="webhooks.event_replayed")
            ).to_have_count(1)
            await page.screenshot(path=shots / "audit.png", full_page=True)

            await page.get_by_role("link", name="API keys").click()
            await page.get_by_label("Name").fill("console key")
            await page.get_by_role("button", name="Create an API key").click()
            await expect(page.locator("#created-key")).to_contain_text("bw_test_")
            await page.reload()
            await expect(page.locator("#created-key")).to_have_count(0)  # shown once
            await page.get_by_role("button", name="Deactivate console key").click()
            row = page.locator("tr", has_text="console key")
            await expect(row.locator(".badge")).to_have_text("deactivated")
            await page.get_by_role("link", name="Stripe").click()
            await expect(page.locator("tbody tr").first).to_contain_text("yes")
            await context.close()

            phone = await browser.new_context(viewport=PHONE)
            small = await phone.new_page()
            await sign_in(small, loop.url, admin, f"/admin/billing?project={slug}")
            await expect(small.locator("#card-total")).to_be_visible()
            await small.screenshot(path=shots / "billing-phone.png", full_page=True)
            await phone.close()

            # a member reads, and cannot repair: no buttons, and a forged request is refused
            reader = await browser.new_context(viewport=LAPTOP)
            page = await reader.new_page()
            await sign_in(page, loop.url, member, f"/admin/billing?project={slug}")
            await expect(page.locator("#card-total")).to_have_text("2")
            await expect(page.get_by_role("button", name="Start a run")).to_have_count(0)
            await page.get_by_role("link", name="Diagnostics for ada").click()
            await expect(page.get_by_role("button", name="Sync from Stripe")).to_have_count(0)
            entitlement = (await loop.entitlement(loop.token("ada")))["entitlement"]["id"]
            forged = await page.evaluate(
                """async ([url, entitlement]) => {
                  const token = document.cookie.split("; ").find((c) => c.startsWith("bw_csrf="));
                  const response = await fetch(url, {method: "POST", credentials: "same-origin",
                    headers: {"Content-Type": "application/json",
                              "X-CSRF-Token": decodeURIComponent(token.slice(8))},
                    body: JSON.stringify({entitlementId: entitlement, action: "reset_to_free"})});
                  return [response.status, (await response.json()).code];
                }""",
                [
                    f"/api/v1/admin/billing/reconciliation?projectId={loop.project.id}",
                    entitlement,
                ],
            )
            assert forged == [403, "PROJECT_ADMIN_REQUIRED"]
            await reader.close()
        assert (await loop_entitlement_plan(scratch, "ada")) != "FREE"


async def loop_entitlement_plan(scratch: Scratch, subject_id: str) -> str:
    async with scratch.session() as session:
        plan = await session.scalar(
            select(Entitlement.plan).where(Entitlement.subject_id == subject_id)
        )
    return str(plan)
