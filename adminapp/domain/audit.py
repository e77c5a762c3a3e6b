"""The audit trail: one tamper-evident chain of entries, written in the same
database transaction as the change it describes.

Model changes are recorded by one `after_flush` listener, so every write path
(views, actions, CLI, tests) is covered without code in each. Events that are
not model changes (sign-in, sign-out, seeding) call `record` explicitly.

Each entry stores ``hash = HMAC-SHA256(key, prev_hash + canonical(entry))``, with a key
that is not in the database (see audit_chain). Appends are serialised (a PostgreSQL
advisory lock; SQLite has a single writer), so the chain never forks; `verify` walks it
in id order.
"""

import bisect
import json
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import Text, cast, event, inspect, select, text
from sqlalchemy.orm import Session

from ..models import AuditEntry, Product, Transaction, TransactionProduct, User, utcnow
from ..vocabularies import AuditAction
from . import bulk, sqlite_lock
from .audit_chain import HASHED_FIELDS, chain_hash, legacy_hash

CHAIN_LOCK_KEY = 0x41554454  # "AUDT": the advisory lock that serialises appends
# Columns whose changes are noise (bookkeeping) or secret (hashes) in an entry.
UNRECORDED = {
    "version",
    "updated_at",
    "created_at",
    "line_count",
    "password_hash",
    "failed_login_count",
    "locked_until",
    "last_login_at",
    "last_failed_at",
    "username_key",
}
AUDITED = {Product: "product", Transaction: "transaction", User: "user"}


@dataclass(frozen=True)
class Actor:
    """Who is acting, as the request (or CLI command) knows it."""

    user_id: int | None = None
    username: str | None = None
    remote_addr: str | None = None


def set_actor(session: Session, actor: Actor) -> None:
    session.info["audit_actor"] = actor


def _actor(session: Session) -> Actor:
    return session.info.get("audit_actor") or Actor(username="system")


def actor(session: Session) -> Actor:
    """Who is acting in this session, as its audit entries name them."""
    return _actor(session)


def acting_as(session: Session, user, username: str | None = None) -> Actor:
    """The current actor's address with another identity (for sign-in, before it is known)."""
    return replace(_actor(session), user_id=user.id if user else None, username=user.username if user else username)


# --- writing ---


def record(
    session: Session,
    action: AuditAction,
    obj=None,
    *,
    object_type=None,
    object_id=None,
    object_repr=None,
    changes=None,
    actor: Actor | None = None,
) -> None:
    """Append one entry now, in the session's current transaction."""
    if obj is not None:
        object_type = object_type or AUDITED.get(type(obj))
        object_id = object_id if object_id is not None else obj.id
        object_repr = object_repr or str(obj)
    append(
        session.connection(), [entry(actor or _actor(session), action, object_type, object_id, object_repr, changes)]
    )


def entry(actor: Actor, action, object_type, object_id, object_repr, changes, at: datetime | None = None) -> dict:
    """An entry's fields, ready for `append` (``at``: when it happened, by default now)."""
    return {
        "at": at or utcnow(),
        "user_id": actor.user_id,
        "username": actor.username,
        "action": action,
        "object_type": object_type,
        "object_id": None if object_id is None else str(object_id),
        "object_repr": None if object_repr is None else str(object_repr)[:255],
        "changes": jsonable(changes) if changes else None,
        "remote_addr": actor.remote_addr,
    }


