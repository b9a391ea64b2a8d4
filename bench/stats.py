"""Payment figures across projects (GET /api/v1/payments/stats) over a large mirror, beside SQL.

For each database (PostgreSQL unless `--databases` says otherwise), freshly migrated
(`billwarden migrate`): `--projects` projects and one console user, made with billwarden's own
CLI (`create-user`, then `projects create --owner` for each). The user is the owner of every
project, not a superuser, so the figures are filtered by the user's list of projects, as for most
console users. Then `--subscriptions` subscriptions and `--payments` payments are written in two
set-based statements: INSERT ... SELECT over `generate_series` on PostgreSQL (followed by VACUUM
ANALYZE, as autovacuum would do), over a recursive CTE on SQLite. Loading is timed and printed but
is not measured against the target.

The rows are spread over the projects (the first has about a third of them with 10), test mode
(85%) and live mode, usd (60%), eur (25%) and gbp, and four prices. Subscriptions: 70% active,
5% trialing (started in the last 14 days), 5% past_due, 17% canceled (ended between their start
and now), 3% incomplete_expired, started over the last two years. Payments: 80% invoices of a
subscription, 20% one-time payments, created over the last two years; 85% succeeded, 3% refunded,
2% partially_refunded (paid_at set, up to 10 minutes after `created`), 6% failed, 2.5% pending
and 1.5% void. Every row is derived from its row number, so each run writes the same data. The
rows are written oldest first (subscriptions by start, payments by creation), as a mirror fills
over time, so a window's rows lie close together in the table; `--shuffled` writes them in an
order unrelated to their times instead, which spreads every window over the whole table.

Two windows: the route's default (the 30 days before now, no parameters) and a year
(`from` = 365 days before now). For each window, `--warm-up` rounds then `--calls` timed rounds,
one call of each of these in turn per round:

- baseline: the figures' SQL and nothing more, through SQLAlchemy in this process on a pooled
  connection: three statements grouped by currency over the user's projects in test mode
  (subscriptions by status; payments paid in the window; payments created in the window that
  failed), the least a database has to do for these figures. On PostgreSQL without asyncpg's
  cache of prepared statements, so every statement is planned for the window it is sent with
  (PostgreSQL may otherwise switch a statement prepared five times to a generic plan);
- billwarden, in-process: billwarden's own `payment_stats` in this process, with billwarden's
  engine settings: its grouped queries per project and currency and the sums, without HTTP,
  authentication or JSON;
- billwarden: `billwarden serve --workers 1 --no-migrate`, GET /api/v1/payments/stats with the
  user's developer token (POST /api/v1/auth/token) as `Authorization: Bearer`.

    .venv/bin/python bench/stats.py [--subscriptions 100000] [--payments 1000000]
        [--projects 10] [--calls 20] [--warm-up 5] [--shuffled] [--explain]
        [--databases postgresql,sqlite] [--postgres-url postgresql+asyncpg://...]

Prints p50, p99 (`max` under 100 calls, where the two are the same) and mean for each line, the
server's CPU time per call, billwarden's p50 as a multiple of the baseline's, and billwarden's p50
beside the target: under one second on PostgreSQL (`met` or `MISSED`; no target on SQLite).
`--explain` also prints PostgreSQL's EXPLAIN (ANALYZE, BUFFERS) of billwarden's two grouped
queries for each window, as billwarden sends them: planned for the values sent (a custom plan) and
for any value (the generic plan PostgreSQL may use from a connection's sixth call on).

Before timing, billwarden's answer for each window (over HTTP and in-process) is compared with the
baseline's figures for the same window: the subscription counts, and per currency MRR, ARR, money
paid, refunded and failed. Every timed answer must be a 200 with the same count of active
subscriptions. A missed target still exits 0; a wrong answer or any answer other than a 200 exits
1; a bench that cannot run (a server or command that fails) exits 2.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import re
import secrets
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from _common import (
    BenchError,
    Database,
    Server,
    add_common_options,
    billwarden_command,
    billwarden_serve,
    chosen_databases,
    free_port,
    machine_facts,
    running_server,
    scratch_database,
    server_environment,
)
from sqlalchemy import Uuid, bindparam, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from billwarden import domains
from billwarden.core.modes import Mode
from billwarden.db.base import UTCDateTime
from billwarden.db.engine import create_engine, create_sessionmaker
from billwarden.payments.schemas import PaymentStatsRead
from billwarden.payments.service import payment_stats

TARGET_MS = 1000.0  # billwarden's p50 on PostgreSQL
USER_EMAIL = "bench-stats@example.com"
PROJECT_SLUG = "bench-stats-{number:02d}"
STATS_PATH = "/api/v1/payments/stats"
DAY = 86400
TWO_YEARS = 730 * DAY
MONEY_TOLERANCE = 0.011  # MRR and ARR are rounded to 2 decimals of a minor unit

# --- the data ------------------------------------------------------------------------------------

# The load's statements are built with f-strings (hence the noqa: S608 on them): only this
# module's constants and the options' integers go into them.
TWO_32 = 2**32
# (price id, amount per invoice, invoices a year); the buckets are percent thresholds
PRICES = (
    ("price_basic_monthly", 900, 12),
    ("price_pro_monthly", 2900, 12),
    ("price_team_monthly", 9900, 12),
    ("price_pro_yearly", 29000, 1),
)
PRICE_BUCKETS = (45, 80, 92)
CURRENCIES = (("usd", 60), ("eur", 85), ("gbp", 100))
LIVE_PERCENT = 15
SUBSCRIPTION_STATUSES = (  # percent thresholds
    ("active", 70),
    ("trialing", 75),
    ("past_due", 80),
    ("canceled", 97),
    ("incomplete_expired", 100),
)
PAYMENT_STATUSES = (  # per mille thresholds
    ("succeeded", 850),
    ("refunded", 880),
    ("partially_refunded", 900),
    ("failed", 960),
    ("pending", 985),
    ("void", 1000),
)
INVOICE_PERCENT = 80


def _multiplier(prime: int) -> int:
    """sqrt(prime)'s fractional part in 32-bit fixed point: k * it mod 2**32 spreads consecutive
    row numbers evenly over [0, 2**32), each prime's sequence independently of the others'."""
    return int(math.sqrt(prime) % 1 * TWO_32)


def draw(row: str, prime: int, scale: int | str) -> str:
    """SQL for an integer in [0, scale) derived from the row number `row`: integer arithmetic
    only, so it is the same on PostgreSQL and SQLite."""
    spread = f"(CAST({row} AS BIGINT) * {_multiplier(prime)} % {TWO_32})"
    return f"({spread} * ({scale}) / {TWO_32})"


def buckets(value: str, results: Sequence[tuple[str, int]]) -> str:
    """CASE over increasing thresholds: the first result whose threshold `value` is below."""
    branches = " ".join(f"WHEN {value} < {limit} THEN {result}" for result, limit in results[:-1])
    return f"CASE {branches} ELSE {results[-1][0]} END"


def between(value: str, low: int, high: int) -> str:
    return f"({value} >= {low} AND {value} < {high})"


def quoted(word: str) -> str:
    return f"'{word}'"


@dataclass(frozen=True)
class Dialect:
    """What differs between the two databases' SQL for the load."""

    kind: str
    now: int  # the load's "now", seconds since the epoch

    def uuid(self) -> str:
        # SQLAlchemy's Uuid keeps 32 hex digits on SQLite
        return "gen_random_uuid()" if self.kind == "postgresql" else "lower(hex(randomblob(16)))"

    def ago(self, seconds: str) -> str:
        """The time `seconds` before now, as billwarden's UTCDateTime stores it."""
        if self.kind == "postgresql":
            return f"to_timestamp({self.now} - ({seconds}))"
        return (
            f"(strftime('%Y-%m-%d %H:%M:%S', {self.now} - ({seconds}), 'unixepoch') || '.000000')"
        )

    def json(self, value: str) -> str:
        return f"CAST({value} AS JSON)" if self.kind == "postgresql" else value

    def with_series(self, count: int) -> tuple[str, str]:
        """(the WITH clause's first entries, the FROM item): rows g = 1..count."""
        if self.kind == "postgresql":
            return "", f"generate_series(1, {count}) AS series(g)"
        cte = f"series(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM series WHERE g < {count}), "  # noqa: S608 (see TWO_32)
        return cte, "series"


