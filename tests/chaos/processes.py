"""The chaos run's processes (the emulator, `billwarden serve`, `billwarden worker`): started with
their output appended to a log file of their own (kept across restarts, for the secret scan),
killed with SIGKILL and started again, and always stopped at the end."""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import httpx

READY_SECONDS = 60.0
STOP_SECONDS = 15.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def plain_environment() -> dict[str, str]:
    """This process's environment without anything that configures billwarden."""
    return {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("BILLWARDEN_", "STRIPE_"))
    }


class ManagedProcess:
    """A process of the run, by name; `url` and `ready_path` when it serves HTTP."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        environment: dict[str, str],
        workdir: Path,
        *,
        url: str | None = None,
        ready_path: str | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.environment = environment
        self.workdir = workdir
        self.url = url
        self.ready_path = ready_path
        self.log = workdir / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.kills = 0
        atexit.register(self.stop)

    def start(self) -> None:
        with self.log.open("ab") as output:
            self.process = subprocess.Popen(
                self.argv,
                env=self.environment,
                cwd=self.workdir,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a Ctrl-C reaches the run, which stops it
            )

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    async def wait_ready(self) -> None:
        if self.url is None or self.ready_path is None:
            return
        deadline = time.monotonic() + READY_SECONDS
        async with httpx.AsyncClient(base_url=self.url, trust_env=False, timeout=2.0) as client:
            while time.monotonic() < deadline:
                if not self.alive():
                    break
                with contextlib.suppress(httpx.TransportError):
                    if (await client.get(self.ready_path)).status_code == 200:
                        return
                await asyncio.sleep(0.1)
        raise RuntimeError(f"{self.name} did not become ready:\n{self.tail()}")

    def kill(self) -> None:
        """SIGKILL: no shutdown of any kind, as when a machine or container dies."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=STOP_SECONDS)
        self.kills += 1

    def stop(self) -> int | None:
        """SIGTERM, then SIGKILL when it does not end in time; its exit code."""
        process = self.process
        if process is None:
            return None
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=STOP_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=STOP_SECONDS)
        atexit.unregister(self.stop)
        return process.returncode

    def tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        return ""


def billwarden(*arguments: str) -> list[str]:
    return [sys.executable, "-m", "billwarden", *arguments]
