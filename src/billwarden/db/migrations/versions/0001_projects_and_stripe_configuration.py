"""Projects and their per-mode Stripe configuration.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _mode() -> sa.Enum:
    return sa.Enum("test", "live", name="mode", native_enum=False, create_constraint=True, length=4)


def _timestamp(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "projects",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("slug", sa.String(length=100), nullable=False),
        _timestamp("created_at"),
        _timestamp("updated_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_projects")),
        sa.UniqueConstraint("slug", name=op.f("uq_projects_slug")),
    )
    op.create_table(
        "stripe_configs",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("mode", _mode(), nullable=False),
        sa.Column("secret_key_ciphertext", sa.Text(), nullable=False),
        sa.Column("secret_key_hint", sa.String(length=64), nullable=False),
        sa.Column("publishable_key", sa.String(length=255), nullable=True),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        _timestamp("deactivated_at", nullable=True),
        _timestamp("created_at"),
        _timestamp("updated_at"),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_stripe_configs_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stripe_configs")),
    )
    op.create_index(op.f("ix_stripe_configs_project_id"), "stripe_configs", ["project_id"])
    op.create_index(
        "uq_stripe_configs_active",
        "stripe_configs",
        ["project_id", "mode"],
        unique=True,
        sqlite_where=sa.text("is_active"),
        postgresql_where=sa.text("is_active"),
    )
    op.create_table(
        "stripe_webhook_secrets",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("config_id", sa.Uuid(), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("mode", _mode(), nullable=False),
        sa.Column("secret_ciphertext", sa.Text(), nullable=False),
        sa.Column("secret_hint", sa.String(length=64), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        _timestamp("created_at"),
        _timestamp("deactivated_at", nullable=True),
        sa.ForeignKeyConstraint(
            ["config_id"],
            ["stripe_configs.id"],
            name=op.f("fk_stripe_webhook_secrets_config_id_stripe_configs"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_stripe_webhook_secrets_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stripe_webhook_secrets")),
    )
    op.create_index(
        op.f("ix_stripe_webhook_secrets_config_id"), "stripe_webhook_secrets", ["config_id"]
    )
    op.create_index(
        op.f("ix_stripe_webhook_secrets_project_id"), "stripe_webhook_secrets", ["project_id"]
    )


def downgrade() -> None:
    op.drop_table("stripe_webhook_secrets")
    op.drop_index("uq_stripe_configs_active", table_name="stripe_configs")
    op.drop_table("stripe_configs")
    op.drop_table("projects")
