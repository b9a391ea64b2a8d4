"""The import contracts in `.importlinter` hold today, and each one breaks when an import it
forbids is added (checked on a copy of the tree, so a contract that cannot fail is caught)."""

from __future__ import annotations

import configparser
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
# contract id -> (file, an import that contract forbids there)
FORBIDDEN = {
    "top": ("src/billwarden/kit/schemas.py", "import billwarden.app"),
    "shared-layers": ("src/billwarden/db/repository.py", "import billwarden.identity.cookies"),
    "shared-order": ("src/billwarden/core/logging.py", "import billwarden.db.base"),
    "domain-files": ("src/billwarden/projects/repository.py", "import billwarden.projects.service"),
    "rules-below-http": (
        "src/billwarden/projects/models.py",
        "import billwarden.identity.endpoints",
    ),
    "auth-below-http": ("src/billwarden/auth/principals.py", "import billwarden.projects.cli"),
    "services-below-auth": ("src/billwarden/identity/exceptions.py", "import billwarden.auth"),
    "no-http-in-rules": ("src/billwarden/projects/repository.py", "import fastapi"),
    "identity-first": ("src/billwarden/identity/tokens.py", "import billwarden.projects.models"),
    "emulator-independent": ("src/billwarden_emulator/ids.py", "import billwarden.errors"),
    "emulator-only-in-commands": ("src/billwarden/app.py", "import billwarden_emulator"),
    "stripe-only-in-gateway": ("src/billwarden/projects/stripe_config.py", "import stripe"),
}


def contract_names() -> dict[str, str]:
    parser = configparser.ConfigParser()
    parser.read(ROOT / ".importlinter")
    prefix = "importlinter:contract:"
    return {
        section.removeprefix(prefix): " ".join(parser[section]["name"].split())
        for section in parser.sections()
        if section.startswith(prefix)
    }


def lint(tree: Path) -> str:
    run = subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--config", str(tree / ".importlinter")],
        cwd=tree,
        env={**os.environ, "PYTHONPATH": str(tree / "src")},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    # contract names wrap across lines in the report
    return " ".join(run.stdout.split())


@pytest.fixture(scope="module")
def tree_with_forbidden_imports(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tree = tmp_path_factory.mktemp("contracts")
    shutil.copy(ROOT / ".importlinter", tree / ".importlinter")
    shutil.copytree(ROOT / "src", tree / "src", ignore=shutil.ignore_patterns("*.egg-info"))
    for path, line in FORBIDDEN.values():
        with (tree / path).open("a") as source:
            source.write(f"\n{line}  # noqa\n")
    return tree


class TestImportContracts:
    def test_every_contract_has_a_forbidden_import_to_try(self) -> None:
        assert set(FORBIDDEN) == set(contract_names())

    def test_the_tree_keeps_every_contract(self) -> None:
        report = lint(ROOT)
        for name in contract_names().values():
            assert f"{name} KEPT" in report, name

    def test_each_contract_breaks_on_an_import_it_forbids(
        self, tree_with_forbidden_imports: Path
    ) -> None:
        report = lint(tree_with_forbidden_imports)
        kept = [name for name in contract_names().values() if f"{name} BROKEN" not in report]
        assert not kept, f"contracts that did not break: {kept}"
