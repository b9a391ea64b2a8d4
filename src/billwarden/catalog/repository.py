"""Queries for catalog versions and resolved prices."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select

from billwarden.catalog.models import CatalogPrice, CatalogVersion
from billwarden.core.modes import Mode
from billwarden.db.repository import RepositoryBase


class CatalogVersionRepository(RepositoryBase[CatalogVersion]):
    model = CatalogVersion

    async def latest(self, project_id: uuid.UUID) -> CatalogVersion | None:
        return await self.one_or_none(
            self.select()
            .where(CatalogVersion.project_id == project_id)
            .order_by(CatalogVersion.version.desc())
            .limit(1)
        )

    async def highest_version(self, project_id: uuid.UUID) -> int:
        highest = await self.session.scalar(
            select(func.max(CatalogVersion.version)).where(CatalogVersion.project_id == project_id)
        )
        return int(highest or 0)


class CatalogPriceRepository(RepositoryBase[CatalogPrice]):
    model = CatalogPrice

    async def resolved(self, project_id: uuid.UUID, mode: Mode) -> dict[str, str]:
        """Lookup key -> price id, for the project in one mode."""
        rows = await self.session.execute(
            select(CatalogPrice.lookup_key, CatalogPrice.price_id).where(
                CatalogPrice.project_id == project_id, CatalogPrice.mode == mode
            )
        )
        return {lookup_key: price_id for lookup_key, price_id in rows.all()}

    async def find(self, project_id: uuid.UUID, mode: Mode, lookup_key: str) -> CatalogPrice | None:
        return await self.one_or_none(
            self.select().where(
                CatalogPrice.project_id == project_id,
                CatalogPrice.mode == mode,
                CatalogPrice.lookup_key == lookup_key,
            )
        )
