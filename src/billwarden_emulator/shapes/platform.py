"""Account, balance, portal sessions, webhook endpoints, test clocks, meter events."""

from __future__ import annotations

from typing import Any

from billwarden_emulator.shapes._base import _apply
from billwarden_emulator.state import JSON


def portal_session(**fields: Any) -> JSON:
    return _apply(
        {
            "configuration": "",
            "created": 0,
            "customer": "",
            "flow": None,
            "id": "",
            "livemode": False,
            "locale": None,
            "object": "billing_portal.session",
            "on_behalf_of": None,
            "return_url": None,
            "url": "",
            "customer_account": None,
        },
        fields,
    )


def webhook_endpoint(**fields: Any) -> JSON:
    return _apply(
        {
            "api_version": None,
            "application": None,
            "created": 0,
            "description": None,
            "enabled_events": [],
            "id": "",
            "livemode": False,
            "metadata": {},
            "object": "webhook_endpoint",
            "status": "enabled",
            "url": "",
        },
        fields,
    )


def test_clock(**fields: Any) -> JSON:
    return _apply(
        {
            "created": 0,
            "deletes_after": 0,
            "frozen_time": 0,
            "id": "",
            "livemode": False,
            "name": None,
            "object": "test_helpers.test_clock",
            "status": "ready",
            "status_details": {},
        },
        fields,
    )


def meter_event(**fields: Any) -> JSON:
    return _apply(
        {
            "created": 0,
            "event_name": "",
            "identifier": "",
            "livemode": False,
            "object": "billing.meter_event",
            "payload": {},
            "timestamp": 0,
        },
        fields,
    )


def balance(livemode: bool, pending_amount: int) -> JSON:
    return {
        "available": [{"amount": 0, "currency": "usd", "source_types": {"card": 0}}],
        "connect_reserved": [{"amount": 0, "currency": "usd"}],
        "livemode": livemode,
        "object": "balance",
        "pending": [
            {"amount": pending_amount, "currency": "usd", "source_types": {"card": pending_amount}}
        ],
    }


def account(account_id: str, created: int) -> JSON:
    requirements: JSON = {
        "alternatives": [],
        "current_deadline": None,
        "currently_due": [],
        "disabled_reason": None,
        "errors": [],
        "eventually_due": [],
        "past_due": [],
        "pending_verification": [],
    }
    return {
        "business_profile": {
            "annual_revenue": None,
            "estimated_worker_count": None,
            "mcc": None,
            "name": "billwarden emulator",
            "product_description": None,
            "support_address": None,
            "support_email": None,
            "support_phone": None,
            "support_url": None,
            "url": None,
            "minority_owned_business_designation": None,
        },
        "business_type": None,
        "capabilities": {"card_payments": "active", "transfers": "active"},
        "charges_enabled": True,
        "controller": {"type": "account"},
        "country": "US",
        "created": created,
        "default_currency": "usd",
        "details_submitted": True,
        "email": None,
        "external_accounts": {
            "data": [],
            "has_more": False,
            "object": "list",
            "url": f"/v1/accounts/{account_id}/external_accounts",
        },
        "future_requirements": dict(requirements),
        "id": account_id,
        "metadata": {},
        "object": "account",
        "payouts_enabled": True,
        "requirements": dict(requirements),
        "settings": {
            "branding": {
                "icon": None,
                "logo": None,
                "primary_color": None,
                "secondary_color": None,
            },
            "card_payments": {
                "decline_on": {"avs_failure": False, "cvc_failure": False},
                "statement_descriptor_prefix": None,
                "statement_descriptor_prefix_kana": None,
                "statement_descriptor_prefix_kanji": None,
            },
            "dashboard": {"display_name": "billwarden emulator", "timezone": "Etc/UTC"},
            "payments": {
                "statement_descriptor": None,
                "statement_descriptor_kana": None,
                "statement_descriptor_kanji": None,
                "statement_descriptor_prefix_kana": None,
                "statement_descriptor_prefix_kanji": None,
            },
            "payouts": {
                "debit_negative_balances": True,
                "schedule": {"delay_days": 2, "interval": "daily"},
                "statement_descriptor": None,
            },
        },
        "tos_acceptance": {"date": None, "ip": None, "user_agent": None},
        "type": "standard",
    }
