"""Stripe's real event stream, duplicated and out of order, ends in Stripe's current state: the
emulator delivers every lifecycle event of many subscriptions to a served billwarden, and
`billwarden worker` processes apply them to the mirror and the entitlement snapshots. Events of
one second delivered in either order, one event delivered 20 times at once, and two workers
applying two subscriptions of one subject at the same moment end there too."""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from billwarden.entitlements.models import Entitlement
from billwarden.subscriptions.models import Customer, Subscription
from billwarden.webhooks.models import InboxStatus
from tests.checkout.factories import catalog_document
from tests.checkout.loop import Loop, billing_loop
from tests.conftest import Scratch
from tests.webhooks.stream import (
    APPLIED_WITHIN,
    EmulatorAccount,
    active_subscription,
    disable_deliveries,
    emulator_account,
    inbox,
    post_event,
    running_workers,
    split_deliveries,
    updated_events,
    wait_processed,
    wait_stored,
    wait_until_applied,
    worker_env,
)

# the stream: 75 subjects buy a membership, every 3rd an api plan too: 100 subscriptions
SUBJECTS = 75
API_BUYER_EVERY = 3
CLOCK_SUBJECT_EVERY = 5  # their customers are on the shared test clock, renewed at the end
DECLINED_RENEWAL_EVERY = 3  # of those, every 3rd has its card declined before the renewal
CONCURRENT_CHECKOUTS = 4
CANCELED_SHARE = 0.15  # canceled outright after the round of changes
RENEWAL_SECONDS = 32 * 86400
SEED = 7
WORKERS = 2
MIN_SUBSCRIPTIONS = 100
MIN_EVENTS = 1000
STREAM_FAULTS = {"duplicate": True, "shuffle_window": 1.0, "shuffle_seed": SEED}
QUIESCENCE_SECONDS = 120.0
# one webhook endpoint per lane, so deliveries go out side by side
DELIVERY_LANES = (
    (
        "checkout.session.completed",
        "customer.subscription.created",
        "customer.subscription.updated",
        "customer.subscription.deleted",
    ),
    (
        "invoice.created",
        "invoice.finalized",
        "invoice.paid",
        "invoice.payment_succeeded",
        "invoice.payment_failed",
    ),
    (
        "customer.created",
        "customer.updated",
        "payment_intent.created",
        "payment_intent.succeeded",
        "payment_intent.payment_failed",
        "charge.succeeded",
        "charge.failed",
        "test_helpers.test_clock.created",
        "test_helpers.test_clock.advancing",
        "test_helpers.test_clock.ready",
    ),
)

# deliveries posted by the tests themselves
CONCURRENT_DELIVERIES = 20
SAME_SECOND_ATTEMPTS = 5

GRANTING = ("active", "trialing")
MEMBERSHIP_KEYS = ("premium_monthly", "premium_yearly", "enterprise")


@dataclass
class Sold:
    """A subscription the stream bought, and what the stream last did to it."""

    subject: str
    subscription_id: str
    item_id: str
    purchase_key: str
    price: str
    cancel_at_period_end: bool = False


# --- what Stripe's final state should give ----------------------------------------------------


def price_ids(subscription: dict[str, Any]) -> list[str]:
    return [item["price"]["id"] for item in subscription["items"]["data"]]


def period_end(subscription: dict[str, Any]) -> datetime:
    end = max(item["current_period_end"] for item in subscription["items"]["data"])
    return datetime.fromtimestamp(end, UTC)


