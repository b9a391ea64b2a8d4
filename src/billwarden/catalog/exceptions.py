"""The catalog's errors, each with its stable code."""

from __future__ import annotations

from billwarden.errors import InvalidInput, NotFound


class InvalidCatalog(InvalidInput):
    """The whole document is refused; `details.errors` lists every problem by key path."""

    code = "INVALID_CATALOG"


class CatalogNotLoaded(NotFound):
    code = "CATALOG_NOT_LOADED"


class PriceCannotBeCreated(InvalidInput):
    code = "CATALOG_PRICE_UNDEFINED"


class PriceMismatch(InvalidInput):
    code = "CATALOG_PRICE_MISMATCH"
