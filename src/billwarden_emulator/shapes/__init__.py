"""Builders for every object the emulator returns, with exactly Stripe's top-level fields.

Each builder starts from the resource's full field set (as in Stripe's published example
objects) and applies overrides; an override naming a field outside that set is a bug, caught here.
"""

from billwarden_emulator.shapes.billing import (
    charge,
    invoice,
    invoice_line,
    invoice_payment,
    payment_intent,
    refund,
)
from billwarden_emulator.shapes.checkout import (
    checkout_line_item,
    checkout_session,
    customer_details,
)
from billwarden_emulator.shapes.customers import customer, deleted, plan_from_price, price, product
from billwarden_emulator.shapes.platform import (
    account,
    balance,
    meter_event,
    portal_session,
    test_clock,
    webhook_endpoint,
)
from billwarden_emulator.shapes.subscriptions import subscription, subscription_item

__all__ = [
    "account",
    "balance",
    "charge",
    "checkout_line_item",
    "checkout_session",
    "customer",
    "customer_details",
    "deleted",
    "invoice",
    "invoice_line",
    "invoice_payment",
    "meter_event",
    "payment_intent",
    "plan_from_price",
    "portal_session",
    "price",
    "product",
    "refund",
    "subscription",
    "subscription_item",
    "test_clock",
    "webhook_endpoint",
]