class Subscriptions:
    """SQL for subscription number `k`'s attributes; payments use them for their subscription."""

    def __init__(self, k: str, projects: int) -> None:
        self.k = k
        self.projects = projects

    def project_number(self) -> str:
        # w*w skews the projects: the first has about sqrt(1/P) of the rows
        w = draw(self.k, 3, 65536)
        return f"({w} * {w} * {self.projects} / {TWO_32})"

    def mode(self) -> str:
        return f"CASE WHEN {draw(self.k, 2, 100)} < {LIVE_PERCENT} THEN 'live' ELSE 'test' END"

    def status_percent(self) -> str:
        return draw(self.k, 5, 100)

    def status(self) -> str:
        names = [(quoted(name), limit) for name, limit in SUBSCRIPTION_STATUSES]
        return buckets(self.status_percent(), names)

    def is_(self, status: str) -> str:
        limits = dict(SUBSCRIPTION_STATUSES)
        names = [name for name, _ in SUBSCRIPTION_STATUSES]
        position = names.index(status)
        low = 0 if position == 0 else limits[names[position - 1]]
        return between(self.status_percent(), low, limits[status])

    def started_ago(self) -> str:
        """Seconds since it started: in the last 14 days for a trial, else the last two years."""
        return (
            f"CASE WHEN {self.is_('trialing')} THEN {draw(self.k, 13, 14 * DAY)} "
            f"ELSE {self.started_long_ago()} END"
        )

    def started_long_ago(self) -> str:
        return draw(self.k, 13, TWO_YEARS)

    def currency(self) -> str:
        return buckets(draw(self.k, 7, 100), [(quoted(code), limit) for code, limit in CURRENCIES])

    def price(self, values: Sequence[str]) -> str:
        """One of `values` (one per price) for its price."""
        limits = [*PRICE_BUCKETS, 100]
        return buckets(draw(self.k, 11, 100), list(zip(values, limits, strict=True)))


