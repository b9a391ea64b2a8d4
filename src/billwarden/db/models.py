"""Imports every domain's models so the metadata (and Alembic) sees all tables."""

from billwarden.db.base import Base
from billwarden.projects.models import Project, StripeConfig, StripeWebhookSecret

__all__ = ["Base", "Project", "StripeConfig", "StripeWebhookSecret"]
