"""What the admin console's pages show, gathered from the domains' own services (the console has
no rules of its own: a repair, a replay or a key is made through the same JSON API anyone
calls)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from billwarden.audit.models import AuditEntry
from billwarden.audit.service import AuditLog
from billwarden.core.modes import Mode
from billwarden.crypto import SecretBox
from billwarden.identity.models import ApiKey, User
from billwarden.identity.repository import KeyViewer
from billwarden.identity.service import ApiKeyService
from billwarden.notifications.models import Delivery, WebhookEndpoint
from billwarden.notifications.service import EndpointService
from billwarden.payments.models import Payment
from billwarden.payments.repository import (
    EndpointState,
    ListFilters,
    MonthlyFigures,
    PaymentFigures,
    ProjectLists,
)
from billwarden.payments.service import Figures, payment_stats
from billwarden.projects.models import Project, ProjectRole, StripeConfig
from billwarden.projects.service import MembershipService
from billwarden.reconciliation.models import ReconcileRecord, ReconcileRun
from billwarden.reconciliation.repository import RecordRepository, RunRepository
from billwarden.subscriptions.models import Subscription
from billwarden.webhooks.models import InboxStatus, WebhookEvent
from billwarden.webhooks.service import InboxService

PAGE_SIZE = 50
CHART_MONTHS = 12


@dataclass(frozen=True)
class Frame:
    """Every page's frame: who is looking, at which project and mode, among which projects."""

    user: User
    projects: list[Project]
    project: Project | None
    mode: Mode
    is_admin: bool
    is_owner: bool = False


async def frame(session: AsyncSession, user: User, project_ref: str | None, mode: Mode) -> Frame:
    """The projects the user can see, and the one asked for (by id or slug), else the first; a
    project the user cannot see is as absent as one that does not exist."""
    memberships = MembershipService(session)
    rows, _ = await memberships.list_projects(user, limit=500, offset=0)
    projects = [project for project, _ in rows]
    roles: dict[uuid.UUID, ProjectRole | None] = {project.id: role for project, role in rows}
    chosen = next(
        (p for p in projects if project_ref in (str(p.id), p.slug)),
        projects[0] if projects else None,
    )
    role = roles.get(chosen.id) if chosen is not None else None
    is_admin = user.is_superuser or (role is not None and role.is_admin)
    is_owner = user.is_superuser or role is ProjectRole.OWNER
    return Frame(user, projects, chosen, mode, is_admin, is_owner)


# --- billing (reconciliation) --------------------------------------------------------------


@dataclass(frozen=True)
class BillingPage:
    run: ReconcileRun | None
    active_run: ReconcileRun | None
    records: list[ReconcileRecord]
    matching: int


async def billing(
    session: AsyncSession,
    project: Project,
    mode: Mode,
    *,
    reason: str | None,
    status: str | None,
    offset: int,
) -> BillingPage:
    runs = RunRepository(session)
    run = await runs.latest(project.id, mode, finished=True)
    active = await runs.active(project.id, mode)
    records: list[ReconcileRecord] = []
    matching = 0
    if run is not None:
        records, matching = await RecordRepository(session).page(
            run.id,
            mismatched=None if status is None else status == "mismatched",
            reason=reason,
            limit=PAGE_SIZE,
            offset=offset,
        )
    return BillingPage(run, active, records, matching)


async def record(
    session: AsyncSession, project: Project, mode: Mode, record_id: uuid.UUID
) -> ReconcileRecord | None:
    found = await RecordRepository(session).get(record_id)
    if found is None or found.project_id != project.id or found.mode != mode:
        return None
    return found


@dataclass(frozen=True)
class Side:
    """One row of a record's diagnostics: a field, the local value, Stripe's (or the expected),
    and whether they differ."""

    target: str
    field: str
    local: Any
    expected: Any
    differs: bool


def diagnostics(found: ReconcileRecord) -> list[Side]:
    """Local and Stripe side by side: each subscription's fields, then the snapshot's against
    what the mirror derives; the differing ones marked."""
    differing = {(d["target"], d["field"]) for d in found.differences}
    rows: list[Side] = []
    local_subs = {s["id"]: s for s in found.local.get("subscriptions", [])}
    stripe_subs = {s["id"]: s for s in (found.stripe or {}).get("subscriptions", [])}
    names = {
        "status": "status",
        "priceIds": "price_ids",
        "currentPeriodEnd": "current_period_end",
        "cancelAtPeriodEnd": "cancel_at_period_end",
        "cancelAt": "cancel_at",
        "customer": "customer",
    }
    for stripe_id in sorted({*local_subs, *stripe_subs}):
        mine, theirs = local_subs.get(stripe_id), stripe_subs.get(stripe_id)
        if mine is None or theirs is None:
            rows.append(
                Side(stripe_id, "subscription", stripe_id if mine else None,
                     stripe_id if theirs else None, True)
            )  # fmt: skip
            continue
        for wire, name in names.items():
            rows.append(
                Side(
                    stripe_id,
                    wire,
                    mine.get(wire),
                    theirs.get(wire),
                    (stripe_id, name) in differing,
                )
            )
    snapshot = found.local.get("entitlement") or {}
    expected = found.local.get("expected") or {}
    for wire in (
        "plan",
        "status",
        "granted",
        "role",
        "plans",
        "features",
        "stripeSubscriptionId",
        "stripePriceId",
        "stripeCustomerId",
        "currentPeriodEnd",
        "cancelAtPeriodEnd",
    ):
        if wire in snapshot or wire in expected:
            rows.append(
                Side(
                    "entitlement",
                    wire,
                    snapshot.get(wire),
                    expected.get(wire),
                    ("entitlement", wire) in differing,
                )
            )
    return rows


