"""`billwarden demo` (what `make demo` runs) starts offline, prints credentials that work, and
the printed commands buy a plan end to end: checkout, the emulator's page, the webhook, access."""

from __future__ import annotations

import os
import re
import shlex
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Demo:
    base: str
    emulator: str
    output: str

    def printed(self, label: str) -> str:
        match = re.search(rf"^\s+{label}\s+(.+)$", self.output, re.MULTILINE)
        assert match, f"{label!r} not printed:\n{self.output}"
        return match.group(1).strip()

    def printed_commands(self, program: str) -> list[str]:
        """The printed lines that run `program` (after any environment assignments)."""
        return re.findall(rf"^\s+(.*?\b{program} .+)$", self.output, re.MULTILINE)

    @property
    def project_id(self) -> str:
        match = re.search(r"Demo project demo \((\S+)\)", self.output)
        assert match, self.output
        return match.group(1)

    def admin_headers(self) -> dict[str, str]:
        email, password = self.printed("admin").split(" / ")
        token = httpx.post(
            f"{self.base}/api/v1/auth/token", data={"username": email, "password": password}
        )
        assert token.status_code == 200, token.text
        return {"Authorization": f"Bearer {token.json()['access_token']}"}


def demo_env() -> dict[str, str]:
    """The caller's environment without billwarden's or Stripe's settings."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("BILLWARDEN_", "STRIPE_"))}


@contextmanager
def running_demo(directory: Path, ports: tuple[int, int] | None = None) -> Iterator[Demo]:
    port, emulator_port = ports or (_free_port(), _free_port())
    env = demo_env()
    log = directory / "demo.log"
    with log.open("w") as output:
        process = subprocess.Popen(
            [
                *(sys.executable, "-m", "billwarden", "demo"),
                *("--port", str(port), "--emulator-port", str(emulator_port)),
            ],
            cwd=directory,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            text=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"demo did not start:\n{log.read_text()}")
            time.sleep(0.2)
        yield Demo(base, f"http://127.0.0.1:{emulator_port}", log.read_text())
    finally:
        process.terminate()
        process.wait(timeout=20)


def curl(command: str) -> httpx.Response:
    """A printed curl command, split as a POSIX shell splits it, sent as curl would send it."""
    program, *arguments = shlex.split(command)
    assert program == "curl", command
    method, headers, body, url = None, {}, None, None
    words = iter(arguments)
    for word in words:
        if word == "-s":
            continue
        if word == "-X":
            method = next(words)
        elif word == "-H":
            name, _, value = next(words).partition(":")
            headers[name.strip()] = value.strip()
        elif word == "-d":
            body = next(words)
        elif word.startswith("http") and url is None:
            url = word
        else:
            pytest.fail(f"curl argument not expected: {word!r} in {command}")
    assert url is not None, command
    return httpx.request(method or ("POST" if body else "GET"), url, headers=headers, content=body)


def pay_on_hosted_page(url: str) -> None:
    """Press Pay on the emulator's checkout page, as a browser submits its form."""
    page = httpx.get(url)
    assert page.status_code == 200, page.text
    action = re.search(r'<form method="post" action="([^"]+)"', page.text)
    assert action, page.text
    paid = httpx.post(httpx.URL(url).join(action.group(1)), data={"outcome": "paid"})
    # then on to the catalog's success_url
    assert paid.status_code == 303, paid.text


def eventually(read: Callable[[], Any], done: Callable[[Any], bool], within: float = 10) -> Any:
    deadline = time.monotonic() + within
    while True:
        value = read()
        if done(value):
            return value
        assert time.monotonic() < deadline, value
        time.sleep(0.1)


def buy_with_printed_commands(demo: Demo) -> dict[str, Any]:
    """Steps 1 to 3 of the printed instructions; the entitlement once it grants access."""
    create_checkout, show_access = demo.printed_commands("curl")
    created = curl(create_checkout)
    assert created.status_code == 201, created.text
    assert created.json()["url"].startswith(f"{demo.emulator}/_emulator/checkout/cs_")
    before = curl(show_access)
    assert before.status_code == 200, before.text
    assert before.json()["hasPremiumAccess"] is False
    pay_on_hosted_page(created.json()["url"])
    answer: dict[str, Any] = eventually(
        lambda: curl(show_access).json(), lambda body: body["hasPremiumAccess"] is True
    )
    return answer


def demo_webhook_endpoints(directory: Path) -> list[dict[str, Any]]:
    """The webhook endpoints in the stopped demo's emulator snapshot (every account)."""
    state = orjson.loads((directory / ".emulator-snapshot.json").read_bytes())
    return [
        endpoint
        for account in state["accounts"].values()
        for endpoint in account["collections"].get("webhook_endpoints", {}).values()
    ]