def subscriptions_insert(dialect: Dialect, count: int, projects: int, *, ordered: bool) -> str:
    """`ordered`: written oldest first, as a mirror fills; else by row number, unrelated to time."""
    series_cte, series = dialect.with_series(count)
    row = Subscriptions("s.k", projects)
    started = row.started_ago()
    ended = (
        f"CASE WHEN {row.is_('canceled')} THEN {draw('s.k', 17, row.started_long_ago())} "
        f"WHEN {row.is_('incomplete_expired')} THEN {row.started_long_ago()} END"
    )
    # billed monthly from the start: the current period began (started_ago mod 30 days) ago
    period_ago = f"(({started}) % {30 * DAY})"
    columns = {
        "id": dialect.uuid(),
        "project_id": "numbered.id",
        "mode": row.mode(),
        "stripe_subscription_id": "'sub_bench_' || s.k",
        "stripe_customer_id": "'cus_bench_' || s.k",
        "subject_type": "'user'",
        "subject_id": "'user_' || s.k",
        "status": row.status(),
        "price_ids": dialect.json(row.price([quoted(f'["{price}"]') for price, *_ in PRICES])),
        "purchase_keys": dialect.json("'[]'"),
        "current_period_start": dialect.ago(period_ago),
        "current_period_end": dialect.ago(f"{period_ago} - {30 * DAY}"),
        "cancel_at_period_end": "FALSE",
        "canceled_at": f"CASE WHEN {row.is_('canceled')} THEN {dialect.ago(ended)} END",
        "ended_at": f"CASE WHEN ({ended}) IS NOT NULL THEN {dialect.ago(ended)} END",
        "trial_end": (
            f"CASE WHEN {row.is_('trialing')} THEN {dialect.ago(f'{started} - {14 * DAY}')} END"
        ),
        "currency": row.currency(),
        "annual_amount": row.price([f"{amount * times}.0" for _, amount, times in PRICES]),
        "started_at": dialect.ago(started),
        "past_due_since": (
            f"CASE WHEN {row.is_('past_due')} THEN {dialect.ago(f'({started}) % {14 * DAY}')} END"
        ),
        "last_event_created": dialect.ago(period_ago),
        "synced_at": dialect.ago("0"),
        "created_at": dialect.ago(started),
        "raw": dialect.json("'{}'"),
    }
    return (
        f"WITH RECURSIVE {series_cte}{NUMBERED_PROJECTS} "  # noqa: S608 (see TWO_32)
        f"INSERT INTO billing_subscriptions ({', '.join(columns)}) "
        f"SELECT {', '.join(columns.values())} "
        f"FROM (SELECT g AS k FROM {series}) AS s "
        f"JOIN numbered ON numbered.n = {row.project_number()}"
        + (f" ORDER BY {started} DESC" if ordered else "")
    )


