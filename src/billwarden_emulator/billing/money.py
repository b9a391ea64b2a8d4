"""Amounts in minor units, written as Stripe writes them in messages."""

from __future__ import annotations

# Stripe's zero-decimal currencies: amounts are whole units, formatted without decimals.
_ZERO_DECIMAL = frozenset(
    {"bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd"}
    | {"vuv", "xaf", "xof", "xpf"}
)
_SYMBOLS = {"usd": "$", "eur": "€", "gbp": "£", "jpy": "¥"}


def format_amount(amount: int, currency: str) -> str:
    """An amount in minor units as Stripe writes it in messages: `$0.91`, `¥100`, `12.50 CHF`."""
    currency = currency.lower()
    number = f"{amount:,}" if currency in _ZERO_DECIMAL else f"{amount / 100:,.2f}"
    symbol = _SYMBOLS.get(currency)
    return f"{symbol}{number}" if symbol else f"{number} {currency.upper()}"