class Catalog:
    """The loop's catalog (`tests/checkout/factories.py`) read as its owner reads it."""

    def __init__(self, prices: dict[str, str]) -> None:
        document = catalog_document(prices)
        self.plans: dict[str, dict[str, Any]] = document["plans"]
        self.order = list(self.plans)
        self.primary = next(
            family for family, spec in document["families"].items() if spec.get("primary")
        )
        self.free_features = sorted(document["free"]["features"])
        self.key_of_price = {
            price: key for key, plan in self.plans.items() for price in plan["prices"].values()
        }

    def keys(self, subscription: dict[str, Any]) -> list[str]:
        return [self.key_of_price[p] for p in price_ids(subscription) if p in self.key_of_price]

    def grants(self, subscription: dict[str, Any]) -> bool:
        return subscription["status"] in GRANTING and bool(self.keys(subscription))

    def in_primary(self, subscription: dict[str, Any]) -> bool:
        return any(self.plans[key]["family"] == self.primary for key in self.keys(subscription))

    def expected(self, subscriptions: list[dict[str, Any]]) -> dict[str, Any]:
        """The entitlement of a subject with these Stripe subscriptions: access from the active
        or trialing ones with a catalog price, the plan label from the primary family's plan,
        and the rest from the subscription that speaks for the subject (a granting one first,
        then one of the primary family)."""

        def rank(subscription: dict[str, Any]) -> tuple[bool, bool]:
            return (not self.grants(subscription), not self.in_primary(subscription))

        ranked = sorted(subscriptions, key=rank)
        # the stream gives a subject one subscription per family: one of them always speaks
        assert len(ranked) == 1 or rank(ranked[0]) != rank(ranked[1])
        speaker = ranked[0]
        granting = [s for s in subscriptions if self.grants(s)]
        keys = sorted({key for s in granting for key in self.keys(s)}, key=self.order.index)
        leading = [key for key in keys if self.plans[key]["family"] == self.primary] or keys
        features = sorted({f for key in keys for f in self.plans[key].get("features", [])})
        return {
            "status": speaker["status"].upper(),
            "plan": self.plans[leading[0]]["entitlement"] if granting else "FREE",
            "hasPremiumAccess": bool(granting),
            "features": features if granting else self.free_features,
            "stripeSubscriptionId": speaker["id"],
            "cancelAtPeriodEnd": speaker["cancel_at_period_end"],
            "currentPeriodEnd": period_end(speaker),
        }


def entitled(answer: dict[str, Any]) -> dict[str, Any]:
    """What `GET /api/v1/entitlements/me` says, in `Catalog.expected`'s terms."""
    entitlement = answer["entitlement"]
    end = entitlement["currentPeriodEnd"]
    return {
        "status": entitlement["status"],
        "plan": entitlement["plan"],
        "hasPremiumAccess": answer["hasPremiumAccess"],
        "features": answer["features"],
        "stripeSubscriptionId": entitlement["stripeSubscriptionId"],
        "cancelAtPeriodEnd": entitlement["cancelAtPeriodEnd"],
        "currentPeriodEnd": datetime.fromisoformat(end) if end else None,
    }


def mirrored(row: Subscription) -> dict[str, Any]:
    return {
        "status": row.status,
        "price_ids": row.price_ids,
        "cancel_at_period_end": row.cancel_at_period_end,
        "current_period_end": row.current_period_end,
        "subject": row.subject_id,
        "customer": row.stripe_customer_id,
    }


def in_stripe(subscription: dict[str, Any]) -> dict[str, Any]:
    return {
        "status": subscription["status"],
        "price_ids": price_ids(subscription),
        "cancel_at_period_end": subscription["cancel_at_period_end"],
        "current_period_end": period_end(subscription),
        "subject": subscription["metadata"].get("bw_subject_id"),
        "customer": subscription["customer"],
    }


async def mirror_rows(loop: Loop) -> dict[str, Subscription]:
    async with loop.scratch.session() as session:
        rows = (
            await session.scalars(
                select(Subscription).where(Subscription.project_id == loop.project.id)
            )
        ).all()
    return {row.stripe_subscription_id: row for row in rows}


async def mirror_customers(loop: Loop) -> list[Customer]:
    async with loop.scratch.session() as session:
        rows = await session.scalars(select(Customer).where(Customer.project_id == loop.project.id))
        return list(rows.all())


def retrieve(loop: Loop, subscription_id: str) -> dict[str, Any]:
    subscription: dict[str, Any] = loop.stripe.v1.subscriptions.retrieve(subscription_id).to_dict()
    return subscription


