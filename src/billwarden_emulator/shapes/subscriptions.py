"""Subscriptions and their items."""

from __future__ import annotations

from typing import Any

from billwarden_emulator.shapes._base import _apply
from billwarden_emulator.state import JSON


def subscription_item(**fields: Any) -> JSON:
    return _apply(
        {
            "created": 0,
            "discounts": [],
            "id": "",
            "metadata": {},
            "object": "subscription_item",
            "price": {},
            "quantity": 1,
            "subscription": "",
            "tax_rates": [],
            "plan": {},
            "current_period_end": 0,
            "current_period_start": 0,
            "billing_thresholds": None,
        },
        fields,
    )


def subscription(**fields: Any) -> JSON:
    return _apply(
        {
            "application": None,
            "application_fee_percent": None,
            "automatic_tax": {"enabled": False, "liability": None, "disabled_reason": None},
            "billing_cycle_anchor": 0,
            "billing_cycle_anchor_config": None,
            "cancel_at": None,
            "canceled_at": None,
            "cancellation_details": {"comment": None, "feedback": None, "reason": None},
            "collection_method": "charge_automatically",
            "created": 0,
            "currency": "usd",
            "customer": "",
            "days_until_due": None,
            "default_payment_method": None,
            "default_source": None,
            "default_tax_rates": [],
            "description": None,
            "discounts": [],
            "ended_at": None,
            "id": "",
            "invoice_settings": {"account_tax_ids": None, "issuer": {"type": "self"}},
            "items": {"object": "list", "data": [], "has_more": False, "url": ""},
            "latest_invoice": None,
            "livemode": False,
            "metadata": {},
            "next_pending_invoice_item_invoice": None,
            "object": "subscription",
            "on_behalf_of": None,
            "pause_collection": None,
            "payment_settings": {
                "payment_method_options": None,
                "payment_method_types": None,
                "save_default_payment_method": "off",
            },
            "pending_invoice_item_interval": None,
            "pending_setup_intent": None,
            "pending_update": None,
            "schedule": None,
            "start_date": 0,
            "status": "incomplete",
            "test_clock": None,
            "transfer_data": None,
            "trial_end": None,
            "trial_settings": {"end_behavior": {"missing_payment_method": "create_invoice"}},
            "trial_start": None,
            "cancel_at_period_end": False,
            "billing_thresholds": None,
            "billing_mode": {"type": "classic", "flexible": None},
            "customer_account": None,
            "managed_payments": None,
            "billing_schedules": [],
        },
        fields,
    )
