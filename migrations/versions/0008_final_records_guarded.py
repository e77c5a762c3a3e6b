"""audit_entries append-only; posted and void transactions and their lines frozen, but for
the void (PostgreSQL triggers; SQLite is left as it is)

Revision ID: 0008
Revises: 0007
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

# As adminapp.models.triggers makes them for create_all (a test compares the two).
CREATE = [
    """CREATE OR REPLACE FUNCTION audit_entries_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_entries is append-only: % refused', TG_OP
        USING HINT = 'A DBA lifts this for a repair with SET session_replication_role = replica.';
END $$""",
    "CREATE TRIGGER audit_entries_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_entries "
    "FOR EACH STATEMENT EXECUTE FUNCTION audit_entries_append_only()",
    """CREATE OR REPLACE FUNCTION transactions_final_frozen() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.status <> 'draft' THEN
        -- Made (or kept) final here: its lines are frozen from now on, in this transaction too.
        PERFORM set_config('adminapp.finalised_here',
                           coalesce(current_setting('adminapp.finalised_here', true), '') || ' ' || NEW.id || ' ',
                           true);
    END IF;
    IF OLD.status = 'draft' THEN
        RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
    END IF;
    IF TG_OP = 'UPDATE' AND OLD.status = 'posted' AND NEW.status = 'void'
       AND to_jsonb(NEW) - '{status,voided_at,voided_by,void_reason,version}'::text[]
         = to_jsonb(OLD) - '{status,voided_at,voided_by,void_reason,version}'::text[] THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'transaction % is %: % refused (only a posted one may be voided)', OLD.id, OLD.status, TG_OP
        USING HINT = 'A DBA lifts this for a repair with SET session_replication_role = replica.';
END $$""",
    "CREATE TRIGGER transactions_final_frozen BEFORE UPDATE OR DELETE ON transactions "
    "FOR EACH ROW EXECUTE FUNCTION transactions_final_frozen()",
    """CREATE OR REPLACE FUNCTION transaction_products_final_frozen() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    frozen bigint;
    frozen_status text;
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        SELECT t.id, t.status INTO frozen, frozen_status
          FROM old_lines l JOIN transactions t ON t.id = l.transaction_id
         WHERE t.status <> 'draft'
           AND (t.xmin <> pg_current_xact_id()::xid
                OR strpos(coalesce(current_setting('adminapp.finalised_here', true), ''), ' ' || t.id || ' ') > 0)
         LIMIT 1;
    END IF;
    IF frozen IS NULL AND TG_OP IN ('INSERT', 'UPDATE') THEN
        SELECT t.id, t.status INTO frozen, frozen_status
          FROM new_lines l JOIN transactions t ON t.id = l.transaction_id
         WHERE t.status <> 'draft'
           AND (t.xmin <> pg_current_xact_id()::xid
                OR strpos(coalesce(current_setting('adminapp.finalised_here', true), ''), ' ' || t.id || ' ') > 0)
         LIMIT 1;
    END IF;
    IF frozen IS NOT NULL THEN
        RAISE EXCEPTION 'the lines of transaction % are %: % refused', frozen, frozen_status, TG_OP
            USING HINT = 'A DBA lifts this for a repair with SET session_replication_role = replica.';
    END IF;
    RETURN NULL;
END $$""",
    "CREATE TRIGGER transaction_products_insert_frozen AFTER INSERT ON transaction_products "
    "REFERENCING NEW TABLE AS new_lines FOR EACH STATEMENT EXECUTE FUNCTION transaction_products_final_frozen()",
    "CREATE TRIGGER transaction_products_update_frozen AFTER UPDATE ON transaction_products "
    "REFERENCING OLD TABLE AS old_lines NEW TABLE AS new_lines "
    "FOR EACH STATEMENT EXECUTE FUNCTION transaction_products_final_frozen()",
    "CREATE TRIGGER transaction_products_delete_frozen AFTER DELETE ON transaction_products "
    "REFERENCING OLD TABLE AS old_lines FOR EACH STATEMENT EXECUTE FUNCTION transaction_products_final_frozen()",
]
TRIGGERS = {
    "audit_entries": ["audit_entries_append_only"],
    "transactions": ["transactions_final_frozen"],
    "transaction_products": [
        "transaction_products_insert_frozen",
        "transaction_products_update_frozen",
        "transaction_products_delete_frozen",
    ],
}
FUNCTIONS = ["audit_entries_append_only", "transactions_final_frozen", "transaction_products_final_frozen"]


def upgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    for statement in CREATE:
        op.execute(statement)


def downgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, triggers in TRIGGERS.items():
        for trigger in triggers:
            op.execute(f"DROP TRIGGER {trigger} ON {table}")
    for function in FUNCTIONS:
        op.execute(f"DROP FUNCTION {function}()")
