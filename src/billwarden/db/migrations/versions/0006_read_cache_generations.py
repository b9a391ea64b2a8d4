"""Read caches: what tells each process that cached answers may be stale.

A change to what the caches hold (entitlement snapshots and the catalogs behind free answers; API
keys' activation; projects; Stripe configurations and webhook secrets) bumps a generation: on
PostgreSQL a trigger sends `NOTIFY billwarden_cache` (delivered at commit), on SQLite a trigger
increments the one row of `cache_generations`, which each process reads before trusting its
cache.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# the tables whose changes make cached answers stale; api_keys only when a key is (de)activated
WATCHED = (
    "entitlements",
    "projects",
    "stripe_configs",
    "stripe_webhook_secrets",
    "catalog_versions",
    "catalog_prices",
)


def upgrade() -> None:
    op.create_table(
        "cache_generations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("generation", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cache_generations")),
    )
    op.execute("INSERT INTO cache_generations (id, generation) VALUES (1, 0)")
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            """
            CREATE FUNCTION billwarden_cache_changed() RETURNS trigger AS $$
            BEGIN
                PERFORM pg_notify('billwarden_cache', TG_TABLE_NAME);
                RETURN NULL;
            END;
            $$ LANGUAGE plpgsql
            """
        )
        for table in WATCHED:
            op.execute(
                f"CREATE TRIGGER billwarden_cache_{table} AFTER INSERT OR UPDATE OR DELETE "
                f"ON {table} FOR EACH STATEMENT EXECUTE FUNCTION billwarden_cache_changed()"
            )
        op.execute(
            "CREATE TRIGGER billwarden_cache_api_keys AFTER UPDATE OF is_active OR DELETE "
            "ON api_keys FOR EACH STATEMENT EXECUTE FUNCTION billwarden_cache_changed()"
        )
        return
    bump = "UPDATE cache_generations SET generation = generation + 1 WHERE id = 1;"
    for table in WATCHED:
        for action in ("INSERT", "UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER billwarden_cache_{table}_{action.lower()} AFTER {action} "
                f"ON {table} BEGIN {bump} END"
            )
    op.execute(
        "CREATE TRIGGER billwarden_cache_api_keys_update AFTER UPDATE OF is_active ON api_keys "
        f"BEGIN {bump} END"
    )
    op.execute(
        f"CREATE TRIGGER billwarden_cache_api_keys_delete AFTER DELETE ON api_keys BEGIN {bump} END"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in (*WATCHED, "api_keys"):
            op.execute(f"DROP TRIGGER IF EXISTS billwarden_cache_{table} ON {table}")
        op.execute("DROP FUNCTION IF EXISTS billwarden_cache_changed()")
    else:
        for table in WATCHED:
            for action in ("insert", "update", "delete"):
                op.execute(f"DROP TRIGGER IF EXISTS billwarden_cache_{table}_{action}")
        op.execute("DROP TRIGGER IF EXISTS billwarden_cache_api_keys_update")
        op.execute("DROP TRIGGER IF EXISTS billwarden_cache_api_keys_delete")
    op.drop_table("cache_generations")
