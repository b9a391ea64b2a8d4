"""Imports every domain's models so the metadata (and Alembic) sees all tables."""

from billwarden.db.base import Base
from billwarden.identity.models import ApiKey, ConsoleSession, LoginFailure, User
from billwarden.projects.models import (
    EndUserSecret,
    Project,
    ProjectMember,
    StripeConfig,
    StripeWebhookSecret,
)

__all__ = [
    "ApiKey",
    "Base",
    "ConsoleSession",
    "EndUserSecret",
    "LoginFailure",
    "Project",
    "ProjectMember",
    "StripeConfig",
    "StripeWebhookSecret",
    "User",
]
