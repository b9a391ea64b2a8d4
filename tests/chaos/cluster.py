"""A PostgreSQL cluster of the chaos run's own (initdb in a temporary directory, a free port,
trust authentication on 127.0.0.1 only), so that restarting it mid-run leaves the machine's
shared server alone. Run as the `postgres` user when the run is root (PostgreSQL refuses root)."""

from __future__ import annotations

import atexit
import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from tests.chaos.processes import free_port

START_SECONDS = 60


class ClusterUnavailable(RuntimeError):
    """No PostgreSQL server binaries (initdb, pg_ctl) on this machine."""


def postgres_binaries() -> Path:
    """The directory of initdb and pg_ctl: the newest /usr/lib/postgresql/*/bin, else PATH.
    Run as root, the `postgres` user and `runuser` are needed too (PostgreSQL refuses root)."""
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            raise ClusterUnavailable("running as root, and there is no postgres user") from None
        if shutil.which("runuser") is None:
            raise ClusterUnavailable("running as root, and there is no runuser command")
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name))
    for directory in reversed(found):
        if (Path(directory) / "initdb").exists() and (Path(directory) / "pg_ctl").exists():
            return Path(directory)
    initdb = shutil.which("initdb")
    if initdb is not None and shutil.which("pg_ctl") is not None:
        return Path(initdb).parent
    raise ClusterUnavailable(
        "no PostgreSQL server binaries (initdb, pg_ctl) in /usr/lib/postgresql/*/bin or on PATH"
    )


class PrivateCluster:
    """One cluster: `start()`, `restart()` (a fast shutdown and a new start), `stop()`; stopped
    and removed at exit whatever happens."""

    def __init__(self) -> None:
        self.binaries = postgres_binaries()
        self.port = free_port()
        self.restarts = 0
        self.root = Path(tempfile.mkdtemp(prefix="billwarden-chaos-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "postgresql.log"
        self._user: pwd.struct_passwd | None = None
        if os.geteuid() == 0:
            self._user = pwd.getpwnam("postgres")
        self._running = False
        atexit.register(self.stop)

    @property
    def admin_url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    def database_url(self, name: str) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{name}"

    def _run(self, *command: str, timeout: float = START_SECONDS) -> str:
        argv = [str(self.binaries / command[0]), *command[1:]]
        if self._user is not None:
            argv = ["runuser", "-u", "postgres", "--", *argv]
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=timeout, check=False, cwd=self.root
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"{command[0]} failed ({done.returncode}): {done.stdout}{done.stderr}\n"
                f"{self.log_tail()}"
            )
        return done.stdout

    def log_tail(self) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-20:])
        return ""

    def start(self) -> None:
        self.root.chmod(0o755)  # the postgres user reaches its data directory through it
        if self._user is not None:
            os.chown(self.root, self._user.pw_uid, self._user.pw_gid)
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8")
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.root}"
            " -c max_connections=200"
        )
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "start")
        self._running = True

    def restart(self) -> float:
        """A real restart: fast shutdown (every connection cut), then start; its seconds."""
        started = time.monotonic()
        # -l: the new server writes to the log, not to the pipe this command reads
        self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.log), "-m", "fast", "-w", "restart"
        )
        self.restarts += 1
        return time.monotonic() - started

    def stop(self) -> None:
        if self._running:
            self._running = False
            with contextlib.suppress(Exception):
                self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)
        atexit.unregister(self.stop)
