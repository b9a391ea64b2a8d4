"""Reconciliation: every difference between Stripe, the mirror and the entitlement snapshots,
with its reasons, and the repairs that end it."""
