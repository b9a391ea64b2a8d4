"""Billing engine: invoices, payments and the subscription lifecycle behind the `/v1` handlers."""
