"""The console runs under a Content-Security-Policy that allows no inline script or style: every
page carries it, no template holds an inline script, event handler or style, and in a real
browser (Chromium) the pages load and work with no policy violation: the project switcher,
creating a key, and an invitation sent, followed from its link through sign-in, and accepted."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from importlib.resources import files
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from playwright.async_api import Browser, Page, async_playwright, expect

from billwarden.app import create_app
from billwarden.core.security_headers import CONSOLE_CONTENT_SECURITY_POLICY
from billwarden.identity.models import User
from billwarden.identity.pages import LOGIN_TEMPLATE
from billwarden_emulator.testing import serving
from tests.admin.test_console import CHROMIUM, FLAGS, LAPTOP, chromium_installed
from tests.admin.test_console import shots as shots  # BILLWARDEN_SCREENSHOTS, else tmp
from tests.conftest import IN_CI, Scratch
from tests.factories import Factories
from tests.identity.factories import PASSWORD, People
from tests.projects.factories import ProjectWithSecret, Tenants
from tests.test_authorization_matrix import served_routes

POLICY = CONSOLE_CONTENT_SECURITY_POLICY
PAGES = (
    "billing",
    "webhooks",
    "payments",
    "audit",
    "keys",
    "stripe",
    "notifications",
    "invitations",
)
INLINE = {
    "inline script": re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.IGNORECASE),
    "event handler attribute": re.compile(r"<[^>]*\son[a-z]+\s*=", re.IGNORECASE),
    "style attribute": re.compile(r"<[^>]*\sstyle\s*=", re.IGNORECASE),
    "style element": re.compile(r"<style\b", re.IGNORECASE),
    "javascript: URL": re.compile(r"javascript:", re.IGNORECASE),
}
# records what the browser refuses; added through the DevTools protocol, so the policy allows it
WATCH_VIOLATIONS = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__violations.push(event.violatedDirective + " " + (event.blockedURI || "inline"));
});
"""


def templates() -> dict[str, str]:
    folder = files("billwarden.admin").joinpath("templates")
    found = {
        entry.name: entry.read_text() for entry in folder.iterdir() if entry.name.endswith(".html")
    }
    return {**found, "identity/pages.py LOGIN_TEMPLATE": LOGIN_TEMPLATE}


class TestNothingInline:
    @pytest.mark.parametrize("name", sorted(templates()))
    def test_the_template_has_no_inline_script_handler_or_style(self, name: str) -> None:
        text = templates()[name]
        found = {kind: pattern.findall(text) for kind, pattern in INLINE.items()}
        assert not any(found.values()), f"{name}: {found}"

    def test_the_scanner_finds_what_it_looks_for(self) -> None:
        for sample in (
            "<script>alert(1)</script>",
            '<button onclick="x()">',
            '<p style="a">',
            "<style>p{}</style>",
            '<a href="javascript:x()">',
        ):
            assert any(pattern.search(sample) for pattern in INLINE.values()), sample
        assert not any(
            p.search('<script src="/admin/static/console.js"></script>') for p in INLINE.values()
        )


class TestEveryPageCarriesThePolicy:
    async def test_console_pages_and_sign_in(
        self, app: FastAPI, client: httpx.AsyncClient, people: People, tenants: Tenants
    ) -> None:
        admin = await people.user()
        project = await tenants.project(admin)
        session = await people.sign_in(admin)
        served = sorted(
            path
            for method, path in served_routes(app)
            if method == "GET" and path.startswith("/admin/") and "{" not in path
        )
        assert served == sorted(f"/admin/{page}" for page in PAGES)
        for path in served:
            page = await client.get(
                path, params={"project": project.project.slug}, headers=session.cookie
            )
            assert page.status_code == 200, path
            assert page.headers["content-type"].startswith("text/html")
            assert page.headers["content-security-policy"] == POLICY, path
            assert "nonce" not in page.text
        sign_in = await client.get("/login")
        assert sign_in.headers["content-security-policy"] == POLICY
        # a member without projects still sees the invitations page, under the policy
        newcomer = await people.user()
        alone = await client.get(
            "/admin/invitations", headers=(await people.sign_in(newcomer)).cookie
        )
        assert alone.status_code == 200 and alone.headers["content-security-policy"] == POLICY

    async def test_the_static_files_are_served_with_their_types(
        self, client: httpx.AsyncClient
    ) -> None:
        script = await client.get("/admin/static/console.js")
        assert script.status_code == 200
        assert script.headers["content-type"].startswith("text/javascript")
        style = await client.get("/admin/static/console.css")
        assert style.headers["content-type"].startswith("text/css")
        again = await client.get(
            "/admin/static/console.css", headers={"If-None-Match": style.headers["etag"]}
        )
        assert again.status_code == 304 and again.content == b""
        for name, status, code in (
            ("nothing.js", 404, "STATIC_FILE_NOT_FOUND"),
            ("endpoints.py", 400, "VALIDATION_ERROR"),
            ("Console.JS", 400, "VALIDATION_ERROR"),
        ):
            refused = await client.get(f"/admin/static/{name}")
            assert refused.status_code == status, name
            assert refused.json()["code"] == code
        outside = await client.get("/admin/static/..%2Fendpoints.py")
        assert outside.status_code == 404 and "import" not in outside.text


