"""Payment methods, setup intents and card sources."""

from __future__ import annotations

from typing import Any

from billwarden_emulator.shapes._base import _address, _apply
from billwarden_emulator.state import JSON


def billing_details() -> JSON:
    return {"address": _address(), "email": None, "name": None, "phone": None, "tax_id": None}


def payment_method(*, type: str, details: JSON, **fields: Any) -> JSON:
    """A payment method of `type`; `details` is the object under its type's key (`card`,
    `sepa_debit`, `customer_balance`...), which Stripe's object carries for its own type only."""
    base = _apply(
        {
            "allow_redisplay": "unspecified",
            "billing_details": billing_details(),
            "created": 0,
            "customer": None,
            "id": "",
            "livemode": False,
            "metadata": {},
            "object": "payment_method",
            "type": type,
            "customer_account": None,
        },
        fields,
    )
    base[type] = details
    return base


def card_details(*, brand: str, last4: str, funding: str, country: str, fingerprint: str) -> JSON:
    return {
        "brand": brand,
        "checks": {
            "address_line1_check": None,
            "address_postal_code_check": None,
            "cvc_check": "pass",
        },
        "country": country,
        "display_brand": brand,
        "exp_month": 12,
        "exp_year": 2034,
        "fingerprint": fingerprint,
        "funding": funding,
        "generated_from": None,
        "last4": last4,
        "networks": {"available": [brand], "preferred": None},
        "three_d_secure_usage": {"supported": True},
        "wallet": None,
        "regulated_status": "unregulated",
    }


def setup_intent(**fields: Any) -> JSON:
    return _apply(
        {
            "application": None,
            "automatic_payment_methods": None,
            "cancellation_reason": None,
            "client_secret": None,
            "created": 0,
            "customer": None,
            "description": None,
            "flow_directions": None,
            "id": "",
            "last_setup_error": None,
            "latest_attempt": None,
            "livemode": False,
            "mandate": None,
            "metadata": {},
            "next_action": None,
            "object": "setup_intent",
            "on_behalf_of": None,
            "payment_method": None,
            "payment_method_configuration_details": None,
            "payment_method_options": {},
            "payment_method_types": ["card"],
            "single_use_mandate": None,
            "status": "requires_payment_method",
            "usage": "off_session",
            "excluded_payment_method_types": None,
        },
        fields,
    )


def card_source(**fields: Any) -> JSON:
    return _apply(
        {
            "address_city": None,
            "address_country": None,
            "address_line1": None,
            "address_line1_check": None,
            "address_line2": None,
            "address_state": None,
            "address_zip": None,
            "address_zip_check": None,
            "brand": "Visa",
            "country": "US",
            "customer": None,
            "cvc_check": "pass",
            "dynamic_last4": None,
            "exp_month": 12,
            "exp_year": 2034,
            "fingerprint": "",
            "funding": "credit",
            "id": "",
            "last4": "4242",
            "metadata": {},
            "name": None,
            "object": "card",
            "tokenization_method": None,
            "regulated_status": "unregulated",
        },
        fields,
    )
