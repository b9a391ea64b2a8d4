"""`billwarden serve` trusts no proxy unless told: X-Forwarded-For cannot pick the address that
login throttling counts, and `--forwarded-allow-ips` still makes a real proxy's header count."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

LOGIN = "/api/v1/auth/login"
MAX_FAILURES_PER_ADDRESS = 2


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serving(cli_env: dict[str, str], directory: Path, *options: str) -> Iterator[str]:
    """`billwarden serve` as a process of its own on a free port; yields its base URL."""
    port = _free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("BILLWARDEN_") and key != "FORWARDED_ALLOW_IPS"
    }
    env.update(cli_env)
    env["BILLWARDEN_LOGIN_THROTTLE_MAX_FAILURES_PER_ADDRESS"] = str(MAX_FAILURES_PER_ADDRESS)
    env["BILLWARDEN_LOGIN_THROTTLE_MAX_FAILURES_PER_EMAIL"] = "50"
    log = directory / "serve.log"
    with log.open("w") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "billwarden", "serve", "--port", str(port), *options],
            cwd=directory,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"billwarden serve did not start:\n{log.read_text()}")
            time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def failed_sign_in(base: str, forwarded_for: str) -> httpx.Response:
    """A sign-in of an unknown email (a new one each time, so only the address limit can
    trip), claiming to come from `forwarded_for`."""
    return httpx.post(
        f"{base}{LOGIN}",
        json={"email": f"nobody-{uuid.uuid4().hex[:8]}@example.test", "password": "wrong one"},
        headers={"X-Forwarded-For": forwarded_for},
        timeout=10,
    )


class TestNoProxyTrustedByDefault:
    def test_x_forwarded_for_does_not_dodge_the_address_limit(
        self, cli_env: dict[str, str], tmp_path: Path
    ) -> None:
        with serving(cli_env, tmp_path) as base:
            answers = [failed_sign_in(base, address) for address in ("203.0.113.1", "203.0.113.2")]
            third = failed_sign_in(base, "203.0.113.3")
        for answer in answers:
            assert answer.status_code == 401, answer.text
            assert answer.json()["code"] == "INVALID_CREDENTIALS"
        # the three came from one real peer, 127.0.0.1, whatever they claimed
        assert third.status_code == 429, third.text
        assert third.json()["code"] == "TOO_MANY_ATTEMPTS"
        assert "this address" in third.json()["message"]
        assert int(third.headers["retry-after"]) >= 1


class TestTrustedProxy:
    def test_the_forwarded_address_is_the_one_counted(
        self, cli_env: dict[str, str], tmp_path: Path
    ) -> None:
        with serving(cli_env, tmp_path, "--forwarded-allow-ips", "127.0.0.1") as base:
            distinct = [
                failed_sign_in(base, address)
                for address in ("203.0.113.1", "203.0.113.2", "203.0.113.3")
            ]
            # one forwarded client failing again reaches its own limit
            second_from_first = failed_sign_in(base, "203.0.113.1")
            third_from_first = failed_sign_in(base, "203.0.113.1")
        for answer in [*distinct, second_from_first]:
            assert answer.status_code == 401, answer.text
            assert answer.json()["code"] == "INVALID_CREDENTIALS"
        assert third_from_first.status_code == 429, third_from_first.text
        assert third_from_first.json()["code"] == "TOO_MANY_ATTEMPTS"
