"""Entitlements: what a subject may do, derived from the mirror and the catalog.

One snapshot per (project, mode, subject), recomputed in the same transaction as any change to
its inputs (a subscription, the subject's customer). Reads answer from the snapshot and never
call Stripe.

Access: `active` and `trialing` subscriptions grant; `past_due` grants during the project's
`past_due_grace_days` counted from when it became past_due; every other status grants nothing.
A subscription grants the plans its prices map to in the catalog (today's, or the purchase keys
recorded when it was applied); a bundle (plans of several families) grants the union of their
features and the larger quota per metric; one whose prices the catalog does not name grants
access as `CUSTOM` with the free tier's features. The `plan` label
and the role come from the primary family's plan when there is one.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from billwarden.catalog.service import CatalogService
from billwarden.catalog.service.document import CatalogDocument, EntitlementLabel
from billwarden.core.modes import Mode
from billwarden.core.subjects import Subject, SubjectType
from billwarden.db.base import utcnow
from billwarden.db.locks import lock_name
from billwarden.entitlements.models import Entitlement
from billwarden.entitlements.repository import EntitlementRepository
from billwarden.notifications.models import ENTITLEMENT_UPDATED
from billwarden.notifications.service import Outbox
from billwarden.projects.repository import ProjectRepository
from billwarden.subscriptions.models import Subscription
from billwarden.subscriptions.repository import CustomerRepository, SubscriptionRepository

GRANTING = frozenset({"active", "trialing"})
# which subscription speaks for the subject when it has several: the best standing first
_STANDING = {
    "active": 0,
    "trialing": 1,
    "past_due": 2,
    "paused": 3,
    "unpaid": 4,
    "incomplete": 5,
    "incomplete_expired": 6,
    "canceled": 7,
}
NONE = "NONE"
INCOMPLETE = "INCOMPLETE"
PAST_DUE = "PAST_DUE"
STATUSES = (
    "NONE",
    "INCOMPLETE",
    "TRIALING",
    "ACTIVE",
    "PAST_DUE",
    "PAUSED",
    "CANCELED",
    "UNPAID",
    "INCOMPLETE_EXPIRED",
)


@dataclass
class Derived:
    """What the mirror and the catalog say a subject has."""

    plan: str = EntitlementLabel.FREE.value
    status: str = NONE
    granted: bool = False
    grace_until: datetime | None = None
    stripe_customer_id: str | None = None
    stripe_subscription_id: str | None = None
    stripe_price_id: str | None = None
    current_period_start: datetime | None = None
    current_period_end: datetime | None = None
    cancel_at_period_end: bool = False
    features: list[str] = field(default_factory=list)
    quotas: dict[str, Any] = field(default_factory=dict)
    role: str | None = None
    plans: list[str] = field(default_factory=list)


def free_tier(catalog: CatalogDocument | None) -> tuple[list[str], dict[str, Any]]:
    if catalog is None:
        return [], {}
    return (
        sorted(catalog.free.features),
        {metric: quota.model_dump(mode="json") for metric, quota in catalog.free.quotas.items()},
    )


def _grants(row: Subscription, grace_days: int, now: datetime) -> tuple[bool, datetime | None]:
    if row.status in GRANTING:
        return True, None
    if row.status == "past_due" and grace_days > 0 and row.past_due_since is not None:
        until = row.past_due_since + timedelta(days=grace_days)
        return until > now, until
    return False, None


def derive(
    subscriptions: list[Subscription],
    catalog: CatalogDocument | None,
    price_map: dict[str, str],
    grace_days: int,
    now: datetime,
) -> Derived:
    """The entitlement the subscriptions give under the catalog (pure: no I/O)."""
    plans = catalog.plans if catalog is not None else {}
    primary = catalog.primary_family if catalog is not None else None

    def keys_of(row: Subscription) -> list[str]:
        # by today's catalog, and by the purchase keys recorded when it was applied: a plan
        # whose price moved keeps granting to the subscriptions on its earlier price
        mapped = [price_map[p] for p in row.price_ids if p in price_map]
        return [key for key in dict.fromkeys([*mapped, *row.purchase_keys]) if key in plans]

    def in_primary(row: Subscription) -> bool:
        return any(plans[key].family == primary for key in keys_of(row))

    granting: list[Subscription] = []
    grace_until: datetime | None = None
    for row in subscriptions:
        grants, until = _grants(row, grace_days, now)
        if grants:
            granting.append(row)
            if until is not None:
                grace_until = until if grace_until is None else max(grace_until, until)
    derived = Derived()
    if subscriptions:
        speaker = min(
            subscriptions,
            key=lambda row: (
                row not in granting,
                not in_primary(row),
                _STANDING.get(row.status, 8),
                -(row.current_period_end.timestamp() if row.current_period_end else 0),
                row.stripe_subscription_id,
            ),
        )
        derived.status = speaker.status.upper()
        derived.stripe_customer_id = speaker.stripe_customer_id
        derived.stripe_subscription_id = speaker.stripe_subscription_id
        primary_prices = [
            p
            for p in speaker.price_ids
            if p in price_map and price_map[p] in plans and plans[price_map[p]].family == primary
        ]
        derived.stripe_price_id = next(iter(primary_prices or speaker.price_ids), None)
        derived.current_period_start = speaker.current_period_start
        derived.current_period_end = speaker.current_period_end
        derived.cancel_at_period_end = speaker.cancel_at_period_end
    if not granting:
        derived.features, derived.quotas = free_tier(catalog)
        return derived
    derived.granted = True
    derived.grace_until = grace_until if all(r.status == "past_due" for r in granting) else None
    keys = sorted({key for row in granting for key in keys_of(row)}, key=list(plans).index)
    if not keys:
        # paid for prices the catalog does not name (STRIPE_ALLOWED_PRICE_IDS, or no catalog):
        # access without a plan's features, never money taken for nothing
        derived.plan = EntitlementLabel.CUSTOM.value
        derived.features, derived.quotas = free_tier(catalog)
        return derived
    features: set[str] = set()
    quotas: dict[str, Any] = {}
    for key in keys:
        plan = plans[key]
        features.update(plan.features)
        for metric, quota in plan.quotas.items():
            if metric not in quotas or quota.limit > quotas[metric]["limit"]:
                quotas[metric] = quota.model_dump(mode="json")
    leading = [key for key in keys if plans[key].family == primary] or keys
    derived.plan = plans[leading[0]].entitlement.value
    derived.role = next(
        (plans[key].role for key in leading + keys if plans[key].role is not None), None
    )
    derived.features = sorted(features)
    derived.quotas = quotas
    derived.plans = keys
    return derived


@dataclass(frozen=True)
class EntitlementView:
    """A subject's entitlement as the routes answer it, access evaluated now."""

    snapshot: Entitlement | None
    subject: Subject
    plan: str
    status: str
    has_access: bool
    features: list[str]
    quotas: dict[str, Any]
    role: str | None
    plans: list[str]


