"""The stock ledger: every change of a product's stock has its movement (models.StockMovement),
written in the database transaction of the change, and no movement is changed or deleted.

- A product created through the session opens its ledger with its stock (an ``opening``
  movement), added to the flush that inserts it, whoever creates it.
- Posting and voiding (sales.py) write a ``sale`` or ``return`` movement per product, set-based
  with the stock they move: ``movements_of_moves`` below.
- The seed (seeding.py) writes the openings and sales of the data it makes.
- Receiving goods and adjusting a count (``receive_or_adjust``) write a ``receipt`` or an
  ``adjustment`` movement of one product, with the audit entry of the change.

Nothing here commits. The flush guard below refuses an ORM change or deletion of a movement;
guards.py refuses bulk ones; on PostgreSQL a trigger (models/triggers.py) holds the line for
any SQL.
"""

from datetime import datetime

from flask_babel import gettext
from sqlalchemy import ColumnElement, event, insert, literal, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from ..formatting import number
from ..models import Product, StockMovement, User, utcnow
from ..vocabularies import AuditAction, MovementKind
from . import audit, guards, sqlite_lock
from .errors import DomainError, InsufficientStock, MovementsAreFinal, NotFound

MAX_MOVE = 1_000_000  # units one receipt or adjustment moves, either way
MAX_STOCK = 2**31 - 1  # a 32-bit INTEGER column
MANUAL_KINDS = (MovementKind.RECEIPT, MovementKind.ADJUSTMENT)


def write_moves(
    session: Session,
    moves,
    kind: MovementKind,
    at: datetime,
    user_id: int | None,
    transaction_id: int | None = None,
    reason: str | None = None,
) -> None:
    """One movement per row of ``moves`` (a selectable of ``id``, ``change`` and ``after``: the
    product, the signed quantity and the stock it leaves), in one INSERT ... SELECT, in
    product order."""

    def constant(value, column: ColumnElement) -> ColumnElement:
        return literal(value, column.type)

    columns = StockMovement.__table__.c
    session.execute(
        insert(StockMovement).from_select(
            ["product_id", "kind", "quantity", "stock_after", "created_at", "user_id", "transaction_id", "reason"],
            select(
                moves.c.id,
                constant(str(kind), columns.kind),
                moves.c.change,
                moves.c.after,
                constant(at, columns.created_at),
                constant(user_id, columns.user_id),
                constant(transaction_id, columns.transaction_id),
                constant(reason, columns.reason),
            ).order_by(moves.c.id),
        )
    )


def receive_or_adjust(
    session: Session,
    product_id: int,
    kind: MovementKind,
    quantity: int,
    user: User | None,
    reason: str | None = None,
    reference: str | None = None,
) -> Product:
    """Goods received (``receipt``, a positive quantity) or a count corrected (``adjustment``,
    either way, with a reason) for one product: its row locked, its stock moved, one movement
    and one audit entry written. Refused with nothing written when the input breaks a rule or
    the stock would go below zero. Returns the product, its stock the new one."""
    reason = (reason or "").strip() or None
    reference = (reference or "").strip() or None
    check_move(kind, quantity, reason)
    product = _lock_product(session, product_id)
    if product is None:
        raise NotFound(gettext("That product does not exist."))
    old, new = product.stock, product.stock + quantity
    if new < 0:
        raise InsufficientStock(
            gettext(
                "Only %(stock)s of %(sku)s in stock: taking %(quantity)s would leave less than none.",
                stock=number(old),
                sku=product.sku,
                quantity=number(-quantity),
            ),
            {product.id: gettext("Only %(stock)s in stock.", stock=number(old))},
        )
    if new > MAX_STOCK:
        raise DomainError(gettext("That would make more stock than can be stored."))
    session.execute(
        update(Product).where(Product.id == product.id).values(stock=Product.stock + quantity),
        execution_options={"synchronize_session": False, **guards.RECORDS_ITS_OWN_ENTRY},
    )
    session.execute(
        insert(StockMovement).values(
            product_id=product.id,
            kind=str(kind),
            quantity=quantity,
            stock_after=new,
            created_at=utcnow(),
            user_id=user.id if user is not None else None,
            reason=reason,
            reference=reference,
        )
    )
    # The session holds what the database now does, without another SELECT.
    set_committed_value(product, "stock", new)
    session.expire(product, ["updated_at"])  # set by the UPDATE
    changes = {"stock": [old, new], "movement": str(kind), "reason": reason, "reference": reference}
    audit.record(session, AuditAction.UPDATE, product, changes={k: v for k, v in changes.items() if v is not None})
    return product


def check_move(kind, quantity, reason) -> None:
    """The rules of a receipt or an adjustment that need no database; the form checks them
    first, field by field."""
    if kind not in MANUAL_KINDS:
        raise DomainError(gettext("Choose a receipt or an adjustment."))
    problem = quantity_problem(kind, quantity) or reason_problem(kind, reason)
    if problem:
        raise DomainError(problem)


def quantity_problem(kind, quantity) -> str | None:
    if not isinstance(quantity, int) or isinstance(quantity, bool):
        return gettext("Enter a whole number.")
    if quantity == 0:
        return gettext("Enter a quantity other than zero.")
    if abs(quantity) > MAX_MOVE:
        return gettext("Enter at most %(max)s units either way.", max=number(MAX_MOVE))
    if quantity < 0 and kind == MovementKind.RECEIPT:
        return gettext("A receipt adds stock: enter a positive quantity, or choose an adjustment to take stock away.")
    return None


def reason_problem(kind, reason) -> str | None:
    if kind == MovementKind.ADJUSTMENT and not (reason or "").strip():
        return gettext("Give a reason for the adjustment, e.g. a count correction or breakage.")
    return None


def _lock_product(session: Session, product_id: int) -> Product | None:
    """The product, locked until the commit: FOR NO KEY UPDATE on PostgreSQL (the lock a
    posting takes on its products), SQLite's write lock there."""
    sqlite_lock.take(session.connection())
    stmt = (
        select(Product)
        .where(Product.id == product_id)
        .with_for_update(key_share=True)
        .execution_options(populate_existing=True)
    )
    return session.scalars(stmt).one_or_none()


def install(sessions) -> None:
    """Open the ledger of new products and guard the movements in the flushes of ``sessions``."""
    if not event.contains(sessions, "before_flush", _keep_the_ledger):
        event.listen(sessions, "before_flush", _keep_the_ledger)


def _keep_the_ledger(session: Session, flush_context, instances) -> None:
    with session.no_autoflush:
        for obj in session.deleted:
            if isinstance(obj, StockMovement):
                raise _final()
        for obj in session.dirty:
            if isinstance(obj, StockMovement) and session.is_modified(obj):
                raise _final()
        new_products = [obj for obj in session.new if isinstance(obj, Product)]
        if not new_products:
            return
        user_id, now = audit.actor(session).user_id, utcnow()
        for product in sorted(new_products, key=lambda p: p.sku or ""):
            stock = product.stock or 0
            session.add(
                StockMovement(
                    product=product,
                    kind=MovementKind.OPENING,
                    quantity=stock,
                    stock_after=stock,
                    created_at=now,
                    user_id=user_id,
                )
            )


def _final() -> MovementsAreFinal:
    return MovementsAreFinal(
        gettext("Stock movements cannot be changed or deleted; record a new movement to correct one.")
    )
