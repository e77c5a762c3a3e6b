"""Catalog operations. They work on the session they are given and never commit."""

from datetime import datetime

from flask_babel import gettext
from sqlalchemy import func, select
from sqlalchemy.orm import Session, object_session

from ..labels import status_label, transaction_label
from ..models import Product, Transaction, TransactionProduct
from . import audit
from .deletion import SHOWN_AT_MOST, DeletionPreview, Related, refusal_of
from .errors import NotFound, ProductInUse, StaleVersion


def ensure_current(record, version_seen, what: str) -> None:
    """Refuse to save ``record`` (a "product" or a "transaction") when the form was opened
    at another version."""
    try:
        seen = int(version_seen)
    except (TypeError, ValueError):
        raise StaleVersion(_missing_version_message(what)) from None
    if seen != record.version:
        change = audit.last_change(object_session(record), what, record.id)
        raise StaleVersion(_stale_message(what, change))


# One whole sentence per case, so each language can order its words freely.
def _missing_version_message(what: str) -> str:
    if what == "product":
        return gettext("This product form is missing its version; reopen the product and try again.")
    return gettext("This transaction form is missing its version; reopen the transaction and try again.")


def _stale_message(what: str, change) -> str:
    if change is None:
        if what == "product":
            return gettext(
                "This product was changed by someone else after you opened it. Your changes were "
                "not saved: reopen the product to see the current data, then apply them again."
            )
        return gettext(
            "This transaction was changed by someone else after you opened it. Your changes were "
            "not saved: reopen the transaction to see the current data, then apply them again."
        )
    who = {"user": change.username or gettext("unknown"), "at": format_utc(change.at)}
    if what == "product":
        return gettext(
            "This product was changed by someone else (%(user)s, at %(at)s) after you opened it. "
            "Your changes were not saved: reopen the product to see the current data, "
            "then apply them again.",
            **who,
        )
    return gettext(
        "This transaction was changed by someone else (%(user)s, at %(at)s) after you opened it. "
        "Your changes were not saved: reopen the transaction to see the current data, "
        "then apply them again.",
        **who,
    )


def format_utc(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def load_products(session: Session, ids: list[int]) -> list[Product]:
    """All the products with these ids, in id order, or NotFound naming the missing ones."""
    products = session.scalars(select(Product).where(Product.id.in_(ids)).order_by(Product.id)).all()
    missing = sorted(set(ids) - {p.id for p in products})
    if missing:
        raise NotFound(gettext("No product with id %(ids)s; nothing was changed.", ids=", ".join(map(str, missing))))
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
            gettext(
                "Cannot delete %(skus)s: transactions refer to it. "
                "Deactivate the product instead; it then disappears from new transactions.",
                skus=names,
            )
        )


def deletion_preview(session: Session, product: Product) -> DeletionPreview:
    """Deleting a product takes nothing with it; a referenced one is refused, and the page
    names the transactions that refer to it, newest first."""
    refusal = refusal_of(lambda: ensure_deletable(session, [product]))
    if refusal is None:
        return DeletionPreview()
    referring = select(TransactionProduct.transaction_id).where(TransactionProduct.product_id == product.id)
    rows = session.execute(
        select(Transaction.id, Transaction.status)
        .where(Transaction.id.in_(referring))
        .order_by(Transaction.id.desc())
        .limit(SHOWN_AT_MOST + 1)
    ).all()
    total = len(rows)
    if total > SHOWN_AT_MOST:
        total = session.scalar(
            select(func.count(func.distinct(TransactionProduct.transaction_id))).where(
                TransactionProduct.product_id == product.id
            )
        )
    blocking = [
        Related(
            gettext("%(transaction)s (%(status)s)", transaction=transaction_label(txn_id), status=status_label(status)),
            "transaction",
            txn_id,
        )
        for txn_id, status in rows[:SHOWN_AT_MOST]
    ]
    return DeletionPreview(refusal=refusal, blocking=blocking, not_shown=total - len(blocking))


def delete_products(session: Session, ids: list[int]) -> int:
    """Delete all the products or none of them; returns how many."""
    products = load_products(session, ids)
    ensure_deletable(session, products)
    for product in products:
        session.delete(product)
    return len(products)
