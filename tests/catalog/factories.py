"""Catalogs loaded through the catalog service: flushed, never committed."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from billwarden.catalog.service import CatalogService, LoadedCatalog


class Catalogs:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def load(self, project_id: uuid.UUID, document: dict[str, Any]) -> LoadedCatalog:
        return await CatalogService(self.session).load_raw(project_id, document, None)