# --- making the stream -----------------------------------------------------------------------


async def buy(
    loop: Loop, account: EmulatorAccount, subject: str, purchase_key: str, clock: str | None
) -> Sold:
    """A real checkout of `purchase_key` by `subject`, paid; its customer is put on `clock`
    first when given."""
    token = loop.token(subject, email=f"{subject}@example.test")
    session_id = await loop.checkout(token, purchaseKey=purchase_key)
    if clock is not None:
        session = await account.get(f"/v1/checkout/sessions/{session_id}")
        await account.post(
            f"/_emulator/customers/{session['customer']}/test_clock", test_clock=clock
        )
    paid = await account.pay(session_id)
    subscription = await account.get(f"/v1/subscriptions/{paid['subscription']}")
    (item,) = subscription["items"]["data"]
    return Sold(subject, subscription["id"], item["id"], purchase_key, item["price"]["id"])


def change(loop: Loop, sold: Sold, rng: random.Random) -> None:
    """One lifecycle change in Stripe: metadata, cancel at period end on or off, or (for a
    membership) a move to another of the family's prices."""
    choices = ["metadata", "cancel_at_period_end"]
    if sold.purchase_key in MEMBERSHIP_KEYS:
        choices += ["plan", "plan"]
    choice = rng.choice(choices)
    if choice == "metadata":
        loop.stripe.v1.subscriptions.update(sold.subscription_id, {"metadata": {"note": "x"}})
    elif choice == "cancel_at_period_end":
        sold.cancel_at_period_end = not sold.cancel_at_period_end
        loop.stripe.v1.subscriptions.update(
            sold.subscription_id, {"cancel_at_period_end": sold.cancel_at_period_end}
        )
    else:
        prices = [loop.prices[key] for key in MEMBERSHIP_KEYS]
        sold.price = rng.choice([price for price in prices if price != sold.price])
        loop.stripe.v1.subscriptions.update(
            sold.subscription_id,
            {
                "items": [{"id": sold.item_id, "price": sold.price}],
                "proration_behavior": rng.choice(["none", "create_prorations", "always_invoice"]),
            },
        )


async def make_stream(loop: Loop, account: EmulatorAccount) -> list[Sold]:
    """Checkouts by every subject, a round of lifecycle changes over every subscription,
    cancellations, then the renewal of the subscriptions on the test clock (some declined)."""
    rng = random.Random(SEED)
    clock = loop.clock()
    purchases = []
    for number in range(SUBJECTS):
        subject = f"subject{number:03d}"
        on_clock = clock if number % CLOCK_SUBJECT_EVERY == 0 else None
        purchases.append((subject, rng.choice(["premium_monthly", "premium_yearly"]), on_clock))
        if number % API_BUYER_EVERY == 0:
            purchases.append((subject, "api_pro", None))
    sold: list[Sold] = []
    for start in range(0, len(purchases), CONCURRENT_CHECKOUTS):
        batch = purchases[start : start + CONCURRENT_CHECKOUTS]
        # one subject's purchases in one batch run in order: its customer is made once
        by_subject: dict[str, list[tuple[str, str, str | None]]] = {}
        for purchase in batch:
            by_subject.setdefault(purchase[0], []).append(purchase)

        async def buy_all(mine: list[tuple[str, str, str | None]]) -> list[Sold]:
            return [await buy(loop, account, *purchase) for purchase in mine]

        for bought in await asyncio.gather(*(buy_all(mine) for mine in by_subject.values())):
            sold.extend(bought)
    for item in sold:
        change(loop, item, rng)
    for item in rng.sample(sold, round(len(sold) * CANCELED_SHARE)):
        loop.stripe.v1.subscriptions.cancel(item.subscription_id)
    declined = range(0, SUBJECTS, CLOCK_SUBJECT_EVERY * DECLINED_RENEWAL_EVERY)
    for subject in {f"subject{number:03d}" for number in declined}:
        first = next(item for item in sold if item.subject == subject)
        customer = retrieve(loop, first.subscription_id)["customer"]
        await account.post(f"/_emulator/customers/{customer}/card", outcome="declined")
    await account.post(f"/_emulator/test_clocks/{clock}/advance", seconds=RENEWAL_SECONDS)
    return sold