def payments_insert(
    dialect: Dialect, count: int, subscriptions: int, projects: int, *, ordered: bool
) -> str:
    """Payment n belongs to subscription k = 1 + (n - 1) mod subscriptions: its project, mode,
    currency, customer and (for an invoice) price. `ordered`: written oldest first."""
    series_cte, series = dialect.with_series(count)
    subscription = Subscriptions("s.k", projects)
    invoice = f"({draw('s.n', 23, 100)} < {INVOICE_PERCENT})"
    per_mille = draw("s.n", 31, 1000)
    limits = dict(PAYMENT_STATUSES)
    refunded = between(per_mille, limits["succeeded"], limits["refunded"])
    partially = between(per_mille, limits["refunded"], limits["partially_refunded"])
    paid = f"({per_mille} < {limits['partially_refunded']})"
    created_ago = f"(600 + {draw('s.n', 29, TWO_YEARS - 600)})"
    paid_ago = f"{created_ago} - {draw('s.n', 37, 600)}"  # paid up to 10 minutes later
    amount = (
        f"CASE WHEN {invoice} THEN {subscription.price([str(amount) for _, amount, _ in PRICES])} "
        f"ELSE 500 + {draw('s.n', 41, 19500)} END"
    )
    columns = {
        "id": dialect.uuid(),
        "project_id": "numbered.id",
        "mode": subscription.mode(),
        "kind": f"CASE WHEN {invoice} THEN 'invoice' ELSE 'payment' END",
        "stripe_id": f"CASE WHEN {invoice} THEN 'in_bench_' ELSE 'pi_bench_' END || s.n",
        "subject_type": "'user'",
        "subject_id": "'user_' || s.k",
        "stripe_customer_id": "'cus_bench_' || s.k",
        "stripe_subscription_id": f"CASE WHEN {invoice} THEN 'sub_bench_' || s.k END",
        "amount": amount,
        "amount_refunded": (
            f"CASE WHEN {refunded} THEN {amount} WHEN {partially} THEN ({amount}) / 2 ELSE 0 END"
        ),
        "currency": subscription.currency(),
        "status": buckets(per_mille, [(quoted(name), limit) for name, limit in PAYMENT_STATUSES]),
        "paid_at": f"CASE WHEN {paid} THEN {dialect.ago(paid_ago)} END",
        "created": dialect.ago(created_ago),
        "last_event_created": dialect.ago(created_ago),
        "synced_at": dialect.ago("0"),
        "raw": dialect.json("'{}'"),
    }
    return (
        f"WITH RECURSIVE {series_cte}{NUMBERED_PROJECTS} "  # noqa: S608 (see TWO_32)
        f"INSERT INTO payments ({', '.join(columns)}) "
        f"SELECT {', '.join(columns.values())} "
        f"FROM (SELECT g AS n, 1 + (g - 1) % {subscriptions} AS k FROM {series}) AS s "
        f"JOIN numbered ON numbered.n = {subscription.project_number()}"
        + (f" ORDER BY {created_ago} DESC" if ordered else "")
    )


# the bench's projects numbered 0..P-1 by slug
NUMBERED_PROJECTS = (
    "numbered AS (SELECT id, row_number() OVER (ORDER BY slug) - 1 AS n FROM projects "
    "WHERE slug LIKE 'bench-stats-%')"
)


@dataclass(frozen=True)
class Loaded:
    subscriptions: float
    payments: float
    analyze: float | None


async def load_rows(database: Database, args: argparse.Namespace) -> Loaded:
    """Write the subscriptions and payments with two statements; VACUUM ANALYZE on PostgreSQL."""
    dialect = Dialect(database.kind, int(time.time()))
    engine = create_async_engine(database.url, poolclass=NullPool)
    try:
        started = time.perf_counter()
        async with engine.begin() as connection:
            await connection.execute(
                text(
                    subscriptions_insert(
                        dialect, args.subscriptions, args.projects, ordered=not args.shuffled
                    )
                )
            )
        subscriptions_done = time.perf_counter()
        async with engine.begin() as connection:
            statement = payments_insert(
                dialect, args.payments, args.subscriptions, args.projects, ordered=not args.shuffled
            )
            await connection.execute(text(statement))
        payments_done = time.perf_counter()
        if database.kind != "postgresql":
            return Loaded(subscriptions_done - started, payments_done - subscriptions_done, None)
        async with engine.connect() as connection:
            autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
            await autocommit.execute(text("VACUUM ANALYZE billing_subscriptions, payments"))
        return Loaded(
            subscriptions_done - started,
            payments_done - subscriptions_done,
            time.perf_counter() - payments_done,
        )
    finally:
        await engine.dispose()


# --- set-up -------------------------------------------------------------------------------------


async def set_up(environment: dict[str, str], projects: int, password: str) -> list[uuid.UUID]:
    """Migrate; the console user, then the projects it owns, with billwarden's own CLI."""
    await billwarden_command(environment, "migrate")
    await billwarden_command(
        environment, "create-user", "--email", USER_EMAIL, "--password", password
    )
    ids = []
    for number in range(1, projects + 1):
        slug = PROJECT_SLUG.format(number=number)
        created = await billwarden_command(
            environment,
            *("projects", "create", "--name", f"Bench stats {number:02d}", "--slug", slug),
            *("--owner", USER_EMAIL),
        )
        found = re.search(r"\(([0-9a-f-]{36})\)", created)
        if found is None:
            raise BenchError(f"no project id in `billwarden projects create`'s output:\n{created}")
        ids.append(uuid.UUID(found.group(1)))
    return ids


