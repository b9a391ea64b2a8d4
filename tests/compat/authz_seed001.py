"""Who may call seed 001's routes (merged by tests/compat/authz.py)."""

from __future__ import annotations

from tests.authz import Routes

ROUTES: Routes = {}
