"""The database's half of the audit boundary (PostgreSQL): triggers that hold whatever SQL runs.

- ``audit_entries`` is append-only: UPDATE, DELETE and TRUNCATE are refused.
- A posted or void transaction is frozen: no UPDATE or DELETE but the void (posted -> void,
  changing only the void's own columns and the version).
- ``stock_movements`` (the stock ledger) is append-only: UPDATE and TRUNCATE are refused, and
  DELETE too but for the movements of a product being deleted (ON DELETE CASCADE: the product
  row is gone by then).
- The lines of a posted or void transaction are frozen: no INSERT, UPDATE or DELETE. A line may
  still be written with a transaction inserted posted or void by the same database transaction
  (the seed COPYs finished sales, then their lines): that is its creation, not a change. "By
  the same transaction" is the parent row's xmin being this transaction's id, and the row not
  made final by an UPDATE here (posting or voiding notes its id in the transaction-local
  setting ``adminapp.finalised_here``). A row inserted inside a savepoint carries the
  subtransaction's id, so its lines are refused: the safe side.

Ordinary triggers, not ``ENABLE ALWAYS``: a superuser's ``SET session_replication_role =
replica`` skips them, the DBA's way to repair data (README, "PostgreSQL"). The line checks are
statement-level over transition tables, so a COPY of 100,000 lines costs one join, not a
trigger call per row.

Made by ``create_all`` through these events and by migrations 0008 and 0012 (the ledger's), which
hold a copy of this SQL.
"""

from sqlalchemy import DDL, event

from ..vocabularies import TransactionStatus
from .audit import AuditEntry
from .sales import Transaction, TransactionProduct
from .stock import StockMovement

# The statuses the functions compare, as SQL literals: 'draft'.
_DRAFT, _POSTED, _VOID = (
    f"'{status}'" for status in (TransactionStatus.DRAFT, TransactionStatus.POSTED, TransactionStatus.VOID)
)

# The columns of a posted transaction that voiding it writes; every other column is frozen.
VOID_COLUMNS = ("status", "voided_at", "voided_by", "void_reason", "version")

AUDIT_ENTRIES = [
    """CREATE OR REPLACE FUNCTION audit_entries_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_entries is append-only: % refused', TG_OP
        USING HINT = 'A DBA lifts this for a repair with SET session_replication_role = replica.';
END $$""",
    "CREATE TRIGGER audit_entries_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_entries "
    "FOR EACH STATEMENT EXECUTE FUNCTION audit_entries_append_only()",
]

TRANSACTIONS = [
    f"""CREATE OR REPLACE FUNCTION transactions_final_frozen() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.status <> {_DRAFT} THEN
        -- Made (or kept) final here: its lines are frozen from now on, in this transaction too.
        PERFORM set_config('adminapp.finalised_here',
                           coalesce(current_setting('adminapp.finalised_here', true), '') || ' ' || NEW.id || ' ',
                           true);
    END IF;
    IF OLD.status = {_DRAFT} THEN
        RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
    END IF;
    IF TG_OP = 'UPDATE' AND OLD.status = {_POSTED} AND NEW.status = {_VOID}
       AND to_jsonb(NEW) - '{{{",".join(VOID_COLUMNS)}}}'::text[]
         = to_jsonb(OLD) - '{{{",".join(VOID_COLUMNS)}}}'::text[] THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'transaction % is %: % refused (only a posted one may be voided)', OLD.id, OLD.status, TG_OP
        USING HINT = 'A DBA lifts this for a repair with SET session_replication_role = replica.';
END $$""",
    "CREATE TRIGGER transactions_final_frozen BEFORE UPDATE OR DELETE ON transactions "
    "FOR EACH ROW EXECUTE FUNCTION transactions_final_frozen()",
]

# The parents of these lines that are final and were not inserted final by this transaction.
_FROZEN_PARENT = f"""SELECT t.id, t.status INTO frozen, frozen_status
          FROM {{lines}} l JOIN transactions t ON t.id = l.transaction_id
         WHERE t.status <> {_DRAFT}
           AND (t.xmin <> pg_current_xact_id()::xid
                OR strpos(coalesce(current_setting('adminapp.finalised_here', true), ''), ' ' || t.id || ' ') > 0)
         LIMIT 1;"""

TRANSACTION_PRODUCTS = [
    f"""CREATE OR REPLACE FUNCTION transaction_products_final_frozen() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    frozen bigint;
    frozen_status text;
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        {_FROZEN_PARENT.format(lines="old_lines")}
    END IF;
    IF frozen IS NULL AND TG_OP IN ('INSERT', 'UPDATE') THEN
        {_FROZEN_PARENT.format(lines="new_lines")}
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

STOCK_MOVEMENTS = [
    """CREATE OR REPLACE FUNCTION stock_movements_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND TG_LEVEL = 'ROW' AND NOT EXISTS (SELECT FROM products WHERE id = OLD.product_id) THEN
        RETURN OLD;  -- its product was deleted: the movements go with it
    END IF;
    RAISE EXCEPTION 'stock_movements is append-only: % refused', TG_OP
        USING HINT = 'A DBA lifts this for a repair with SET session_replication_role = replica.';
END $$""",
    "CREATE TRIGGER stock_movements_append_only BEFORE UPDATE OR DELETE ON stock_movements "
    "FOR EACH ROW EXECUTE FUNCTION stock_movements_append_only()",
    "CREATE TRIGGER stock_movements_no_truncate BEFORE TRUNCATE ON stock_movements "
    "FOR EACH STATEMENT EXECUTE FUNCTION stock_movements_append_only()",
]

GUARDS = {
    AuditEntry.__table__: AUDIT_ENTRIES,
    Transaction.__table__: TRANSACTIONS,
    TransactionProduct.__table__: TRANSACTION_PRODUCTS,
    StockMovement.__table__: STOCK_MOVEMENTS,
}
TRIGGERS = {
    "audit_entries": ["audit_entries_append_only"],
    "transactions": ["transactions_final_frozen"],
    "transaction_products": [
        "transaction_products_insert_frozen",
        "transaction_products_update_frozen",
        "transaction_products_delete_frozen",
    ],
    "stock_movements": ["stock_movements_append_only", "stock_movements_no_truncate"],
}
FUNCTIONS = [
    "audit_entries_append_only",
    "transactions_final_frozen",
    "transaction_products_final_frozen",
    "stock_movements_append_only",
]

for _table, _statements in GUARDS.items():
    for _statement in _statements:
        event.listen(_table, "after_create", DDL(_statement.replace("%", "%%")).execute_if(dialect="postgresql"))
