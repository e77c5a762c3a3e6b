"""audit_entries: re-key the chain, from plain SHA-256 to HMAC-SHA256 with AUDIT_KEY

The existing chain is first verified with the old rule; a chain that does not verify stops the
upgrade (nothing is changed: someone must find out why first). Then every entry's hash and
prev_hash are rewritten in id order, in batches (constant memory), all in this migration's
transaction, and one entry "audit_keyed" is appended that records the old chain's head hash, last
id and count: what an auditor noted from the unkeyed chain can still be compared. An empty table
is left as it is. The key is the app's AUDIT_KEY (Flask-Migrate runs migrations in the app's context).

Revision ID: 0007
Revises: 0006
"""

import json
from datetime import datetime, timezone

import sqlalchemy as sa
from alembic import op
from flask import current_app

from adminapp.domain.audit_chain import HASHED_FIELDS, chain_hash_for, legacy_hash
from adminapp.models.types import UTCDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

BATCH = 5000
CHAIN_LOCK_KEY = 0x41554454  # audit.CHAIN_LOCK_KEY: the app's appends wait for the rewrite

# The columns as of this revision; `at` read and written as the app does (UTC on SQLite too).
entries = sa.table(
    "audit_entries",
    sa.column("id", sa.Integer),
    sa.column("at", UTCDateTime),
    sa.column("user_id", sa.Integer),
    sa.column("username", sa.String),
    sa.column("action", sa.String),
    sa.column("object_type", sa.String),
    sa.column("object_id", sa.String),
    sa.column("object_repr", sa.String),
    sa.column("changes", sa.JSON),
    sa.column("remote_addr", sa.String),
    sa.column("prev_hash", sa.String),
    sa.column("hash", sa.String),
)


class ChainNotIntact(RuntimeError):
    pass


def upgrade():
    keyed = chain_hash_for(current_app.config["AUDIT_KEY"])
    head = _rehash(
        op.get_bind(),
        legacy_hash,
        keyed,
        "SHA-256",
        "`manage.py audit-verify` of the release before this one names the broken entry",
    )
    if head is not None:
        _append_keyed_entry(op.get_bind(), keyed, head)


def downgrade():
    """Back to plain SHA-256 (for the release before this one), the keyed chain verified first."""
    _rehash(
        op.get_bind(),
        chain_hash_for(current_app.config["AUDIT_KEY"]),
        legacy_hash,
        "HMAC with this AUDIT_KEY",
        "`manage.py audit-verify` names the broken entry",
    )


def _rehash(connection, old_rule, new_rule, old_name, where_to_look, batch=BATCH):
    """Verify the chain under ``old_rule`` while rewriting it under ``new_rule``; return the head
    (last id, old hash, new hash, count), or None for an empty chain. Raises before the
    transaction commits when an entry does not verify, so nothing is changed."""
    if connection.dialect.name == "postgresql":
        connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": CHAIN_LOCK_KEY})
    hashed = [sa.cast(entries.c.changes, sa.Text) if name == "changes" else entries.c[name] for name in HASHED_FIELDS]
    read = sa.select(entries.c.id, entries.c.prev_hash, entries.c.hash, *hashed).order_by(entries.c.id).limit(batch)
    update = (
        entries.update()
        .where(entries.c.id == sa.bindparam("entry_id"))
        .values(prev_hash=sa.bindparam("new_prev"), hash=sa.bindparam("new_hash"))
    )
    old_prev = new_prev = last_id = None
    count, rows = 0, connection.execute(read).all()
    while rows:
        rewritten = []
        for entry_id, prev_hash, stored_hash, *fields in rows:
            entry = dict(zip(HASHED_FIELDS, fields))
            if entry["changes"] is not None:
                entry["changes"] = json.loads(entry["changes"])
            if prev_hash != old_prev or stored_hash != old_rule(old_prev, entry):
                raise ChainNotIntact(
                    f"audit_entries: entry #{entry_id} does not verify under {old_name}, so the chain was not "
                    f"rewritten and nothing was changed. Find out why first ({where_to_look}): only an intact "
                    f"chain is rewritten."
                )
            new_hash = new_rule(new_prev, entry)
            rewritten.append({"entry_id": entry_id, "new_prev": new_prev, "new_hash": new_hash})
            old_prev, new_prev, last_id, count = stored_hash, new_hash, entry_id, count + 1
        # Row by row (executemany): one UPDATE of the batch through unnest() was no faster, the
        # time goes to the indexes, each of which gets a new entry per row (~30 s per 200,000 on PG).
        connection.execute(update, rewritten)
        rows = connection.execute(read.where(entries.c.id > rows[-1].id)).all()
    return None if last_id is None else (last_id, old_prev, new_prev, count)


def _append_keyed_entry(connection, keyed, head):
    """The first keyed entry after the rewritten ones: the old chain's head, kept on record."""
    last_id, legacy_head_hash, prev, count = head
    entry = {
        "at": datetime.now(timezone.utc),
        "user_id": None,
        "username": "system",
        "action": "audit_keyed",
        "object_type": None,
        "object_id": None,
        "object_repr": None,
        "remote_addr": None,
        "changes": {"legacy_last_id": last_id, "legacy_head_hash": legacy_head_hash, "legacy_count": count},
    }
    connection.execute(entries.insert().values(**entry, prev_hash=prev, hash=keyed(prev, entry)))
