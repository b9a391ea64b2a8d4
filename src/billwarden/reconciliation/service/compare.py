"""The comparisons of a reconciliation (pure: no I/O). A subscription is compared field by field
with Stripe's; a snapshot with what the mirror derives under the catalog (entitlements.derive)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from billwarden.catalog.service.document import CatalogDocument
from billwarden.config import RECONCILE_REASONS
from billwarden.entitlements.models import Entitlement
from billwarden.entitlements.service import INCOMPLETE, NONE, Derived
from billwarden.subscriptions.models import Subscription
from billwarden.subscriptions.service import customer_id_of, period_of, price_ids_of, timestamp

STATUS_MISMATCH = "status_mismatch"
PRICE_MISMATCH = "price_mismatch"
PERIOD_MISMATCH = "period_mismatch"
CANCEL_STATE_MISMATCH = "cancel_state_mismatch"
CUSTOMER_MISMATCH = "customer_mismatch"
MISSING_IN_STRIPE = "missing_in_stripe"
MISSING_LOCALLY = "missing_locally"
SNAPSHOT_DRIFT = "snapshot_drift"
ROLE_MISMATCH = "role_mismatch"
REASONS = RECONCILE_REASONS  # in this order
assert set(REASONS) == {
    STATUS_MISMATCH,
    PRICE_MISMATCH,
    PERIOD_MISMATCH,
    CANCEL_STATE_MISMATCH,
    CUSTOMER_MISMATCH,
    MISSING_IN_STRIPE,
    MISSING_LOCALLY,
    SNAPSHOT_DRIFT,
    ROLE_MISMATCH,
}


@dataclass(frozen=True)
class SubscriptionState:
    """What is compared of a subscription, from the mirror or from Stripe."""

    id: str
    status: str
    price_ids: tuple[str, ...]
    current_period_end: datetime | None
    cancel_at_period_end: bool
    cancel_at: datetime | None
    customer: str | None

    @classmethod
    def of_row(cls, row: Subscription) -> SubscriptionState:
        return cls(
            id=row.stripe_subscription_id,
            status=row.status,
            price_ids=tuple(sorted(row.price_ids)),
            current_period_end=row.current_period_end,
            cancel_at_period_end=row.cancel_at_period_end,
            cancel_at=row.cancel_at,
            customer=row.stripe_customer_id,
        )

    @classmethod
    def of_stripe(cls, obj: dict[str, Any]) -> SubscriptionState | None:
        """None for something that is not a subscription (no id or status)."""
        stripe_id, status = obj.get("id"), obj.get("status")
        if not isinstance(stripe_id, str) or not isinstance(status, str):
            return None
        return cls(
            id=stripe_id,
            status=status,
            price_ids=tuple(sorted(price_ids_of(obj))),
            current_period_end=period_of(obj)[1],
            cancel_at_period_end=bool(obj.get("cancel_at_period_end")),
            cancel_at=timestamp(obj.get("cancel_at")),
            customer=customer_id_of(obj),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "status": self.status,
            "priceIds": list(self.price_ids),
            "currentPeriodEnd": _json(self.current_period_end),
            "cancelAtPeriodEnd": self.cancel_at_period_end,
            "cancelAt": _json(self.cancel_at),
            "customer": self.customer,
        }


def _json(value: Any) -> Any:
    return value.isoformat().replace("+00:00", "Z") if isinstance(value, datetime) else value


@dataclass
class Findings:
    """The reasons of one record, and what differs, field by field."""

    reasons: set[str] = field(default_factory=set)
    differences: list[dict[str, Any]] = field(default_factory=list)

    def differ(self, reason: str, target: str, name: str, local: Any, expected: Any) -> None:
        self.reasons.add(reason)
        self.differences.append(
            {
                "reason": reason,
                "target": target,
                "field": name,
                "local": _json(local),
                "expected": _json(expected),
            }
        )


_SUBSCRIPTION_FIELDS = (
    (STATUS_MISMATCH, "status"),
    (PRICE_MISMATCH, "price_ids"),
    (PERIOD_MISMATCH, "current_period_end"),
    (CANCEL_STATE_MISMATCH, "cancel_at_period_end"),
    (CANCEL_STATE_MISMATCH, "cancel_at"),
    (CUSTOMER_MISMATCH, "customer"),
)


def compare_subscription(
    findings: Findings, local: SubscriptionState | None, stripe: SubscriptionState | None
) -> None:
    """The mirror's subscription against Stripe's (the expected side); one of them present."""
    if local is None and stripe is not None:
        findings.differ(MISSING_LOCALLY, stripe.id, "subscription", None, stripe.id)
        return
    if stripe is None and local is not None:
        findings.differ(MISSING_IN_STRIPE, local.id, "subscription", local.id, None)
        return
    assert local is not None and stripe is not None
    for reason, name in _SUBSCRIPTION_FIELDS:
        mine, theirs = getattr(local, name), getattr(stripe, name)
        if mine != theirs:
            if isinstance(mine, tuple):
                mine, theirs = list(mine), list(theirs)
            findings.differ(reason, local.id, name, mine, theirs)


# what a snapshot must say as the mirror derives it (its role is checked on its own)
_SNAPSHOT_FIELDS = (
    "plan",
    "status",
    "stripe_subscription_id",
    "stripe_price_id",
    "stripe_customer_id",
    "current_period_start",
    "current_period_end",
    "cancel_at_period_end",
    "features",
    "quotas",
    "plans",
)


def compare_snapshot(
    findings: Findings,
    snapshot: Entitlement | None,
    expected: Derived,
    catalog: CatalogDocument | None,
    now: datetime,
) -> None:
    """The snapshot against what the mirror derives (`expected`, its customer filled in as
    entitlements.recompute fills it), and its role against the catalog's for its plans."""
    if snapshot is None:
        if expected.status != NONE:
            findings.differ(SNAPSHOT_DRIFT, "entitlement", "snapshot", None, expected.plan)
        return
    for name in _SNAPSHOT_FIELDS:
        mine, theirs = getattr(snapshot, name), getattr(expected, name)
        if name == "status" and theirs == NONE and mine == INCOMPLETE:
            continue  # a checkout under way: recompute keeps INCOMPLETE, which grants nothing
        if mine != theirs:
            findings.differ(SNAPSHOT_DRIFT, "entitlement", _camel(name), mine, theirs)
    granted = snapshot.granted and (snapshot.grace_until is None or snapshot.grace_until > now)
    if granted != expected.granted:
        findings.differ(SNAPSHOT_DRIFT, "entitlement", "granted", granted, expected.granted)
    role = catalog_role(catalog, list(snapshot.plans))
    if snapshot.role != role:
        findings.differ(ROLE_MISMATCH, "entitlement", "role", snapshot.role, role)


def catalog_role(catalog: CatalogDocument | None, keys: list[str]) -> str | None:
    """The role the catalog gives these plans (entitlements.derive's rule: the primary
    family's plans first)."""
    if catalog is None:
        return None
    plans = catalog.plans
    known = [key for key in keys if key in plans]
    leading = [key for key in known if plans[key].family == catalog.primary_family] or known
    return next((plans[key].role for key in leading + known if plans[key].role is not None), None)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)