def append(connection, entries: list[dict]) -> None:
    """Lock the chain head, link the entries to it and insert them in one statement."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": CHAIN_LOCK_KEY})
    else:  # SQLite: this connection must be the only writer until it commits
        sqlite_lock.take(connection)
    prev = connection.execute(select(AuditEntry.hash).order_by(AuditEntry.id.desc()).limit(1)).scalar()
    link = chain_hash()
    for entry in entries:
        entry["prev_hash"] = prev
        entry["hash"] = prev = link(prev, entry)
    bulk.insert_rows(connection, AuditEntry.__table__, entries)


def jsonable(value):
    """Values as JSON keeps them exactly: Decimal and times become strings, never floats."""
    if value is None or type(value) in _AS_THEY_ARE:  # the common case first: seeding writes millions
        return value
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [jsonable(v) for v in value]
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if value is None or isinstance(value, (str, int, bool)):
        return value
    return str(value)


_AS_THEY_ARE = {str, int, bool}


# --- verifying ---

VERIFY_BATCH = 5000  # entries `verify` reads per query


@dataclass
class Verdict:
    checked: int
    broken_id: int | None = None
    reason: str | None = None
    last_id: int | None = None  # of the last entry that verified
    # {id: (its hash, the entries up to it)} for the ids `verify` was asked to mark and passed
    marks: dict[int, tuple[str, int]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.broken_id is None


def verify(session: Session, progress=None, marks: Iterable[int] = ()) -> Verdict:
    """Walk the chain in id order; stop at the first entry that does not fit.

    Plain rows in keyset batches (``id > last``): memory stays flat, a million entries cost a
    few hundred short queries, and no ORM object is built per entry. ``marks``: ids (of
    checkpoints) whose hash and position the verdict reports, looked up once per batch that
    reaches one, not per entry."""
    table = AuditEntry.__table__
    # `changes` comes as text and is parsed here: the drivers' JSON loading costs several times
    # the parse itself (psycopg guesses the encoding of every value), a third of the walk.
    hashed = [cast(table.c.changes, Text) if name == "changes" else table.c[name] for name in HASHED_FIELDS]
    batch = select(table.c.id, table.c.prev_hash, table.c.hash, *hashed).order_by(table.c.id).limit(VERIFY_BATCH)
    connection, link = session.connection(), chain_hash()
    pending, marks = sorted(set(marks)), {}
    prev, checked, last_id, broken = None, 0, None, None
    rows = connection.execute(batch).all()  # no lower bound: any id is in the chain
    while rows:
        checked_before = checked
        for entry_id, prev_hash, stored_hash, *fields in rows:
            if prev_hash != prev:
                broken = (
                    entry_id,
                    ("its prev_hash does not match the entry before it (an entry was deleted, inserted or moved)"),
                )
                break
            entry = dict(zip(HASHED_FIELDS, fields))
            if entry["changes"] is not None:
                entry["changes"] = json.loads(entry["changes"])
            if stored_hash != link(prev, entry):
                broken = entry_id, _why_the_hash_differs(prev, entry, stored_hash)
                break
            prev, checked = stored_hash, checked + 1
        verified = rows[: checked - checked_before]
        if verified:
            last_id = verified[-1].id
        if pending and pending[0] <= rows[-1].id:
            _mark(verified, checked_before, pending, marks)
        if broken:
            return Verdict(checked, *broken, last_id=last_id, marks=marks)
        if progress:
            progress(len(rows))
        rows = connection.execute(batch.where(table.c.id > rows[-1].id)).all()
    return Verdict(checked, last_id=last_id, marks=marks)


def _why_the_hash_differs(prev_hash, entry, stored_hash) -> str:
    if stored_hash == legacy_hash(prev_hash, entry):
        return (
            "its hash is a plain SHA-256, not made with the audit key: the chain was recomputed without "
            "the key, or predates it (run `manage.py init-db`: migration 0007 keys an intact chain)"
        )
    return "its content does not match its hash under the audit key (it was altered, or hashed without the key)"


def _mark(rows, checked_before: int, pending: list[int], marks: dict) -> None:
    """Note the hash and position of each pending id among these verified rows; an id the rows
    pass without holding is missing. Noted and missing ids leave ``pending``."""
    ids = [row.id for row in rows]
    while pending and ids and pending[0] <= ids[-1]:
        wanted = pending.pop(0)
        at = bisect.bisect_left(ids, wanted)
        if ids[at] == wanted:
            marks[wanted] = (rows[at].hash, checked_before + at + 1)


def history(session: Session, object_type: str, object_id, limit: int = 500) -> list[AuditEntry]:
    return list(
        session.scalars(
            select(AuditEntry)
            .where(AuditEntry.object_type == object_type, AuditEntry.object_id == str(object_id))
            .order_by(AuditEntry.id.desc())
            .limit(limit)
        )
    )


def recent(session: Session, user_id: int | None = None, limit: int = 10) -> list[AuditEntry]:
    """The latest entries, of one user or (user_id None) of everyone."""
    stmt = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
    if user_id is not None:
        stmt = stmt.where(AuditEntry.user_id == user_id)
    return list(session.scalars(stmt))


def last_change(session: Session, object_type: str, object_id) -> AuditEntry | None:
    # No autoflush: asked while a refused (stale) change is pending, a flush would record
    # that very change first, and the entry found would name the refused user, not the other.
    with session.no_autoflush:
        return session.scalar(
            select(AuditEntry)
            .where(AuditEntry.object_type == object_type, AuditEntry.object_id == str(object_id))
            .order_by(AuditEntry.id.desc())
            .limit(1)
        )


# --- the one mechanism for model changes ---


def _changes(obj) -> dict:
    """{field: [old, new]} for the changed columns (secrets and bookkeeping left out)."""
    changes = {}
    state = inspect(obj)
    for attr in state.mapper.column_attrs:
        if attr.key in UNRECORDED:
            continue
        history = state.attrs[attr.key].history
        if history.has_changes():
            old = history.deleted[0] if history.deleted else None
            new = history.added[0] if history.added else None
            if old != new and not (old in (None, "") and new in (None, "")):  # '' and NULL read the same
                changes[attr.key] = [old, new]
    if isinstance(obj, User) and state.attrs.password_hash.history.has_changes() and state.persistent:
        changes["password"] = "changed"
    return changes


def _snapshot(obj, deleted=False) -> dict:
    """Every recorded column as [None, value] for a creation, [value, None] for a deletion."""
    values = {attr.key: getattr(obj, attr.key) for attr in inspect(obj).mapper.column_attrs}
    return creation(values, type(obj), deleted)


def creation(values: dict, model, deleted=False) -> dict:
    """The changes of a record of ``model`` created (or deleted) with these values, keyed by attribute."""
    recorded = (attr.key for attr in inspect(model).column_attrs if attr.key not in UNRECORDED)
    return {
        key: [values[key], None] if deleted else [None, values[key]] for key in recorded if values.get(key) is not None
    }


def _line_label(line: TransactionProduct) -> str:
    return line.product.sku if line.product is not None else f"product {line.product_id}"


def _replaced_product(line: TransactionProduct) -> str | None:
    """The label of the product a line sold before this flush, when it now sells another."""
    state = inspect(line)
    fk = state.attrs.product_id.history
    if not (fk.deleted and fk.added and fk.deleted[0] is not None and fk.deleted[0] != fk.added[0]):
        return None
    old = state.attrs.product.history.deleted
    return old[0].sku if old and old[0] is not None else f"product {fk.deleted[0]}"


def _line_differences(session: Session) -> dict[Transaction, dict]:
    """Per transaction: lines added, removed, and quantities changed in this flush.

    A line switched to another product is the old product's line removed and the new one's added."""
    diffs: dict[Transaction, dict] = {}

    def bucket(line, kind, item):
        txn = line.transaction or _old_transaction(line)
        if txn is not None:
            diffs.setdefault(txn, {}).setdefault(kind, []).append(item)

    for line in _in_order(session.new):
        if isinstance(line, TransactionProduct):
            bucket(line, "added", {"sku": _line_label(line), "qty": line.product_qty})
    for line in _in_order(session.deleted):
        if isinstance(line, TransactionProduct):
            bucket(line, "removed", {"sku": _line_label(line), "qty": line.product_qty})
    for line in _in_order(session.dirty):
        if isinstance(line, TransactionProduct) and session.is_modified(line) and line not in session.deleted:
            history = inspect(line).attrs.product_qty.history
            old_qty = history.deleted[0] if history.deleted else line.product_qty
            replaced = _replaced_product(line)
            if replaced is not None:
                bucket(line, "removed", {"sku": replaced, "qty": old_qty})
                bucket(line, "added", {"sku": _line_label(line), "qty": line.product_qty})
            elif history.deleted and history.added and history.deleted[0] != history.added[0]:
                bucket(line, "changed", {"sku": _line_label(line), "qty": [old_qty, line.product_qty]})
    return diffs


def _old_transaction(line):
    history = inspect(line).attrs.transaction.history
    return history.deleted[0] if history.deleted else None


def _in_order(objects) -> list:
    """A session's set of objects in a stable order (type, then id), so entries are too."""
    return sorted(objects, key=lambda obj: (type(obj).__name__, getattr(obj, "id", None) or 0))