# --- webhooks, audit, keys, Stripe, notifications --------------------------------------------


async def webhook_events(
    session: AsyncSession,
    project: Project,
    mode: Mode,
    *,
    status: InboxStatus | None,
    event_type: str | None,
    offset: int,
) -> tuple[list[WebhookEvent], int]:
    return await InboxService(session).list_events(
        project.id, mode=mode, status=status, event_type=event_type, limit=PAGE_SIZE, offset=offset
    )


async def audit_entries(
    session: AsyncSession, project: Project, *, offset: int
) -> tuple[list[AuditEntry], int]:
    return await AuditLog(session).list_entries(
        project.id, action=None, target_id=None, limit=PAGE_SIZE, offset=offset
    )


async def api_keys(
    session: AsyncSession, secret_box: SecretBox, viewer: KeyViewer, project: Project
) -> list[ApiKey]:
    keys, _ = await ApiKeyService(session, secret_box).list_keys(
        viewer, project_id=project.id, limit=200, offset=0
    )
    return keys


@dataclass(frozen=True)
class StripeMode:
    mode: Mode
    config: StripeConfig | None
    state: EndpointState | None


async def stripe_status(session: AsyncSession, project: Project) -> list[StripeMode]:
    states = {s.mode: s for s in await PaymentFigures(session).endpoints([project.id])}
    configs = {
        config.mode: config
        for config in (
            await session.scalars(
                select(StripeConfig).where(
                    StripeConfig.project_id == project.id, StripeConfig.is_active
                )
            )
        ).all()
    }
    return [StripeMode(mode, configs.get(mode), states.get(mode)) for mode in Mode]


async def notification_endpoints(
    session: AsyncSession, secret_box: SecretBox, project: Project
) -> list[tuple[WebhookEndpoint, list[Delivery]]]:
    service = EndpointService(session, secret_box)
    endpoints, _ = await service.of_project(project.id, limit=100, offset=0)
    shown = []
    for endpoint in endpoints:
        deliveries, _ = await service.deliveries(project.id, endpoint.id, limit=10, offset=0)
        shown.append((endpoint, deliveries))
    return shown


# --- payments: lists, figures, charts --------------------------------------------------------


@dataclass(frozen=True)
class Chart:
    """A chart drawn server-side as SVG: the polyline's points (or bars) already scaled."""

    title: str
    labels: list[str]
    width: int = 560
    height: int = 180
    lines: list[tuple[str, str]] = field(default_factory=list)  # (css class, points)
    bars: list[tuple[str, float, float, float, float, str]] = field(default_factory=list)
    top: str = ""  # the value at the top of the scale


@dataclass(frozen=True)
class PaymentsPage:
    subscriptions: list[Subscription]
    payments: list[Payment]
    figures: Figures
    charts: list[Chart]
    since: datetime
    until: datetime


def month_starts(now: datetime, count: int = CHART_MONTHS) -> list[datetime]:
    """The first instant of each of the last `count` months, oldest first (this one last)."""
    year, month = now.year, now.month
    starts = []
    for _ in range(count):
        starts.append(datetime(year, month, 1, tzinfo=UTC))
        year, month = (year - 1, 12) if month == 1 else (year, month - 1)
    return list(reversed(starts))


def _mrr_chart(history: MonthlyFigures) -> Chart:
    labels = [month.strftime("%b") for month in history.months]
    peak = max(history.mrr) or 1.0
    width, height, pad = 560, 180, 24
    step = (width - 2 * pad) / max(1, len(history.mrr) - 1)
    points = " ".join(
        f"{pad + i * step:.1f},{height - pad - (value / peak) * (height - 2 * pad):.1f}"
        for i, value in enumerate(history.mrr)
    )
    return Chart(
        title=f"MRR, {(history.currency or '?').upper()}, last 12 months",
        labels=labels,
        lines=[("mrr", points)],
        top=f"{peak / 100:,.2f}",
    )


def _new_churned_chart(histories: list[MonthlyFigures]) -> Chart:
    months = histories[0].months
    new = [sum(h.new[i] for h in histories) for i in range(len(months))]
    churned = [sum(h.churned[i] for h in histories) for i in range(len(months))]
    peak = max([*new, *churned, 1])
    width, height, pad = 560, 180, 24
    slot = (width - 2 * pad) / len(months)
    bar = slot * 0.38
    bars = []
    for i, (made, lost) in enumerate(zip(new, churned, strict=True)):
        x = pad + i * slot
        for offset, value, css in ((0.1, made, "new"), (0.52, lost, "churned")):
            tall = (value / peak) * (height - 2 * pad)
            bars.append((css, x + slot * offset, height - pad - tall, bar, tall, str(value)))
    return Chart(
        title="New and churned subscriptions, last 12 months",
        labels=[month.strftime("%b") for month in months],
        bars=bars,
        top=str(peak),
    )


async def payments_page(session: AsyncSession, project: Project, mode: Mode) -> PaymentsPage:
    lists = ProjectLists(session)
    filters = ListFilters(
        mode=mode,
        status=None,
        subject_id=None,
        since=None,
        until=None,
        starting_after=None,
        limit=PAGE_SIZE,
    )
    now = datetime.now(UTC)
    since = now - timedelta(days=30)
    stats = await payment_stats(session, [project.id], mode, since, now)
    history = await PaymentFigures(session).monthly([project.id], mode, month_starts(now), now)
    charts = [_mrr_chart(h) for h in history if h.currency is not None]
    if history:
        charts.append(_new_churned_chart(history))
    return PaymentsPage(
        subscriptions=await lists.subscriptions([project.id], filters),
        payments=await lists.payments([project.id], filters),
        figures=stats.total,
        charts=charts,
        since=since,
        until=now,
    )