@pytest.fixture(scope="session")
async def csp_browser() -> AsyncIterator[Browser]:
    if not chromium_installed():
        message = "Chromium is not installed at /usr/bin/chromium (`.ci/run` installs it)"
        if IN_CI:
            pytest.fail(f"{message}; CI=true: the browser tests are required", pytrace=False)
        pytest.skip(message)
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=FLAGS, headless=True
        )
        yield launched
        await launched.close()


async def watched(page: Page, complaints: list[str]) -> None:
    await page.add_init_script(WATCH_VIOLATIONS)
    page.on(
        "console",
        lambda message: (
            complaints.append(message.text)
            if "Content Security Policy" in message.text
            or "Content-Security-Policy" in message.text
            else None
        ),
    )
    page.on("pageerror", lambda error: complaints.append(f"page error: {error}"))


async def violations(page: Page) -> list[str]:
    found: list[str] = await page.evaluate("window.__violations || []")
    return found


async def sign_in_at(page: Page, base: str, user: User, target: str) -> None:
    await page.goto(base + target)
    await page.get_by_label("Email").fill(user.email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()


class TestInABrowser:
    async def test_pages_load_and_work_with_no_policy_violation(
        self, scratch: Scratch, csp_browser: Browser, shots: Path
    ) -> None:
        async def build(made: Factories) -> tuple[User, User, ProjectWithSecret, ProjectWithSecret]:
            admin = await made.people.user(f"admin-{uuid.uuid4().hex[:6]}@example.test")
            first = await made.tenants.project(admin, name="First project")
            second = await made.tenants.project(admin, name="Second project")
            invitee = await made.people.user(f"invitee-{uuid.uuid4().hex[:6]}@example.test")
            return admin, invitee, first, second

        admin, invitee, first, second = await scratch.setup(build)
        complaints: list[str] = []
        with serving(create_app(scratch.settings, configure_logs=False)) as base:
            context = await csp_browser.new_context(viewport=LAPTOP)
            page = await context.new_page()
            await watched(page, complaints)
            page.on("dialog", lambda dialog: dialog.accept())
            await sign_in_at(page, base, admin, f"/admin/billing?project={first.project.slug}")
            await page.wait_for_url(f"{base}/admin/billing?project={first.project.slug}")
            for name in PAGES:
                await page.goto(f"{base}/admin/{name}?project={first.project.slug}")
                await expect(page.locator("h1")).to_be_visible()
                # the stylesheet applied: the header's colours come from console.css
                header = await page.locator("header").evaluate(
                    "e => getComputedStyle(e).backgroundColor"
                )
                assert header == "rgb(20, 33, 61)", name
                assert await violations(page) == [], name

            # the project switcher submits on change (a script's listener)
            await page.goto(f"{base}/admin/keys?project={first.project.slug}")
            await page.get_by_label("Project").select_option(second.project.slug)
            await page.wait_for_url(re.compile(f"project={second.project.slug}"))
            # creating a key: the form's submit handler calls the API and shows the key once
            await page.get_by_label("Name").fill("browser key")
            await page.get_by_role("button", name="Create an API key").click()
            await expect(page.locator("#created-key")).to_contain_text("bw_test_")
            assert await violations(page) == []

            # an invitation from the console, followed from its link
            await page.goto(f"{base}/admin/invitations?project={first.project.slug}")
            await page.get_by_label("Email").fill(invitee.email)
            await page.get_by_label("Role").select_option("admin")
            await page.get_by_role("button", name="Invite").click()
            link = await page.locator("#invitation-link").text_content()
            assert link is not None and "/admin/invitations#token=bwi_" in link
            await page.reload()
            outstanding = page.get_by_role("table", name="Outstanding invitations")
            await expect(outstanding).to_contain_text(invitee.email)
            await page.screenshot(path=shots / "invitations.png", full_page=True)
            assert await violations(page) == []
            await context.close()

            guest = await csp_browser.new_context(viewport=LAPTOP)
            page = await guest.new_page()
            await watched(page, complaints)
            await page.goto(link)  # signed out: sent to sign in; the token stays in the fragment
            await page.wait_for_url(re.compile(r"/login\?next="))
            await page.get_by_label("Email").fill(invitee.email)
            await page.get_by_label("Password").fill(PASSWORD)
            await page.get_by_role("button", name="Sign in").click()
            await page.wait_for_url(re.compile(r"/admin/invitations#token=bwi_"))
            await page.get_by_role("button", name="Accept the invitation").click()
            await expect(page.locator("#accept-result")).to_have_text(
                "You joined First project as admin."
            )
            await page.wait_for_url(re.compile(f"/admin/billing\\?project={first.project.slug}"))
            await expect(page.locator(".who")).to_contain_text(invitee.email)
            await expect(page.get_by_role("button", name="Start a run")).to_be_visible()
            assert await violations(page) == []
            await guest.close()
        assert complaints == []
