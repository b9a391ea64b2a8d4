"""The catalog document: families, plans keyed by purchase key, the free tier, checkout defaults.

The same document is read from TOML (`billwarden catalog load`, `BILLWARDEN_CATALOG`) or JSON
(`PUT /api/v1/projects/{id}/catalog`). A bad document is refused whole, with one error per problem
naming its key path (`plans.premium_monthly.family: unknown family 'memb'`).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from billwarden.core.modes import Mode

LOOKUP_PREFIX = "lookup:"
PURCHASE_KEY_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}"
NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}"
_PRICE_ID = re.compile(r"price_[A-Za-z0-9]{1,200}")
_LOOKUP_KEY = re.compile(r"[A-Za-z0-9_.:-]{1,200}")
_PURCHASE_KEY = re.compile(PURCHASE_KEY_PATTERN)
_NAME = re.compile(NAME_PATTERN)
_CURRENCY = re.compile(r"[a-z]{3}")

Name = Annotated[str, StringConstraints(min_length=1, max_length=64)]
Url = Annotated[str, StringConstraints(min_length=1, max_length=2000)]


class EntitlementLabel(StrEnum):
    """The `plan` label an entitlement shows (the labels the seeds' apps already read)."""

    FREE = "FREE"
    PREMIUM_MONTHLY = "PREMIUM_MONTHLY"
    PREMIUM_YEARLY = "PREMIUM_YEARLY"
    CUSTOM = "CUSTOM"


class QuotaPeriod(StrEnum):
    DAY = "day"
    MONTH = "month"
    BILLING_PERIOD = "billing_period"


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Quota(_Spec):
    limit: int = Field(ge=0, le=10**15)
    period: QuotaPeriod


class Metric(_Spec):
    """A usage metric (`[metrics.api_calls]`): what it counts, and the Stripe meter its events
    are forwarded to, if any."""

    description: str | None = Field(default=None, max_length=500)
    stripe_meter_event: str | None = Field(default=None, min_length=1, max_length=100)


class CheckoutDefaults(_Spec):
    default_purchase_key: str | None = None
    success_url: Url | None = None
    cancel_url: Url | None = None


class Family(_Spec):
    primary: bool = False
    cancellable: bool = False


class FreeTier(_Spec):
    features: list[Name] = Field(default_factory=list, max_length=200)
    quotas: dict[str, Quota] = Field(default_factory=dict)


class Plan(_Spec):
    family: str
    entitlement: EntitlementLabel = EntitlementLabel.CUSTOM
    self_serve: bool = True
    role: Name | None = None
    features: list[Name] = Field(default_factory=list, max_length=200)
    prices: dict[Mode, str] = Field(default_factory=dict)
    amount: int | None = Field(default=None, ge=0, le=99_999_999_99)
    currency: str | None = None
    interval: Literal["day", "week", "month", "year"] | None = None
    quotas: dict[str, Quota] = Field(default_factory=dict)

    @property
    def recurring(self) -> bool:
        """Whether the plan is a subscription (a one-time payment otherwise). A plan without
        `interval` is recurring unless it names an `amount` (a one-time price)."""
        return self.interval is not None or self.amount is None


class CatalogDocument(_Spec):
    """A validated catalog. Built only by `parse_document` (which checks every reference)."""

    checkout: CheckoutDefaults = Field(default_factory=CheckoutDefaults)
    families: dict[str, Family] = Field(default_factory=dict)
    free: FreeTier = Field(default_factory=FreeTier)
    plans: dict[str, Plan] = Field(default_factory=dict)
    metrics: dict[str, Metric] = Field(default_factory=dict)

    @property
    def primary_family(self) -> str | None:
        return next((name for name, family in self.families.items() if family.primary), None)

    @property
    def known_metrics(self) -> list[str]:
        """The metrics usage may be recorded for: those with a `[metrics.NAME]` table, and
        those a quota names, in that order."""
        names = dict.fromkeys(self.metrics)
        for quotas in [self.free.quotas, *(plan.quotas for plan in self.plans.values())]:
            names.update(dict.fromkeys(quotas))
        return list(names)

    def price_references(self, mode: Mode) -> Iterator[tuple[str, str]]:
        """(purchase key, price reference) for every plan with a price in `mode`."""
        for key, plan in self.plans.items():
            reference = plan.prices.get(mode)
            if reference is not None:
                yield key, reference

    def lookup_keys(self, mode: Mode) -> list[str]:
        return [
            reference.removeprefix(LOOKUP_PREFIX)
            for _, reference in self.price_references(mode)
            if reference.startswith(LOOKUP_PREFIX)
        ]

    def as_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_defaults=False)


@dataclass(frozen=True)
class DocumentError:
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class InvalidDocument(Exception):
    """The document was refused; `errors` names every problem found, by key path."""

    def __init__(self, errors: list[DocumentError]) -> None:
        super().__init__("; ".join(str(error) for error in errors))
        self.errors = errors


def parse_toml(text: str) -> CatalogDocument:
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InvalidDocument([DocumentError("", f"not valid TOML: {exc}")]) from exc
    return parse_document(raw)