class EntitlementService:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.snapshots = EntitlementRepository(session)

    async def recompute(
        self,
        project_id: uuid.UUID,
        mode: Mode,
        subject: Subject,
        *,
        event_id: str | None = None,
        keep_incomplete: bool = True,
    ) -> Entitlement:
        """Derive the subject's entitlement from the mirror and write the snapshot (in the
        caller's transaction, with the change that prompted it). Under a lock on the subject:
        two changes to different subscriptions of one subject take turns, so the later one
        reads the earlier's committed state and no stale snapshot is written last."""
        snapshot = await self._locked_snapshot(project_id, mode, subject)
        before = _notice(snapshot)
        # under the subject's lock: its subscriptions as committed, never objects this session
        # read before the lock (a self-service change reads them first)
        subscriptions = await SubscriptionRepository(self.session).for_subject(
            project_id, mode, subject, fresh=True
        )
        catalogs = CatalogService(self.session)
        loaded = await catalogs.current(project_id)
        catalog = loaded.document if loaded is not None else None
        price_map = (
            await catalogs.price_map(project_id, mode, catalog) if catalog is not None else {}
        )
        project = await ProjectRepository(self.session).get(project_id)
        grace_days = project.past_due_grace_days if project is not None else 0
        derived = derive(subscriptions, catalog, price_map, grace_days, utcnow())
        if derived.status == NONE and keep_incomplete and snapshot.status == INCOMPLETE:
            derived.status = INCOMPLETE  # a checkout is under way: still nothing granted
        customer = await CustomerRepository(self.session).for_subject(project_id, mode, subject)
        if customer is not None and derived.stripe_customer_id is None and not customer.deleted:
            derived.stripe_customer_id = customer.stripe_customer_id
        if subject.email is not None:
            snapshot.user_email = subject.email
        elif customer is not None and customer.email is not None:
            snapshot.user_email = customer.email
        for name, value in vars(derived).items():
            setattr(snapshot, name, value)
        snapshot.last_synced_at = utcnow()
        if event_id is not None:
            snapshot.last_event_id = event_id
        await self.session.flush()
        after = _notice(snapshot)
        if _content(after) != _content(before):  # the tenant app hears of changes only
            await Outbox(self.session).emit(project_id, mode, ENTITLEMENT_UPDATED, after)
        return snapshot

    async def reset_to_free(
        self, project_id: uuid.UUID, mode: Mode, subject: Subject
    ) -> Entitlement:
        """The snapshot back to the free tier with no subscription (a repair: the mirror and
        Stripe are not touched, so the next recompute or run derives it again)."""
        snapshot = await self._locked_snapshot(project_id, mode, subject)
        before = _notice(snapshot)
        catalog = await CatalogService(self.session).current(project_id)
        free = Derived()
        free.features, free.quotas = free_tier(catalog.document if catalog else None)
        for name, value in vars(free).items():
            setattr(snapshot, name, value)
        snapshot.last_synced_at = utcnow()
        await self.session.flush()
        after = _notice(snapshot)
        if _content(after) != _content(before):
            await Outbox(self.session).emit(project_id, mode, ENTITLEMENT_UPDATED, after)
        return snapshot

    async def begin_checkout(
        self, project_id: uuid.UUID, mode: Mode, subject: Subject, customer_id: str | None
    ) -> None:
        """A subject starting its first checkout gets a record with status INCOMPLETE (seed
        001's behaviour), which grants nothing."""
        await lock_name(self.session, _lock(project_id, mode, subject))
        catalog = await CatalogService(self.session).current(project_id)
        features, quotas = free_tier(catalog.document if catalog else None)
        await self.snapshots.insert_ignoring_conflict(
            _new_snapshot(project_id, mode, subject)
            | {
                "user_email": subject.email,
                "status": INCOMPLETE,
                "stripe_customer_id": customer_id,
                "features": features,
                "quotas": quotas,
            },
            _SUBJECT_COLUMNS,
        )

    async def _locked_snapshot(
        self, project_id: uuid.UUID, mode: Mode, subject: Subject
    ) -> Entitlement:
        """The subject's snapshot row (made, free, when it has none), under the subject's lock."""
        await lock_name(self.session, _lock(project_id, mode, subject))
        snapshot = await self.snapshots.for_subject(project_id, mode, subject, fresh=True)
        if snapshot is None:
            await self.snapshots.insert_ignoring_conflict(
                _new_snapshot(project_id, mode, subject), _SUBJECT_COLUMNS
            )
            snapshot = await self.snapshots.for_subject(project_id, mode, subject)
            assert snapshot is not None
        return snapshot

    async def recompute_project(self, project_id: uuid.UUID) -> int:
        """Every snapshot of the project again (after its catalog changed)."""
        rows = await self.snapshots.of_project(project_id)
        for row in rows:
            subject = Subject(SubjectType(row.subject_type), row.subject_id, row.user_email)
            await self.recompute(project_id, row.mode, subject)
        return len(rows)

    async def recompute_past_due(self, project_id: uuid.UUID) -> int:
        """After the project's grace changed: every past_due snapshot again."""
        rows = await self.snapshots.with_status(project_id, PAST_DUE)
        for row in rows:
            subject = Subject(SubjectType(row.subject_type), row.subject_id, row.user_email)
            await self.recompute(project_id, row.mode, subject)
        return len(rows)

    async def view(self, project_id: uuid.UUID, mode: Mode, subject: Subject) -> EntitlementView:
        """The subject's entitlement from its snapshot (free when it has none), now."""
        snapshot = await self.snapshots.for_subject(project_id, mode, subject)
        now = utcnow()
        if snapshot is not None and (
            not snapshot.granted or snapshot.grace_until is None or snapshot.grace_until > now
        ):
            return EntitlementView(
                snapshot,
                subject,
                snapshot.plan,
                snapshot.status,
                snapshot.granted,
                list(snapshot.features),
                dict(snapshot.quotas),
                snapshot.role,
                list(snapshot.plans),
            )
        # no record, or a past_due grace that has run out since it was computed: the free tier
        catalog = await CatalogService(self.session).current(project_id)
        features, quotas = free_tier(catalog.document if catalog else None)
        status = snapshot.status if snapshot is not None else NONE
        return EntitlementView(
            snapshot,
            subject,
            EntitlementLabel.FREE.value,
            status,
            False,
            features,
            quotas,
            None,
            [],
        )


