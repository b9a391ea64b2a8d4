"""`billwarden create-user` and `billwarden keys create`, run as an operator runs them."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text

from billwarden.db.engine import create_engine
from tests.test_cli import run_cli


async def _scan(url: str, query: str) -> list[tuple[object, ...]]:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            return [tuple(row) for row in (await connection.execute(text(query))).all()]
    finally:
        await engine.dispose()


class TestIdentityCommands:
    async def test_create_user_and_print_a_key_once(
        self, cli_env: dict[str, str], tmp_path: Path
    ) -> None:
        assert run_cli("migrate", env=cli_env, cwd=tmp_path).returncode == 0
        user = run_cli(
            "create-user",
            "--email",
            "Root@Example.test",
            "--superuser",
            env=cli_env,
            cwd=tmp_path,
            stdin="a long enough password\na long enough password\n",
        )
        assert user.returncode == 0, user.stderr
        assert "a long enough password" not in user.stdout
        rows = await _scan(
            cli_env["BILLWARDEN_DATABASE_URL"],
            "SELECT email, is_superuser, password_hash FROM users",
        )
        assert rows[0][0] == "root@example.test" and bool(rows[0][1])
        assert str(rows[0][2]).startswith("$argon2id$")

        duplicate = run_cli(
            "create-user",
            "--email",
            "root@example.test",
            "--password",
            "another password",
            env=cli_env,
            cwd=tmp_path,
        )
        assert duplicate.returncode != 0 and "already exists" in duplicate.stderr

        assert (
            run_cli("projects", "create", "--name", "Acme", env=cli_env, cwd=tmp_path).returncode
            == 0
        )
        key = run_cli(
            "keys",
            "create",
            "--project",
            "acme",
            "--name",
            "sync",
            "--mode",
            "live",
            env=cli_env,
            cwd=tmp_path,
        )
        assert key.returncode == 0, key.stderr
        plaintext = key.stdout.strip().splitlines()[-1]
        assert plaintext.startswith("bw_live_")
        stored = await _scan(cli_env["BILLWARDEN_DATABASE_URL"], "SELECT * FROM api_keys")
        assert len(stored) == 1 and plaintext not in repr(stored)

        unknown = run_cli(
            "keys", "create", "--project", "nope", "--name", "x", env=cli_env, cwd=tmp_path
        )
        assert unknown.returncode != 0 and "nope" in unknown.stderr