def parse_document(raw: object) -> CatalogDocument:
    """Validate a catalog given as TOML or JSON data; raises InvalidDocument with every error."""
    if not isinstance(raw, dict):
        raise InvalidDocument([DocumentError("", "a catalog is a table (a JSON object)")])
    try:
        document = CatalogDocument.model_validate(raw)
    except ValidationError as exc:
        raise InvalidDocument([_from_pydantic(error) for error in exc.errors()]) from exc
    errors = list(_reference_errors(document))
    if errors:
        raise InvalidDocument(errors)
    return document


def _from_pydantic(error: Any) -> DocumentError:
    path = ".".join(str(part) for part in error.get("loc", ()))
    message = str(error.get("msg", "invalid value"))
    if error.get("type") == "extra_forbidden":
        message = "unknown key"
    elif error.get("type") == "missing":
        message = "required"
    return DocumentError(path, message)


def _reference_errors(document: CatalogDocument) -> Iterator[DocumentError]:
    for name in document.families:
        if not _NAME.fullmatch(name):
            yield DocumentError(f"families.{name}", "a family name is letters, digits, _ . -")
    primaries = [name for name, family in document.families.items() if family.primary]
    if len(primaries) > 1:
        yield DocumentError("families", f"only one family may be primary, not {primaries}")
    yield from _name_errors("free.features", document.free.features)
    yield from _quota_errors("free.quotas", document.free.quotas)
    for key, plan in document.plans.items():
        path = f"plans.{key}"
        if not _PURCHASE_KEY.fullmatch(key):
            yield DocumentError(path, "a purchase key is 1-100 letters, digits, _ . -")
        if plan.family not in document.families:
            yield DocumentError(f"{path}.family", f"unknown family {plan.family!r}")
        for mode, reference in plan.prices.items():
            yield from _price_errors(f"{path}.prices.{mode.value}", reference)
        if plan.currency is not None and not _CURRENCY.fullmatch(plan.currency):
            yield DocumentError(f"{path}.currency", "a currency is three lowercase letters")
        if (plan.amount is None) != (plan.currency is None):
            yield DocumentError(path, "amount and currency go together")
        if plan.interval is not None and plan.amount is None:
            yield DocumentError(f"{path}.interval", "an interval needs an amount and currency")
        yield from _name_errors(f"{path}.features", plan.features)
        if plan.role is not None and not _NAME.fullmatch(plan.role):
            yield DocumentError(f"{path}.role", "a role is letters, digits, _ . -")
        yield from _quota_errors(f"{path}.quotas", plan.quotas)
    literal = {
        mode: {
            ref for _, ref in document.price_references(mode) if not ref.startswith(LOOKUP_PREFIX)
        }
        for mode in Mode
    }
    for price_id in sorted(literal[Mode.TEST] & literal[Mode.LIVE]):
        yield DocumentError(
            "plans", f"the price {price_id!r} cannot be both a test and a live price"
        )
    for mode in Mode:
        owners: dict[str, str] = {}
        for key, reference in document.price_references(mode):
            if reference in owners:
                yield DocumentError(
                    f"plans.{key}.prices.{mode.value}",
                    f"the price {reference!r} is already the price of plan {owners[reference]!r}",
                )
            owners.setdefault(reference, key)
    for name, metric in document.metrics.items():
        if not _NAME.fullmatch(name):
            yield DocumentError(f"metrics.{name}", "a metric name is letters, digits, _ . -")
        if metric.stripe_meter_event is not None and not _NAME.fullmatch(metric.stripe_meter_event):
            yield DocumentError(
                f"metrics.{name}.stripe_meter_event",
                "a meter's event name is letters, digits, _ . -",
            )
    default = document.checkout.default_purchase_key
    if default is not None and default not in document.plans:
        yield DocumentError("checkout.default_purchase_key", f"unknown purchase key {default!r}")


def _price_errors(path: str, reference: str) -> Iterator[DocumentError]:
    if reference.startswith(LOOKUP_PREFIX):
        if not _LOOKUP_KEY.fullmatch(reference.removeprefix(LOOKUP_PREFIX)):
            yield DocumentError(path, "a lookup key is 1-200 letters, digits, _ . : -")
    elif not _PRICE_ID.fullmatch(reference):
        yield DocumentError(path, "a price is a Stripe price id (price_...) or lookup:<key>")


def _name_errors(path: str, names: list[str]) -> Iterator[DocumentError]:
    for index, name in enumerate(names):
        if not _NAME.fullmatch(name):
            yield DocumentError(f"{path}.{index}", "a feature name is letters, digits, _ . -")
    if len(set(names)) != len(names):
        yield DocumentError(path, "a feature is named twice")


def _quota_errors(path: str, quotas: dict[str, Quota]) -> Iterator[DocumentError]:
    for metric in quotas:
        if not _NAME.fullmatch(metric):
            yield DocumentError(f"{path}.{metric}", "a metric name is letters, digits, _ . -")
