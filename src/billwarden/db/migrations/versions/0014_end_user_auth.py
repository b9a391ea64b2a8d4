"""How each project accepts its end users' tokens: its own HS256 secret (the default, no row), a
shared HS256 secret, or an identity provider's JWKS; which claims name the user, organization,
email and roles; a cookie to read; the origins allowed to use it; the seeds' admin roles; whether
`?test_mode=` picks the mode of tokens without a mode claim; whether the environment wrote it.

Cached by every process (like Stripe configurations): its changes bump the read-cache generation.

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "end_user_auth",
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column(
            "method",
            sa.Enum(
                "project_secret",
                "shared_secret",
                "jwks",
                name="end_user_auth_method",
                native_enum=False,
                create_constraint=True,
                length=14,
            ),
            nullable=False,
        ),
        sa.Column("shared_secret_ciphertext", sa.Text(), nullable=True),
        sa.Column("jwks_url", sa.String(length=2000), nullable=True),
        sa.Column("issuer", sa.String(length=2000), nullable=True),
        sa.Column("audience", sa.String(length=2000), nullable=True),
        sa.Column("user_claim", sa.String(length=100), nullable=False),
        sa.Column("organization_claim", sa.String(length=100), nullable=False),
        sa.Column("email_claim", sa.String(length=100), nullable=False),
        sa.Column("roles_claim", sa.String(length=100), nullable=False),
        sa.Column("cookie_name", sa.String(length=100), nullable=True),
        sa.Column("allowed_origins", sa.JSON(), nullable=False),
        sa.Column("admin_roles", sa.JSON(), nullable=False),
        sa.Column("mode_from_query", sa.Boolean(), nullable=False),
        sa.Column("from_environment", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_end_user_auth_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("project_id", name=op.f("pk_end_user_auth")),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE TRIGGER billwarden_cache_end_user_auth AFTER INSERT OR UPDATE OR DELETE "
            "ON end_user_auth FOR EACH STATEMENT EXECUTE FUNCTION billwarden_cache_changed()"
        )
        return
    bump = "UPDATE cache_generations SET generation = generation + 1 WHERE id = 1;"
    for action in ("INSERT", "UPDATE", "DELETE"):
        op.execute(
            f"CREATE TRIGGER billwarden_cache_end_user_auth_{action.lower()} AFTER {action} "
            f"ON end_user_auth BEGIN {bump} END"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS billwarden_cache_end_user_auth ON end_user_auth")
    else:
        for action in ("insert", "update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS billwarden_cache_end_user_auth_{action}")
    op.drop_table("end_user_auth")
