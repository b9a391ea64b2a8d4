"""Reconciling a project's mode with Stripe, and repairing what differs.

A run reads Stripe's subscriptions (every status, 100 a page, raw JSON) and compares each page
with the mirror in one query; then every subject's snapshot with what its mirror rows derive
under the catalog. No transaction is held while Stripe is read. The records are stored with the
run, so the console reads the last run without calling Stripe. A repair acts on one record, is
audited in its own transaction, and answers the record checked again against Stripe as it is now.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import defer

from billwarden.audit.service import Actor, AuditLog
from billwarden.catalog.service import CatalogService
from billwarden.catalog.service.document import CatalogDocument
from billwarden.config import Settings
from billwarden.core.modes import Mode
from billwarden.core.subjects import Subject, SubjectType
from billwarden.crypto import SecretBox
from billwarden.db.base import utcnow
from billwarden.db.locks import lock_name
from billwarden.db.unit_of_work import unit_of_work
from billwarden.entitlements.models import Entitlement
from billwarden.entitlements.service import Derived, EntitlementService, derive
from billwarden.errors import BillwardenError
from billwarden.projects.exceptions import StripeNotConfigured
from billwarden.projects.repository import ProjectRepository
from billwarden.projects.stripe_config import StripeConfigService
from billwarden.reconciliation.exceptions import RecordNotFound, UnknownRepair
from billwarden.reconciliation.models import ReconcileRecord, ReconcileRun, RunStatus
from billwarden.reconciliation.repository import RecordRepository, RunRepository
from billwarden.reconciliation.service.compare import (
    REASONS,
    Findings,
    SubscriptionState,
    compare_snapshot,
    compare_subscription,
)
from billwarden.stripe_gateway import StripeGateway, StripeGatewayError
from billwarden.subscriptions.models import Customer, Subscription
from billwarden.subscriptions.service import subject_from_metadata
from billwarden.subscriptions.service.sync import SubscriptionSync

logger = logging.getLogger("billwarden.reconciliation")
PAGE_SIZE = 100
HEARTBEAT_SECONDS = 2.0
SYNC_FROM_STRIPE = "sync_from_stripe"
RESET_TO_FREE = "reset_to_free"
RECOMPUTE = "recompute"
REPAIRS = (SYNC_FROM_STRIPE, RESET_TO_FREE, RECOMPUTE)
# what a scheduled run may repair by itself, per reason (BILLWARDEN_RECONCILE_AUTO_REPAIR)
REPAIR_FOR_REASON = {
    reason: (RECOMPUTE if reason in ("snapshot_drift", "role_mismatch") else SYNC_FROM_STRIPE)
    for reason in REASONS
}
Progress = Callable[[int], None]
Heartbeat = Callable[[int], Awaitable[None]]
SCHEDULE = Actor.system("schedule")  # who asks for scheduled runs and makes their repairs


@dataclass
class _Subject:
    """What a run gathers about one subject (or one Stripe subscription of no known subject)."""

    subject: Subject | None
    findings: Findings = field(default_factory=Findings)
    local: dict[str, SubscriptionState] = field(default_factory=dict)
    stripe: dict[str, SubscriptionState] = field(default_factory=dict)


@dataclass(frozen=True)
class _Context:
    catalog: CatalogDocument | None
    price_map: dict[str, str]
    grace_days: int
    customers: dict[str, Customer]  # by Stripe customer id
    by_subject: dict[tuple[str, str], list[Customer]]  # the same, by subject
    secret_key: str | None


def _subject_of(row: Subscription | Customer | Entitlement) -> Subject | None:
    if row.subject_type is None or row.subject_id is None:
        return None
    return Subject(SubjectType(row.subject_type), row.subject_id)


def _snapshot_json(row: Entitlement | None) -> dict[str, Any] | None:
    if row is None:
        return None
    return {
        "id": str(row.id),
        "plan": row.plan,
        "status": row.status,
        "granted": row.granted,
        "graceUntil": _iso(row.grace_until),
        "role": row.role,
        "plans": list(row.plans),
        "features": list(row.features),
        "stripeCustomerId": row.stripe_customer_id,
        "stripeSubscriptionId": row.stripe_subscription_id,
        "stripePriceId": row.stripe_price_id,
        "currentPeriodEnd": _iso(row.current_period_end),
        "cancelAtPeriodEnd": row.cancel_at_period_end,
        "lastSyncedAt": _iso(row.last_synced_at),
    }


def _derived_json(derived: Derived) -> dict[str, Any]:
    return {
        "plan": derived.plan,
        "status": derived.status,
        "granted": derived.granted,
        "role": derived.role,
        "plans": list(derived.plans),
        "features": list(derived.features),
        "stripeCustomerId": derived.stripe_customer_id,
        "stripeSubscriptionId": derived.stripe_subscription_id,
        "stripePriceId": derived.stripe_price_id,
        "currentPeriodEnd": _iso(derived.current_period_end),
        "cancelAtPeriodEnd": derived.cancel_at_period_end,
    }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


class Reconciler:
    """Compares one (project, mode) with Stripe; `progress` hears how many of Stripe's
    subscriptions have been read so far. A whole run opens its own units of work
    (`sessionmaker`); checking one subject again works in the caller's session."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession] | None,
        gateway: StripeGateway,
        secret_box: SecretBox,
        project_id: uuid.UUID,
        mode: Mode,
        *,
        progress: Heartbeat | None = None,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.gateway = gateway
        self.secret_box = secret_box
        self.project_id = project_id
        self.mode = mode
        self.progress = progress
        self.stripe_available = False
        self.stripe_error: str | None = None
        self.seen = 0

    async def _context(self, session: AsyncSession) -> _Context:
        catalogs = CatalogService(session)
        loaded = await catalogs.current(self.project_id)
        catalog = loaded.document if loaded is not None else None
        price_map = await catalogs.price_map(self.project_id, self.mode, catalog) if catalog else {}
        project = await ProjectRepository(session).get(self.project_id)
        rows = await session.scalars(
            select(Customer).where(
                Customer.project_id == self.project_id, Customer.mode == self.mode
            )
        )
        try:
            credentials = await StripeConfigService(session, self.secret_box).get_credentials(
                self.project_id, self.mode
            )
            secret_key: str | None = credentials.secret_key
        except StripeNotConfigured:
            secret_key = None
        customers = list(rows.all())
        by_subject: dict[tuple[str, str], list[Customer]] = {}
        for row in customers:
            by_subject.setdefault((row.subject_type, row.subject_id), []).append(row)
        return _Context(
            catalog=catalog,
            price_map=price_map,
            grace_days=project.past_due_grace_days if project is not None else 0,
            customers={row.stripe_customer_id: row for row in customers},
            by_subject=by_subject,
            secret_key=secret_key,
        )

    async def run(self) -> list[dict[str, Any]]:
        """Every record of the project's mode (as rows for `reconcile_records`, without a run)."""
        assert self.sessionmaker is not None, "a whole run needs its own units of work"
        async with unit_of_work(self.sessionmaker, write=False) as session:
            context = await self._context(session)
        subjects: dict[tuple[str, str] | str, _Subject] = {}
        stripe_seen: dict[str, SubscriptionState] = {}
        mirrored: dict[str, Subscription] = {}
        if context.secret_key is None:
            self.stripe_error = f"No {self.mode.value}-mode Stripe configuration."
        else:
            try:
                await self._read_stripe(context, subjects, stripe_seen, mirrored)
                self.stripe_available = True
            except (StripeGatewayError, BillwardenError) as exc:
                self.stripe_error = str(exc)
                # compare the database alone: a partial read proves nothing
                subjects.clear()
                stripe_seen.clear()
                mirrored.clear()
        async with unit_of_work(self.sessionmaker, write=False) as session:
            return await self._finish(session, context, subjects, stripe_seen, mirrored)

    async def _read_stripe(
        self,
        context: _Context,
        subjects: dict[tuple[str, str] | str, _Subject],
        stripe_seen: dict[str, SubscriptionState],
        mirrored: dict[str, Subscription],
    ) -> None:
        """Page through Stripe's subscriptions, each page compared with its mirror rows (one
        query); the next page is asked for while this one is compared."""
        assert context.secret_key is not None and self.sessionmaker is not None
        secret_key = context.secret_key

        def fetch(params: dict[str, Any]) -> asyncio.Task[dict[str, Any]]:
            return asyncio.create_task(
                self.gateway.list_page(
                    self.project_id, self.mode, secret_key, "/v1/subscriptions", params
                )
            )

        params: dict[str, Any] = {"status": "all", "limit": PAGE_SIZE}
        coming: asyncio.Task[dict[str, Any]] | None = fetch(params)
        try:
            while coming is not None:
                page = await coming
                coming = None
                objects = [obj for obj in page["data"] if isinstance(obj, dict)]
                if page.get("has_more") and objects:
                    coming = fetch({**params, "starting_after": objects[-1]["id"]})
                ids = [obj["id"] for obj in objects if isinstance(obj.get("id"), str)]
                async with unit_of_work(self.sessionmaker, write=False) as session:
                    rows = await session.scalars(
                        _mirror_rows(self.project_id, self.mode).where(
                            Subscription.stripe_subscription_id.in_(ids)
                        )
                    )
                    local = {row.stripe_subscription_id: row for row in rows.all()}
                mirrored.update(local)
                for obj in objects:
                    self._compare_one(context, subjects, stripe_seen, local, obj)
                self.seen += len(objects)
                if self.progress is not None:
                    await self.progress(self.seen)
        finally:
            if coming is not None:
                coming.cancel()

    def _compare_one(
        self,
        context: _Context,
        subjects: dict[tuple[str, str] | str, _Subject],
        stripe_seen: dict[str, SubscriptionState],
        local: dict[str, Subscription],
        obj: dict[str, Any],
    ) -> None:
        state = SubscriptionState.of_stripe(obj)
        if state is None:
            return
        stripe_seen[state.id] = state
        row = local.get(state.id)
        subject = _subject_of(row) if row is not None else None
        if subject is None and state.customer in context.customers:
            subject = _subject_of(context.customers[state.customer])
        if subject is None:
            subject = subject_from_metadata(obj.get("metadata"), self.project_id, self.mode)
        gathered = _gathered(subjects, subject, state.id)
        gathered.stripe[state.id] = state
        mine = SubscriptionState.of_row(row) if row is not None else None
        if mine is not None:
            gathered.local[state.id] = mine
        compare_subscription(gathered.findings, mine, state)

    async def _finish(
        self,
        session: AsyncSession,
        context: _Context,
        subjects: dict[tuple[str, str] | str, _Subject],
        stripe_seen: dict[str, SubscriptionState],
        mirrored: dict[str, Subscription],
    ) -> list[dict[str, Any]]:
        # the rows read with Stripe's pages, and those of the subscriptions Stripe did not list
        unread = [
            stripe_id
            for stripe_id in await session.scalars(
                select(Subscription.stripe_subscription_id).where(
                    Subscription.project_id == self.project_id, Subscription.mode == self.mode
                )
            )
            if stripe_id not in mirrored
        ]
        rows = list(mirrored.values())
        for start in range(0, len(unread), 500):
            rows += (
                await session.scalars(
                    _mirror_rows(self.project_id, self.mode).where(
                        Subscription.stripe_subscription_id.in_(unread[start : start + 500])
                    )
                )
            ).all()
        by_subject: dict[tuple[str, str], list[Subscription]] = {}
        for row in rows:
            subject = _subject_of(row)
            if subject is not None:
                by_subject.setdefault(subject.key, []).append(row)
            if row.stripe_subscription_id in stripe_seen:
                continue  # compared with Stripe's page already
            gathered = _gathered(subjects, subject, row.stripe_subscription_id)
            mine = SubscriptionState.of_row(row)
            gathered.local[mine.id] = mine
            if self.stripe_available:
                compare_subscription(gathered.findings, mine, None)
        snapshots = (
            await session.scalars(
                select(Entitlement).where(
                    Entitlement.project_id == self.project_id, Entitlement.mode == self.mode
                )
            )
        ).all()
        by_snapshot = {(row.subject_type, row.subject_id): row for row in snapshots}
        for key in by_snapshot:
            _gathered(subjects, Subject(SubjectType(key[0]), key[1]), "")
        now = utcnow()
        records = []
        for gathered in subjects.values():
            snapshot = None
            expected = None
            if gathered.subject is not None:
                snapshot = by_snapshot.get(gathered.subject.key)
                expected = self._expected(
                    context, by_subject.get(gathered.subject.key, []), gathered.subject, now
                )
                compare_snapshot(gathered.findings, snapshot, expected, context.catalog, now)
            records.append(self._record(gathered, snapshot, expected, now))
        return records

    def _expected(
        self, context: _Context, rows: list[Subscription], subject: Subject, now: datetime
    ) -> Derived:
        """What entitlements.recompute would write for the subject now."""
        derived = derive(rows, context.catalog, context.price_map, context.grace_days, now)
        if derived.stripe_customer_id is None:
            customer = next(
                (row for row in context.by_subject.get(subject.key, []) if not row.deleted), None
            )
            derived.stripe_customer_id = customer.stripe_customer_id if customer else None
        return derived

    def _record(
        self,
        gathered: _Subject,
        snapshot: Entitlement | None,
        expected: Derived | None,
        now: datetime,
    ) -> dict[str, Any]:
        reasons = sorted(gathered.findings.reasons, key=REASONS.index)
        ids = sorted({*gathered.local, *gathered.stripe})
        return {
            "id": uuid.uuid4(),
            "project_id": self.project_id,
            "mode": self.mode,
            "entitlement_id": snapshot.id if snapshot is not None else None,
            "subject_type": gathered.subject.type.value if gathered.subject else None,
            "subject_id": gathered.subject.id if gathered.subject else None,
            "subscription_ids": ids,
            "in_sync": not reasons,
            "reasons": reasons,
            "reason_codes": "," + ",".join(reasons) + "," if reasons else "",
            "local": {
                "entitlement": _snapshot_json(snapshot),
                "expected": _derived_json(expected) if expected is not None else None,
                "subscriptions": [gathered.local[i].to_json() for i in ids if i in gathered.local],
            },
            "stripe": (
                {
                    "subscriptions": [
                        gathered.stripe[i].to_json() for i in ids if i in gathered.stripe
                    ]
                }
                if self.stripe_available
                else None
            ),
            "differences": gathered.findings.differences,
            "checked_at": now,
        }

    async def check_snapshots(
        self, session: AsyncSession, subject: Subject | None = None
    ) -> list[dict[str, Any]]:
        """Every subject's snapshot (or `subject`'s) against what its mirror rows derive, from
        the database alone: Stripe is not read, so the reasons are snapshot_drift and
        role_mismatch only, each repaired by a recompute. A subject with neither a snapshot
        nor a mirror row has no record."""
        context = await self._context(session)
        mirror = _mirror_rows(self.project_id, self.mode)
        snapshots = select(Entitlement).where(
            Entitlement.project_id == self.project_id, Entitlement.mode == self.mode
        )
        if subject is not None:
            mirror = mirror.where(
                Subscription.subject_type == subject.type.value,
                Subscription.subject_id == subject.id,
            )
            snapshots = snapshots.where(
                Entitlement.subject_type == subject.type.value,
                Entitlement.subject_id == subject.id,
            )
        subjects: dict[tuple[str, str] | str, _Subject] = {}
        by_subject: dict[tuple[str, str], list[Subscription]] = {}
        for row in await session.scalars(mirror):
            owner = _subject_of(row)
            if owner is None:  # no subject derives anything from it
                continue
            by_subject.setdefault(owner.key, []).append(row)
            state = SubscriptionState.of_row(row)
            _gathered(subjects, owner, "").local[state.id] = state
        by_snapshot = {
            (row.subject_type, row.subject_id): row for row in await session.scalars(snapshots)
        }
        for key in by_snapshot:
            _gathered(subjects, Subject(SubjectType(key[0]), key[1]), "")
        now = utcnow()
        records = []
        for gathered in subjects.values():
            assert gathered.subject is not None
            snapshot = by_snapshot.get(gathered.subject.key)
            expected = self._expected(
                context, by_subject.get(gathered.subject.key, []), gathered.subject, now
            )
            compare_snapshot(gathered.findings, snapshot, expected, context.catalog, now)
            records.append(self._record(gathered, snapshot, expected, now))
        return records

    async def check_subject(
        self, session: AsyncSession, subject: Subject | None, subscription_ids: Iterable[str]
    ) -> dict[str, Any]:
        """One record again, in `session` (a repair's, so its changes are seen), against
        Stripe as it is now: the subject's subscriptions (those named, and every one of its
        customers') read one by one."""
        context = await self._context(session)
        ids = set(subscription_ids)
        subjects: dict[tuple[str, str] | str, _Subject] = {}
        stripe_seen: dict[str, SubscriptionState] = {}
        gathered = _gathered(subjects, subject, next(iter(sorted(ids)), ""))
        if context.secret_key is None:
            self.stripe_error = f"No {self.mode.value}-mode Stripe configuration."
        else:
            try:
                customers = [
                    row.stripe_customer_id
                    for row in (context.by_subject.get(subject.key, []) if subject else [])
                ]
                for customer in customers:
                    page = await self.gateway.list_page(
                        self.project_id,
                        self.mode,
                        context.secret_key,
                        "/v1/subscriptions",
                        {"status": "all", "limit": PAGE_SIZE, "customer": customer},
                    )
                    ids.update(obj["id"] for obj in page["data"] if isinstance(obj, dict))
                for stripe_id in sorted(ids):
                    obj = await self.gateway.retrieve(
                        self.project_id,
                        self.mode,
                        context.secret_key,
                        f"/v1/subscriptions/{stripe_id}",
                    )
                    state = SubscriptionState.of_stripe(obj) if obj is not None else None
                    if state is not None:
                        stripe_seen[state.id] = state
                self.stripe_available = True
            except (StripeGatewayError, BillwardenError) as exc:
                self.stripe_error = str(exc)
        rows = (
            await session.scalars(
                select(Subscription).where(
                    Subscription.project_id == self.project_id,
                    Subscription.mode == self.mode,
                    Subscription.stripe_subscription_id.in_(sorted(ids)),
                )
            )
        ).all()
        local = {row.stripe_subscription_id: row for row in rows}
        if self.stripe_available:
            for stripe_id in sorted(ids):
                row = local.get(stripe_id)
                mine = SubscriptionState.of_row(row) if row is not None else None
                theirs = stripe_seen.get(stripe_id)
                if mine is not None:
                    gathered.local[stripe_id] = mine
                if theirs is not None:
                    gathered.stripe[stripe_id] = theirs
                if mine is not None or theirs is not None:
                    compare_subscription(gathered.findings, mine, theirs)
        else:
            gathered.local.update({i: SubscriptionState.of_row(r) for i, r in local.items()})
        snapshot = None
        expected = None
        now = utcnow()
        if subject is not None:
            mine_rows = (
                await session.scalars(
                    select(Subscription).where(
                        Subscription.project_id == self.project_id,
                        Subscription.mode == self.mode,
                        Subscription.subject_type == subject.type.value,
                        Subscription.subject_id == subject.id,
                    )
                )
            ).all()
            snapshot = await session.scalar(
                select(Entitlement).where(
                    Entitlement.project_id == self.project_id,
                    Entitlement.mode == self.mode,
                    Entitlement.subject_type == subject.type.value,
                    Entitlement.subject_id == subject.id,
                )
            )
            expected = self._expected(context, list(mine_rows), subject, now)
            compare_snapshot(gathered.findings, snapshot, expected, context.catalog, now)
        return self._record(gathered, snapshot, expected, now)


