"""The stock ledger: every change of a product's stock has its movement (models.StockMovement),
written in the database transaction of the change, and no movement is changed or deleted.

- A product created through the session opens its ledger with its stock (an ``opening``
  movement), added to the flush that inserts it, whoever creates it.
- Posting and voiding (sales.py) write a ``sale`` or ``return`` movement per product, set-based
  with the stock they move: ``movements_of_moves`` below.
- The seed (seeding.py) writes the openings and sales of the data it makes.

Nothing here commits. The flush guard below refuses an ORM change or deletion of a movement;
guards.py refuses bulk ones; on PostgreSQL a trigger (models/triggers.py) holds the line for
any SQL.
"""

from datetime import datetime

from flask_babel import gettext
from sqlalchemy import ColumnElement, event, insert, literal, select
from sqlalchemy.orm import Session

from ..models import Product, StockMovement, utcnow
from ..vocabularies import MovementKind
from . import audit
from .errors import MovementsAreFinal


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
