"""Loading, reading and pricing a project's catalog (the document itself: `document.py`)."""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import orjson
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from billwarden.catalog.exceptions import (
    CatalogNotLoaded,
    InvalidCatalog,
    PriceCannotBeCreated,
    PriceMismatch,
)
from billwarden.catalog.models import CatalogPrice, CatalogVersion
from billwarden.catalog.repository import CatalogPriceRepository, CatalogVersionRepository
from billwarden.catalog.service.document import (
    LOOKUP_PREFIX,
    CatalogDocument,
    InvalidDocument,
    Plan,
    parse_document,
    parse_toml,
)
from billwarden.config import Settings
from billwarden.core.modes import Mode
from billwarden.db.base import utcnow
from billwarden.db.unit_of_work import unit_of_work
from billwarden.projects.repository import ProjectRepository
from billwarden.projects.service import ProjectService
from billwarden.stripe_gateway import StripeGateway, StripePrice

logger = logging.getLogger("billwarden.catalog")


@dataclass(frozen=True)
class LoadedCatalog:
    """The catalog in force for a project."""

    version: int
    document: CatalogDocument
    loaded_at: datetime


def refused(error: InvalidDocument) -> InvalidCatalog:
    return InvalidCatalog(
        f"The catalog was refused: {error}",
        details={"errors": [{"path": item.path, "message": item.message} for item in error.errors]},
    )