class TestDuplicatedShuffledStream:
    # two worker processes share one database: PostgreSQL's claims skip locked rows
    @pytest.mark.parametrize("backend", ["postgresql"], indirect=True, scope="session")
    async def test_every_mirror_row_and_snapshot_ends_equal_to_stripe(
        self, scratch: Scratch, scratch_database: str, emulator_url: str, tmp_path: Path
    ) -> None:
        started = time.monotonic()
        env = worker_env(scratch_database, emulator_url)
        async with (
            billing_loop(scratch, emulator_url, embedded_worker=False) as loop,
            emulator_account(loop) as account,
        ):
            before = await account.event_ids()  # the catalog's, made before any endpoint
            await split_deliveries(loop, DELIVERY_LANES)
            await account.post("/_emulator/faults", webhooks=STREAM_FAULTS)
            with running_workers(WORKERS, env, tmp_path) as workers:
                sold = await make_stream(loop, account)
                made = time.monotonic() - started
                events = [e for e in await account.events() if e["id"] not in before]
                settled = await wait_until_applied(
                    loop,
                    {event["id"] for event in events},
                    within=QUIESCENCE_SECONDS,
                    workers=workers,
                )
                exits = [worker.stop() for worker in workers]
            attempts = await account.deliveries()
            rows = await mirror_rows(loop)
            customers = await mirror_customers(loop)
            stripe_state = {s.subscription_id: retrieve(loop, s.subscription_id) for s in sold}
            stripe_customers = {
                c.stripe_customer_id: loop.stripe.v1.customers.retrieve(c.stripe_customer_id)
                for c in customers
            }
            answers = {
                subject: await loop.entitlement(loop.token(subject))
                for subject in sorted({item.subject for item in sold})
            }

        types = Counter(event["type"] for event in events)
        statuses = Counter(subscription["status"] for subscription in stripe_state.values())
        print(
            f"\n{len(sold)} subscriptions of {len(answers)} subjects, {len(events)} events, "
            f"{len(attempts)} delivery attempts ({sum(a['duplicate'] for a in attempts)} "
            f"duplicates, {sum(not a['success'] for a in attempts)} failed); inbox "
            f"{settled.counts()}; Stripe's final statuses {dict(statuses)}; {WORKERS} workers; "
            f"made in {made:.1f} s, all applied {settled.waited:.1f} s later"
        )
        assert len(sold) >= MIN_SUBSCRIPTIONS
        assert len(events) >= MIN_EVENTS
        assert set(types) <= {t for lane in DELIVERY_LANES for t in lane}, types
        assert {"active", "canceled", "past_due"} <= set(statuses)
        assert sum(attempt["duplicate"] for attempt in attempts) >= len(events)
        assert exits == [0] * WORKERS

        assert rows.keys() == stripe_state.keys()
        wrong_rows = {
            subscription_id: (mirrored(rows[subscription_id]), in_stripe(subscription))
            for subscription_id, subscription in stripe_state.items()
            if mirrored(rows[subscription_id]) != in_stripe(subscription)
        }
        assert not wrong_rows, f"{len(wrong_rows)} mirror rows differ: {wrong_rows}"

        catalog = Catalog(loop.prices)
        wrong_entitlements = {}
        for subject, answer in answers.items():
            expected = catalog.expected(
                [stripe_state[s.subscription_id] for s in sold if s.subject == subject]
            )
            if entitled(answer) != expected:
                wrong_entitlements[subject] = {"billwarden": entitled(answer), "stripe": expected}
        assert not wrong_entitlements, (
            f"{len(wrong_entitlements)} of {len(answers)} entitlements differ: {wrong_entitlements}"
        )

        assert len(customers) == len(answers)
        for customer in customers:
            assert customer.email == stripe_customers[customer.stripe_customer_id].email
            assert customer.deleted is False


