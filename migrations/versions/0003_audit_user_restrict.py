"""audit_entries.user_id: refuse deleting a user on record (no SET NULL: the id is hashed)

Revision ID: 0003
Revises: 0002
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

FK = "fk_audit_entries_user_id_users"


def upgrade():
    with op.batch_alter_table("audit_entries", schema=None) as batch_op:
        batch_op.drop_constraint(FK, type_="foreignkey")
        batch_op.create_foreign_key(FK, "users", ["user_id"], ["id"])


def downgrade():
    with op.batch_alter_table("audit_entries", schema=None) as batch_op:
        batch_op.drop_constraint(FK, type_="foreignkey")
        batch_op.create_foreign_key(FK, "users", ["user_id"], ["id"], ondelete="SET NULL")
