"""Sales transactions: save a draft, post it, void it.

Every operation works on the session it is given, locks what it reads for a
decision, and never commits: the caller (a view or a CLI command) commits once.
"""

from collections import Counter
from datetime import datetime
from decimal import Decimal

from flask_babel import gettext
from sqlalchemy import Integer, column, event, inspect, select, update, values
from sqlalchemy.orm import Session, contains_eager
from sqlalchemy.orm.attributes import set_committed_value

from ..formatting import local_time, number
from ..labels import status_label
from ..models import Product, Transaction, TransactionProduct, User, utcnow
from ..vocabularies import AuditAction, MovementKind, TransactionStatus
from . import audit, guards, sqlite_lock
from .deletion import DeletionPreview, Related, refusal_of
from .errors import AlreadyPosted, Immutable, InsufficientStock, InvalidTransaction, NotFound
from .stock import write_moves

FINAL_STATUSES = (TransactionStatus.POSTED, TransactionStatus.VOID)


def live_lines(session: Session, txn: Transaction) -> list[TransactionProduct]:
    """The lines that will exist after the flush: deleted ones are still in ``txn.lines``."""
    return [line for line in txn.lines if line not in session.deleted]


def line_total(line: TransactionProduct) -> Decimal:
    return (line.unit_price or Decimal("0")) * line.product_qty


def save_draft(session: Session, txn: Transaction, user: User | None, is_new: bool) -> None:
    """Check a draft's lines and price it at today's prices (they are fixed when it is posted).

    Nothing is flushed meanwhile, even when a product must be loaded (after a retry's rollback
    expired them all): the draft is written once, as a whole, by the caller's flush."""
    with session.no_autoflush:
        _check_and_price_draft(session, txn, user, is_new)


def _check_and_price_draft(session: Session, txn: Transaction, user: User | None, is_new: bool) -> None:
    if is_new:
        txn.status = TransactionStatus.DRAFT
        txn.created_by = user
    elif _original_status(txn) != TransactionStatus.DRAFT:
        raise _unchangeable(txn, _original_status(txn))
    lines = live_lines(session, txn)
    if not lines:
        raise InvalidTransaction(gettext("A transaction needs at least one line."))
    _refuse_repeated_products(lines)
    changed = [line for line in lines if line in session.new or _product_changed(line)]
    inactive = {line.product for line in changed if not line.product.is_active}
    if inactive:
        raise InvalidTransaction(
            gettext("Inactive products cannot be sold: %(skus)s.", skus=", ".join(sorted(p.sku for p in inactive))),
            {product.id: gettext("This product is inactive and cannot be sold.") for product in inactive},
        )
    for line in lines:
        line.unit_price = line.product.price
    txn.total = sum((line_total(line) for line in lines), Decimal("0.00"))
    txn.line_count = len(lines)
    if not is_new and _draft_changed(session, txn):
        # Move the version even when only the lines changed and the row itself did not
        # (same note and total): a form opened before is then refused as stale. The
        # UPDATE still checks the version the row was loaded at.
        txn.version = txn.version + 1
    _in_product_order(session, [line for line in lines if line in session.new])


def only_in_stock(stock: int) -> str:
    """What a line asking for more than the stock says, as the editor says it while drafting."""
    if stock <= 0:
        return gettext("Out of stock")
    return gettext("Only %(stock)s in stock", stock=number(stock))


