"""The five systems billwarden replaces, as the OpenAPI document groups their surfaces: one tag
per seed (with its migration guide in the tag's description), on the seed's own routes here and
on the canonical routes that are part of a seed's surface (seed 002's are all canonical)."""

from __future__ import annotations

from billwarden.usage.endpoints import SEED_004_TAG

SEED_000 = "seed 000: Parchment console"
SEED_001 = "seed 001: entitlement store"
SEED_002 = "seed 002: multi-tenant payments"
SEED_003 = "seed 003: accounts service"
SEED_004 = SEED_004_TAG  # usage.endpoints names it for its route (it cannot import compat)

OPENAPI_TAGS = [
    {
        "name": SEED_000,
        "description": "A console with purchase keys: its checkout, session, customer, cancel "
        "and resume routes, the discrepancy admin routes, API-key management and the docs "
        "hand-off. Guide: docs/migrating/000-parchment-console.md.",
    },
    {
        "name": SEED_001,
        "description": "An entitlement store with a Stripe reconciliation admin surface. "
        "Guide: docs/migrating/001-entitlement-store.md.",
    },
    {
        "name": SEED_002,
        "description": "Multi-tenant payments: billwarden's canonical /api/v1/payments routes "
        "(test_mode selects the mode). Guide: docs/migrating/002-multi-tenant-payments.md.",
    },
    {
        "name": SEED_003,
        "description": "An accounts service selling Stripe prices (STRIPE_ALLOWED_PRICE_IDS). "
        "Guide: docs/migrating/003-accounts-service.md.",
    },
    {
        "name": SEED_004,
        "description": "An OpenAPI'd billing service: organization checkout and today's usage, "
        "with its ErrorResponse codes. Guide: docs/migrating/004-openapi-billing.md.",
    },
]

_PAYMENTS = "/api/v1/payments"
_STRIPE = f"{_PAYMENTS}/stripe"
_PROJECT = f"{_STRIPE}/projects/{{project_id}}"

# canonical routes that belong to a seed's surface: /docs lists them under the seed's tag too
ALSO_TAGGED: dict[tuple[str, str], tuple[str, ...]] = {
    ("POST", "/api-dashboard/keys/generate"): (SEED_000,),
    ("POST", "/api-dashboard/keys/deactivate"): (SEED_000,),
    **{
        route: (SEED_002,)
        for route in (
            ("GET", f"{_PAYMENTS}/subscriptions"),
            ("GET", f"{_PAYMENTS}/transactions"),
            ("GET", f"{_PAYMENTS}/projects"),
            ("GET", f"{_PAYMENTS}/stats"),
            ("GET", f"{_PROJECT}/config"),
            ("PUT", f"{_PROJECT}/config"),
            ("DELETE", f"{_PROJECT}/config"),
            ("GET", f"{_PROJECT}/webhook-urls"),
            ("POST", f"{_PROJECT}/validate-credentials"),
            ("GET", f"{_PROJECT}/subscriptions"),
            ("GET", f"{_PROJECT}/payments"),
            ("POST", f"{_STRIPE}/checkout-session"),
            ("POST", f"{_STRIPE}/webhooks/{{project_id}}/{{mode}}"),
            ("GET", f"{_STRIPE}/my-subscription"),
            ("GET", f"{_STRIPE}/my-payments"),
            ("POST", f"{_STRIPE}/customer-portal"),
            ("POST", f"{_STRIPE}/cancel-subscription"),
            ("POST", f"{_STRIPE}/update-subscription"),
        )
    },
}
