"""The read cache on PostgreSQL forgets one subject's entitlement when its snapshot changes, not
every cached answer: a row trigger on `entitlements` notifies `billwarden_cache` with the
subject (`entitlements:<project>:<mode>:<subject type>:<subject id>`) instead of the table's
statement trigger, which told every process to drop everything (a checkout starting, a renewal,
any snapshot written). SQLite keeps its one generation row: any change there still drops all.

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-29
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        """
        CREATE FUNCTION billwarden_cache_entitlement_changed() RETURNS trigger AS $$
        BEGIN
            IF TG_OP <> 'INSERT' THEN
                PERFORM pg_notify('billwarden_cache', 'entitlements:' || OLD.project_id || ':'
                    || OLD.mode || ':' || OLD.subject_type || ':' || OLD.subject_id);
            END IF;
            IF TG_OP <> 'DELETE' THEN
                PERFORM pg_notify('billwarden_cache', 'entitlements:' || NEW.project_id || ':'
                    || NEW.mode || ':' || NEW.subject_type || ':' || NEW.subject_id);
            END IF;
            RETURN NULL;
        END;
        $$ LANGUAGE plpgsql
        """
    )
    op.execute("DROP TRIGGER billwarden_cache_entitlements ON entitlements")
    op.execute(
        "CREATE TRIGGER billwarden_cache_entitlements_rows AFTER INSERT OR UPDATE OR DELETE "
        "ON entitlements FOR EACH ROW EXECUTE FUNCTION billwarden_cache_entitlement_changed()"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER billwarden_cache_entitlements_rows ON entitlements")
    op.execute("DROP FUNCTION billwarden_cache_entitlement_changed()")
    op.execute(
        "CREATE TRIGGER billwarden_cache_entitlements AFTER INSERT OR UPDATE OR DELETE "
        "ON entitlements FOR EACH STATEMENT EXECUTE FUNCTION billwarden_cache_changed()"
    )