def post(session: Session, txn: Transaction, user: User | None) -> Transaction:
    """Take the stock, fix the prices and mark the transaction posted, all or nothing, with
    its "post" entry in the audit trail.

    A handful of statements however many lines it has: stock and prices change set-based."""
    txn = _lock_transaction(session, txn.id)
    if txn.status == TransactionStatus.POSTED:
        raise AlreadyPosted(
            gettext(
                "Transaction #%(id)s is already posted: by %(user)s, %(when)s.",
                id=txn.id,
                user=txn.posted_by.username if txn.posted_by else gettext("the system"),
                when=local_time(txn.posted_at),
            )
        )
    if txn.status != TransactionStatus.DRAFT:
        raise Immutable(
            gettext(
                "Transaction #%(id)s is %(status)s; only drafts can be posted.",
                id=txn.id,
                status=status_label(txn.status),
            )
        )
    lines = _lines_locking_products(session, txn)
    if not lines:
        raise InvalidTransaction(gettext("Transaction #%(id)s has no lines to post.", id=txn.id))
    wanted = _quantities(lines)
    problems, line_problems = [], {}
    for product, qty in wanted.items():
        if not product.is_active:
            problems.append(gettext("%(sku)s (%(name)s) is inactive", sku=product.sku, name=product.name))
            line_problems[product.id] = gettext("This product is inactive and cannot be sold.")
        elif product.stock < qty:
            problems.append(
                gettext(
                    "%(sku)s (%(name)s): %(stock)s in stock, %(qty)s asked",
                    sku=product.sku,
                    name=product.name,
                    stock=product.stock,
                    qty=qty,
                )
            )
            line_problems[product.id] = only_in_stock(product.stock)
    if problems:
        raise InsufficientStock(
            gettext("Transaction #%(id)s was not posted: %(problems)s.", id=txn.id, problems="; ".join(problems)),
            line_problems,
        )
    now = utcnow()
    stock = _move_stock(session, {product: -qty for product, qty in wanted.items()}, MovementKind.SALE, now, user, txn)
    _fix_prices(session, txn, lines)
    _change_status(
        session,
        txn,
        AuditAction.POST,
        stock,
        status=TransactionStatus.POSTED,
        posted_at=now,
        posted_by=user,
        total=sum((line_total(line) for line in lines), Decimal("0.00")),
    )
    return txn


def void(session: Session, txn: Transaction, user: User | None, reason: str) -> Transaction:
    """Put the stock of a posted transaction back and mark it void, with the reason, and its
    "void" entry in the audit trail."""
    reason = (reason or "").strip()
    if not reason:
        raise InvalidTransaction(gettext("Give a reason for voiding the transaction."))
    txn = _lock_transaction(session, txn.id)
    if txn.status != TransactionStatus.POSTED:
        raise Immutable(
            gettext(
                "Transaction #%(id)s is %(status)s; only posted transactions can be voided.",
                id=txn.id,
                status=status_label(txn.status),
            )
        )
    lines = _lines_locking_products(session, txn)
    now = utcnow()
    stock = _move_stock(session, _quantities(lines), MovementKind.RETURN, now, user, txn, reason)
    _change_status(
        session,
        txn,
        AuditAction.VOID,
        stock,
        status=TransactionStatus.VOID,
        voided_at=now,
        voided_by=user,
        void_reason=reason,
    )
    return txn


# The relationships post and void set, written as their foreign keys.
_BY_USER = {"posted_by": "posted_by_id", "voided_by": "voided_by_id"}


def _change_status(session: Session, txn: Transaction, action: AuditAction, stock: dict, **new) -> None:
    """Write a post's or a void's fields in one UPDATE of the locked row, and the one entry
    that records them with the stock moved.

    Not left to the flush: the entry is whole wherever the caller's flushes happen, and a
    flush never changes a stored transaction's status (see the guard below)."""
    users = {key: new.pop(key) for key in _BY_USER if key in new}
    new.update({_BY_USER[key]: user.id if user is not None else None for key, user in users.items()})
    changes = {key: [getattr(txn, key), value] for key, value in new.items() if getattr(txn, key) != value}
    session.execute(
        update(Transaction)
        .where(Transaction.id == txn.id)
        .values(
            {
                **{getattr(Transaction, key): value for key, value in new.items()},
                Transaction.version: Transaction.version + 1,
            }
        ),
        execution_options={"synchronize_session": False, **guards.RECORDS_ITS_OWN_ENTRY},
    )
    # The session holds what the database now does, without another SELECT.
    for key, value in {**new, **users, "version": txn.version + 1}.items():
        set_committed_value(txn, key, value)
    audit.record(session, action, txn, changes={**changes, "stock": stock})


def _quantities(lines: list[TransactionProduct]) -> Counter:
    """{product: quantity} over the lines."""
    quantities = Counter()
    for line in lines:
        quantities[line.product] += line.product_qty
    return quantities


def _move_stock(
    session: Session,
    changes: dict[Product, int],
    kind: MovementKind,
    at: datetime,
    user: User | None,
    txn: Transaction,
    reason: str | None = None,
) -> dict:
    """Add each change to its product's stock in one statement, and write its movement in the
    stock ledger in one more; the movements, {sku: [old, new]}, for the audit entry of the post
    or void (one entry for them all).

    The products are locked, so the stock read is the stock changed. The version is left
    alone: a sale does not make an open product form stale."""
    if not changes:
        return {}
    rows = [(product.id, change, product.stock + change) for product, change in changes.items()]
    moves = (
        values(column("id", Integer), column("change", Integer), column("after", Integer), name="moves")
        .data(rows)
        .cte("moves")
    )
    session.execute(
        update(Product).where(Product.id == moves.c.id).values(stock=Product.stock + moves.c.change),
        execution_options={"synchronize_session": False, **guards.RECORDS_ITS_OWN_ENTRY},
    )
    write_moves(session, moves, kind, at, user.id if user is not None else None, txn.id, reason)
    movements = {}
    for product, change in sorted(changes.items(), key=lambda item: item[0].id):
        movements[product.sku] = [product.stock, product.stock + change]
        # The session holds what the database now does, without another SELECT.
        set_committed_value(product, "stock", product.stock + change)
        session.expire(product, ["updated_at"])  # set by the UPDATE
    return movements


