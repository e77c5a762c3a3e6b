"""the stock ledger: stock_movements, append-only on PostgreSQL, and an opening movement for
every product there already (its stock when the ledger began), so existing stock reconciles

Revision ID: 0012
Revises: 0011
"""

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

OPENING_REASON = "stock before the ledger"

# As adminapp.models.triggers makes them for create_all (a test compares the two).
CREATE = [
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


def upgrade():
    op.create_table(
        "stock_movements",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("stock_after", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("reference", sa.String(length=200), nullable=True),
        sa.Column("transaction_id", sa.Integer(), nullable=True),
        sa.CheckConstraint(
            "kind IN ('opening', 'receipt', 'adjustment', 'sale', 'return')",
            name=op.f("ck_stock_movements_kind_known"),
        ),
        sa.CheckConstraint("quantity <> 0 OR kind = 'opening'", name=op.f("ck_stock_movements_quantity_moves")),
        sa.CheckConstraint("stock_after >= 0", name=op.f("ck_stock_movements_stock_after_not_negative")),
        sa.ForeignKeyConstraint(
            ["product_id"], ["products.id"], name=op.f("fk_stock_movements_product_id_products"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["transaction_id"], ["transactions.id"], name=op.f("fk_stock_movements_transaction_id_transactions")
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_stock_movements_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stock_movements")),
    )
    op.create_index("ix_stock_movements_product_id_id", "stock_movements", ["product_id", "id"])
    op.create_index("ix_stock_movements_transaction_id", "stock_movements", ["transaction_id"])
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        for statement in CREATE:
            op.execute(statement)
    # Every product there already opens the ledger with its stock, in one statement, in id order.
    now = datetime.now(UTC)
    bind.execute(
        sa.text(
            "INSERT INTO stock_movements (product_id, kind, quantity, stock_after, created_at, reason) "
            "SELECT id, 'opening', stock, stock, :now, :reason FROM products ORDER BY id"
        ).bindparams(
            sa.bindparam(
                "now",
                now if bind.dialect.name == "postgresql" else now.replace(tzinfo=None),
                type_=sa.DateTime(timezone=True),
            ),
            sa.bindparam("reason", OPENING_REASON),
        )
    )


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER stock_movements_no_truncate ON stock_movements")
        op.execute("DROP TRIGGER stock_movements_append_only ON stock_movements")
        op.execute("DROP FUNCTION stock_movements_append_only()")
    op.drop_index("ix_stock_movements_transaction_id", table_name="stock_movements")
    op.drop_index("ix_stock_movements_product_id_id", table_name="stock_movements")
    op.drop_table("stock_movements")