@contextmanager
def _fewer_collections() -> Iterator[None]:
    """A run holds a few hundred thousand objects (rows, states, records) until it ends and
    frees them all at once; under the collector's default thresholds, most of its allocations
    would trigger collections that find nothing to free (a third of a run's time, measured by
    bench/reconcile.py). The first generation is collected 50 times less often meanwhile."""
    thresholds = gc.get_threshold()
    gc.set_threshold(max(thresholds[0], 35_000), *thresholds[1:])
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)


def _mirror_rows(project_id: uuid.UUID, mode: Mode) -> Select[Subscription]:
    """The mirror's subscriptions as a run compares them: without the raw object, which a run
    never reads and which costs most of a row's decoding."""
    return (
        select(Subscription)
        .options(defer(Subscription.raw))
        .where(Subscription.project_id == project_id, Subscription.mode == mode)
    )


def _gathered(
    subjects: dict[tuple[str, str] | str, _Subject], subject: Subject | None, stripe_id: str
) -> _Subject:
    """The subject's entry (a subscription of no known subject gets one of its own)."""
    key: tuple[str, str] | str = subject.key if subject is not None else stripe_id
    if key not in subjects:
        subjects[key] = _Subject(subject)
    return subjects[key]


# --- runs ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunPolicy:
    lease: timedelta
    interval: timedelta | None  # scheduled runs, None: on demand only
    auto_repair: frozenset[str]

    @classmethod
    def from_settings(cls, settings: Settings) -> RunPolicy:
        interval = settings.reconcile_interval_seconds
        return cls(
            lease=timedelta(seconds=settings.reconcile_lease_seconds),
            interval=timedelta(seconds=interval) if interval else None,
            auto_repair=frozenset(settings.reconcile_auto_repair),
        )


