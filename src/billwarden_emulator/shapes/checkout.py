"""Checkout sessions and their line items."""

from __future__ import annotations

from typing import Any

from billwarden_emulator.shapes._base import _address, _apply
from billwarden_emulator.state import JSON


def checkout_session(**fields: Any) -> JSON:
    return _apply(
        {
            "after_expiration": None,
            "allow_promotion_codes": None,
            "amount_subtotal": None,
            "amount_total": None,
            "automatic_tax": {
                "enabled": False,
                "liability": None,
                "status": None,
                "provider": None,
            },
            "billing_address_collection": None,
            "cancel_url": None,
            "client_reference_id": None,
            "client_secret": None,
            "consent": None,
            "consent_collection": None,
            "created": 0,
            "currency": None,
            "custom_fields": [],
            "custom_text": {
                "after_submit": None,
                "shipping_address": None,
                "submit": None,
                "terms_of_service_acceptance": None,
            },
            "customer": None,
            "customer_creation": None,
            "customer_details": None,
            "customer_email": None,
            "expires_at": 0,
            "id": "",
            "invoice": None,
            "invoice_creation": None,
            "livemode": False,
            "locale": None,
            "metadata": {},
            "mode": "payment",
            "object": "checkout.session",
            "payment_intent": None,
            "payment_link": None,
            "payment_method_collection": None,
            "payment_method_configuration_details": None,
            "payment_method_options": {},
            "payment_method_types": ["card"],
            "payment_status": "unpaid",
            "phone_number_collection": {"enabled": False},
            "recovered_from": None,
            "saved_payment_method_options": None,
            "setup_intent": None,
            "shipping_address_collection": None,
            "shipping_cost": None,
            "shipping_options": [],
            "status": "open",
            "submit_type": None,
            "subscription": None,
            "success_url": None,
            "total_details": None,
            "ui_mode": "hosted_page",
            "url": None,
            "adaptive_pricing": None,
            "discounts": None,
            "collected_information": None,
            "permissions": None,
            "wallet_options": None,
            "origin_context": None,
            "currency_conversion": None,
            "customer_account": None,
            "integration_identifier": None,
            "managed_payments": None,
        },
        fields,
    )


def checkout_line_item(**fields: Any) -> JSON:
    return _apply(
        {
            "amount_discount": 0,
            "amount_subtotal": 0,
            "amount_tax": 0,
            "amount_total": 0,
            "currency": "usd",
            "description": None,
            "id": "",
            "object": "item",
            "price": None,
            "quantity": 1,
            "metadata": {},
            "adjustable_quantity": None,
        },
        fields,
    )


def customer_details(customer_obj: JSON | None, email: str | None) -> JSON:
    return {
        "address": _address(),
        "email": email if email is not None else (customer_obj or {}).get("email"),
        "name": (customer_obj or {}).get("name"),
        "phone": None,
        "tax_exempt": "none",
        "tax_ids": [],
        "business_name": None,
        "individual_name": None,
    }
