"""Who may record and read usage: project keys for any subject, end users for their own."""

from __future__ import annotations

from tests.authz import END_USER, PROJECT_KEY, Declaration, Routes
from tests.payments.authz import BILLING_CALLER

ROUTES: Routes = {
    ("POST", "/api/v1/usage/events"): Declaration(
        BILLING_CALLER,
        json=lambda w: {"events": [{"id": "evt-1", "subjectId": "end-user-1", "metric": "calls"}]},
    ),
    ("GET", "/api/v1/billing/usage"): Declaration(END_USER),
    ("GET", "/api/v1/usage/{subject_type}/{subject_id}"): Declaration(
        PROJECT_KEY, path=lambda w: {"subject_type": "user", "subject_id": "end-user-1"}
    ),
}
