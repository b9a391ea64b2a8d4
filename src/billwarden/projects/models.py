"""Projects and their Stripe configuration, one active configuration per (project, mode)."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy import Enum as SAEnum
from sqlalchemy.orm import Mapped, mapped_column, relationship

from billwarden.core.modes import Mode
from billwarden.db.base import (
    Base,
    IdMixin,
    TenantMixin,
    TimestampMixin,
    mode_type,
    utcnow,
)

# a project's slug: 1-100 lowercase letters, digits and inner hyphens
SLUG_PATTERN = r"[a-z0-9](?:[a-z0-9-]{0,98}[a-z0-9])?"


class Project(IdMixin, TimestampMixin, Base):
    __tablename__ = "projects"

    name: Mapped[str] = mapped_column(String(200))
    slug: Mapped[str] = mapped_column(String(100), unique=True)
    # days a past_due subscription still grants access (from when it became past_due)
    past_due_grace_days: Mapped[int] = mapped_column(default=0, server_default="0")


class StripeConfig(IdMixin, TimestampMixin, TenantMixin, Base):
    """Credentials for one project in one mode. Deactivated rows are kept as history."""

    __tablename__ = "stripe_configs"
    __table_args__ = (
        Index(
            "uq_stripe_configs_active",
            "project_id",
            "mode",
            unique=True,
            sqlite_where=text("is_active"),
            postgresql_where=text("is_active"),
        ),
    )

    secret_key_ciphertext: Mapped[str] = mapped_column(Text)
    secret_key_hint: Mapped[str] = mapped_column(String(64))
    publishable_key: Mapped[str | None] = mapped_column(String(255))
    is_active: Mapped[bool] = mapped_column(default=True)
    deactivated_at: Mapped[datetime | None]
    # the last validate-credentials: when, and whether Stripe accepted the secret key
    checked_at: Mapped[datetime | None]
    check_valid: Mapped[bool | None]

    webhook_secrets: Mapped[list[StripeWebhookSecret]] = relationship(
        back_populates="config", cascade="all, delete-orphan", lazy="selectin"
    )


class StripeWebhookSecret(IdMixin, Base):
    """A `whsec_...` signing secret; several may be active at once while rotating."""

    __tablename__ = "stripe_webhook_secrets"

    config_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("stripe_configs.id", ondelete="CASCADE"), index=True
    )
    project_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    mode: Mapped[Mode] = mapped_column(mode_type())
    secret_ciphertext: Mapped[str] = mapped_column(Text)
    secret_hint: Mapped[str] = mapped_column(String(64))
    is_active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    deactivated_at: Mapped[datetime | None]

    config: Mapped[StripeConfig] = relationship(back_populates="webhook_secrets")


class ProjectRole(StrEnum):
    """A console user's role in one project. Owners and admins administer; members read."""

    OWNER = "owner"
    ADMIN = "admin"
    MEMBER = "member"

    @property
    def is_admin(self) -> bool:
        return self in (ProjectRole.OWNER, ProjectRole.ADMIN)


def project_role_type() -> SAEnum:
    return SAEnum(
        ProjectRole,
        native_enum=False,
        create_constraint=True,
        length=6,
        name="project_role",
        values_callable=lambda roles: [role.value for role in roles],
    )


class ProjectMember(IdMixin, TimestampMixin, Base):
    """A console user's membership in a project."""

    __tablename__ = "project_members"
    __table_args__ = (UniqueConstraint("project_id", "user_id"),)

    project_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    role: Mapped[ProjectRole] = mapped_column(project_role_type())


class ProjectInvitation(IdMixin, Base):
    """An invitation to join a project with a role, addressed to an email (a console user may
    not exist for it yet). Accepted once, by the signed-in console user with that email, before
    `expires_at`. Only a keyed hash of the link's token is stored. One is outstanding (neither
    accepted nor revoked) per project and email: inviting again revokes the previous one."""

    __tablename__ = "project_invitations"
    __table_args__ = (
        Index(
            "uq_project_invitations_outstanding",
            "project_id",
            "email",
            unique=True,
            sqlite_where=text("accepted_at IS NULL AND revoked_at IS NULL"),
            postgresql_where=text("accepted_at IS NULL AND revoked_at IS NULL"),
        ),
    )

    project_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    email: Mapped[str] = mapped_column(String(320), index=True)
    role: Mapped[ProjectRole] = mapped_column(project_role_type())
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    invited_by_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    accepted_at: Mapped[datetime | None]
    accepted_by_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    revoked_at: Mapped[datetime | None]


class EndUserSecret(IdMixin, Base):
    """The HS256 secret a tenant backend signs its end users' JWTs with, encrypted at rest.

    One is current (`expires_at` null); after a rotation the previous ones keep verifying until
    their `expires_at`.
    """

    __tablename__ = "end_user_secrets"
    __table_args__ = (
        Index(
            "uq_end_user_secrets_current",
            "project_id",
            unique=True,
            sqlite_where=text("expires_at IS NULL"),
            postgresql_where=text("expires_at IS NULL"),
        ),
    )

    project_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    secret_ciphertext: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None]


class EndUserAuthMethod(StrEnum):
    """How a project's end users' tokens are verified."""

    # HS256 with the project's end-user secret (rotatable)
    PROJECT_SECRET = "project_secret"  # noqa: S105 (a method's name, not a secret)
    # HS256 with the secret the team's app already signs with
    SHARED_SECRET = "shared_secret"  # noqa: S105
    JWKS = "jwks"  # RS256/ES256 from the app's identity provider, keys from its JWKS URL


class EndUserAuth(TimestampMixin, Base):
    """How a project accepts its end users' tokens (no row: the project's own HS256 secret and
    the default claim names). The single-tenant project's comes from the environment."""

    __tablename__ = "end_user_auth"

    project_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    )
    method: Mapped[EndUserAuthMethod] = mapped_column(
        SAEnum(
            EndUserAuthMethod,
            native_enum=False,
            create_constraint=True,
            length=14,
            name="end_user_auth_method",
            values_callable=lambda methods: [method.value for method in methods],
        )
    )
    shared_secret_ciphertext: Mapped[str | None] = mapped_column(Text)
    jwks_url: Mapped[str | None] = mapped_column(String(2000))
    issuer: Mapped[str | None] = mapped_column(String(2000))
    audience: Mapped[str | None] = mapped_column(String(2000))
    user_claim: Mapped[str] = mapped_column(String(100), default="sub")
    organization_claim: Mapped[str] = mapped_column(String(100), default="organization_id")
    email_claim: Mapped[str] = mapped_column(String(100), default="email")
    roles_claim: Mapped[str] = mapped_column(String(100), default="role")
    cookie_name: Mapped[str | None] = mapped_column(String(100))
    allowed_origins: Mapped[list[str]] = mapped_column(JSON, default=list)
    admin_roles: Mapped[list[str]] = mapped_column(JSON, default=list)
    # `?test_mode=` picks the mode of tokens without a mode claim (seed 002's apps)
    mode_from_query: Mapped[bool] = mapped_column(default=False)
    # written from BILLWARDEN_END_USER_* (removed with them: a secret taken out of the
    # environment stops verifying)
    from_environment: Mapped[bool] = mapped_column(default=False)
