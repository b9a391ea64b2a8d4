"""Wire shapes of the catalog routes. The document itself keeps its TOML key names."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from billwarden.catalog.service.document import CatalogDocument
from billwarden.core.modes import Mode
from billwarden.kit.schemas import CamelModel


class CatalogRead(CamelModel):
    version: int = Field(description="Catalog versions count up from 1; the highest is in force.")
    loaded_at: datetime
    document: CatalogDocument = Field(
        description="The catalog, with the key names of its TOML form (snake_case)."
    )
    resolved_prices: dict[Mode, dict[str, str]] = Field(
        description="Per mode, the Stripe price each `lookup:` key resolved to so far."
    )
