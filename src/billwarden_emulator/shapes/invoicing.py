"""Invoice items, credit notes, coupons, promotion codes and discounts."""

from __future__ import annotations

from typing import Any

from billwarden_emulator.shapes._base import _apply
from billwarden_emulator.state import JSON


def invoiceitem(**fields: Any) -> JSON:
    return _apply(
        {
            "amount": 0,
            "currency": "usd",
            "customer": "",
            "date": 0,
            "description": None,
            "discountable": True,
            "discounts": [],
            "id": "",
            "invoice": None,
            "livemode": False,
            "metadata": {},
            "object": "invoiceitem",
            "period": {"end": 0, "start": 0},
            "proration": False,
            "quantity": 1,
            "tax_rates": [],
            "test_clock": None,
            "parent": None,
            "pricing": None,
            "net_amount": 0,
            "customer_account": None,
            "quantity_decimal": "1",
        },
        fields,
    )


def credit_note(**fields: Any) -> JSON:
    return _apply(
        {
            "amount": 0,
            "amount_shipping": 0,
            "created": 0,
            "currency": "usd",
            "customer": "",
            "customer_balance_transaction": None,
            "discount_amount": 0,
            "discount_amounts": [],
            "effective_at": None,
            "id": "",
            "invoice": "",
            "lines": {"data": [], "has_more": False, "object": "list", "url": ""},
            "livemode": False,
            "memo": None,
            "metadata": {},
            "number": "",
            "object": "credit_note",
            "out_of_band_amount": None,
            "pdf": "",
            "shipping_cost": None,
            "status": "issued",
            "subtotal": 0,
            "subtotal_excluding_tax": 0,
            "total": 0,
            "total_excluding_tax": 0,
            "type": "pre_payment",
            "voided_at": None,
            "pretax_credit_amounts": [],
            "total_taxes": [],
            "refunds": [],
            "post_payment_amount": 0,
            "pre_payment_amount": 0,
            "reason": None,
            "customer_account": None,
        },
        fields,
    )


def credit_note_line_item(**fields: Any) -> JSON:
    return _apply(
        {
            "amount": 0,
            "description": None,
            "discount_amount": 0,
            "discount_amounts": [],
            "id": "",
            "invoice_line_item": None,
            "livemode": False,
            "object": "credit_note_line_item",
            "quantity": 1,
            "tax_rates": [],
            "type": "custom_line_item",
            "unit_amount": None,
            "unit_amount_decimal": None,
            "pretax_credit_amounts": [],
            "taxes": [],
            "metadata": {},
        },
        fields,
    )


def coupon(**fields: Any) -> JSON:
    return _apply(
        {
            "amount_off": None,
            "created": 0,
            "currency": None,
            "duration": "once",
            "duration_in_months": None,
            "id": "",
            "livemode": False,
            "max_redemptions": None,
            "metadata": {},
            "name": None,
            "object": "coupon",
            "percent_off": None,
            "redeem_by": None,
            "times_redeemed": 0,
            "valid": True,
        },
        fields,
    )


def promotion_code(**fields: Any) -> JSON:
    return _apply(
        {
            "active": True,
            "code": "",
            "created": 0,
            "customer": None,
            "expires_at": None,
            "id": "",
            "livemode": False,
            "max_redemptions": None,
            "metadata": {},
            "object": "promotion_code",
            "restrictions": {
                "first_time_transaction": False,
                "minimum_amount": None,
                "minimum_amount_currency": None,
            },
            "times_redeemed": 0,
            "promotion": {"coupon": None, "type": "coupon"},
            "customer_account": None,
        },
        fields,
    )


def discount(**fields: Any) -> JSON:
    return _apply(
        {
            "checkout_session": None,
            "customer": None,
            "end": None,
            "id": "",
            "invoice": None,
            "invoice_item": None,
            "object": "discount",
            "promotion_code": None,
            "start": 0,
            "subscription": None,
            "subscription_item": None,
            "source": {"coupon": None, "type": "coupon"},
            "customer_account": None,
        },
        fields,
    )
