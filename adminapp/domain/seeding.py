"""Deterministic demo data for `manage.py seed`."""

import random
from decimal import Decimal

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from ..models import Product, Transaction, TransactionProduct, User, utcnow
from . import audit, sales
from .errors import DomainError

ADJECTIVES = ["Classic", "Organic", "Premium", "Fresh", "Compact", "Deluxe", "Spicy", "Sweet", "Smart", "Eco"]
NOUNS = ["Coffee", "Tea", "Rice", "Noodles", "Soap", "Notebook", "Lamp", "Cable", "Bottle", "Sambal"]


def product_rows(count: int, seed: int, first_number: int):
    """Yield ``count`` product rows; the same seed gives the same catalog."""
    rng = random.Random(seed)
    now = utcnow()
    for number in range(first_number, first_number + count):
        yield {
            "sku": f"DEMO-{number:07d}",
            "name": f"{rng.choice(ADJECTIVES)} {rng.choice(NOUNS)} {number}",
            "description": None,
            "price": Decimal(rng.randrange(500, 50_000_000)) / 100,
            "stock": rng.randrange(0, 500),
            "is_active": rng.random() > 0.05,
            "created_at": now,
            "updated_at": now,
            "version": 1,
        }


def next_demo_number(session: Session) -> int:
    """Numbers continue after existing demo products, so seeding twice adds more.

    Only SKUs in the generated form count: someone's own "DEMO-KIT" or "DEMO-9" must
    neither crash the seed nor hide the highest generated number (a string max would).
    """
    skus = session.scalars(
        select(Product.sku)
        .where(Product.sku.like("DEMO-%"))
        .order_by(func.length(Product.sku).desc(), Product.sku.desc())
        .execution_options(yield_per=100)
    )
    try:
        for sku in skus:
            digits = sku[len("DEMO-"):]
            if sku.startswith("DEMO-") and digits.isascii() and digits.isdigit() and digits == f"{int(digits):07d}":
                return int(digits) + 1
    finally:
        skus.close()
    return 1


def insert_products(session: Session, rows: list[dict]) -> None:
    """One multi-row INSERT for the batch (no ORM objects, no flush per row), and one
    audit entry for it: a bulk insert bypasses the ORM that records single changes."""
    session.execute(insert(Product), rows)
    audit.record(session, "seed", object_type="product",
                 changes={"count": len(rows), "skus": [rows[0]["sku"], rows[-1]["sku"]]})


def seed_transaction_batch(session: Session, rng: random.Random, product_ids: list[int], count: int,
                           lines_each: int, user: User | None) -> tuple[int, int]:
    """Add ``count`` drafts of ``lines_each`` lines; post about half of them through
    `sales.post`, so stock stays consistent. Returns (drafts, posted). No commit."""
    picks = [rng.sample(product_ids, min(lines_each, len(product_ids))) for _ in range(count)]
    products = {p.id: p for p in sales.prefetch_products(session, [i for ids in picks for i in ids])}
    drafts = []
    for ids in picks:
        txn = Transaction(note="demo", lines=[
            TransactionProduct(product=products[i], product_qty=rng.randint(1, 3)) for i in ids
        ])
        session.add(txn)
        sales.save_draft(session, txn, user, is_new=True)
        drafts.append(txn)
    session.flush()  # one flush for the batch: posting needs the ids
    posted = 0
    for txn in drafts:
        if rng.random() < 0.5:
            try:
                sales.post(session, txn, user)
                posted += 1
            except DomainError:
                pass  # not enough stock left: it stays a draft
    return len(drafts) - posted, posted


def sellable_product_ids(session: Session) -> list[int]:
    return list(session.scalars(select(Product.id).where(Product.is_active, Product.stock > 0).order_by(Product.id)))
