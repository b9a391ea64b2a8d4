"""Stripe's webhooks: verified, stored durably and deduplicated before they are acknowledged, then
applied by a worker through a registry of handlers, with retries, backoff and replay."""
