from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from ..vocabularies import MovementKind, sql_values
from .catalog import Product
from .types import UTCDateTime, utcnow


class StockMovement(db.Model):
    """One line of the stock ledger: a product's stock moved by ``quantity`` (signed), to
    ``stock_after``, by whom, when and why. Written in the database transaction of the change
    it explains, and never changed or deleted afterwards (domain/stock.py, models/triggers.py);
    it goes only with its product (deleting a product that no transaction refers to)."""

    __tablename__ = "stock_movements"
    __table_args__ = (
        CheckConstraint(f"kind IN ({sql_values(MovementKind)})", name="kind_known"),
        # Only an opening may be zero (a product created with no stock).
        CheckConstraint(f"quantity <> 0 OR kind = '{MovementKind.OPENING}'", name="quantity_moves"),
        CheckConstraint("stock_after >= 0", name="stock_after_not_negative"),
        # A product's movements in the order they happened; a transaction's movements.
        Index("ix_stock_movements_product_id_id", "product_id", "id"),
        Index("ix_stock_movements_transaction_id", "transaction_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    quantity: Mapped[int]
    stock_after: Mapped[int]
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    reason: Mapped[str | None] = mapped_column(Text)
    reference: Mapped[str | None] = mapped_column(String(200))
    transaction_id: Mapped[int | None] = mapped_column(ForeignKey("transactions.id"))

    product: Mapped[Product] = relationship()

    def __str__(self) -> str:
        return f"{self.kind} {self.quantity:+d}"
