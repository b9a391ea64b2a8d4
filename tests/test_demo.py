"""`billwarden demo` (what `make demo` runs) starts offline and answers the service routes."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def demo_dir(tmp_path: Path) -> Path:
    return tmp_path


def _start_demo(directory: Path, port: int, emulator_port: int) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BILLWARDEN_", "STRIPE_"))}
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "billwarden",
            "demo",
            "--port",
            str(port),
            "--emulator-port",
            str(emulator_port),
        ],
        cwd=directory,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.fixture
def running_demo(demo_dir: Path) -> Iterator[tuple[str, str, subprocess.Popen[str]]]:
    port, emulator_port = _free_port(), _free_port()
    process = _start_demo(demo_dir, port, emulator_port)
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
                output = process.stdout.read() if process.stdout else ""
                pytest.fail(f"demo did not start:\n{output}")
            time.sleep(0.2)
        yield base, f"http://127.0.0.1:{emulator_port}", process
    finally:
        process.terminate()
        process.wait(timeout=20)


class TestDemo:
    def test_answers_health_readiness_docs_and_runs_the_emulator(
        self, running_demo: tuple[str, str, subprocess.Popen[str]], demo_dir: Path
    ) -> None:
        base, emulator, _ = running_demo
        assert httpx.get(f"{base}/healthz").json()["status"] == "ok"
        ready = httpx.get(f"{base}/readyz")
        assert ready.status_code == 200 and ready.json()["status"] == "ready"
        docs = httpx.get(f"{base}/docs")
        assert docs.status_code == 200 and "swagger-ui" in docs.text
        balance = httpx.get(f"{emulator}/v1/balance", auth=("sk_test_demo_probe", ""))
        assert balance.status_code == 200 and balance.json()["object"] == "balance"
        assert (demo_dir / "billwarden.db").exists()
        assert (demo_dir / ".billwarden-secret").stat().st_mode & 0o777 == 0o600
