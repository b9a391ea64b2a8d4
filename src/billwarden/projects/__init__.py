"""Tenants: projects and their per-mode Stripe configuration."""
