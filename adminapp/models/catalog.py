from datetime import datetime
from decimal import Decimal

from sqlalchemy import CheckConstraint, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from .indexes import only_where, search_index, sort_index, trigram_index
from .types import Money, UTCDateTime, utcnow


class Product(db.Model):
    __tablename__ = "products"
    __table_args__ = (
        CheckConstraint("price >= 0", name="price_not_negative"),
        CheckConstraint("stock >= 0", name="stock_not_negative"),
        *(sort_index("products", column) for column in ("name", "price", "stock", "is_active")),
        # The list's "created today / last 7 days / this month" filters (admin.quick_filters).
        sort_index("products", "created_at"),
        # The dashboard's low stock: the active products with the least, and how many.
        Index("ix_products_active_stock", "stock", "sku", **only_where("is_active")),
        trigram_index("products", "sku"),
        trigram_index("products", "name"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    sku: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    price: Mapped[Decimal] = mapped_column(Money, default=Decimal("0.00"))
    stock: Mapped[int] = mapped_column(default=0)
    is_active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    # Optimistic locking: every UPDATE checks and bumps it (StaleDataError on a lost race).
    version: Mapped[int] = mapped_column(default=1)

    __mapper_args__ = {"version_id_col": version}

    def __str__(self) -> str:
        return f"{self.sku} — {self.name}"


# What the product list searches (ProductView.column_searchable_list), indexed on SQLite.
search_index(Product.__table__, "sku", "name")