def _fix_prices(session: Session, txn: Transaction, lines: list[TransactionProduct]) -> None:
    """Every line at its product's price, in one statement, or none when no price changed."""
    if all(line.unit_price == line.product.price for line in lines):
        return
    session.execute(
        update(TransactionProduct)
        .where(TransactionProduct.transaction_id == txn.id, TransactionProduct.product_id == Product.id)
        .values(unit_price=Product.price),
        # Recorded by the post's entry, in the total it changes.
        execution_options={"synchronize_session": False, **guards.RECORDS_ITS_OWN_ENTRY},
    )
    for line in lines:
        set_committed_value(line, "unit_price", line.product.price)


def prefetch_products(session: Session, ids: list[int]) -> list[Product]:
    """Load these products in one query; keep the returned list alive while they are used."""
    if not ids:
        return []
    return list(session.scalars(select(Product).where(Product.id.in_(set(ids)))))


def delete_drafts(session: Session, ids: list[int]) -> int:
    """Delete all these drafts (their lines go with them), or none if any is not a draft."""
    txns = list(session.scalars(select(Transaction).where(Transaction.id.in_(ids)).order_by(Transaction.id)))
    missing = sorted(set(ids) - {t.id for t in txns})
    if missing:
        raise NotFound(
            gettext("No transaction with id %(ids)s; nothing was deleted.", ids=", ".join(map(str, missing)))
        )
    for txn in txns:
        ensure_deletable(txn)
        session.delete(txn)
    return len(txns)


def ensure_deletable(txn: Transaction) -> None:
    if _original_status(txn) != TransactionStatus.DRAFT:
        raise Immutable(
            gettext(
                "Transaction #%(id)s is %(status)s and cannot be deleted; void it instead to reverse its stock.",
                id=txn.id,
                status=status_label(_original_status(txn)),
            )
        )


def deletion_preview(txn: Transaction) -> DeletionPreview:
    """A draft goes with its lines; a posted or void transaction is refused."""
    refusal = refusal_of(lambda: ensure_deletable(txn))
    if refusal is not None:
        return DeletionPreview(refusal=refusal)
    return DeletionPreview(
        goes_with=[
            Related(gettext("Line: %(qty)s × %(product)s", qty=number(line.product_qty), product=str(line.product)))
            for line in txn.lines
        ]
    )


def _draft_changed(session: Session, txn: Transaction) -> bool:
    return session.is_modified(txn) or any(
        line in session.new or line in session.deleted or session.is_modified(line) for line in txn.lines
    )


def _in_product_order(session: Session, new_lines: list[TransactionProduct]) -> None:
    """Have the flush insert the new lines by product id, whatever the form's order.

    Each inserted line's foreign-key check locks its product (KEY SHARE) until the commit. Such
    locks do not conflict with each other nor with a post's FOR NO KEY UPDATE, only with a lock
    on the whole row (deleting a product): taken in id order, they cannot wait in a cycle with
    one. The flush inserts a table's new rows in the order they joined the session, so the lines
    join it again in that order."""
    ordered = sorted(new_lines, key=lambda line: line.product.id)
    if ordered != new_lines:
        for line in new_lines:
            session.expunge(line)
        for line in ordered:
            session.add(line)


# --- locking ---


def _take_sqlite_write_lock(session: Session) -> None:
    """SQLite has no row locks: being the only writer keeps what is read next from changing
    before the commit."""
    sqlite_lock.take(session.connection())


def _lock_transaction(session: Session, txn_id: int) -> Transaction:
    _take_sqlite_write_lock(session)
    stmt = (
        select(Transaction)
        .where(Transaction.id == txn_id)
        .with_for_update(of=Transaction)
        .execution_options(populate_existing=True)
    )
    return session.scalars(stmt).one()


