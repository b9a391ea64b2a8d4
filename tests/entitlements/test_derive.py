"""The entitlement a subject's subscriptions give under the catalog (`derive`, no I/O)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from billwarden.catalog.service.document import parse_document
from billwarden.core.modes import Mode
from billwarden.entitlements.service import derive
from billwarden.subscriptions.models import Subscription
from tests.checkout.factories import catalog_document

NOW = datetime(2026, 11, 29, 12, tzinfo=UTC)
PRICES = {
    "premium_monthly": "price_monthly",
    "premium_yearly": "price_yearly",
    "api_pro": "price_api",
    "enterprise": "price_enterprise",
}
CATALOG = parse_document(catalog_document(PRICES))
PRICE_MAP = {price: key for key, price in PRICES.items()}


def subscription(
    status: str, *prices: str, period_end_days: int = 20, past_due_days: int | None = None
) -> Subscription:
    return Subscription(
        project_id=uuid.uuid4(),
        mode=Mode.TEST,
        stripe_subscription_id=f"sub_{uuid.uuid4().hex[:8]}",
        stripe_customer_id="cus_1",
        status=status,
        price_ids=list(prices),
        current_period_start=NOW - timedelta(days=10),
        current_period_end=NOW + timedelta(days=period_end_days),
        cancel_at_period_end=False,
        past_due_since=NOW - timedelta(days=past_due_days) if past_due_days is not None else None,
        purchase_keys=[],
        raw={},
    )


class TestDerive:
    def test_no_subscription_is_the_free_tier(self) -> None:
        derived = derive([], CATALOG, PRICE_MAP, 0, NOW)
        assert (derived.plan, derived.status, derived.granted) == ("FREE", "NONE", False)
        assert derived.features == ["basic"]
        assert derived.quotas == {"api_calls": {"limit": 100, "period": "day"}}
        assert derived.plans == [] and derived.role is None

    def test_active_and_trialing_grant_the_plan(self) -> None:
        for status in ("active", "trialing"):
            derived = derive([subscription(status, "price_monthly")], CATALOG, PRICE_MAP, 0, NOW)
            assert derived.granted and derived.status == status.upper()
            assert derived.plan == "PREMIUM_MONTHLY" and derived.role == "premium"
            assert derived.features == ["export", "premium"]
            assert derived.plans == ["premium_monthly"]
            assert derived.stripe_price_id == "price_monthly"

    def test_other_statuses_grant_nothing_and_say_so(self) -> None:
        for status in (
            "incomplete",
            "incomplete_expired",
            "past_due",
            "unpaid",
            "canceled",
            "paused",
        ):
            derived = derive([subscription(status, "price_monthly")], CATALOG, PRICE_MAP, 0, NOW)
            assert not derived.granted
            assert (derived.plan, derived.status) == ("FREE", status.upper())
            assert derived.features == ["basic"]

    def test_past_due_grants_only_within_the_grace(self) -> None:
        recent = subscription("past_due", "price_monthly", past_due_days=1)
        old = subscription("past_due", "price_monthly", past_due_days=5)
        within = derive([recent], CATALOG, PRICE_MAP, 3, NOW)
        assert within.granted and within.status == "PAST_DUE"
        assert within.grace_until == NOW + timedelta(days=2)
        assert not derive([old], CATALOG, PRICE_MAP, 3, NOW).granted
        assert not derive([recent], CATALOG, PRICE_MAP, 0, NOW).granted

    def test_a_bundle_grants_the_union_and_the_larger_quota(self) -> None:
        bundle = subscription("active", "price_api", "price_monthly")
        derived = derive([bundle], CATALOG, PRICE_MAP, 0, NOW)
        assert derived.features == ["api", "export", "premium"]
        assert derived.quotas == {"api_calls": {"limit": 50000, "period": "day"}}
        assert derived.plans == ["premium_monthly", "api_pro"]  # catalog order
        assert derived.plan == "PREMIUM_MONTHLY"  # the primary family's label
        assert derived.stripe_price_id == "price_monthly"

    def test_two_subscriptions_combine_and_the_primary_one_speaks(self) -> None:
        api = subscription("active", "price_api", period_end_days=40)
        membership = subscription("active", "price_yearly")
        derived = derive([api, membership], CATALOG, PRICE_MAP, 0, NOW)
        assert derived.stripe_subscription_id == membership.stripe_subscription_id
        assert derived.plan == "PREMIUM_YEARLY"
        assert derived.plans == ["premium_yearly", "api_pro"]

    def test_a_granting_subscription_speaks_over_an_ended_one(self) -> None:
        ended = subscription("canceled", "price_monthly", period_end_days=-5)
        current = subscription("active", "price_api")
        derived = derive([ended, current], CATALOG, PRICE_MAP, 0, NOW)
        assert derived.status == "ACTIVE"
        assert derived.stripe_subscription_id == current.stripe_subscription_id
        assert derived.plan == "CUSTOM"  # only the api family grants: its plan's label

    def test_a_price_the_catalog_does_not_name_grants_access_as_custom(self) -> None:
        # paid for an allowlisted price outside the catalog: access, no plan's features
        derived = derive([subscription("active", "price_unknown")], CATALOG, PRICE_MAP, 0, NOW)
        assert derived.granted and derived.status == "ACTIVE"
        assert derived.plan == "CUSTOM" and derived.plans == []
        assert derived.features == ["basic"]
        assert not derive(
            [subscription("canceled", "price_unknown")], CATALOG, PRICE_MAP, 0, NOW
        ).granted

    def test_without_a_catalog_a_paid_subscription_still_grants_access(self) -> None:
        derived = derive([subscription("active", "price_monthly")], None, {}, 0, NOW)
        assert derived.granted and derived.plan == "CUSTOM"
        assert derived.features == [] and derived.quotas == {}

    def test_a_plan_whose_price_moved_keeps_granting_its_subscribers(self) -> None:
        old_price = subscription("active", "price_old")
        old_price.purchase_keys = ["premium_monthly"]  # recorded when it was applied
        derived = derive([old_price], CATALOG, PRICE_MAP, 0, NOW)
        assert derived.plan == "PREMIUM_MONTHLY" and derived.plans == ["premium_monthly"]
        gone = subscription("active", "price_old")
        gone.purchase_keys = ["retired_plan"]  # a plan the catalog no longer has
        assert derive([gone], CATALOG, PRICE_MAP, 0, NOW).plan == "CUSTOM"
