"""The kinds of caller billwarden knows, as the routes receive them."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from billwarden.audit.service import Actor
from billwarden.core.modes import Mode
from billwarden.core.subjects import Subject, SubjectType
from billwarden.errors import Forbidden, InvalidInput
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


def end_user_subject(claims: EndUserClaims) -> Subject:
    """Whom an end user's billing belongs to: its organization when the token names one, else
    the user; the token's email goes with it."""
    if claims.organization_id:
        return Subject(SubjectType.ORGANIZATION, claims.organization_id, claims.email)
    return Subject(SubjectType.USER, claims.sub, claims.email)


@dataclass(frozen=True)
class BillingPrincipal:
    """A caller of the billing routes: an end user (acting for its own subject) or a tenant
    backend with a project API key (naming the subject in the request)."""

    project_id: uuid.UUID
    mode: Mode
    end_user: EndUserClaims | None = None
    key_id: uuid.UUID | None = None

    @property
    def own_subject(self) -> Subject | None:
        return end_user_subject(self.end_user) if self.end_user is not None else None

    def subject(self, subject_type: SubjectType, subject_id: str | None) -> Subject:
        """Whom the request is for: an end user's own subject (naming another is 403
        SUBJECT_MISMATCH), or the one a project key names (required: 400)."""
        own = self.own_subject
        if own is not None:
            if subject_id is not None and (subject_type, subject_id) != own.key:
                raise Forbidden(
                    "An end-user token acts for its own subject only.", code="SUBJECT_MISMATCH"
                )
            return own
        if subject_id is None:
            raise InvalidInput(
                "subjectId is required with a project API key (and subjectType, default user).",
                code="VALIDATION_ERROR",
                details={"field": "subjectId"},
            )
        return Subject(subject_type, subject_id)


@dataclass(frozen=True)
class SeedAdminPrincipal:
    """A caller of the seeds' admin routes (`/api/admin/...`): a console user who administers
    the project, or an end user whose role claim is one of the project's `adminRoles`."""

    project_id: uuid.UUID
    mode: Mode
    user: User | None = None
    end_user: EndUserClaims | None = None

    @property
    def actor(self) -> Actor:
        """Who the audit log names for this caller's writes."""
        if self.user is not None:
            return Actor.user(self.user)
        assert self.end_user is not None
        return Actor.end_user(self.end_user.sub, self.end_user.email)
