"""indexes for the lists' one-click filters and their counts at a million rows: products by
created_at ("created today / last 7 days / this month"), transactions by status and created_at
(a status with a date range, and a status's list in its default order, newest first)

Revision ID: 0011
Revises: 0010
"""

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade():
    op.create_index("ix_products_created_at_id", "products", ["created_at", "id"])
    op.create_index("ix_transactions_status_created_at_id", "transactions", ["status", "created_at", "id"])


def downgrade():
    op.drop_index("ix_transactions_status_created_at_id", table_name="transactions")
    op.drop_index("ix_products_created_at_id", table_name="products")
