"""Catalog operations. They work on the session they are given and never commit."""

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session, object_session

from ..models import Product, TransactionProduct
from . import audit
from .errors import NotFound, ProductInUse, StaleVersion


def ensure_current(record, version_seen, what: str) -> None:
    """Refuse to save ``record`` when the form was opened at another version."""
    try:
        seen = int(version_seen)
    except (TypeError, ValueError):
        raise StaleVersion(f"This {what} form is missing its version; reopen the {what} and try again.")
    if seen != record.version:
        change = audit.last_change(object_session(record), what, record.id)
        who = f" ({change.username or 'unknown'}, at {format_utc(change.at)})" if change else ""
        raise StaleVersion(
            f"This {what} was changed by someone else{who} after you opened it. "
            f"Your changes were not saved: reopen the {what} to see the current data, then apply them again."
        )


def format_utc(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def load_products(session: Session, ids: list[int]) -> list[Product]:
    """All the products with these ids, in id order, or NotFound naming the missing ones."""
    products = session.scalars(select(Product).where(Product.id.in_(ids)).order_by(Product.id)).all()
    missing = sorted(set(ids) - {p.id for p in products})
    if missing:
        raise NotFound(f"No product with id {', '.join(map(str, missing))}; nothing was changed.")
    return list(products)


def set_active(session: Session, ids: list[int], active: bool) -> int:
    """Activate or deactivate the products; returns how many (an id posted twice is one).

    Through the ORM, not one bulk UPDATE: each change bumps the version and gets its
    own audit entry."""
    products = load_products(session, ids)
    for product in products:
        product.is_active = active
    return len(products)


def ensure_deletable(session: Session, products: list[Product]) -> None:
    """Refuse deletion of products that transaction lines refer to."""
    ids = [p.id for p in products]
    used = session.execute(
        select(TransactionProduct.product_id, func.count())
        .where(TransactionProduct.product_id.in_(ids))
        .group_by(TransactionProduct.product_id)
    ).all()
    if used:
        by_id = {p.id: p for p in products}
        names = ", ".join(sorted(by_id[product_id].sku for product_id, _ in used))
        raise ProductInUse(
            f"Cannot delete {names}: transactions refer to it. "
            "Deactivate the product instead; it then disappears from new transactions."
        )


def delete_products(session: Session, ids: list[int]) -> int:
    """Delete all the products or none of them; returns how many."""
    products = load_products(session, ids)
    ensure_deletable(session, products)
    for product in products:
        session.delete(product)
    return len(products)