class Runs:
    """Asking for runs (one per project and mode at a time, across processes) and running
    them."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        gateway: StripeGateway,
        secret_box: SecretBox,
        policy: RunPolicy,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.gateway = gateway
        self.secret_box = secret_box
        self.policy = policy

    @staticmethod
    async def request(
        session: AsyncSession, project_id: uuid.UUID, mode: Mode, actor: Actor, trigger: str
    ) -> tuple[ReconcileRun, bool]:
        """A queued run, or the one already queued or running; whether it is new."""
        runs = RunRepository(session)
        active = await runs.active(project_id, mode)
        if active is not None:
            return active, False
        try:
            async with session.begin_nested():
                run = await runs.add(
                    ReconcileRun(
                        project_id=project_id,
                        mode=mode,
                        status=RunStatus.QUEUED,
                        trigger=trigger,
                        requested_by=actor.label[:320],
                        requested_at=utcnow(),
                    )
                )
        except IntegrityError:  # another process asked at the same moment: theirs stands
            active = await runs.active(project_id, mode)
            if active is None:
                raise
            return active, False
        return run, True

    async def claim(self, session: AsyncSession, run_id: uuid.UUID) -> uuid.UUID | None:
        """Take the run (queued, or its runner's lease lapsed) in `session`; its claim token, or
        None when another runner holds it."""
        token = uuid.uuid4()
        if await RunRepository(session).claim(run_id, token, utcnow(), self.policy.lease):
            return token
        return None

    async def execute(
        self,
        run_id: uuid.UUID,
        *,
        progress: Progress | None = None,
        token: uuid.UUID | None = None,
    ) -> bool:
        """Run a queued run (or one whose runner died) to the end; False when another runner
        holds it (or took it over). `token`: the run is claimed already (`claim`). While it
        reads Stripe the run renews its lease and records its progress every few seconds; a
        failure marks it failed and keeps no records."""
        if token is None:
            async with unit_of_work(self.sessionmaker) as session:
                token = await self.claim(session, run_id)
        if token is None:
            return False
        async with unit_of_work(self.sessionmaker, write=False) as session:
            run = await RunRepository(session).get(run_id)
            assert run is not None
            project_id, mode, trigger = run.project_id, run.mode, run.trigger
        heartbeat = _Heartbeat(self, run_id, token, progress)
        reconciler = Reconciler(
            self.sessionmaker, self.gateway, self.secret_box, project_id, mode, progress=heartbeat
        )
        try:
            with _fewer_collections():
                records = await reconciler.run()
            repaired = 0
            if trigger == "schedule" and self.policy.auto_repair:
                await heartbeat.beat(reconciler.seen, force=True)  # still ours before repairing
                repaired = await self._auto_repair(project_id, mode, records)
        except LostClaim:
            logger.warning("reconciliation run %s was taken over by another runner", run_id)
            return False
        except Exception as exc:
            logger.exception("reconciliation run %s failed", run_id)
            async with unit_of_work(self.sessionmaker) as session:
                run = await RunRepository(session).get(run_id)
                if run is not None and run.claim_token == token:
                    run.status = RunStatus.FAILED
                    run.finished_at = utcnow()
                    run.error = f"{type(exc).__name__}: {exc}"[:4000]
                    run.claimed_until = None
            return True
        async with unit_of_work(self.sessionmaker) as session:
            run = await RunRepository(session).lock(run_id)
            if run is None or run.claim_token != token:
                return False  # taken over after our lease lapsed: theirs stands
            await RecordRepository(session).add_many(
                [{**record, "run_id": run_id} for record in records]
            )
            run.status = RunStatus.FINISHED
            run.finished_at = utcnow()
            run.claimed_until = None
            run.stripe_available = reconciler.stripe_available
            run.stripe_error = reconciler.stripe_error
            run.subscriptions_seen = reconciler.seen
            run.total = len(records)
            run.in_sync = sum(1 for record in records if record["in_sync"])
            run.mismatched = run.total - run.in_sync
            run.reasons = _reason_counts(records)
            run.repaired = repaired
        return True

    async def _auto_repair(
        self, project_id: uuid.UUID, mode: Mode, records: list[dict[str, Any]]
    ) -> int:
        """Repair, audited, the records whose every reason the policy lets a scheduled run
        repair; each record is replaced by its re-check."""
        repaired = 0
        actor = SCHEDULE
        for index, record in enumerate(records):
            reasons = set(record["reasons"])
            if not reasons or not reasons <= self.policy.auto_repair:
                continue
            action = (
                SYNC_FROM_STRIPE
                if any(REPAIR_FOR_REASON[reason] == SYNC_FROM_STRIPE for reason in reasons)
                else RECOMPUTE
            )
            try:
                async with unit_of_work(self.sessionmaker) as session:
                    records[index] = await Repairs(
                        session, self.gateway, self.secret_box, project_id, mode
                    ).repair_found(record, action, actor, "automatic repair of a scheduled run")
                repaired += 1
            except Exception:  # one record's failure stops no other repair
                logger.exception("automatic repair of %s failed", record.get("subject_id"))
        return repaired


class LostClaim(Exception):
    """Another runner took the run over (this one's lease lapsed)."""


class _Heartbeat:
    """A run's progress, and its lease renewed, every HEARTBEAT_SECONDS while it reads Stripe;
    LostClaim when the run is no longer this runner's."""

    def __init__(
        self, runs: Runs, run_id: uuid.UUID, token: uuid.UUID, progress: Progress | None
    ) -> None:
        self.runs = runs
        self.run_id = run_id
        self.token = token
        self.progress = progress
        self.last = 0.0

    async def __call__(self, seen: int) -> None:
        if self.progress is not None:
            self.progress(seen)
        await self.beat(seen)

    async def beat(self, seen: int, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last < HEARTBEAT_SECONDS:
            return
        self.last = now
        async with unit_of_work(self.runs.sessionmaker) as session:
            renewed = await RunRepository(session).renew(
                self.run_id, self.token, utcnow() + self.runs.policy.lease, seen
            )
        if not renewed:
            raise LostClaim(str(self.run_id))


def _reason_counts(records: Iterable[dict[str, Any]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for record in records:
        for reason in record["reasons"]:
            counts[reason] = counts.get(reason, 0) + 1
    return counts


# --- repairs ---------------------------------------------------------------------------------


class Repairs:
    """Repairs of one (project, mode), each in the caller's transaction with its audit entry."""

    def __init__(
        self,
        session: AsyncSession,
        gateway: StripeGateway,
        secret_box: SecretBox,
        project_id: uuid.UUID,
        mode: Mode,
    ) -> None:
        self.session = session
        self.gateway = gateway
        self.secret_box = secret_box
        self.project_id = project_id
        self.mode = mode

    async def repair(
        self,
        *,
        entitlement_id: uuid.UUID | None,
        subscription_id: str | None,
        action: str,
        actor: Actor,
        reason: str | None,
    ) -> tuple[ReconcileRecord, ReconcileRun]:
        """Repair one record of the last finished run and store it re-checked; the record and
        its run."""
        if action not in REPAIRS:
            raise UnknownRepair(
                f"Unknown repair {action!r}: one of {', '.join(REPAIRS)}.",
                details={"action": action},
            )
        runs = RunRepository(self.session)
        run = await runs.latest(self.project_id, self.mode, finished=True)
        records = RecordRepository(self.session)
        found = None
        if run is not None and entitlement_id is not None:
            found = await records.for_entitlement(run.id, entitlement_id)
        elif run is not None and subscription_id is not None:
            found = await records.for_subscription(run.id, subscription_id)
        if run is None or found is None:
            raise RecordNotFound(
                "No such record in the last reconciliation run.",
                details={
                    "entitlementId": str(entitlement_id) if entitlement_id else None,
                    "subscriptionId": subscription_id,
                },
            )
        checked = await self.repair_found(
            {
                "subject_type": found.subject_type,
                "subject_id": found.subject_id,
                "subscription_ids": list(found.subscription_ids),
                "entitlement_id": found.entitlement_id,
                "local": found.local,
            },
            action,
            actor,
            reason,
        )
        run = await runs.lock(run.id)  # repairs of one run take turns on its counters
        assert run is not None
        was_in_sync, old_reasons = found.in_sync, list(found.reasons)
        for name, value in checked.items():
            if name not in ("id", "project_id", "mode"):
                setattr(found, name, value)
        if was_in_sync != found.in_sync:
            run.in_sync += 1 if found.in_sync else -1
            run.mismatched = run.total - run.in_sync
        counts = dict(run.reasons)
        for reason in old_reasons:
            counts[reason] = counts.get(reason, 0) - 1
        for reason in found.reasons:
            counts[reason] = counts.get(reason, 0) + 1
        run.reasons = {reason: count for reason, count in counts.items() if count > 0}
        await self.session.flush()
        return found, run

    async def repair_found(
        self, record: dict[str, Any], action: str, actor: Actor, reason: str | None
    ) -> dict[str, Any]:
        """Apply `action` to the record's subject (or subscription), audited; the record
        checked again."""
        subject = (
            Subject(SubjectType(record["subject_type"]), record["subject_id"])
            if record["subject_type"] and record["subject_id"]
            else None
        )
        ids = list(record["subscription_ids"])
        entitlements = EntitlementService(self.session)
        if action == SYNC_FROM_STRIPE:
            await self._sync(subject, ids)
        elif subject is None:
            raise UnknownRepair(
                f"{action} needs a subject, and this record's subscription belongs to none: "
                "use sync_from_stripe.",
                details={"action": action},
            )
        elif action == RESET_TO_FREE:
            await entitlements.reset_to_free(self.project_id, self.mode, subject)
        else:
            await entitlements.recompute(self.project_id, self.mode, subject)
        checked = await Reconciler(
            None, self.gateway, self.secret_box, self.project_id, self.mode
        ).check_subject(self.session, subject, ids)
        entitlement_id = record.get("entitlement_id")
        await AuditLog(self.session).record(
            actor,
            f"reconciliation.{action}",
            target_type="entitlement" if entitlement_id else "subscription",
            target_id=str(entitlement_id) if entitlement_id else (ids[0] if ids else ""),
            project_id=self.project_id,
            mode=self.mode,
            before=record["local"],
            after=checked["local"],
            reason=reason,
        )
        return checked

    async def _sync(self, subject: Subject | None, ids: list[str]) -> None:
        """Stripe's state of every subscription of the record (and of its subject's customers)
        into the mirror; one Stripe no longer has leaves the mirror."""
        session = self.session
        sync = SubscriptionSync(session, self.gateway, self.secret_box, self.project_id, self.mode)
        secret_key = await sync.secret_key()
        wanted = set(ids)
        if subject is not None:
            customers = await session.scalars(
                select(Customer.stripe_customer_id).where(
                    Customer.project_id == self.project_id,
                    Customer.mode == self.mode,
                    Customer.subject_type == subject.type.value,
                    Customer.subject_id == subject.id,
                )
            )
            for customer in customers.all():
                page = await self.gateway.list_page(
                    self.project_id,
                    self.mode,
                    secret_key,
                    "/v1/subscriptions",
                    {"status": "all", "limit": PAGE_SIZE, "customer": customer},
                )
                wanted.update(obj["id"] for obj in page["data"] if isinstance(obj, dict))
        for stripe_id in sorted(wanted):
            current = await sync.fetch(f"/v1/subscriptions/{stripe_id}")
            if current is None:
                await lock_name(session, f"subscription:{self.project_id}:{self.mode}:{stripe_id}")
                await session.execute(
                    delete(Subscription).where(
                        Subscription.project_id == self.project_id,
                        Subscription.mode == self.mode,
                        Subscription.stripe_subscription_id == stripe_id,
                    )
                )
                continue
            await sync.sync_subscription(stripe_id, stamp=None, subject_hint=subject)
        if subject is not None:
            await EntitlementService(session).recompute(self.project_id, self.mode, subject)
