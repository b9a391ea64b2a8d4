"""Wire shapes for projects, their members, end-user secret rotation and end-user
authentication (camelCase)."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import ConfigDict, Field, StrictBool, StringConstraints, model_validator

from billwarden.kit.schemas import CamelModel
from billwarden.projects.models import SLUG_PATTERN, EndUserAuthMethod, ProjectRole

ProjectName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
# pydantic (Rust regex) and JSON Schema (ECMA-262) both search, and their `$` is the end of the
# text: anchored, the pattern is a full match, so "main\n" is refused like the service refuses it
Slug = Annotated[
    str, StringConstraints(min_length=1, max_length=100, pattern=f"^(?:{SLUG_PATTERN})$")
]


class ProjectCreate(CamelModel):
    name: ProjectName
    slug: Slug | None = Field(default=None, description="Derived from the name when omitted.")


GraceDays = Annotated[int, Field(ge=0, le=365)]


class ProjectUpdate(CamelModel):
    name: ProjectName | None = None
    slug: Slug | None = None
    past_due_grace_days: GraceDays | None = Field(
        default=None,
        description="Days a past_due subscription still grants access, from when it became "
        "past_due (0: none).",
    )


class ProjectRead(CamelModel):
    id: uuid.UUID
    name: str
    slug: str
    past_due_grace_days: int
    created_at: datetime
    updated_at: datetime
    role: ProjectRole | None = Field(
        description="Your role in the project; null for a superuser who is not a member."
    )


class ProjectCreated(ProjectRead):
    end_user_secret: str = Field(
        description="HS256 secret your backend signs end-user JWTs with. Shown once: store it."
    )


class MemberInvite(CamelModel):
    """Whom to invite, by email (a console user with that email need not exist yet)."""

    email: Annotated[str, StringConstraints(min_length=1, max_length=320)]
    role: ProjectRole = ProjectRole.MEMBER


class InvitationStatus(StrEnum):
    PENDING = "pending"
    EXPIRED = "expired"


class InvitationRead(CamelModel):
    id: uuid.UUID
    project_id: uuid.UUID
    email: str
    role: ProjectRole
    status: InvitationStatus
    invited_by: str | None = Field(description="The inviting admin's email.")
    created_at: datetime
    expires_at: datetime


class InvitationCreated(InvitationRead):
    token: str = Field(
        description="Accepts the invitation (with the addressee signed in). Shown once: pass it "
        "on to the invitee."
    )
    accept_url: str = Field(
        description="The console page that accepts it, the token in the fragment (never sent "
        "to a server, so never in an access log)."
    )


class MyInvitation(CamelModel):
    id: uuid.UUID
    project_id: uuid.UUID
    project_name: str
    role: ProjectRole
    invited_by: str | None
    created_at: datetime
    expires_at: datetime


class InvitationAccept(CamelModel):
    """The invitation to accept: by the link's `token`, or by `invitationId` (one of your own
    pending invitations); exactly one."""

    model_config = ConfigDict(
        json_schema_extra={
            "oneOf": [
                {"required": ["token"], "properties": {"token": {"type": "string"}}},
                {
                    "required": ["invitationId"],
                    "properties": {"invitationId": {"type": "string"}},
                },
            ]
        }
    )

    token: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None
    invitation_id: uuid.UUID | None = None

    @model_validator(mode="after")
    def _one_reference(self) -> InvitationAccept:
        if (self.token is None) == (self.invitation_id is None):
            raise ValueError("give exactly one of token or invitationId")
        return self


class MemberUpdate(CamelModel):
    role: ProjectRole


class MemberRead(CamelModel):
    user_id: uuid.UUID
    email: str
    role: ProjectRole
    created_at: datetime


class EndUserSecretRotated(CamelModel):
    end_user_secret: str = Field(description="The new secret. Shown once: store it.")
    previous_secret_expires_at: datetime | None = Field(
        description="Until then tokens signed with the previous secret still verify; any "
        "older secret stops verifying now."
    )


ClaimName = Annotated[
    str, StringConstraints(min_length=1, max_length=100, pattern=r"^[\x21-\x7e]+$")
]


class EndUserClaimNames(CamelModel):
    user: ClaimName = "sub"
    organization: ClaimName = "organization_id"
    email: ClaimName = "email"
    roles: ClaimName = Field(default="role", description="A string or a list in the token.")


class EndUserAuthWrite(CamelModel):
    """How the project accepts its end users' tokens (the whole setting: what is left out takes
    its default)."""

    method: EndUserAuthMethod = Field(
        default=EndUserAuthMethod.PROJECT_SECRET,
        description="project_secret: HS256 with the project's end-user secret (tokens carry "
        "project_id); shared_secret: HS256 with sharedSecret; jwks: RS256/ES256 tokens from "
        "the identity provider at jwksUrl, for issuer and audience.",
    )
    shared_secret: str | None = Field(
        default=None,
        min_length=32,
        max_length=1000,
        description="Write-only. Left out with method shared_secret: the stored one is kept.",
    )
    jwks_url: str | None = Field(default=None, max_length=2000)
    issuer: str | None = Field(default=None, min_length=1, max_length=2000)
    audience: str | None = Field(default=None, min_length=1, max_length=2000)
    claims: EndUserClaimNames = Field(default_factory=EndUserClaimNames)
    cookie: str | None = Field(
        default=None,
        max_length=100,
        description="Also read the token from this cookie (browser calls with the app's "
        "session); unsafe methods then need an Origin among allowedOrigins.",
    )
    allowed_origins: list[str] = Field(default_factory=list, max_length=20)
    admin_roles: list[Annotated[str, StringConstraints(min_length=1, max_length=100)]] = Field(
        default_factory=list,
        max_length=20,
        description="Roles (in the roles claim) that may use the seeds' admin routes.",
    )
    mode_from_query: StrictBool = Field(
        default=False,
        description="?test_mode= picks the mode of tokens without a mode claim (seed 002's "
        "apps); otherwise such a token acts in the project's default mode only.",
    )


class EndUserAuthRead(CamelModel):
    project_id: uuid.UUID
    method: EndUserAuthMethod
    shared_secret_set: bool
    jwks_url: str | None
    issuer: str | None
    audience: str | None
    claims: EndUserClaimNames
    cookie: str | None
    allowed_origins: list[str]
    admin_roles: list[str]
    mode_from_query: bool
    from_environment: bool = Field(
        description="True for the single-tenant project when BILLWARDEN_END_USER_* sets it."
    )
    updated_at: datetime | None