def _lines_locking_products(session: Session, txn: Transaction) -> list[TransactionProduct]:
    """The lines of a locked transaction with their products, the products locked in id order,
    so two posts can never wait on each other in a cycle.

    A statement of its own after the transaction's lock: it sees the lines of the last edit
    committed before that lock (joined to the locking SELECT, PostgreSQL would re-read only
    the transaction's row after a wait). FOR NO KEY UPDATE is the lock the stock UPDATE takes
    anyway; unlike FOR UPDATE it lets other transactions insert lines of these products."""
    stmt = (
        select(TransactionProduct)
        .join(TransactionProduct.product)
        .options(contains_eager(TransactionProduct.product))
        .where(TransactionProduct.transaction_id == txn.id)
        .order_by(Product.id)
        .with_for_update(of=Product, key_share=True)
        .execution_options(populate_existing=True)
    )
    lines = list(session.scalars(stmt))
    set_committed_value(txn, "lines", sorted(lines, key=lambda line: line.id))
    return lines


# --- rules ---


def _refuse_repeated_products(lines: list[TransactionProduct]) -> None:
    counts = Counter(line.product for line in lines)
    repeated = [product for product, n in counts.items() if n > 1]
    if repeated:
        raise InvalidTransaction(
            gettext(
                "Each product may appear only once per transaction: %(skus)s is on several lines. "
                "Put the whole quantity on one line.",
                skus=", ".join(sorted(p.sku for p in repeated)),
            ),
            {product.id: gettext("This product is on another line too.") for product in repeated},
        )


def _product_changed(line: TransactionProduct) -> bool:
    return inspect(line).attrs.product.history.has_changes()


def _original_status(txn: Transaction) -> str:
    """The status as loaded from the database, before any change in this session."""
    history = inspect(txn).attrs.status.history
    return history.deleted[0] if history.deleted else txn.status


# --- the guard below the views: no flush may alter a posted or void transaction ---
# Nor post or void one: only post and void change a stored transaction's status, with their
# stock moves and entry. The triggers of models/triggers.py hold the same line on PostgreSQL.


def _check_transaction(session: Session, txn: Transaction, deleting: bool) -> None:
    if not inspect(txn).has_identity:
        return
    status = _original_status(txn)
    if status not in FINAL_STATUSES:
        if not deleting and txn.status != status:
            raise Immutable(
                gettext("Transaction #%(id)s can only be posted or voided by posting or voiding it.", id=txn.id)
            )
        return
    if deleting:
        raise Immutable(
            gettext("Transaction #%(id)s is %(status)s and cannot be deleted.", id=txn.id, status=status_label(status))
        )
    raise _unchangeable(txn, status)


def _unchangeable(txn: Transaction, status: str) -> Immutable:
    return Immutable(
        gettext(
            "Transaction #%(id)s is %(status)s and can no longer be changed.", id=txn.id, status=status_label(status)
        )
    )


def _check_line(session: Session, line: TransactionProduct) -> None:
    """Refuse a change to a line of a final transaction: the one it belongs to, the one it
    was moved from, and one named only by its foreign key (the relationship unset)."""
    state = inspect(line)
    txns = [line.transaction, *state.attrs.transaction.history.deleted]
    fk = state.attrs.transaction_id.history
    txns += [session.get(Transaction, txn_id) for txn_id in fk.sum() if txn_id is not None]
    for txn in txns:
        if txn is not None and inspect(txn).has_identity and _original_status(txn) in FINAL_STATUSES:
            raise Immutable(
                gettext(
                    "The lines of transaction #%(id)s are %(status)s and cannot be changed.",
                    id=txn.id,
                    status=status_label(_original_status(txn)),
                )
            )


def install(sessions) -> None:
    """Guard posted and voided transactions in the flushes of the sessions of ``sessions``."""
    if not event.contains(sessions, "before_flush", _refuse_changes_to_final_transactions):
        event.listen(sessions, "before_flush", _refuse_changes_to_final_transactions)


def _refuse_changes_to_final_transactions(session, flush_context, instances):
    with session.no_autoflush:
        for obj in session.dirty:
            if isinstance(obj, Transaction) and session.is_modified(obj):
                _check_transaction(session, obj, deleting=False)
            elif isinstance(obj, TransactionProduct) and session.is_modified(obj):
                _check_line(session, obj)
        for obj in session.deleted:
            if isinstance(obj, Transaction):
                _check_transaction(session, obj, deleting=True)
            elif isinstance(obj, TransactionProduct):
                _check_line(session, obj)
        for obj in session.new:
            if isinstance(obj, TransactionProduct):
                _check_line(session, obj)
