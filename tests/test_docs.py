"""The docs stay true to the code: every setting and every CLI command is documented."""

from __future__ import annotations

from pathlib import Path

import typer.main

from billwarden.cli import cli
from billwarden.config import Settings

ROOT = Path(__file__).parents[1]


def _env_names(name: str) -> set[str]:
    field = Settings.model_fields[name]
    alias = field.validation_alias
    if alias is not None:
        choices = getattr(alias, "choices", [alias])
        return {str(choice) for choice in choices}
    return {f"BILLWARDEN_{name.upper()}"}


class TestConfigurationDoc:
    def test_every_setting_is_documented(self) -> None:
        doc = (ROOT / "docs" / "configuration.md").read_text()
        missing = []
        for name in Settings.model_fields:
            names = _env_names(name)
            if not any(f"`{env}`" in doc for env in names):
                missing.append(sorted(names))
        assert not missing, f"settings missing from docs/configuration.md: {missing}"


class TestReadme:
    def test_names_every_command(self) -> None:
        readme = (ROOT / "README.md").read_text()
        group = typer.main.get_command(cli)
        commands = set(group.commands)  # type: ignore[attr-defined]
        missing = sorted(command for command in commands if command not in readme)
        assert not missing, f"commands missing from README.md: {missing}"

    def test_links_the_docs(self) -> None:
        readme = (ROOT / "README.md").read_text()
        for doc in sorted((ROOT / "docs").glob("*.md")):
            assert f"docs/{doc.name}" in readme, f"README.md does not link docs/{doc.name}"
