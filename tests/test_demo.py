"""`billwarden demo` (what `make demo` runs) starts offline and prints credentials that work."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
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


@contextmanager
def running_demo(directory: Path) -> Iterator[Demo]:
    port, emulator_port = _free_port(), _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BILLWARDEN_", "STRIPE_"))}
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

            email, password = demo.printed("admin").split(" / ")
            token = httpx.post(
                f"{demo.base}/api/v1/auth/token", data={"username": email, "password": password}
            )
            assert token.status_code == 200, token.text
            headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
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
        with running_demo(tmp_path) as first_run:
            first = first_run.output
        with running_demo(tmp_path) as demo:
            assert "Created a new secret key" not in demo.output
            project_line = re.search(r"Demo project demo \((\S+)\)", demo.output)
            first_line = re.search(r"Demo project demo \((\S+)\)", first)
            assert project_line and first_line
            assert project_line.group(1) == first_line.group(1)
            assert demo.printed("API key") not in first
