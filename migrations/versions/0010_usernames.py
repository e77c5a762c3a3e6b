"""usernames unique whatever their case or width (users.username_key); sign-in failures for
names without an account kept under a keyed hash, and forgotten; failures per network address

Revision ID: 0010
Revises: 0009
"""

import unicodedata

from alembic import op
import sqlalchemy as sa

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def username_key(name):
    """As adminapp.domain.usernames.username_key makes it (copied: a migration must not change
    when the app's code does)."""
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", name).strip().casefold())


def upgrade():
    # The clash check comes before any change: SQLite's DDL is not undone by a failed migration.
    connection = op.get_bind()
    users = sa.table(
        "users", sa.column("id", sa.Integer), sa.column("username", sa.String), sa.column("username_key", sa.String)
    )
    by_key = {}
    for user_id, username in connection.execute(sa.select(users.c.id, users.c.username).order_by(users.c.id)):
        by_key.setdefault(username_key(username), []).append((user_id, username))
    clashes = [[name for _, name in users_of_key] for users_of_key in by_key.values() if len(users_of_key) > 1]
    if clashes:
        # Merging two accounts would merge their rights and their record: a person decides.
        listed = "; ".join(", ".join(repr(name) for name in names) for names in clashes)
        raise RuntimeError(
            f"These usernames differ only in letter case or width, and usernames are now the same name "
            f"whatever their case: {listed}. Rename all but one of each group (or delete the unused "
            f"ones), then run the upgrade again. Nothing was changed."
        )
    with op.batch_alter_table("users") as batch_op:
        batch_op.add_column(sa.Column("username_key", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("last_failed_at", sa.DateTime(timezone=True), nullable=True))

    for key, [(user_id, _)] in by_key.items():
        connection.execute(users.update().where(users.c.id == user_id).values(username_key=key))

    with op.batch_alter_table("users") as batch_op:
        batch_op.alter_column("username_key", existing_type=sa.String(length=255), nullable=False)
        batch_op.create_unique_constraint(batch_op.f("uq_users_username_key"), ["username_key"])

    # The old rows are keyed by the text typed (perhaps a password): dropped, not converted.
    # They are sign-in failures of at most the lockout window; a lock held now is lifted.
    op.drop_table("login_failures")
    op.create_table(
        "login_failures",
        sa.Column("name_hash", sa.String(length=64), nullable=False),
        sa.Column("failed_count", sa.Integer(), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_failed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name_hash", name=op.f("pk_login_failures")),
    )
    op.create_index(op.f("ix_login_failures_last_failed_at"), "login_failures", ["last_failed_at"])
    op.create_table(
        "login_failures_by_address",
        sa.Column("address", sa.String(length=64), nullable=False),
        sa.Column("failed_count", sa.Integer(), nullable=False),
        sa.Column("window_started_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("address", name=op.f("pk_login_failures_by_address")),
    )
    op.create_index(
        op.f("ix_login_failures_by_address_window_started_at"), "login_failures_by_address", ["window_started_at"]
    )


def downgrade():
    op.drop_index(op.f("ix_login_failures_by_address_window_started_at"), table_name="login_failures_by_address")
    op.drop_table("login_failures_by_address")
    op.drop_index(op.f("ix_login_failures_last_failed_at"), table_name="login_failures")
    op.drop_table("login_failures")
    op.create_table(
        "login_failures",
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("failed_count", sa.Integer(), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("username", name=op.f("pk_login_failures")),
    )
    with op.batch_alter_table("users") as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_users_username_key"), type_="unique")
        batch_op.drop_column("last_failed_at")
        batch_op.drop_column("username_key")
