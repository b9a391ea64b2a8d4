"""The `billwarden` command, run as a user runs it: a separate process."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

from sqlalchemy import text

from billwarden import __version__
from billwarden.db.engine import create_engine

STRIPE_SECRET = "sk_test_51CliSecretValue000111222333"


def run_cli(
    *args: str, env: dict[str, str], cwd: Path, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("BILLWARDEN_")}
    return subprocess.run(
        [sys.executable, "-m", "billwarden", *args],
        env={**clean, **env},
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


class TestVersion:
    def test_prints_the_package_version(self, tmp_path: Path) -> None:
        result = run_cli("version", env={}, cwd=tmp_path)
        assert result.returncode == 0
        assert result.stdout.strip() == __version__


class TestProjectsCommands:
    async def test_stripe_config_is_stored_encrypted_and_never_printed(
        self, cli_env: dict[str, str], tmp_path: Path
    ) -> None:
        assert run_cli("migrate", env=cli_env, cwd=tmp_path).returncode == 0
        created = run_cli("projects", "create", "--name", "Acme Inc", env=cli_env, cwd=tmp_path)
        assert created.returncode == 0, created.stderr
        assert "acme-inc" in created.stdout
        assert "end-user JWT secret" in created.stdout

        configured = run_cli(
            "projects",
            "stripe-config",
            "--project",
            "acme-inc",
            "--mode",
            "test",
            "--webhook-secret",
            "whsec_cliwebhooksecret0000",
            env=cli_env,
            cwd=tmp_path,
            stdin=STRIPE_SECRET + "\n",
        )
        assert configured.returncode == 0, configured.stderr
        output = configured.stdout + configured.stderr
        assert STRIPE_SECRET not in output
        assert "whsec_cliwebhooksecret0000" not in output
        assert "sk_test_...2333" in output

        engine = create_engine(cli_env["BILLWARDEN_DATABASE_URL"])
        try:
            async with engine.connect() as connection:
                stored = (
                    await connection.execute(
                        text("SELECT secret_key_ciphertext FROM stripe_configs")
                    )
                ).scalar_one()
        finally:
            await engine.dispose()
        assert STRIPE_SECRET not in stored

    async def test_live_key_refused_in_test_mode(
        self, cli_env: dict[str, str], tmp_path: Path
    ) -> None:
        run_cli("migrate", env=cli_env, cwd=tmp_path)
        run_cli("projects", "create", "--name", "Acme", env=cli_env, cwd=tmp_path)
        result = run_cli(
            "projects",
            "stripe-config",
            "--project",
            "acme",
            "--secret-key",
            "sk_live_wrongmode000000",
            env=cli_env,
            cwd=tmp_path,
        )
        assert result.returncode == 2
        assert "test-mode Stripe secret key is sk_test_ or rk_test_" in result.stderr
        assert "sk_live_wrongmode000000" not in result.stdout + result.stderr


class TestServe:
    def test_refuses_to_start_without_secret_key(self, tmp_path: Path) -> None:
        db = f"sqlite+aiosqlite:///{tmp_path / 'refuse.db'}"
        result = run_cli("serve", "--port", "0", env={"BILLWARDEN_DATABASE_URL": db}, cwd=tmp_path)
        assert result.returncode == 2
        assert "BILLWARDEN_SECRET_KEY is not set" in result.stderr
        assert not (tmp_path / "refuse.db").exists()


class TestDemoSecretKey:
    def test_dev_key_file_is_created_private(self, tmp_path: Path) -> None:
        from billwarden.cli import _use_dev_secret_key
        from billwarden.config import Settings

        settings = Settings(secret_key_file=tmp_path / ".billwarden-secret")
        previous = os.environ.get("BILLWARDEN_SECRET_KEY")
        try:
            updated = _use_dev_secret_key(settings)
            path = tmp_path / ".billwarden-secret"
            assert stat.S_IMODE(path.stat().st_mode) == 0o600
            assert updated.secret_key is not None
            assert updated.secret_key.get_secret_value() == path.read_text().strip()
            again = _use_dev_secret_key(settings)
            assert again.secret_key == updated.secret_key
        finally:
            if previous is None:
                os.environ.pop("BILLWARDEN_SECRET_KEY", None)
            else:
                os.environ["BILLWARDEN_SECRET_KEY"] = previous
