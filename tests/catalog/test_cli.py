"""`billwarden catalog load|show|push`, run as a user runs them: separate processes."""

from __future__ import annotations

import uuid
from pathlib import Path

import orjson

from tests.test_cli import run_cli

SAMPLE = Path(__file__).parents[2] / "examples" / "catalog.toml"


class TestCatalogCommands:
    async def test_load_show_and_push_against_the_emulator(
        self, cli_env: dict[str, str], tmp_path: Path, emulator_url: str
    ) -> None:
        env = {**cli_env, "BILLWARDEN_STRIPE_API_BASE": emulator_url}
        assert run_cli("migrate", env=env, cwd=tmp_path).returncode == 0
        assert (
            run_cli("projects", "create", "--name", "Acme", env=env, cwd=tmp_path).returncode == 0
        )

        loaded = run_cli("catalog", "load", str(SAMPLE), "--project", "acme", env=env, cwd=tmp_path)
        assert loaded.returncode == 0, loaded.stderr
        assert "Catalog version 1 in force for acme (4 plan(s))." in loaded.stdout

        shown = run_cli("catalog", "show", "--project", "acme", env=env, cwd=tmp_path)
        assert shown.returncode == 0, shown.stderr
        catalog = orjson.loads(shown.stdout)
        assert catalog["version"] == 1
        assert catalog["document"]["plans"]["premium_monthly"]["amount"] == 900

        key = f"sk_test_{uuid.uuid4().hex}"
        configured = run_cli(
            "projects", "stripe-config", "--project", "acme", "--secret-key", key,
            env=env, cwd=tmp_path,
        )  # fmt: skip
        assert configured.returncode == 0, configured.stderr
        pushed = run_cli("catalog", "push", "--project", "acme", env=env, cwd=tmp_path)
        assert pushed.returncode == 0, pushed.stderr
        assert "4 price(s) created, 0 already in Stripe." in pushed.stdout
        again = run_cli("catalog", "push", "--project", "acme", env=env, cwd=tmp_path)
        assert "0 price(s) created, 4 already in Stripe." in again.stdout
        resolved = orjson.loads(
            run_cli("catalog", "show", "--project", "acme", env=env, cwd=tmp_path).stdout
        )
        assert sorted(resolved["prices"]["test"]) == [
            "api_pro", "enterprise", "premium_monthly", "premium_yearly"
        ]  # fmt: skip

    async def test_a_bad_file_is_refused_with_its_key_paths(
        self, cli_env: dict[str, str], tmp_path: Path
    ) -> None:
        assert run_cli("migrate", env=cli_env, cwd=tmp_path).returncode == 0
        assert (
            run_cli("projects", "create", "--name", "Acme", env=cli_env, cwd=tmp_path).returncode
            == 0
        )
        bad = tmp_path / "bad.toml"
        bad.write_text('[families.membership]\n[plans.gold]\nfamily = "memb"\n')
        refused = run_cli(
            "catalog", "load", str(bad), "--project", "acme", env=cli_env, cwd=tmp_path
        )
        assert refused.returncode == 2
        assert "plans.gold.family: unknown family 'memb'" in refused.stderr
        shown = run_cli("catalog", "show", "--project", "acme", env=cli_env, cwd=tmp_path)
        assert shown.returncode == 2
        assert "no catalog" in shown.stderr
