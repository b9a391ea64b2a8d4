"""Customers, products and prices."""

from __future__ import annotations

from typing import Any

from billwarden_emulator.shapes._base import _apply
from billwarden_emulator.state import JSON


def customer(**fields: Any) -> JSON:
    return _apply(
        {
            "address": None,
            "balance": 0,
            "created": 0,
            "currency": None,
            "default_source": None,
            "delinquent": False,
            "description": None,
            "discount": None,
            "email": None,
            "id": "",
            "invoice_prefix": "",
            "invoice_settings": {
                "custom_fields": None,
                "default_payment_method": None,
                "footer": None,
                "rendering_options": None,
            },
            "livemode": False,
            "metadata": {},
            "name": None,
            "next_invoice_sequence": 1,
            "object": "customer",
            "phone": None,
            "preferred_locales": [],
            "shipping": None,
            "tax_exempt": "none",
            "test_clock": None,
        },
        fields,
    )


def deleted(object_name: str, object_id: str) -> JSON:
    return {"deleted": True, "id": object_id, "object": object_name}


def product(**fields: Any) -> JSON:
    return _apply(
        {
            "active": True,
            "created": 0,
            "default_price": None,
            "description": None,
            "id": "",
            "images": [],
            "livemode": False,
            "marketing_features": [],
            "metadata": {},
            "name": "",
            "object": "product",
            "package_dimensions": None,
            "shippable": None,
            "statement_descriptor": None,
            "tax_code": None,
            "unit_label": None,
            "updated": 0,
            "url": None,
            "type": "service",
        },
        fields,
    )


def price(**fields: Any) -> JSON:
    return _apply(
        {
            "active": True,
            "billing_scheme": "per_unit",
            "created": 0,
            "currency": "usd",
            "custom_unit_amount": None,
            "id": "",
            "livemode": False,
            "lookup_key": None,
            "metadata": {},
            "nickname": None,
            "object": "price",
            "product": "",
            "recurring": None,
            "tax_behavior": "unspecified",
            "tiers_mode": None,
            "transform_quantity": None,
            "type": "one_time",
            "unit_amount": None,
            "unit_amount_decimal": None,
        },
        fields,
    )


def plan_from_price(price_obj: JSON) -> JSON:
    """The legacy `plan` view of a recurring price, as subscription items carry it."""
    recurring = price_obj["recurring"] or {}
    return {
        "active": price_obj["active"],
        "amount": price_obj["unit_amount"],
        "amount_decimal": price_obj["unit_amount_decimal"],
        "billing_scheme": price_obj["billing_scheme"],
        "created": price_obj["created"],
        "currency": price_obj["currency"],
        "id": price_obj["id"],
        "interval": recurring.get("interval", "month"),
        "interval_count": recurring.get("interval_count", 1),
        "livemode": price_obj["livemode"],
        "metadata": price_obj["metadata"],
        "meter": recurring.get("meter"),
        "nickname": price_obj["nickname"],
        "object": "plan",
        "product": price_obj["product"],
        "tiers_mode": price_obj["tiers_mode"],
        "transform_usage": None,
        "trial_period_days": recurring.get("trial_period_days"),
        "usage_type": recurring.get("usage_type", "licensed"),
    }
