"""Invitations to join a project: an email and a role, the inviter, an expiry, a keyed hash of
the link's token, and when (and by whom) it was accepted or when it was revoked. One outstanding
invitation per project and email (a partial unique index): inviting again revokes the previous.

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OUTSTANDING = "accepted_at IS NULL AND revoked_at IS NULL"


def upgrade() -> None:
    op.create_table(
        "project_invitations",
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column(
            "role",
            sa.Enum(
                "owner",
                "admin",
                "member",
                name="project_role",
                native_enum=False,
                create_constraint=True,
                length=6,
            ),
            nullable=False,
        ),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("invited_by_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("accepted_by_id", sa.Uuid(), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["accepted_by_id"],
            ["users.id"],
            name=op.f("fk_project_invitations_accepted_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["invited_by_id"],
            ["users.id"],
            name=op.f("fk_project_invitations_invited_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_project_invitations_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_project_invitations")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_project_invitations_token_hash")),
    )
    with op.batch_alter_table("project_invitations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_project_invitations_email"), ["email"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_project_invitations_project_id"), ["project_id"], unique=False
        )
        batch_op.create_index(
            "uq_project_invitations_outstanding",
            ["project_id", "email"],
            unique=True,
            sqlite_where=sa.text(_OUTSTANDING),
            postgresql_where=sa.text(_OUTSTANDING),
        )


def downgrade() -> None:
    with op.batch_alter_table("project_invitations", schema=None) as batch_op:
        batch_op.drop_index("uq_project_invitations_outstanding")
        batch_op.drop_index(batch_op.f("ix_project_invitations_project_id"))
        batch_op.drop_index(batch_op.f("ix_project_invitations_email"))

    op.drop_table("project_invitations")
