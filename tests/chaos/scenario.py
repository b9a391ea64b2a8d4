"""What the chaos run's customers and their Stripe account do: subjects check out through
billwarden (every other one buys an api plan too), their customers on test clocks; then rounds
of lifecycle changes, some through billwarden's self-service, some made in Stripe directly (as
the dashboard or the portal would: plans, cancel flags, metadata, emails, refunds); declined
cards; renewals by advancing the clocks; cancellations now and at period end, and subjects
buying again. `hook` runs the mid-run chaos at set points. The seed fixes the choices, not their
order: concurrent subjects draw from one generator in whatever order they run."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.chaos.clients import Billwarden, Emulator

MEMBERSHIP = ("premium_monthly", "premium_yearly", "premium_plus")  # self-serve
STRIPE_ONLY_MEMBERSHIP = ("enterprise",)  # sold by hand: changed in Stripe only
API_PLAN = "api_pro"
API_BUYER_EVERY = 2
RENEWAL_SECONDS = 32 * 86400
DECLINED_SHARE = 0.15
CANCELED_NOW_SHARE = 0.08
MAX_EXTRA_ROUNDS = 8
ENDED = ("canceled", "incomplete_expired")
REBUY_PATIENCE_SECONDS = 120.0
# self-service's answers when the change does not apply to the subscription as it is now: no
# live subscription (404), already on the plan or ended (409)
SELF_SERVICE_ANSWERS = (404, 409)


@dataclass
class Purchase:
    subject: str
    purchase_key: str
    subscription_id: str
    item_id: str
    customer_id: str


@dataclass
class Plan:
    """The run's sizes and what it did, for the figures."""

    subscriptions: int
    min_events: int
    concurrency: int
    seed: int
    subjects: int = 0
    clocks: list[str] = field(default_factory=list)
    purchases: list[Purchase] = field(default_factory=list)
    actions: dict[str, int] = field(default_factory=dict)
    rounds: int = 0

    def count(self, action: str) -> None:
        self.actions[action] = self.actions.get(action, 0) + 1


def subjects_for(subscriptions: int) -> int:
    """The fewest subjects whose purchases (one membership each, an api plan every other one)
    make at least `subscriptions`."""
    subjects = 1
    while subjects + (subjects + API_BUYER_EVERY - 1) // API_BUYER_EVERY < subscriptions:
        subjects += 1
    return subjects


Hook = Callable[[str], Awaitable[None]]


