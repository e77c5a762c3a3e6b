from datetime import datetime
from decimal import Decimal

from sqlalchemy import CheckConstraint, ForeignKey, String, Text, func, select
from sqlalchemy.orm import Mapped, column_property, mapped_column, relationship

from ..extensions import db
from .catalog import Product
from .types import Money, UTCDateTime, utcnow
from .users import User

STATUSES = ("draft", "posted", "void")


class Transaction(db.Model):
    __tablename__ = "transactions"
    __table_args__ = (
        CheckConstraint("status IN ('draft', 'posted', 'void')", name="status_known"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    status: Mapped[str] = mapped_column(String(8), default="draft")
    note: Mapped[str | None] = mapped_column(Text)
    total: Mapped[Decimal] = mapped_column(Money, default=Decimal("0.00"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    created_by_id: Mapped[int | None] = mapped_column("created_by", ForeignKey("users.id"))
    posted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    posted_by_id: Mapped[int | None] = mapped_column("posted_by", ForeignKey("users.id"))
    voided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    voided_by_id: Mapped[int | None] = mapped_column("voided_by", ForeignKey("users.id"))
    void_reason: Mapped[str | None] = mapped_column(Text)
    version: Mapped[int] = mapped_column(default=1)

    created_by: Mapped[User | None] = relationship(foreign_keys=[created_by_id])
    posted_by: Mapped[User | None] = relationship(foreign_keys=[posted_by_id])
    voided_by: Mapped[User | None] = relationship(foreign_keys=[voided_by_id])
    lines: Mapped[list["TransactionProduct"]] = relationship(
        back_populates="transaction", cascade="all, delete-orphan", order_by="TransactionProduct.id"
    )

    __mapper_args__ = {"version_id_col": version}

    def __str__(self) -> str:
        return f"Transaction #{self.id}"


class TransactionProduct(db.Model):
    """One line of a transaction: a product and its quantity."""

    __tablename__ = "transaction_products"
    __table_args__ = (CheckConstraint("product_qty > 0", name="qty_positive"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    transaction_id: Mapped[int] = mapped_column(
        ForeignKey("transactions.id", ondelete="CASCADE"), index=True
    )
    product_id: Mapped[int] = mapped_column(
        ForeignKey("products.id", ondelete="RESTRICT"), index=True
    )
    product_qty: Mapped[int]
    unit_price: Mapped[Decimal | None] = mapped_column(Money)

    transaction: Mapped[Transaction] = relationship(back_populates="lines")
    product: Mapped[Product] = relationship()

    def __str__(self) -> str:
        return f"{self.product_qty} × {self.product}"


# Counted in SQL, so a list page costs the same whatever its size (no N+1 over `lines`).
Transaction.line_count = column_property(
    select(func.count(TransactionProduct.id))
    .where(TransactionProduct.transaction_id == Transaction.id)
    .correlate_except(TransactionProduct)
    .scalar_subquery(),
    deferred=False,
)