async def developer_token(server: Server, password: str) -> str:
    """The console user's developer JWT, from billwarden's OAuth2 password grant."""
    async with httpx.AsyncClient(base_url=server.url, trust_env=False, timeout=60.0) as client:
        response = await client.post(
            "/api/v1/auth/token", data={"username": USER_EMAIL, "password": password}
        )
    if response.status_code != 200:
        raise BenchError(
            f"POST /api/v1/auth/token answered {response.status_code}: {response.text}"
        )
    token: str = response.json()["access_token"]
    return token


# --- the baseline: the figures' SQL and nothing more ---------------------------------------------

_WINDOW_PARAMETERS = (
    bindparam("projects", expanding=True, type_=Uuid()),
    bindparam("since", type_=UTCDateTime()),
    bindparam("until", type_=UTCDateTime()),
)
BASELINE_SUBSCRIPTIONS = text(
    """
    SELECT currency,
           count(*) FILTER (WHERE status = 'active'),
           count(*) FILTER (WHERE status = 'trialing'),
           count(*) FILTER (WHERE status = 'past_due'),
           coalesce(sum(annual_amount) FILTER (WHERE status IN ('active', 'past_due')), 0),
           count(*) FILTER (WHERE status NOT IN ('incomplete', 'incomplete_expired')
                            AND started_at >= :since AND started_at < :until),
           count(*) FILTER (WHERE status NOT IN ('incomplete', 'incomplete_expired')
                            AND ended_at >= :since AND ended_at < :until),
           count(*) FILTER (WHERE status NOT IN ('incomplete', 'incomplete_expired')
                            AND started_at < :since
                            AND (ended_at IS NULL OR ended_at >= :since))
    FROM billing_subscriptions
    WHERE mode = 'test' AND project_id IN :projects
    GROUP BY currency
    """
).bindparams(*_WINDOW_PARAMETERS)
BASELINE_PAID = text(
    """
    SELECT currency, count(*), sum(amount), sum(amount_refunded)
    FROM payments
    WHERE mode = 'test' AND project_id IN :projects
      AND paid_at >= :since AND paid_at < :until
      AND status IN ('succeeded', 'refunded', 'partially_refunded')
    GROUP BY currency
    """
).bindparams(*_WINDOW_PARAMETERS)
BASELINE_FAILED = text(
    """
    SELECT currency, count(*), sum(amount)
    FROM payments
    WHERE mode = 'test' AND project_id IN :projects
      AND created >= :since AND created < :until AND status = 'failed'
    GROUP BY currency
    """
).bindparams(*_WINDOW_PARAMETERS)


@dataclass
class Money:
    annual: float = 0.0
    paid_count: int = 0
    paid: int = 0
    refunded: int = 0
    failed_count: int = 0
    failed: int = 0


@dataclass
class Expected:
    """The figures as the baseline's SQL computes them, for one window."""

    counts: dict[str, int] = field(default_factory=dict)  # the answer's subscriptions' names
    money: dict[str, Money] = field(default_factory=dict)

    def currency(self, code: str) -> Money:
        return self.money.setdefault(code, Money())


def baseline_url(database: Database) -> str:
    """The database's URL for the baseline: on PostgreSQL without asyncpg's cache of prepared
    statements, so each statement is planned for the window it is sent with."""
    if database.kind != "postgresql":
        return database.url
    url = make_url(database.url).update_query_dict({"prepared_statement_cache_size": "0"})
    return url.render_as_string(hide_password=False)


async def baseline_figures(
    engine: AsyncEngine, projects: list[uuid.UUID], since: datetime, until: datetime
) -> Expected:
    window = {"projects": projects, "since": since, "until": until}
    expected = Expected()
    names = ("active", "trialing", "pastDue", "new", "churned", "liveAtStart")
    expected.counts = dict.fromkeys(names, 0)
    async with engine.connect() as connection:
        for currency, active, trialing, past_due, annual, new, churned, live in (
            await connection.execute(BASELINE_SUBSCRIPTIONS, window)
        ).all():
            for name, value in zip(
                names, (active, trialing, past_due, new, churned, live), strict=True
            ):
                expected.counts[name] += int(value)
            if currency is not None:
                expected.currency(currency).annual += float(annual)
        for currency, count, paid, refunded in await connection.execute(BASELINE_PAID, window):
            money = expected.currency(currency)
            money.paid_count, money.paid, money.refunded = int(count), int(paid), int(refunded)
        for currency, count, failed in (await connection.execute(BASELINE_FAILED, window)).all():
            money = expected.currency(currency)
            money.failed_count, money.failed = int(count), int(failed)
    return expected


