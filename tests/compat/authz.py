"""Who may call the seeds' routes. The unscoped webhook routes take a Stripe signature, not a
principal: in the matrix's world there is no single-tenant project, so every caller gets 404."""

from __future__ import annotations

from tests.authz import PRINCIPALS, Declaration, Routes, policy

NO_SINGLE_TENANT = policy(**dict.fromkeys(PRINCIPALS, 404))

ROUTES: Routes = {
    ("POST", path): Declaration(NO_SINGLE_TENANT)
    for path in ("/api/stripe/webhook", "/api/billing/stripe/webhook", "/api/v1/billing/webhook")
}
