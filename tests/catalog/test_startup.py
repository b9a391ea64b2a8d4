"""`BILLWARDEN_CATALOG`: the single-tenant project's catalog comes from a file at start-up."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from billwarden.app import create_app
from billwarden.catalog.exceptions import InvalidCatalog
from billwarden.catalog.service import CatalogService
from billwarden.config import Settings
from billwarden.projects.service import ProjectService
from tests.conftest import Scratch

SAMPLE = Path(__file__).parents[2] / "examples" / "catalog.toml"


async def start(scratch: Scratch, settings: Settings) -> None:
    app = create_app(settings, engine=scratch.engine, configure_logs=False)
    async with app.router.lifespan_context(app):
        pass


async def version_in_force(scratch: Scratch) -> int | None:
    async with scratch.session() as session:
        project = await ProjectService(session).find_by_slug("default")
        assert project is not None
        loaded = await CatalogService(session).current(project.id)
        return loaded.version if loaded else None


class TestCatalogAtStartUp:
    async def test_the_file_is_loaded_once_and_again_when_it_changes(
        self, scratch: Scratch, tmp_path: Path
    ) -> None:
        catalog = tmp_path / "catalog.toml"
        catalog.write_text(SAMPLE.read_text())
        settings = scratch.settings.model_copy(
            update={
                "single_tenant_secret_key": SecretStr("sk_test_startup0001"),
                "catalog": catalog,
            }
        )
        await start(scratch, settings)
        assert await version_in_force(scratch) == 1
        await start(scratch, settings)  # a restart with the same file
        assert await version_in_force(scratch) == 1
        catalog.write_text(SAMPLE.read_text().replace("amount = 900", "amount = 1000"))
        await start(scratch, settings)
        assert await version_in_force(scratch) == 2

    async def test_a_bad_file_stops_the_start(self, scratch: Scratch, tmp_path: Path) -> None:
        catalog = tmp_path / "catalog.toml"
        catalog.write_text('[families.a]\n[plans.b]\nfamily = "c"\n')
        settings = scratch.settings.model_copy(
            update={
                "single_tenant_secret_key": SecretStr("sk_test_startup0002"),
                "catalog": catalog,
            }
        )
        with pytest.raises(InvalidCatalog) as refused:
            await start(scratch, settings)
        assert "plans.b.family: unknown family 'c'" in refused.value.message
