"""Discounts and refunds made in Stripe reach the figures through the webhooks: a percent-off
coupon on a subscription makes its MRR the discounted amount, a refund comes off revenue."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from tests.checkout.factories import MONTHLY
from tests.checkout.loop import Loop, billing_loop
from tests.checkout.test_loop import active
from tests.conftest import Scratch


async def _stats_when(loop: Loop, done: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    deadline = time.monotonic() + 10
    while True:
        answer = await loop.http.get("/api/v1/payments/stats", headers=loop.owner)
        assert answer.status_code == 200, answer.text
        currencies = answer.json()["total"]["currencies"]
        if currencies and done(currencies[0]):
            usd: dict[str, Any] = currencies[0]
            return usd
        assert time.monotonic() < deadline, currencies
        await asyncio.sleep(0.05)


class TestDiscountsAndRefunds:
    async def test_a_percent_off_coupon_lowers_mrr_and_a_refund_lowers_revenue(
        self, scratch: Scratch, emulator_url: str
    ) -> None:
        async with billing_loop(scratch, emulator_url) as loop:
            token = loop.token("ada", email="ada@example.test")
            session_id = await loop.checkout(token, purchaseKey="premium_monthly")
            await loop.pay(session_id)
            answer = await loop.eventually(token, active)
            subscription_id = answer["entitlement"]["stripeSubscriptionId"]
            paid = await _stats_when(loop, lambda usd: usd["grossPaid"] == MONTHLY)
            assert (paid["mrr"], paid["revenue"]) == (MONTHLY, MONTHLY)

            coupon = loop.stripe.v1.coupons.create({"percent_off": 20, "duration": "forever"})
            loop.stripe.v1.subscriptions.update(
                subscription_id, {"discounts": [{"coupon": coupon.id}]}
            )
            discounted = await _stats_when(loop, lambda usd: usd["mrr"] != MONTHLY)
            assert discounted["mrr"] == MONTHLY * 0.8
            assert discounted["arr"] == MONTHLY * 0.8 * 12

            customer = await loop.customer_of(session_id)
            (charge,) = loop.stripe.v1.charges.list({"customer": customer}).data
            loop.stripe.v1.refunds.create({"charge": charge.id, "amount": 300})
            refunded = await _stats_when(loop, lambda usd: usd["refunded"] == 300)
            assert (refunded["grossPaid"], refunded["revenue"]) == (MONTHLY, MONTHLY - 300)
            # the entitlement is unchanged by either
            assert (await loop.entitlement(token))["hasPremiumAccess"] is True
