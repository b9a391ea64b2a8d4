"""The kinds of caller billwarden knows, as the routes receive them."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from billwarden.core.modes import Mode
from billwarden.identity.models import ConsoleSession, User
from billwarden.identity.tokens import EndUserClaims


@dataclass(frozen=True)
class ConsolePrincipal:
    """A console user and how they authenticated: a session (browser) or a developer token."""

    user: User
    session: ConsoleSession | None
    session_token: str | None


@dataclass(frozen=True)
class ProjectKeyPrincipal:
    """A tenant backend calling with one of its project's API keys."""

    project_id: uuid.UUID
    mode: Mode
    key_id: uuid.UUID


# an end user of a tenant app; `subject` is whom billing belongs to
EndUserPrincipal = EndUserClaims