def differences(answer: dict[str, Any], expected: Expected) -> list[str]:
    """Where an answer's `total` differs from the baseline's figures (empty: it agrees)."""
    found = []
    counts = answer["total"]["subscriptions"]
    for name, value in expected.counts.items():
        if counts.get(name) != value:
            found.append(f"subscriptions.{name} {counts.get(name)} (direct SQL: {value})")
    answered = {entry["currency"]: entry for entry in answer["total"]["currencies"]}
    for code in sorted(set(answered) | set(expected.money)):
        entry = answered.get(code)
        money = expected.money.get(code, Money())
        wanted: dict[str, float] = {
            "mrr": round(money.annual / 12, 2),
            "arr": round(money.annual, 2),
            "grossPaid": money.paid,
            "refunded": money.refunded,
            "revenue": money.paid - money.refunded,
            "payments": money.paid_count,
            "failedPayments.count": money.failed_count,
            "failedPayments.amount": money.failed,
        }
        for name, figure in wanted.items():
            if entry is None:
                got: Any = None
            elif name.startswith("failedPayments."):
                got = entry["failedPayments"][name.split(".")[1]]
            else:
                got = entry[name]
            if got is None or abs(float(got) - figure) > MONEY_TOLERANCE:
                found.append(f"{code} {name} {got} (direct SQL: {figure})")
    return found


# --- measuring ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    name: str
    days: int
    default: bool  # the route's default window: sent without parameters

    def bounds(self) -> tuple[datetime, datetime]:
        until = datetime.now(UTC)
        return until - timedelta(days=self.days), until

    def parameters(self) -> dict[str, str]:
        if self.default:
            return {}
        return {"from": (datetime.now(UTC) - timedelta(days=self.days)).isoformat()}


WINDOWS = (Window("30 days", 30, default=True), Window("365 days", 365, default=False))
LINES = ("baseline SQL", "billwarden in-process", "billwarden")


@dataclass
class Timings:
    latencies: dict[str, list[float]] = field(default_factory=lambda: {n: [] for n in LINES})
    server_cpu: float | None = 0.0
    wrong: list[str] = field(default_factory=list)

    def p50_ms(self, line: str) -> float:
        return statistics.median(self.latencies[line]) * 1000

    def describe(self, line: str) -> str:
        ordered = sorted(self.latencies[line])
        p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
        # under 100 calls the 99th percentile is the slowest call
        name = "p99" if len(ordered) >= 100 else "max"
        described = (
            f"p50 {self.p50_ms(line):8.1f} ms  {name} {p99 * 1000:8.1f} ms  "
            f"mean {statistics.fmean(ordered) * 1000:8.1f} ms"
        )
        if line == "billwarden" and self.server_cpu is not None:
            described += f"  server CPU {self.server_cpu / len(ordered) * 1000:6.1f} ms/call"
        return described


class Measured:
    """The three ways of computing the figures, for one database."""

    def __init__(
        self,
        baseline: AsyncEngine,
        billwarden: AsyncEngine,
        server: Server,
        client: httpx.AsyncClient,
        projects: list[uuid.UUID],
    ) -> None:
        self.baseline = baseline
        self.sessions = create_sessionmaker(billwarden)
        self.server = server
        self.client = client
        self.projects = projects

    async def from_baseline(self, window: Window) -> Expected:
        return await baseline_figures(self.baseline, self.projects, *window.bounds())

    async def in_process(self, window: Window) -> None:
        async with self.sessions() as session:
            await payment_stats(session, self.projects, Mode.TEST, *window.bounds())

    async def over_http(self, window: Window) -> httpx.Response:
        return await self.client.get(STATS_PATH, params=window.parameters())

    async def check(self, window: Window) -> tuple[Expected, list[str]]:
        """One answer over HTTP and one in-process, each compared with the baseline's figures for
        the window it answered: the expected figures, and what differed."""
        problems = []
        response = await self.over_http(window)
        if response.status_code != 200:
            return Expected(), [
                f"GET {STATS_PATH} answered {response.status_code}: {response.text}"
            ]
        answered = response.json()
        since = datetime.fromisoformat(answered["from"])
        until = datetime.fromisoformat(answered["to"])
        expected = await baseline_figures(self.baseline, self.projects, since, until)
        problems += [f"HTTP: {found}" for found in differences(answered, expected)]
        async with self.sessions() as session:
            stats = await payment_stats(session, self.projects, Mode.TEST, since, until)
        in_process = PaymentStatsRead.of(stats, test_mode=True, since=since, until=until)
        dumped = in_process.model_dump(by_alias=True, mode="json")
        problems += [f"in-process: {found}" for found in differences(dumped, expected)]
        return expected, problems

    async def time_window(self, window: Window, warm_up: int, calls: int, active: int) -> Timings:
        """Rounds of one call of each, in turn; the last `calls` rounds are kept."""
        timings = Timings()
        steps: dict[str, Callable[[], Awaitable[Any]]] = {
            "baseline SQL": lambda: self.from_baseline(window),
            "billwarden in-process": lambda: self.in_process(window),
            "billwarden": lambda: self.over_http(window),
        }
        for round_number in range(warm_up + calls):
            timed = round_number >= warm_up
            for line, step in steps.items():
                cpu_before = self.server.cpu_seconds()
                started = time.perf_counter()
                result = await step()
                elapsed = time.perf_counter() - started
                cpu_after = self.server.cpu_seconds()
                if isinstance(result, httpx.Response):
                    self._check_timed(result, active, timings)
                if not timed:
                    continue
                timings.latencies[line].append(elapsed)
                if line == "billwarden":
                    if cpu_before is None or cpu_after is None or timings.server_cpu is None:
                        timings.server_cpu = None
                    else:
                        timings.server_cpu += cpu_after - cpu_before
        return timings

    @staticmethod
    def _check_timed(response: httpx.Response, active: int, timings: Timings) -> None:
        if response.status_code != 200:
            timings.wrong.append(f"answered {response.status_code}: {response.text[:300]}")
            return
        got = response.json()["total"]["subscriptions"]["active"]
        if got != active:
            timings.wrong.append(f"total active {got}, not {active}")


