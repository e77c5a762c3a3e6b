"""products.created_at indexed (with id, as every sorted column): the product list's one-click
"created today / last 7 days / this month" filters and their counts read it at any size

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


def downgrade():
    op.drop_index("ix_products_created_at_id", table_name="products")
