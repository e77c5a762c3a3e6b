from datetime import datetime
from decimal import Decimal

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from ..vocabularies import TransactionStatus, sql_values
from .catalog import Product
from .indexes import only_where, sort_index, trigram_index
from .types import Money, UTCDateTime, utcnow
from .users import User


class Transaction(db.Model):
    __tablename__ = "transactions"
    __table_args__ = (
        CheckConstraint(f"status IN ({sql_values(TransactionStatus)})", name="status_known"),
        # In the order it happens (the "posted to" filter relies on it). PostgreSQL only: SQLite
        # cannot add a constraint to an existing table without rebuilding it.
        CheckConstraint("posted_at >= created_at", name="posted_after_created").ddl_if(dialect="postgresql"),
        CheckConstraint("voided_at >= posted_at", name="voided_after_posted").ddl_if(dialect="postgresql"),
        *(sort_index("transactions", column) for column in ("created_at", "status", "total", "line_count")),
        sort_index("transactions", "created_by", "created_at"),
        # A status with a date range (the list's one-click filters), and a status's list newest first.
        sort_index("transactions", "status", "created_at"),
        # The dashboard's drafts and posted sales, and the "posted" date filter.
        Index("ix_transactions_drafts", "id", **only_where(f"status = '{TransactionStatus.DRAFT}'")),
        Index(
            "ix_transactions_posted_at",
            "posted_at",
            postgresql_include=["total"],
            **only_where(f"status = '{TransactionStatus.POSTED}'"),
        ),
        trigram_index("transactions", "note"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    status: Mapped[str] = mapped_column(String(8), default=TransactionStatus.DRAFT)
    note: Mapped[str | None] = mapped_column(Text)
    total: Mapped[Decimal] = mapped_column(Money, default=Decimal("0.00"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column("created_by", ForeignKey("users.id"))
    posted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    posted_by_id: Mapped[int | None] = mapped_column("posted_by", ForeignKey("users.id"))
    voided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    voided_by_id: Mapped[int | None] = mapped_column("voided_by", ForeignKey("users.id"))
    void_reason: Mapped[str | None] = mapped_column(Text)
    # Kept by sales.save_draft (lines change only on drafts), so lists sort by it at any size.
    line_count: Mapped[int] = mapped_column(default=0, server_default="0")
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
    transaction_id: Mapped[int] = mapped_column(ForeignKey("transactions.id", ondelete="CASCADE"), index=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id", ondelete="RESTRICT"), index=True)
    product_qty: Mapped[int]
    unit_price: Mapped[Decimal | None] = mapped_column(Money)

    transaction: Mapped[Transaction] = relationship(back_populates="lines")
    product: Mapped[Product] = relationship()

    def __str__(self) -> str:
        return f"{self.product_qty} × {self.product}"
