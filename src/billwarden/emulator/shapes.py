"""Builders for every object the emulator returns, with exactly Stripe's top-level fields.

Each builder starts from the resource's full field set (as in Stripe's published example
objects) and applies overrides; an override naming a field outside that set is a bug, caught here.
"""

from __future__ import annotations

from typing import Any

from billwarden.emulator.state import JSON


def _apply(base: JSON, overrides: dict[str, Any]) -> JSON:
    for key in overrides:
        if key not in base:
            raise KeyError(f"{base['object']} has no field {key!r}")
    base.update(overrides)
    return base


def _address() -> JSON:
    return {
        "city": None,
        "country": None,
        "line1": None,
        "line2": None,
        "postal_code": None,
        "state": None,
    }


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


def invoice(**fields: Any) -> JSON:
    return _apply(
        {
            "account_country": "US",
            "account_name": None,
            "account_tax_ids": None,
            "amount_due": 0,
            "amount_paid": 0,
            "amount_remaining": 0,
            "amount_shipping": 0,
            "application": None,
            "attempt_count": 0,
            "attempted": False,
            "auto_advance": True,
            "automatic_tax": {
                "enabled": False,
                "liability": None,
                "status": None,
                "disabled_reason": None,
                "provider": None,
            },
            "billing_reason": "manual",
            "collection_method": "charge_automatically",
            "created": 0,
            "currency": "usd",
            "custom_fields": None,
            "customer": "",
            "customer_address": None,
            "customer_email": None,
            "customer_name": None,
            "customer_phone": None,
            "customer_shipping": None,
            "customer_tax_exempt": "none",
            "customer_tax_ids": [],
            "default_payment_method": None,
            "default_source": None,
            "default_tax_rates": [],
            "description": None,
            "discounts": [],
            "due_date": None,
            "effective_at": None,
            "ending_balance": None,
            "footer": None,
            "from_invoice": None,
            "hosted_invoice_url": None,
            "id": "",
            "invoice_pdf": None,
            "issuer": {"type": "self"},
            "last_finalization_error": None,
            "latest_revision": None,
            "lines": {"object": "list", "data": [], "has_more": False, "url": ""},
            "livemode": False,
            "metadata": {},
            "next_payment_attempt": None,
            "number": None,
            "object": "invoice",
            "on_behalf_of": None,
            "payment_settings": {
                "default_mandate": None,
                "payment_method_options": None,
                "payment_method_types": None,
            },
            "period_end": 0,
            "period_start": 0,
            "post_payment_credit_notes_amount": 0,
            "pre_payment_credit_notes_amount": 0,
            "receipt_number": None,
            "rendering": None,
            "shipping_cost": None,
            "shipping_details": None,
            "starting_balance": 0,
            "statement_descriptor": None,
            "status": "draft",
            "status_transitions": {
                "finalized_at": None,
                "marked_uncollectible_at": None,
                "paid_at": None,
                "voided_at": None,
            },
            "subscription": None,
            "subtotal": 0,
            "subtotal_excluding_tax": 0,
            "test_clock": None,
            "total": 0,
            "total_discount_amounts": [],
            "total_excluding_tax": 0,
            "webhooks_delivered_at": None,
            "automatically_finalizes_at": None,
            "total_pretax_credit_amounts": [],
            "total_taxes": [],
            "amount_overpaid": 0,
            "parent": None,
            "customer_account": None,
        },
        fields,
    )


def invoice_line(**fields: Any) -> JSON:
    return _apply(
        {
            "amount": 0,
            "currency": "usd",
            "description": None,
            "discount_amounts": [],
            "discountable": True,
            "discounts": [],
            "id": "",
            "invoice": None,
            "livemode": False,
            "metadata": {},
            "object": "line_item",
            "period": {"end": 0, "start": 0},
            "quantity": 1,
            "subscription": None,
            "pretax_credit_amounts": [],
            "taxes": [],
            "parent": None,
            "pricing": None,
            "subtotal": 0,
            "quantity_decimal": "1",
        },
        fields,
    )


def invoice_payment(**fields: Any) -> JSON:
    return _apply(
        {
            "amount_paid": None,
            "amount_requested": 0,
            "created": 0,
            "currency": "usd",
            "id": "",
            "invoice": "",
            "is_default": True,
            "livemode": False,
            "object": "invoice_payment",
            "payment": {"type": "payment_intent", "payment_intent": None},
            "status": "open",
            "status_transitions": {"canceled_at": None, "paid_at": None},
        },
        fields,
    )


def payment_intent(**fields: Any) -> JSON:
    return _apply(
        {
            "amount": 0,
            "amount_capturable": 0,
            "amount_details": {"tip": {}},
            "amount_received": 0,
            "application": None,
            "application_fee_amount": None,
            "automatic_payment_methods": None,
            "canceled_at": None,
            "cancellation_reason": None,
            "capture_method": "automatic",
            "client_secret": None,
            "confirmation_method": "automatic",
            "created": 0,
            "currency": "usd",
            "customer": None,
            "description": None,
            "id": "",
            "last_payment_error": None,
            "latest_charge": None,
            "livemode": False,
            "metadata": {},
            "next_action": None,
            "object": "payment_intent",
            "on_behalf_of": None,
            "payment_method": None,
            "payment_method_configuration_details": None,
            "payment_method_options": {},
            "payment_method_types": ["card"],
            "processing": None,
            "receipt_email": None,
            "review": None,
            "setup_future_usage": None,
            "shipping": None,
            "statement_descriptor": None,
            "statement_descriptor_suffix": None,
            "status": "requires_payment_method",
            "transfer_data": None,
            "transfer_group": None,
            "source": None,
            "excluded_payment_method_types": None,
            "customer_account": None,
            "managed_payments": None,
        },
        fields,
    )


def charge(**fields: Any) -> JSON:
    return _apply(
        {
            "amount": 0,
            "amount_captured": 0,
            "amount_refunded": 0,
            "application": None,
            "application_fee": None,
            "application_fee_amount": None,
            "balance_transaction": None,
            "billing_details": {
                "address": _address(),
                "email": None,
                "name": None,
                "phone": None,
                "tax_id": None,
            },
            "calculated_statement_descriptor": "BILLWARDEN",
            "captured": False,
            "created": 0,
            "currency": "usd",
            "customer": None,
            "description": None,
            "disputed": False,
            "failure_balance_transaction": None,
            "failure_code": None,
            "failure_message": None,
            "fraud_details": {},
            "id": "",
            "livemode": False,
            "metadata": {},
            "object": "charge",
            "on_behalf_of": None,
            "outcome": None,
            "paid": False,
            "payment_intent": None,
            "payment_method": None,
            "payment_method_details": None,
            "receipt_email": None,
            "receipt_number": None,
            "receipt_url": None,
            "refunded": False,
            "refunds": None,
            "review": None,
            "shipping": None,
            "source_transfer": None,
            "statement_descriptor": None,
            "statement_descriptor_suffix": None,
            "status": "pending",
            "transfer_data": None,
            "transfer_group": None,
            "source": None,
        },
        fields,
    )


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
    requirements = {
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