def check_feature(view: EntitlementView, feature: str) -> tuple[bool, str]:
    """Whether the subject may use `feature`, and why: `granted`, `no_subscription`,
    `status_<status>` or `feature_not_in_plan`."""
    if feature in view.features:
        return True, "granted"
    if view.has_access:
        return False, "feature_not_in_plan"
    if view.snapshot is None or view.snapshot.stripe_subscription_id is None:
        return False, "no_subscription"
    return False, f"status_{view.status.lower()}"


_SUBJECT_COLUMNS = ["project_id", "mode", "subject_type", "subject_id"]
# what a change of which sends `entitlement.updated` (ids and email ride along, unchanged)
_NOTIFIED = (
    "plan",
    "status",
    "features",
    "quotas",
    "role",
    "plans",
    "currentPeriodStart",
    "currentPeriodEnd",
    "cancelAtPeriodEnd",
    "hasPremiumAccess",
)


def _notice(snapshot: Entitlement) -> dict[str, Any]:
    """The snapshot's public fields, as `entitlement.updated` carries them."""
    return {
        "subjectType": snapshot.subject_type,
        "subjectId": snapshot.subject_id,
        "userEmail": snapshot.user_email,
        "plan": snapshot.plan,
        "status": snapshot.status,
        "hasPremiumAccess": snapshot.granted,
        "features": list(snapshot.features),
        "quotas": dict(snapshot.quotas),
        "role": snapshot.role,
        "plans": list(snapshot.plans),
        "stripeCustomerId": snapshot.stripe_customer_id,
        "stripeSubscriptionId": snapshot.stripe_subscription_id,
        "stripePriceId": snapshot.stripe_price_id,
        "currentPeriodStart": snapshot.current_period_start,
        "currentPeriodEnd": snapshot.current_period_end,
        "cancelAtPeriodEnd": snapshot.cancel_at_period_end,
    }


def _content(notice: dict[str, Any]) -> list[Any]:
    return [notice[name] for name in _NOTIFIED]


def _lock(project_id: uuid.UUID, mode: Mode, subject: Subject) -> str:
    return f"entitlement:{project_id}:{mode.value}:{subject.type.value}:{subject.id}"


def _new_snapshot(project_id: uuid.UUID, mode: Mode, subject: Subject) -> dict[str, Any]:
    return {
        "id": uuid.uuid4(),
        "project_id": project_id,
        "mode": mode,
        "subject_type": subject.type.value,
        "subject_id": subject.id,
        "plan": EntitlementLabel.FREE.value,
        "status": NONE,
        "granted": False,
        "cancel_at_period_end": False,
        "features": [],
        "quotas": {},
        "plans": [],
        "last_synced_at": utcnow(),
    }
