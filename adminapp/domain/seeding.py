"""Deterministic demo data for `manage.py seed`."""

import random
from decimal import Decimal

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from ..models import Product, utcnow

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
    """Numbers continue after existing demo products, so seeding twice adds more."""
    last = session.scalar(select(func.max(Product.sku)).where(Product.sku.like("DEMO-%")))
    return int(last.removeprefix("DEMO-")) + 1 if last else 1


def insert_products(session: Session, rows: list[dict]) -> None:
    """One multi-row INSERT for the batch (no ORM objects, no flush per row)."""
    session.execute(insert(Product), rows)