def read_catalog_file(path: Path) -> CatalogDocument:
    """A catalog from a TOML file (`.json` files are read as JSON)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidCatalog(f"Cannot read the catalog file {path}: {exc.strerror}.") from exc
    except UnicodeDecodeError as exc:
        raise InvalidCatalog(f"The catalog file {path} is not UTF-8 text.") from exc
    try:
        if path.suffix == ".json":
            try:
                return parse_document(orjson.loads(text))
            except orjson.JSONDecodeError as exc:
                raise InvalidCatalog(f"{path} is not valid JSON: {exc}") from exc
        return parse_toml(text)
    except InvalidDocument as exc:
        raise refused(exc) from exc


class CatalogService:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.versions = CatalogVersionRepository(session)
        self.prices = CatalogPriceRepository(session)

    async def load(
        self, project_id: uuid.UUID, document: CatalogDocument, loaded_by: uuid.UUID | None
    ) -> LoadedCatalog:
        """Put `document` in force as the project's next version; the same document as the one
        in force is not a new version."""
        # two loads at once would both take the same next version number
        await ProjectRepository(self.session).lock(project_id)
        current = await self.versions.latest(project_id)
        if current is not None and current.document == document.as_json():
            return _loaded(current)
        version = await self.versions.add(
            CatalogVersion(
                project_id=project_id,
                version=(current.version if current else 0) + 1,
                document=document.as_json(),
                loaded_by_id=loaded_by,
            )
        )
        logger.info("catalog version %d loaded for project %s", version.version, project_id)
        return _loaded(version)

    async def load_raw(
        self, project_id: uuid.UUID, raw: object, loaded_by: uuid.UUID | None
    ) -> LoadedCatalog:
        """Validate a document given as JSON data, then load it; refused whole when bad."""
        try:
            document = parse_document(raw)
        except InvalidDocument as exc:
            raise refused(exc) from exc
        return await self.load(project_id, document, loaded_by)

    async def current(self, project_id: uuid.UUID) -> LoadedCatalog | None:
        version = await self.versions.latest(project_id)
        return _loaded(version) if version is not None else None

    async def require(self, project_id: uuid.UUID) -> LoadedCatalog:
        loaded = await self.current(project_id)
        if loaded is None:
            raise CatalogNotLoaded(
                "The project has no catalog: load one with PUT /api/v1/projects/{id}/catalog "
                "or `billwarden catalog load`.",
                details={"projectId": str(project_id)},
            )
        return loaded

    async def resolved_prices(self, project_id: uuid.UUID, mode: Mode) -> dict[str, str]:
        """Lookup key -> Stripe price id, for the lookup keys resolved so far in `mode`."""
        return await self.prices.resolved(project_id, mode)

    async def price_map(
        self, project_id: uuid.UUID, mode: Mode, catalog: CatalogDocument
    ) -> dict[str, str]:
        """Stripe price id -> purchase key, for every plan whose price in `mode` is known."""
        resolved = await self.prices.resolved(project_id, mode)
        mapping: dict[str, str] = {}
        for key, reference in catalog.price_references(mode):
            price_id = (
                resolved.get(reference.removeprefix(LOOKUP_PREFIX))
                if reference.startswith(LOOKUP_PREFIX)
                else reference
            )
            if price_id is not None:
                mapping[price_id] = key
        return mapping

    async def allowed_price_ids(
        self, project_id: uuid.UUID, mode: Mode, extra: Iterable[str] = ()
    ) -> set[str]:
        """The prices checkout may sell in `mode`: every price of the catalog, plus `extra`
        (the single-tenant project's `STRIPE_ALLOWED_PRICE_IDS`)."""
        loaded = await self.current(project_id)
        allowed = set(extra)
        if loaded is not None:
            allowed |= set(await self.price_map(project_id, mode, loaded.document))
        return allowed

    async def record_price(
        self, project_id: uuid.UUID, mode: Mode, lookup_key: str, price_id: str
    ) -> None:
        row = await self.prices.find(project_id, mode, lookup_key)
        if row is None:
            await self.prices.add(
                CatalogPrice(
                    project_id=project_id, mode=mode, lookup_key=lookup_key, price_id=price_id
                )
            )
        elif row.price_id != price_id:
            row.price_id = price_id
            row.resolved_at = utcnow()
            await self.session.flush()


@dataclass(frozen=True)
class PushResult:
    """What `catalog push` did per lookup key: found in Stripe, or created."""

    found: dict[str, str]
    created: dict[str, str]


class CatalogPricing:
    """Resolves `lookup:` references through the Stripe gateway and creates missing prices."""

    def __init__(
        self,
        session: AsyncSession,
        gateway: StripeGateway,
        project_id: uuid.UUID,
        mode: Mode,
        secret_key: str,
    ) -> None:
        self.catalogs = CatalogService(session)
        self.gateway = gateway
        self.project_id = project_id
        self.mode = mode
        self.secret_key = secret_key

    async def resolve(self, lookup_keys: Sequence[str]) -> dict[str, StripePrice]:
        """Find the prices Stripe has for these lookup keys and record them."""
        found = await self.gateway.prices_by_lookup_key(
            self.project_id, self.mode, self.secret_key, lookup_keys
        )
        for lookup_key, price in found.items():
            await self.catalogs.record_price(self.project_id, self.mode, lookup_key, price.id)
        return found

    async def push(self) -> PushResult:
        """Create in Stripe the products and prices the catalog names by lookup key but Stripe
        lacks, from the plans' `amount`, `currency` and `interval`; idempotent."""
        loaded = await self.catalogs.require(self.project_id)
        wanted = {
            reference.removeprefix(LOOKUP_PREFIX): key
            for key, reference in loaded.document.price_references(self.mode)
            if reference.startswith(LOOKUP_PREFIX)
        }
        found = await self.resolve(list(wanted))
        self._check_same_terms(loaded.document, wanted, found)
        missing = [lookup_key for lookup_key in wanted if lookup_key not in found]
        undefined = [
            f"plans.{wanted[key]}"
            for key in missing
            if loaded.document.plans[wanted[key]].amount is None
        ]
        if undefined:
            raise PriceCannotBeCreated(
                "Stripe has no price for these plans and the catalog gives no amount and "
                f"currency to create one: {', '.join(undefined)}.",
                details={"plans": undefined},
            )
        created: dict[str, str] = {}
        for lookup_key in missing:
            key = wanted[lookup_key]
            price = await self._create(lookup_key, key, loaded.document.plans[key])
            await self.catalogs.record_price(self.project_id, self.mode, lookup_key, price)
            created[lookup_key] = price
        return PushResult({key: price.id for key, price in found.items()}, created)

    def _check_same_terms(
        self, document: CatalogDocument, wanted: dict[str, str], found: dict[str, StripePrice]
    ) -> None:
        """A price found by lookup key must charge what the plan says, or push refuses."""
        differing = []
        for lookup_key, price in found.items():
            plan = document.plans[wanted[lookup_key]]
            if plan.amount is None:
                continue  # the catalog does not say: Stripe's price is the truth
            if (price.unit_amount, price.currency, price.interval) != (
                plan.amount,
                plan.currency,
                plan.interval,
            ):
                differing.append(
                    f"plans.{wanted[lookup_key]}: Stripe's {lookup_key} is {price.unit_amount} "
                    f"{price.currency} per {price.interval or 'payment'}, the catalog says "
                    f"{plan.amount} {plan.currency} per {plan.interval or 'payment'}"
                )
        if differing:
            raise PriceMismatch(
                "Stripe's prices differ from the catalog: " + "; ".join(differing) + ". Change "
                "the catalog, or give the new price a new lookup key.",
                details={"plans": differing},
            )

    async def _create(self, lookup_key: str, purchase_key: str, plan: Plan) -> str:
        assert plan.amount is not None and plan.currency is not None
        price = await self.gateway.create_price(
            self.project_id,
            self.mode,
            self.secret_key,
            lookup_key=lookup_key,
            product_name=purchase_key,
            amount=plan.amount,
            currency=plan.currency,
            interval=plan.interval,
            # the same plan pushed again (a retried command) creates nothing twice; hashed, so
            # a long lookup key stays within Stripe's 255 characters
            idempotency_key=f"bw-catalog:{self.project_id}:{self.mode.value}:{_digest(lookup_key)}",
        )
        return price.id


async def bootstrap_catalog(
    sessionmaker: async_sessionmaker[AsyncSession], settings: Settings
) -> uuid.UUID | None:
    """`BILLWARDEN_CATALOG`: load the file into the single-tenant project at start-up (a new
    version only when it changed). A bad file stops the start with the errors named. The
    project's id when a new version was loaded (its entitlements must follow), else None."""
    if settings.catalog is None:
        return None
    document = read_catalog_file(settings.catalog)
    async with unit_of_work(sessionmaker) as session:
        project = await ProjectService(session).find_by_slug(settings.single_tenant_project_slug)
        if project is None:
            raise CatalogNotLoaded(
                "BILLWARDEN_CATALOG needs the single-tenant project: set STRIPE_SECRET_KEY too."
            )
        service = CatalogService(session)
        before = await service.current(project.id)
        loaded = await service.load(project.id, document, None)
        changed = before is None or before.version != loaded.version
        return project.id if changed else None


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _loaded(version: CatalogVersion) -> LoadedCatalog:
    # validated when it was loaded: read back as stored, so a later, stricter rule never turns
    # the catalog in force into an error
    document = CatalogDocument.model_validate(version.document)
    return LoadedCatalog(version.version, document, version.created_at)
