"""Catalog: versions of each project's catalog, and the Stripe prices lookup keys resolved to.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _mode() -> sa.Enum:
    return sa.Enum("test", "live", name="mode", native_enum=False, create_constraint=True, length=4)


def _timestamp(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "catalog_versions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("document", sa.JSON(), nullable=False),
        _timestamp("created_at"),
        sa.Column("loaded_by_id", sa.Uuid(), nullable=True),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_catalog_versions_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["loaded_by_id"],
            ["users.id"],
            name=op.f("fk_catalog_versions_loaded_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_catalog_versions")),
        sa.UniqueConstraint(
            "project_id", "version", name=op.f("uq_catalog_versions_project_id_version")
        ),
    )
    op.create_index(op.f("ix_catalog_versions_project_id"), "catalog_versions", ["project_id"])
    op.create_table(
        "catalog_prices",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("mode", _mode(), nullable=False),
        sa.Column("lookup_key", sa.String(length=200), nullable=False),
        sa.Column("price_id", sa.String(length=255), nullable=False),
        _timestamp("resolved_at"),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_catalog_prices_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_catalog_prices")),
        sa.UniqueConstraint(
            "project_id",
            "mode",
            "lookup_key",
            name=op.f("uq_catalog_prices_project_id_mode_lookup_key"),
        ),
    )
    op.create_index(op.f("ix_catalog_prices_project_id"), "catalog_prices", ["project_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_catalog_prices_project_id"), table_name="catalog_prices")
    op.drop_table("catalog_prices")
    op.drop_index(op.f("ix_catalog_versions_project_id"), table_name="catalog_versions")
    op.drop_table("catalog_versions")