def _entries_for_flush(session: Session) -> list[dict]:
    actor = _actor(session)
    lines = _line_differences(session)
    entries = []

    def add(action, obj, changes):
        entries.append(entry(actor, action, AUDITED[type(obj)], obj.id, str(obj), changes))

    for obj in _in_order(session.new):
        if type(obj) in AUDITED:
            changes = _snapshot(obj)
            if isinstance(obj, Transaction) and obj in lines:
                changes["lines"] = lines.pop(obj)
            add(AuditAction.CREATE, obj, changes)
    for obj in _in_order(session.dirty):
        if type(obj) not in AUDITED or obj in session.deleted or not session.is_modified(obj):
            continue
        changes = _changes(obj)
        if isinstance(obj, Transaction):  # a draft edited (post and void record their own entries)
            if obj in lines:
                changes["lines"] = lines.pop(obj)
            add(AuditAction.UPDATE, obj, changes)
        elif isinstance(obj, User) and "password" in changes and set(changes) <= {"password", "must_change_password"}:
            add(AuditAction.PASSWORD_CHANGE, obj, changes)
        elif changes:
            add(AuditAction.UPDATE, obj, changes)
    for obj in _in_order(session.deleted):
        if type(obj) in AUDITED:
            changes = _snapshot(obj, deleted=True)
            if isinstance(obj, Transaction):
                changes["lines"] = [{"sku": _line_label(line), "qty": line.product_qty} for line in obj.lines]
                lines.pop(obj, None)
            add(AuditAction.DELETE, obj, changes)
    for txn, diff in lines.items():  # lines changed on a transaction whose own columns did not
        if txn not in session.deleted:
            add(AuditAction.UPDATE, txn, {"lines": diff})
    return entries


def install(sessions) -> None:
    """Record the flushes of the sessions of ``sessions`` (a sessionmaker or scoped_session)."""
    if not event.contains(sessions, "after_flush", _record_flush):
        event.listen(sessions, "after_flush", _record_flush)


def _record_flush(session, flush_context):
    # Runs inside the flush: ids are assigned and the attribute history is still there.
    with session.no_autoflush:
        entries = _entries_for_flush(session)
    if entries:
        append(session.connection(), entries)