# --- deliveries posted by the test -----------------------------------------------------------


async def quiet(loop: Loop, account: EmulatorAccount, before: set[str]) -> None:
    """Once every event emitted since `before` is applied, stop the emulator's deliveries."""
    emitted = await account.event_ids() - before
    await wait_until_applied(loop, emitted, within=APPLIED_WITHIN)
    await disable_deliveries(loop)


async def two_updates_in_one_second(
    loop: Loop, account: EmulatorAccount, subscription_id: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Two quick updates whose events share a `created` second, (older, newer): the first moves
    the plan and schedules the cancellation, the second takes the cancellation back, so the
    older event's object disagrees with Stripe's current state."""
    (item,) = retrieve(loop, subscription_id)["items"]["data"]
    for attempt in range(SAME_SECOND_ATTEMPTS):
        loop.stripe.v1.subscriptions.update(
            subscription_id,
            {
                "items": [{"id": item["id"], "price": loop.prices["premium_yearly"]}],
                "proration_behavior": "none",
                "cancel_at_period_end": True,
            },
        )
        loop.stripe.v1.subscriptions.update(
            subscription_id, {"cancel_at_period_end": False, "metadata": {"try": str(attempt)}}
        )
        newer, older = (await updated_events(account, subscription_id))[:2]
        if older["created"] == newer["created"]:
            assert older["data"]["object"]["cancel_at_period_end"] is True
            assert newer["data"]["object"]["cancel_at_period_end"] is False
            return older, newer
    raise AssertionError(f"no two updates within one second in {SAME_SECOND_ATTEMPTS} tries")


class TestSameSecondEvents:
    @pytest.mark.parametrize("order", ["as_emitted", "reversed"])
    async def test_either_order_ends_in_stripes_current_state(
        self, scratch: Scratch, emulator_url: str, order: str
    ) -> None:
        async with (
            billing_loop(scratch, emulator_url) as loop,
            emulator_account(loop) as account,
        ):
            before = await account.event_ids()
            subscription_id = await active_subscription(loop, account, "sam")
            await quiet(loop, account, before)
            older, newer = await two_updates_in_one_second(loop, account, subscription_id)
            untouched = mirrored((await mirror_rows(loop))[subscription_id])
            delivered = [older, newer] if order == "as_emitted" else [newer, older]
            async with httpx.AsyncClient(timeout=30) as http:
                for event in delivered:
                    # the event as Stripe keeps it (`GET /v1/events/{id}`), signed here
                    stored = await post_event(loop, http, await account.event(event["id"]))
                    assert stored.status_code == 200, stored.text
            await wait_processed(loop, {older["id"], newer["id"]})
            row = (await mirror_rows(loop))[subscription_id]
            current = retrieve(loop, subscription_id)
            answer = await loop.entitlement(loop.token("sam"))
            sent_by_the_emulator = [
                a for a in await account.deliveries() if a["event_id"] in {older["id"], newer["id"]}
            ]

        assert sent_by_the_emulator == []
        assert untouched["price_ids"] == [loop.prices["premium_monthly"]]
        assert current["cancel_at_period_end"] is False
        assert price_ids(current) == [loop.prices["premium_yearly"]]  # moved from monthly
        assert mirrored(row) == in_stripe(current)
        assert row.raw["metadata"] == current["metadata"]
        assert entitled(answer) == Catalog(loop.prices).expected([current])


class TestConcurrentDuplicates:
    async def test_one_event_delivered_20_times_at_once_is_applied_once(
        self, scratch: Scratch, emulator_url: str
    ) -> None:
        async with (
            billing_loop(scratch, emulator_url) as loop,
            emulator_account(loop) as account,
        ):
            before = await account.event_ids()
            subscription_id = await active_subscription(loop, account, "dup")
            await quiet(loop, account, before)
            loop.stripe.v1.subscriptions.update(subscription_id, {"cancel_at_period_end": True})
            event = (await updated_events(account, subscription_id))[0]
            async with httpx.AsyncClient(timeout=30) as http:
                answers = await asyncio.gather(
                    *(post_event(loop, http, event) for _ in range(CONCURRENT_DELIVERIES))
                )
            await wait_processed(loop, {event["id"]})
            rows = [row for row in (await inbox(loop)).values() if row.event_id == event["id"]]
            entitlement = await loop.entitlement(loop.token("dup"))

        assert [answer.status_code for answer in answers] == [200] * CONCURRENT_DELIVERIES
        (row,) = rows
        assert (row.status, row.attempts, row.last_error) == (InboxStatus.PROCESSED, 1, None)
        assert entitlement["entitlement"]["lastEventId"] == event["id"]
        assert entitlement["entitlement"]["cancelAtPeriodEnd"] is True
        assert entitlement["hasPremiumAccess"] is True


# --- two workers on one subject at the same time ----------------------------------------------


async def hold_snapshot(connection: AsyncConnection, loop: Loop, subject: str) -> None:
    """Lock the subject's entitlement snapshot row in `connection`'s transaction: whoever writes
    it waits, so applications under way at the same time stay under way together."""
    held = await connection.execute(
        select(Entitlement.id)
        .where(Entitlement.project_id == loop.project.id, Entitlement.subject_id == subject)
        .with_for_update()
    )
    assert held.one_or_none() is not None


async def wait_blocked(loop: Loop, count: int) -> None:
    """Until `count` sessions of the loop's database wait for a lock."""
    deadline = time.monotonic() + APPLIED_WITHIN
    while True:
        # a new transaction each time: pg_stat_activity is read once per transaction
        async with loop.scratch.engine.connect() as connection:
            waiting = await connection.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock'"
                )
            )
        if waiting is not None and waiting >= count:
            return
        assert time.monotonic() < deadline, f"{waiting} sessions wait for a lock"
        await asyncio.sleep(0.05)


