"""The subscriptions domain serves no route of its own yet (self-service comes with its issue)."""

from __future__ import annotations

from tests.authz import Routes

ROUTES: Routes = {}