class TestDemo:
    def test_answers_service_routes_and_prints_working_credentials(self, tmp_path: Path) -> None:
        with running_demo(tmp_path) as demo:
            assert httpx.get(f"{demo.base}/healthz").json()["status"] == "ok"
            ready = httpx.get(f"{demo.base}/readyz")
            assert ready.status_code == 200 and ready.json()["status"] == "ready"
            docs = httpx.get(f"{demo.base}/docs")
            assert docs.status_code == 200 and "swagger-ui" in docs.text
            balance = httpx.get(f"{demo.emulator}/v1/balance", auth=("sk_test_demo_probe", ""))
            assert balance.status_code == 200 and balance.json()["object"] == "balance"

            headers = demo.admin_headers()
            projects = httpx.get(f"{demo.base}/api/v1/projects", headers=headers).json()
            demo_project = next(p for p in projects["items"] if p["slug"] == "demo")
            check = httpx.post(
                f"{demo.base}/api/v1/payments/stripe/projects/{demo_project['id']}"
                "/validate-credentials",
                headers=headers,
            )
            assert check.status_code == 200 and check.json()["valid"] is True
            assert demo.printed("API key").startswith("bw_test_")
        assert (tmp_path / "billwarden.db").exists()
        assert (tmp_path / ".billwarden-secret").stat().st_mode & 0o777 == 0o600

    def test_restart_keeps_the_project_and_replaces_credentials(self, tmp_path: Path) -> None:
        ports = (_free_port(), _free_port())
        with running_demo(tmp_path, ports) as first_run:
            first = first_run.output
            (first_token,) = re.findall(r"^\s+end-user token\s+(\S+)$", first, re.MULTILINE)
        (endpoint,) = demo_webhook_endpoints(tmp_path)
        with running_demo(tmp_path, ports) as demo:
            assert "Created a new secret key" not in demo.output
            project_line = re.search(r"Demo project demo \((\S+)\)", demo.output)
            first_line = re.search(r"Demo project demo \((\S+)\)", first)
            assert project_line and first_line
            assert project_line.group(1) == first_line.group(1)
            assert demo.printed("API key") not in first
            assert "0 price(s) created" in demo.output
            stale = httpx.get(
                f"{demo.base}/api/v1/entitlements/me",
                headers={"Authorization": f"Bearer {first_token}"},
            )
            assert stale.status_code == 401
        # the same address: the same endpoint, not a second one delivering every event again
        assert [found["id"] for found in demo_webhook_endpoints(tmp_path)] == [endpoint["id"]]


class TestDemoPurchase:
    def test_printed_commands_buy_premium_access(self, tmp_path: Path) -> None:
        with running_demo(tmp_path) as demo:
            assert "4 price(s) created" in demo.output
            answer = buy_with_printed_commands(demo)
        entitlement = answer["entitlement"]
        assert entitlement["plan"] == "PREMIUM_MONTHLY"
        assert entitlement["status"] == "ACTIVE"
        assert entitlement["userExternalId"] == "demo-user"
        assert entitlement["userEmail"] == "demo-user@demo.billwarden.test"
        assert answer["plans"] == ["premium_monthly"]

    def test_buying_works_after_a_restart_on_other_ports(self, tmp_path: Path) -> None:
        with running_demo(tmp_path):
            pass
        with running_demo(tmp_path) as demo:
            assert "0 price(s) created" in demo.output
            buy_with_printed_commands(demo)
            webhook = f"{demo.base}/api/v1/payments/stripe/webhooks/{demo.project_id}/test"
        # the first run's endpoint, at an address nothing listens on any more, is gone
        assert [found["url"] for found in demo_webhook_endpoints(tmp_path)] == [webhook]

    def test_printed_trigger_command_is_delivered_and_applied(self, tmp_path: Path) -> None:
        with running_demo(tmp_path) as demo:
            (command,) = demo.printed_commands("billwarden trigger")
            env = demo_env()
            env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
            triggered = subprocess.run(  # noqa: S602 (the printed shell line, as a user runs it)
                command,
                shell=True,
                cwd=tmp_path,
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            assert triggered.returncode == 0, triggered.stderr
            assert "Triggered checkout.session.completed" in triggered.stdout
            session_id = re.search(r"^\s+object\s+(cs_\S+)$", triggered.stdout, re.MULTILINE)
            assert session_id, triggered.stdout
            headers = demo.admin_headers()

            def completed() -> list[dict[str, Any]]:
                listed = httpx.get(
                    f"{demo.base}/api/v1/admin/webhook-events",
                    params={"projectId": demo.project_id, "type": "checkout.session.completed"},
                    headers=headers,
                )
                assert listed.status_code == 200, listed.text
                items: list[dict[str, Any]] = listed.json()["items"]
                return items

            (event,) = eventually(
                completed, lambda items: bool(items) and items[0]["status"] != "pending"
            )
        assert event["objectId"] == session_id.group(1)
        assert event["status"] == "processed"
        assert event["payload"]["data"]["object"]["metadata"]["bw_subject_id"] == "trigger-user"