class Scenario:
    def __init__(
        self,
        plan: Plan,
        billwarden: Billwarden,
        emulator: Emulator,
        prices: dict[str, str],
        hook: Hook,
        count_events: Callable[[], Awaitable[int]],
        note: Callable[[str], None] = lambda _: None,
    ) -> None:
        self.plan = plan
        self.billwarden = billwarden
        self.emulator = emulator
        self.prices = prices
        self.hook = hook
        self.count_events = count_events
        self.note = note
        self.rng = random.Random(plan.seed)
        self.gate = asyncio.Semaphore(plan.concurrency)
        self.customers: dict[str, str] = {}  # subject -> customer id

    async def _each(
        self, items: Sequence[Any], action: Callable[[Any], Awaitable[None]], hook_at: str | None
    ) -> None:
        """`action` on every item, `concurrency` at a time; the hook `hook_at` once half of
        them are done, while the rest go on."""
        half = max(1, len(items) // 2)
        done = 0

        async def one(item: Any) -> None:
            nonlocal done
            async with self.gate:
                await action(item)
            done += 1
            if done == half and hook_at is not None:
                await self.hook(hook_at)

        await asyncio.gather(*(one(item) for item in items))

    # --- the run -----------------------------------------------------------------------------

    async def run(self) -> None:
        plan = self.plan
        plan.subjects = subjects_for(plan.subscriptions)
        clock_count = max(2, plan.subjects // 40)
        now = int(time.time())
        for _ in range(clock_count):
            clock = await self.emulator.write(
                lambda options: self.emulator.stripe.v1.test_helpers.test_clocks.create_async(
                    {"frozen_time": now}, options
                )
            )
            plan.clocks.append(clock.id)
        subjects = [f"subject{number:04d}" for number in range(plan.subjects)]
        await self._each(subjects, self.buy_all, hook_at="checkouts")
        self.note(f"{len(plan.purchases)} checkouts of {plan.subjects} subjects done")
        await self.changes(plan.purchases, hook_at="changes")
        self.note("a change to every subscription done")
        await self.decline_some()
        await self.renew(hook_at="renewals")
        self.note(f"{len(plan.clocks)} test clocks advanced a period")
        await self.cancel_some()
        await self.renew(hook_at=None)
        self.note("cancellations done, clocks advanced a period again")
        while (events := await self.count_events()) < plan.min_events:
            if plan.rounds >= MAX_EXTRA_ROUNDS:
                break
            plan.rounds += 1
            half = self.rng.sample(plan.purchases, len(plan.purchases) // 2)
            await self.changes(half, hook_at=None)
            await self.renew(hook_at=None)
            self.note(f"{events} events before an extra round of changes and renewals")

    # --- checkouts ---------------------------------------------------------------------------

    async def buy_all(self, subject: str) -> None:
        number = int(subject.removeprefix("subject"))
        membership = self.rng.choice(MEMBERSHIP)
        await self.buy(subject, membership, self.plan.clocks[number % len(self.plan.clocks)])
        if number % API_BUYER_EVERY == 0:
            await self.buy(subject, API_PLAN, None)

    async def buy(
        self, subject: str, purchase_key: str, clock: str | None, *, again: bool = False
    ) -> None:
        """Through billwarden: its customer (put on `clock` before anything runs on it), a
        checkout session, then paid on Stripe's hosted page (the emulator's helper)."""
        if subject not in self.customers:
            answer = await self.billwarden.call("POST", "/create-customer", subject, {})
            customer_id: str = answer.json()["customerId"]
            self.customers[subject] = customer_id
            if clock is not None:
                await self.emulator.helper(
                    f"/_emulator/customers/{customer_id}/test_clock", test_clock=clock
                )
        answer = await self.checkout(subject, purchase_key, again=again)
        if answer is None:
            self.plan.count("bought_again_refused")
            return
        paid = await self.emulator.helper(
            f"/_emulator/checkout/sessions/{answer.json()['sessionId']}/complete"
        )
        subscription = await self.emulator.get(f"/v1/subscriptions/{paid['subscription']}")
        (item,) = subscription["items"]["data"]
        self.plan.purchases.append(
            Purchase(subject, purchase_key, subscription["id"], item["id"], paid["customer"])
        )
        self.plan.count("bought_again" if again else "checkout")

    async def checkout(
        self, subject: str, purchase_key: str, *, again: bool
    ) -> httpx.Response | None:
        """A checkout session; after a cancellation made in Stripe, billwarden refuses a new
        membership (409) until the cancellation's webhook is applied: the user tries again a
        little later, as they would (None when still refused after REBUY_PATIENCE_SECONDS)."""
        deadline = time.monotonic() + REBUY_PATIENCE_SECONDS
        while True:
            answer = await self.billwarden.call(
                "POST",
                "/checkout-session",
                subject,
                {"purchaseKey": purchase_key},
                answers=(409,) if again else (),
            )
            if answer.status_code != 409:
                return answer
            if answer.json()["code"] != "ALREADY_SUBSCRIBED" or time.monotonic() > deadline:
                return None
            await asyncio.sleep(1.0)

    # --- lifecycle changes -------------------------------------------------------------------

    async def changes(self, purchases: Sequence[Purchase], hook_at: str | None) -> None:
        # one change per subject at a time: two of one subject at once race in the tenant app too
        by_subject: dict[str, list[Purchase]] = {}
        for purchase in purchases:
            by_subject.setdefault(purchase.subject, []).append(purchase)

        async def change_all(mine: list[Purchase]) -> None:
            for purchase in mine:
                await self.change(purchase)

        await self._each(list(by_subject.values()), change_all, hook_at)

    async def change(self, purchase: Purchase) -> None:
        membership = purchase.purchase_key != API_PLAN
        choices = ["stripe_metadata", "stripe_cancel_at_period_end", "stripe_customer_email"]
        choices += ["stripe_refund"]
        if membership:
            choices += ["self_plan", "self_plan", "self_cancel_at_period_end", "self_resume"]
            choices += ["stripe_plan"]
        choice = self.rng.choice(choices)
        subject, subscription_id = purchase.subject, purchase.subscription_id
        subscriptions = self.emulator.stripe.v1.subscriptions
        if choice in ("stripe_metadata", "stripe_cancel_at_period_end", "stripe_plan"):
            current = await self.emulator.get(f"/v1/subscriptions/{subscription_id}")
            if current["status"] in ENDED:  # Stripe refuses to change an ended subscription
                choice = "stripe_customer_email"
        self.plan.count(choice)
        if choice == "self_plan":
            target = self.rng.choice(MEMBERSHIP)
            proration = self.rng.choice(["none", "create_prorations", "always_invoice"])
            await self.billwarden.call(
                "POST",
                "/update-subscription",
                subject,
                {"purchaseKey": target, "prorationBehavior": proration},
                answers=SELF_SERVICE_ANSWERS,
            )
        elif choice == "self_cancel_at_period_end":
            await self.billwarden.call(
                "POST",
                "/cancel-subscription",
                subject,
                {"atPeriodEnd": True},
                answers=SELF_SERVICE_ANSWERS,
            )
        elif choice == "self_resume":
            await self.billwarden.call(
                "POST", "/resume-subscription", subject, {}, answers=SELF_SERVICE_ANSWERS
            )
        elif choice == "stripe_metadata":
            note = {"metadata": {"note": f"round{self.plan.rounds}"}}
            await self.emulator.write(
                lambda options: subscriptions.update_async(subscription_id, note, options)
            )
        elif choice == "stripe_refund":
            await self.refund(subscription_id)
        elif choice == "stripe_customer_email":
            # the customer changes their email in the portal: customer.updated
            email = {"email": f"{subject}+{self.rng.randrange(1000)}@example.test"}
            customer_id = purchase.customer_id
            await self.emulator.write(
                lambda options: self.emulator.stripe.v1.customers.update_async(
                    customer_id, email, options
                )
            )
        elif choice == "stripe_cancel_at_period_end":
            flag = {"cancel_at_period_end": self.rng.random() < 0.5}
            await self.emulator.write(
                lambda options: subscriptions.update_async(subscription_id, flag, options)
            )
        else:  # stripe_plan: any membership price, the hand-sold one included
            price = self.prices[self.rng.choice(MEMBERSHIP + STRIPE_ONLY_MEMBERSHIP)]
            params: Any = {
                "items": [{"id": purchase.item_id, "price": price}],
                "proration_behavior": self.rng.choice(["none", "always_invoice"]),
            }
            await self.emulator.write(
                lambda options: subscriptions.update_async(subscription_id, params, options)
            )

    async def refund(self, subscription_id: str) -> None:
        """Support refunds the subscription's latest paid invoice in Stripe, half or all of what
        is left of it: `charge.refunded`, nothing else."""
        invoices = await self.emulator.get(
            "/v1/invoices", subscription=subscription_id, status="paid", limit=1
        )
        paid = [invoice for invoice in invoices["data"] if invoice["amount_paid"] > 0]
        if not paid:
            return
        payments = await self.emulator.get(
            "/v1/invoice_payments", invoice=paid[0]["id"], status="paid", limit=1
        )
        if not payments["data"]:
            return
        intent_id = payments["data"][0]["payment"]["payment_intent"]
        intent = await self.emulator.get(f"/v1/payment_intents/{intent_id}")
        charge = await self.emulator.get(f"/v1/charges/{intent['latest_charge']}")
        left = charge["amount"] - charge["amount_refunded"]
        if left <= 0:
            return
        amount = left if self.rng.random() < 0.5 else max(1, left // 2)
        refund = {"payment_intent": intent_id, "amount": amount}
        await self.emulator.write(
            lambda options: self.emulator.stripe.v1.refunds.create_async(refund, options)
        )

    async def decline_some(self) -> None:
        """The cards of some customers start declining: their next renewal fails."""
        subjects = sorted(self.customers)
        for subject in self.rng.sample(subjects, round(len(subjects) * DECLINED_SHARE)):
            await self.emulator.helper(
                f"/_emulator/customers/{self.customers[subject]}/card", outcome="declined"
            )
            self.plan.count("card_declined")

    async def renew(self, hook_at: str | None) -> None:
        """Every clock a period on: renewals, failed payments, retries, ends at period end."""
        for position, clock in enumerate(self.plan.clocks):
            if position == len(self.plan.clocks) // 2 and hook_at is not None:
                await self.hook(hook_at)
            await self.emulator.helper(
                f"/_emulator/test_clocks/{clock}/advance", seconds=RENEWAL_SECONDS
            )
            self.plan.count("clock_advance")

    async def cancel_some(self) -> None:
        """Some subscriptions end now (half through billwarden, where self-service may), some
        cards are fixed again."""
        live = [p for p in self.plan.purchases if p.purchase_key != API_PLAN]
        chosen = self.rng.sample(live, round(len(self.plan.purchases) * CANCELED_NOW_SHARE))
        subscriptions = self.emulator.stripe.v1.subscriptions

        async def cancel(purchase: Purchase) -> None:
            if self.rng.random() < 0.5:
                self.plan.count("self_cancel_now")
                await self.billwarden.call(
                    "POST",
                    "/cancel-subscription",
                    purchase.subject,
                    {"atPeriodEnd": False, "subscriptionId": purchase.subscription_id},
                    answers=SELF_SERVICE_ANSWERS,
                )
                return
            self.plan.count("stripe_cancel_now")
            subscription = await self.emulator.get(f"/v1/subscriptions/{purchase.subscription_id}")
            if subscription["status"] == "canceled":
                return
            await self.emulator.write(
                lambda options: subscriptions.cancel_async(purchase.subscription_id, {}, options)
            )

        await self._each(chosen, cancel, hook_at=None)
        # some come back: a new membership beside the one that ended
        again = sorted({p.subject for p in chosen})
        returning = [
            (s, self.rng.choice(MEMBERSHIP)) for s in self.rng.sample(again, len(again) // 2)
        ]

        async def buy_again(purchase: tuple[str, str]) -> None:
            await self.buy(purchase[0], purchase[1], None, again=True)

        await self._each(returning, buy_again, hook_at=None)
        subjects = sorted(self.customers)
        for subject in self.rng.sample(subjects, round(len(subjects) * DECLINED_SHARE / 2)):
            await self.emulator.helper(
                f"/_emulator/customers/{self.customers[subject]}/card", outcome="succeeds"
            )
            self.plan.count("card_fixed")
