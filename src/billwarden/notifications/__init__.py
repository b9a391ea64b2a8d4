"""Notifications: signed events to the tenant app (Standard Webhooks) from a durable outbox.

A change that the tenant app should hear of (an entitlement, a subscription) writes an outbox
message and one delivery per matching endpoint in the transaction that makes the change; the
worker (`tasks.py`) sends the deliveries, signed, and retries them with backoff.
"""
