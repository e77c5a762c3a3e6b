"""indexes for lists at a million rows: every sortable column with id as tie-breaker, trigram
search on PostgreSQL, the dashboard's drafts and posted sales; transactions.line_count stored

Revision ID: 0005
Revises: 0004
"""

from alembic import op
import sqlalchemy as sa

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# table -> the single indexes that composite ones below replace
REPLACED = {
    "products": ["ix_products_name"],
    "transactions": ["ix_transactions_created_at"],
    "audit_entries": [
        "ix_audit_entries_at",
        "ix_audit_entries_action",
        "ix_audit_entries_user_id",
        "ix_audit_entries_object",
    ],
}
SORTED = {  # table -> the column lists sorted by, each followed by id
    "products": [["name"], ["price"], ["stock"], ["is_active"]],
    "transactions": [["created_at"], ["status"], ["total"], ["line_count"], ["created_by", "created_at"]],
    "audit_entries": [["at"], ["username"], ["action"], ["object_type"], ["object_id"], ["user_id"]],
}
TRIGRAM = {
    "products": ["sku", "name"],
    "transactions": ["note"],
    "audit_entries": ["username", "action", "object_repr"],
}


def upgrade():
    with op.batch_alter_table("transactions") as batch_op:
        batch_op.add_column(sa.Column("line_count", sa.Integer(), nullable=False, server_default="0"))
    op.execute(
        "UPDATE transactions SET line_count = (SELECT count(*) FROM transaction_products "
        "WHERE transaction_products.transaction_id = transactions.id)"
    )

    for table, names in REPLACED.items():
        for name in names:
            op.drop_index(name, table_name=table)
    for table, column_lists in SORTED.items():
        for columns in column_lists:
            op.create_index(f"ix_{table}_{'_'.join(columns)}_id", table, [*columns, "id"])
    op.create_index(
        "ix_products_active_stock",
        "products",
        ["stock", "sku"],
        postgresql_where=sa.text("is_active"),
        sqlite_where=sa.text("is_active"),
    )
    op.create_index(
        "ix_transactions_drafts",
        "transactions",
        ["id"],
        postgresql_where=sa.text("status = 'draft'"),
        sqlite_where=sa.text("status = 'draft'"),
    )
    op.create_index(
        "ix_transactions_posted_at",
        "transactions",
        ["posted_at"],
        postgresql_include=["total"],
        postgresql_where=sa.text("status = 'posted'"),
        sqlite_where=sa.text("status = 'posted'"),
    )

    if op.get_bind().dialect.name == "postgresql":
        # SQLite cannot add a constraint to a table without rebuilding it (and its lines with it).
        op.create_check_constraint("posted_after_created", "transactions", "posted_at >= created_at")
        op.create_check_constraint("voided_after_posted", "transactions", "voided_at >= posted_at")
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        for table, columns in TRIGRAM.items():
            for column in columns:
                op.create_index(
                    f"ix_{table}_{column}_trgm",
                    table,
                    [column],
                    postgresql_using="gin",
                    postgresql_ops={column: "gin_trgm_ops"},
                )


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        for table, columns in TRIGRAM.items():
            for column in columns:
                op.drop_index(f"ix_{table}_{column}_trgm", table_name=table)
        op.drop_constraint("ck_transactions_voided_after_posted", "transactions")
        op.drop_constraint("ck_transactions_posted_after_created", "transactions")
    op.drop_index("ix_transactions_posted_at", table_name="transactions")
    op.drop_index("ix_transactions_drafts", table_name="transactions")
    op.drop_index("ix_products_active_stock", table_name="products")
    for table, column_lists in SORTED.items():
        for columns in column_lists:
            op.drop_index(f"ix_{table}_{'_'.join(columns)}_id", table_name=table)
    op.create_index("ix_products_name", "products", ["name"])
    op.create_index("ix_transactions_created_at", "transactions", ["created_at"])
    op.create_index("ix_audit_entries_at", "audit_entries", ["at"])
    op.create_index("ix_audit_entries_action", "audit_entries", ["action"])
    op.create_index("ix_audit_entries_user_id", "audit_entries", ["user_id"])
    op.create_index("ix_audit_entries_object", "audit_entries", ["object_type", "object_id"])
    with op.batch_alter_table("transactions") as batch_op:
        batch_op.drop_column("line_count")
