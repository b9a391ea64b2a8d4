"""The outbox of usage events for Stripe's meters.

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "meter_forwards",
        sa.Column("event_id", sa.String(length=255), nullable=False),
        sa.Column("event_name", sa.String(length=100), nullable=False),
        sa.Column("subject_type", sa.String(length=20), nullable=False),
        sa.Column("subject_id", sa.String(length=255), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("timestamp", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=9), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("claim_token", sa.Uuid(), nullable=True),
        sa.Column("forwarded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(length=2000), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column(
            "mode",
            sa.Enum(
                "test", "live", name="mode", native_enum=False, create_constraint=True, length=4
            ),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_meter_forwards_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_meter_forwards")),
        sa.UniqueConstraint(
            "project_id",
            "mode",
            "event_id",
            name=op.f("uq_meter_forwards_project_id_mode_event_id"),
        ),
    )
    with op.batch_alter_table("meter_forwards", schema=None) as batch_op:
        batch_op.create_index("ix_meter_forwards_due", ["status", "next_attempt_at"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_meter_forwards_project_id"), ["project_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("meter_forwards", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_meter_forwards_project_id"))
        batch_op.drop_index("ix_meter_forwards_due")

    op.drop_table("meter_forwards")