class TestTwoWorkersOneSubject:
    @pytest.mark.parametrize("backend", ["postgresql"], indirect=True, scope="session")
    async def test_both_subscriptions_canceled_at_once_leave_no_access(
        self, scratch: Scratch, scratch_database: str, emulator_url: str, tmp_path: Path
    ) -> None:
        # one event per claim, so each worker applies one cancellation, side by side
        env = worker_env(scratch_database, emulator_url, worker_batch_size="1")
        async with (
            billing_loop(scratch, emulator_url, embedded_worker=False) as loop,
            emulator_account(loop) as account,
        ):
            before = await account.event_ids()
            token = loop.token("two", email="two@example.test")
            bought = [
                await buy(loop, account, "two", purchase_key, None)
                for purchase_key in ("premium_monthly", "api_pro")
            ]
            emitted = await account.event_ids() - before
            with running_workers(1, env, tmp_path) as workers:
                await wait_until_applied(loop, emitted, within=APPLIED_WITHIN, workers=workers)
            both = await loop.entitlement(token)
            for item in bought:
                loop.stripe.v1.subscriptions.cancel(item.subscription_id)
            cancellations = await account.event_ids() - before - emitted
            await wait_stored(loop, cancellations)
            async with loop.scratch.engine.connect() as holder:
                await hold_snapshot(holder, loop, "two")
                with running_workers(WORKERS, env, tmp_path) as workers:
                    await wait_blocked(loop, WORKERS)
                    await holder.rollback()
                    await wait_until_applied(
                        loop, cancellations, within=APPLIED_WITHIN, workers=workers
                    )
            answer = await loop.entitlement(token)
            current = [retrieve(loop, item.subscription_id) for item in bought]

        assert both["plans"] == ["premium_monthly", "api_pro"]
        assert [subscription["status"] for subscription in current] == ["canceled", "canceled"]
        expected = Catalog(loop.prices).expected(current)
        assert expected["hasPremiumAccess"] is False
        assert entitled(answer) == expected
