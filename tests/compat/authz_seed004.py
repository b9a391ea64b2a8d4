"""Who may call seed 004's routes (merged by tests/compat/authz.py): end users only, refused
with seed 004's 401 UNAUTHORIZED. The matrix's end-user tokens name no organization, so both
projects' end users get past authentication to 400 VALIDATION_ERROR ("organization_id is
required in token."); `GET /api/v1/billing/usage` is declared with usage's routes."""

from __future__ import annotations

from tests.authz import PRINCIPALS, Declaration, Routes, policy

ROUTES: Routes = {
    ("POST", "/api/v1/billing/checkout"): Declaration(
        policy(**{**dict.fromkeys(PRINCIPALS, 401), "end_user": 400, "end_user_other_project": 400})
    ),
}
