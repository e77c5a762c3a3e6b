"""products: on SQLite, an FTS5 trigram index of sku and name for the list's search (PostgreSQL
has trigram indexes since 0005)

Revision ID: 0006
Revises: 0005
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# As adminapp.models.indexes.SearchIndex('products', ('sku', 'name')) makes it for create_all.
CREATE = [
    "CREATE VIRTUAL TABLE products_fts USING fts5(sku, name, content='products', content_rowid='id', "
    "tokenize='trigram')",
    "CREATE TRIGGER products_fts_insert AFTER INSERT ON products BEGIN "
    "INSERT INTO products_fts(rowid, sku, name) VALUES (new.id, new.sku, new.name); END",
    "CREATE TRIGGER products_fts_delete AFTER DELETE ON products BEGIN "
    "INSERT INTO products_fts(products_fts, rowid, sku, name) VALUES ('delete', old.id, old.sku, old.name); END",
    "CREATE TRIGGER products_fts_update AFTER UPDATE OF sku, name ON products BEGIN "
    "INSERT INTO products_fts(products_fts, rowid, sku, name) VALUES ('delete', old.id, old.sku, old.name); "
    "INSERT INTO products_fts(rowid, sku, name) VALUES (new.id, new.sku, new.name); END",
]


def upgrade():
    if op.get_bind().dialect.name != "sqlite":
        return
    for statement in CREATE:
        op.execute(statement)
    op.execute("INSERT INTO products_fts(products_fts) VALUES ('rebuild')")  # the products there already


def downgrade():
    if op.get_bind().dialect.name != "sqlite":
        return
    for trigger in ("insert", "delete", "update"):
        op.execute(f"DROP TRIGGER products_fts_{trigger}")
    op.execute("DROP TABLE products_fts")