def _literal(value: Any) -> str:
    """A bound value as an SQL literal (PostgreSQL casts it to the parameter's type)."""
    return "'" + str(value).replace("'", "''") + "'"


async def explain(engine: AsyncEngine, projects: list[uuid.UUID], window: Window) -> list[str]:
    """PostgreSQL's EXPLAIN (ANALYZE, BUFFERS) of billwarden's grouped queries, captured as
    `payment_stats` sends them: the custom plan (planned for the values bound: the first five
    executions of a prepared statement) and the generic plan (planned for any value: what
    PostgreSQL may switch to from the sixth execution of the same prepared statement, which
    asyncpg keeps per connection)."""
    captured: list[tuple[str, Any]] = []

    def capture(*arguments: Any) -> None:
        statement, parameters = arguments[2], arguments[3]
        if "GROUP BY" in statement:
            captured.append((statement, parameters))

    event.listen(engine.sync_engine, "before_cursor_execute", capture)
    try:
        async with create_sessionmaker(engine)() as session:
            await payment_stats(session, projects, Mode.TEST, *window.bounds())
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", capture)
    lines = []
    async with engine.connect() as connection:
        for statement, parameters in captured:
            lines.append(" ".join(statement.split()))
            plan = await connection.exec_driver_sql(
                f"EXPLAIN (ANALYZE, BUFFERS) {statement}", parameters
            )
            lines.append("  custom plan:")
            lines += [f"    {row[0]}" for row in plan]
            await connection.exec_driver_sql("SET plan_cache_mode = force_generic_plan")
            await connection.exec_driver_sql(f"PREPARE bench_stats AS {statement}")
            values = ", ".join(_literal(value) for value in parameters)
            plan = await connection.exec_driver_sql(
                f"EXPLAIN (ANALYZE, BUFFERS) EXECUTE bench_stats({values})"
            )
            lines.append("  generic plan:")
            lines += [f"    {row[0]}" for row in plan]
            await connection.exec_driver_sql("DEALLOCATE bench_stats")
            await connection.exec_driver_sql("RESET plan_cache_mode")
    return lines


# --- report -------------------------------------------------------------------------------------


def target_line(kind: str, p50_ms: float) -> str:
    if kind != "postgresql":
        return f"p50 {p50_ms:.0f} ms (the target is PostgreSQL's)"
    outcome = "met" if p50_ms < TARGET_MS else "MISSED"
    return f"p50 {p50_ms:.0f} ms (target < {TARGET_MS:.0f} ms: {outcome})"


def checked_line(expected: Expected) -> str:
    money = ", ".join(
        f"{code} {figures.paid_count:,} paid / {figures.failed_count:,} failed"
        for code, figures in sorted(expected.money.items())
    )
    return (
        f"{expected.counts['active']:,} active test-mode subscriptions, payments in the window: "
        f"{money}"
    )


