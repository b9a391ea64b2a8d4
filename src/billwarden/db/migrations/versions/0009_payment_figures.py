"""Payment figures: subscriptions' currency, yearly amount and start; stats windows' indexes;
the last credentials check of a Stripe configuration.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29
"""

import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from billwarden.subscriptions.service import recurring_amount, timestamp

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("billing_subscriptions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("currency", sa.String(length=3), nullable=True))
        batch_op.add_column(sa.Column("annual_amount", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("started_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.create_index(
            "ix_payments_paid_at", ["project_id", "mode", "paid_at"], unique=False
        )
        batch_op.create_index(
            "ix_payments_created", ["project_id", "mode", "created"], unique=False
        )
    with op.batch_alter_table("stripe_configs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("checked_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("check_valid", sa.Boolean(), nullable=True))
    _fill_subscription_figures()


def _fill_subscription_figures() -> None:
    """The new columns of the subscriptions mirrored before, from the raw objects kept."""
    connection = op.get_bind()
    table = sa.table(
        "billing_subscriptions",
        sa.column("id", sa.Uuid()),
        sa.column("raw", sa.JSON()),
        sa.column("currency", sa.String()),
        sa.column("annual_amount", sa.Float()),
        sa.column("started_at", sa.DateTime(timezone=True)),
    )
    rows = connection.execute(sa.select(table.c.id, table.c.raw)).all()
    for row_id, raw in rows:
        obj = json.loads(raw) if isinstance(raw, str) else raw
        if not isinstance(obj, dict):
            continue
        currency, annual = recurring_amount(obj)
        started = timestamp(obj.get("start_date")) or timestamp(obj.get("created"))
        connection.execute(
            sa.update(table)
            .where(table.c.id == row_id)
            .values(currency=currency, annual_amount=annual, started_at=started)
        )


def downgrade() -> None:
    with op.batch_alter_table("stripe_configs", schema=None) as batch_op:
        batch_op.drop_column("check_valid")
        batch_op.drop_column("checked_at")
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.drop_index("ix_payments_created")
        batch_op.drop_index("ix_payments_paid_at")
    with op.batch_alter_table("billing_subscriptions", schema=None) as batch_op:
        batch_op.drop_column("started_at")
        batch_op.drop_column("annual_amount")
        batch_op.drop_column("currency")
