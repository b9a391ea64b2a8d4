"""Webhooks: the inbox of verified Stripe events, once per (project, mode, event id).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _mode() -> sa.Enum:
    return sa.Enum("test", "live", name="mode", native_enum=False, create_constraint=True, length=4)


def _status() -> sa.Enum:
    return sa.Enum(
        "pending",
        "processed",
        "ignored",
        "failed",
        name="inbox_status",
        native_enum=False,
        create_constraint=True,
        length=9,
    )


def _timestamp(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "webhook_events",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("mode", _mode(), nullable=False),
        sa.Column("event_id", sa.String(length=255), nullable=False),
        sa.Column("event_type", sa.String(length=255), nullable=False),
        sa.Column("object_id", sa.String(length=255), nullable=True),
        _timestamp("event_created"),
        sa.Column("payload", sa.Text(), nullable=False),
        _timestamp("received_at"),
        sa.Column("status", _status(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        _timestamp("next_attempt_at", nullable=True),
        _timestamp("claimed_until", nullable=True),
        sa.Column("claim_token", sa.Uuid(), nullable=True),
        _timestamp("processed_at", nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_webhook_events_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_events")),
        sa.UniqueConstraint(
            "project_id",
            "mode",
            "event_id",
            name=op.f("uq_webhook_events_project_id_mode_event_id"),
        ),
    )
    op.create_index(op.f("ix_webhook_events_project_id"), "webhook_events", ["project_id"])
    op.create_index("ix_webhook_events_due", "webhook_events", ["status", "next_attempt_at"])


def downgrade() -> None:
    op.drop_index("ix_webhook_events_due", table_name="webhook_events")
    op.drop_index(op.f("ix_webhook_events_project_id"), table_name="webhook_events")
    op.drop_table("webhook_events")