async def bench_database(kind: str, args: argparse.Namespace) -> bool:
    """Measure one database and print its lines; whether every answer was right."""
    healthy = True
    async with scratch_database(kind, args.postgres_url, args.workdir) as database:
        environment = server_environment(database.url, secrets.token_urlsafe(48))
        password = secrets.token_urlsafe(18)
        projects = await set_up(environment, args.projects, password)
        loaded = await load_rows(database, args)
        analyzed = "" if loaded.analyze is None else f", VACUUM ANALYZE {loaded.analyze:.1f} s"
        print(
            f"{kind:<10} loaded {args.subscriptions:,} subscriptions in "
            f"{loaded.subscriptions:.1f} s and {args.payments:,} payments in "
            f"{loaded.payments:.1f} s{analyzed} (not part of the target)"
        )
        baseline = create_async_engine(baseline_url(database))
        billwarden = create_engine(database.url)
        try:
            port = free_port()
            async with running_server(
                "billwarden", billwarden_serve(port), environment, port, "/readyz", args.workdir
            ) as server:
                headers = {"Authorization": f"Bearer {await developer_token(server, password)}"}
                async with httpx.AsyncClient(
                    base_url=server.url, headers=headers, trust_env=False, timeout=120.0
                ) as client:
                    measured = Measured(baseline, billwarden, server, client, projects)
                    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
                    print(f"{kind:<10} load average before timing: {load}")
                    for window in WINDOWS:
                        healthy = await bench_window(kind, window, measured, args) and healthy
                    if args.explain and kind == "postgresql":
                        for window in WINDOWS:
                            print(f"{kind:<10} {window.name:<8} EXPLAIN (ANALYZE, BUFFERS):")
                            for line in await explain(billwarden, projects, window):
                                print(f"    {line}")
            for line in server.log_summary():
                print(f"{kind:<10} billwarden logged {line}")
        finally:
            await baseline.dispose()
            await billwarden.dispose()
    return healthy


async def bench_window(
    kind: str, window: Window, measured: Measured, args: argparse.Namespace
) -> bool:
    expected, problems = await measured.check(window)
    label = f"{kind:<10} {window.name:<8}"
    if problems:
        print(f"{label} WRONG ANSWER: " + "; ".join(problems))
    else:
        print(f"{label} answers checked: {checked_line(expected)}, as direct SQL counts them")
    active = expected.counts.get("active", 0)
    if active <= 0:
        problems.append("no active subscription: the figures are trivial")
        print(f"{label} WRONG: no active test-mode subscription in the answer")
    timings = await measured.time_window(window, args.warm_up, args.calls, active)
    for line in LINES:
        print(f"{label} {line:<22} {timings.describe(line)}")
    ratio = timings.p50_ms("billwarden") / max(timings.p50_ms("baseline SQL"), 1e-9)
    print(
        f"{label} billwarden p50 {ratio:.1f}x the baseline's; "
        f"{target_line(kind, timings.p50_ms('billwarden'))}"
    )
    if timings.wrong:
        shown = "; ".join(sorted(set(timings.wrong))[:5])
        print(f"{label} WRONG: {len(timings.wrong)} timed answer(s): {shown}")
    return not problems and not timings.wrong


async def main_async(args: argparse.Namespace) -> int:
    databases = chosen_databases(args.databases)
    postgres = args.postgres_url if "postgresql" in databases else None
    print(await machine_facts(postgres))
    print(
        f"{args.subscriptions:,} subscriptions and {args.payments:,} payments over "
        f"{args.projects} projects, written "
        f"{'in an order unrelated to time' if args.shuffled else 'oldest first'}, "
        "one console user owning them all; per window "
        f"{args.warm_up} warm-up and {args.calls} timed rounds of sequential calls "
        "(baseline SQL, billwarden in-process, billwarden over HTTP, in turn)"
    )
    domains.metadata()  # every domain's models mapped, for billwarden's queries in this process
    healthy = True
    for kind in databases:
        with tempfile.TemporaryDirectory(prefix="billwarden-bench-") as directory:
            args.workdir = Path(directory)
            healthy = await bench_database(kind, args) and healthy
    if not healthy:
        print("FAILED: an answer was wrong or not a 200 (see above)")
    return 0 if healthy else 1


def positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"{value} is not a positive number")
    return number


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscriptions", type=positive, default=100_000)
    parser.add_argument("--payments", type=positive, default=1_000_000)
    parser.add_argument("--projects", type=positive, default=10, help="projects (at most 99)")
    parser.add_argument("--calls", type=positive, default=20, help="timed calls per window")
    parser.add_argument("--warm-up", type=int, default=5, help="untimed calls per window first")
    parser.add_argument(
        "--shuffled",
        action="store_true",
        help="write the rows in an order unrelated to their times (default: oldest first, as a "
        "mirror fills): each window's rows are then spread over the whole table",
    )
    parser.add_argument(
        "--explain",
        action="store_true",
        help="print EXPLAIN (ANALYZE, BUFFERS) of billwarden's queries (PostgreSQL)",
    )
    add_common_options(parser)
    # the 1M-row target is PostgreSQL's: only it by default
    parser.set_defaults(databases="postgresql")
    databases = parser._option_string_actions["--databases"]
    databases.help = "comma-separated: sqlite, postgresql (default: postgresql)"
    args = parser.parse_args()
    if args.projects > 99:
        parser.error("--projects takes at most 99")
    try:
        sys.exit(asyncio.run(main_async(args)))
    except BenchError as error:
        print(f"ERROR: {error}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted: its server was stopped and its database removed", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main()
