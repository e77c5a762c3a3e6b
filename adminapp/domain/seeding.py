"""Demo data for `manage.py seed`: a shop's years of trading, deterministic for a seed.

Products are spread over the last two years, transactions over the time their products
existed: mostly posted, some drafts and voids, each by a real user. The data is written
set-based (no ORM object per row), together with the audit entries the app itself would
have written, in one valid chain: a created product or transaction, every post and void.
Each batch is one unit of work: the caller commits it.
"""

import heapq
import random
from array import array
from bisect import bisect_right
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..models import Product, Transaction, TransactionProduct, User, utcnow
from . import audit, bulk

HISTORY = timedelta(days=730)
BRANDS = ["Sari", "Indo", "Nusa", "Bintang", "Garuda", "Melati", "Kencana", "Cahaya", "Sentosa", "Makmur",
          "Harapan", "Mulia", "Jaya", "Lestari", "Abadi", "Sinar", "Mitra", "Prima", "Tunas", "Citra"]
ADJECTIVES = ["Classic", "Organic", "Premium", "Fresh", "Compact", "Deluxe", "Spicy", "Sweet", "Smart", "Eco",
              "Golden", "Crispy", "Natural", "Instant", "Original", "Extra", "Mini", "Family", "Light", "Royal"]
NOUNS = ["Coffee", "Tea", "Rice", "Noodles", "Soap", "Notebook", "Lamp", "Cable", "Bottle", "Sambal",
         "Shampoo", "Towel", "Biscuits", "Chocolate", "Kecap", "Candle", "Umbrella", "Sandals", "Batik", "Basket",
         "Crackers", "Syrup", "Detergent", "Toothpaste", "Charger", "Headset", "Backpack", "Pillow", "Mug", "Spoon"]
SIZES = ["100 g", "250 g", "500 g", "1 kg", "5 kg", "250 ml", "1 L", "S", "M", "L", "XL", "pack of 6"]
VOID_REASONS = ["Customer returned the goods", "Entered twice", "Wrong products", "Payment failed"]
DRAFT_SHARE, VOID_SHARE = 0.06, 0.04  # the rest is posted


# --- products ---

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


def product_rows(rng: random.Random, numbers: range, first: int, total: int, start: datetime) -> list[dict]:
    """Rows for the demo products ``numbers``, of ``total`` from number ``first`` on, created
    in number order over the HISTORY that begins at ``start``."""
    rows = []
    for number in numbers:
        created = start + HISTORY * ((number - first + rng.random()) / total)
        rows.append({
            "sku": f"DEMO-{number:07d}",
            "name": f"{rng.choice(BRANDS)} {rng.choice(ADJECTIVES)} {rng.choice(NOUNS)} {rng.choice(SIZES)}",
            "description": None,
            "price": Decimal(rng.randrange(500, 50_000_000)).scaleb(-2),
            "stock": rng.randrange(0, 500),
            "is_active": rng.random() > 0.05,
            "created_at": created, "updated_at": created, "version": 1,
        })
    return rows


def insert_products(session: Session, rows: list[dict], actor: audit.Actor) -> None:
    """The products and, as the app writes on every create, an audit entry each."""
    connection = session.connection()
    for row, product_id in zip(rows, bulk.reserve_ids(connection, Product.__table__, len(rows))):
        row["id"] = product_id
    bulk.insert_rows(connection, Product.__table__, rows)
    audit.append(connection, [
        audit.entry(actor, "create", "product", row["id"], f"{row['sku']} — {row['name']}",
                    audit.creation(row, Product), at=row["created_at"])
        for row in rows
    ])


# --- transactions ---

@dataclass
class Catalog:
    """The active products, oldest first, in compact arrays (a million fit in ~100 MiB)."""
    ids: array = field(default_factory=lambda: array("q"))
    skus: list = field(default_factory=list)
    cents: array = field(default_factory=lambda: array("q"))
    stock: array = field(default_factory=lambda: array("q"))
    created: array = field(default_factory=lambda: array("d"))  # POSIX seconds

    def available_at(self, moment: float, wanted: int) -> int:
        """How many of the oldest products a sale at ``moment`` may choose from."""
        return max(bisect_right(self.created, moment), min(wanted, len(self.ids)))


def load_catalog(session: Session) -> Catalog:
    catalog = Catalog()
    rows = session.execute(
        select(Product.id, Product.sku, Product.price, Product.stock, Product.created_at)
        .where(Product.is_active).order_by(Product.created_at, Product.id).execution_options(yield_per=10_000)
    )
    for product_id, sku, price, stock, created in rows:
        catalog.ids.append(product_id)
        catalog.skus.append(sku)
        catalog.cents.append(int(price * 100))
        catalog.stock.append(stock)
        catalog.created.append(created.timestamp())
    return catalog


def sellers(session: Session) -> list[audit.Actor]:
    """The active users who may sell (staff and admins), as the audit trail names them."""
    rows = session.execute(select(User.id, User.username).where(User.is_active, User.role != "auditor")
                           .order_by(User.id))
    return [audit.Actor(user_id, username) for user_id, username in rows]


def sale_times(rng: random.Random, catalog: Catalog, count: int) -> list[float]:
    """When each of ``count`` sales was made: spread, in order, over the last two years
    (from the oldest product on, when the catalog is younger)."""
    now = utcnow().timestamp()
    first = max(now - HISTORY.total_seconds(), catalog.created[0] if catalog.created else now)
    return sorted(rng.uniform(first, now) for _ in range(count))


def insert_transactions(session: Session, rng: random.Random, catalog: Catalog, users: list[audit.Actor],
                        times: list[float], lines_each: int) -> tuple[int, int, int]:
    """One batch of sales made at ``times``: each stays a draft, or is posted (and maybe
    voided later), its stock taken and given back in time order, as `sales.post` and
    `sales.void` would. Returns (drafts, posted, voided)."""
    connection = session.connection()
    ids = bulk.reserve_ids(connection, Transaction.__table__, len(times))
    sales = [_sale(rng, catalog, users, txn_id, moment, lines_each) for txn_id, moment in zip(ids, times)]
    stock_before, entries = {}, []  # catalog index -> its stock before this batch
    events = [(sale.row["created_at"], n, "create", sale) for n, sale in enumerate(sales)]
    heapq.heapify(events)
    while events:  # in time order; the chain then tells the stock's story in order too
        moment, n, kind, sale = heapq.heappop(events)
        follow_up = _EVENTS[kind](rng, catalog, users, sale, moment, stock_before, entries)
        if follow_up:
            heapq.heappush(events, (follow_up[0], n, follow_up[1], sale))
    bulk.insert_rows(connection, Transaction.__table__, [sale.row for sale in sales])
    bulk.insert_rows(connection, TransactionProduct.__table__, [
        {"transaction_id": sale.row["id"], "product_id": catalog.ids[index], "product_qty": qty,
         "unit_price": _money(catalog.cents[index])}
        for sale in sales for index, qty in sale.lines
    ])
    bulk.add_to_column(connection, Product.__table__, "stock",
                       {catalog.ids[i]: catalog.stock[i] - before for i, before in stock_before.items()})
    audit.append(connection, entries)
    statuses = [sale.row["status"] for sale in sales]
    return statuses.count("draft"), statuses.count("posted"), statuses.count("void")


@dataclass
class _Sale:
    row: dict
    lines: list[tuple[int, int]]  # (catalog index, quantity)
    creator: audit.Actor


def _sale(rng, catalog: Catalog, users, txn_id, moment, lines_each) -> _Sale:
    available = catalog.available_at(moment, lines_each)
    picks = rng.sample(range(available), min(lines_each, available))
    lines = sorted((index, rng.randint(1, 3)) for index in picks)
    creator = rng.choice(users)
    row = {"id": txn_id, "status": "draft", "note": rng.choice([None, None, "walk-in", "phone order", "delivery"]),
           "total": _money(sum(catalog.cents[i] * qty for i, qty in lines)),
           "created_at": datetime.fromtimestamp(moment, timezone.utc), "created_by": creator.user_id,
           "posted_at": None, "posted_by": None, "voided_at": None, "voided_by": None, "void_reason": None,
           "line_count": len(lines), "version": 1}
    return _Sale(row, lines, creator)


def _create(rng, catalog, users, sale: _Sale, moment, stock_before, entries):
    row = sale.row
    changes = {"id": [None, row["id"]], "status": [None, "draft"], "note": [None, row["note"]],
               "total": [None, row["total"]], "created_by_id": [None, row["created_by"]],
               "lines": {"added": [{"sku": catalog.skus[i], "qty": qty} for i, qty in sale.lines]}}
    if row["note"] is None:
        del changes["note"]
    entries.append(_entry(sale.creator, "create", row, changes, moment))
    if rng.random() >= DRAFT_SHARE:
        return moment + timedelta(seconds=rng.randint(30, 1800)), "post"
    return None


def _post(rng, catalog, users, sale: _Sale, moment, stock_before, entries):
    if any(catalog.stock[i] < qty for i, qty in sale.lines):
        return None  # not enough stock left: it stays a draft
    poster = rng.choice(users)
    sale.row.update(status="posted", posted_at=moment, posted_by=poster.user_id, version=2)
    entries.append(_entry(poster, "post", sale.row, {
        "status": ["draft", "posted"], "posted_at": [None, moment], "posted_by_id": [None, poster.user_id],
        "stock": _move_stock(catalog, sale, -1, stock_before)}, moment))
    if rng.random() < VOID_SHARE / (1 - DRAFT_SHARE):
        return moment + timedelta(minutes=rng.randint(5, 2880)), "void"
    return None


def _void(rng, catalog, users, sale: _Sale, moment, stock_before, entries):
    voider, reason = rng.choice(users), rng.choice(VOID_REASONS)
    sale.row.update(status="void", voided_at=moment, voided_by=voider.user_id, void_reason=reason, version=3)
    entries.append(_entry(voider, "void", sale.row, {
        "status": ["posted", "void"], "voided_at": [None, moment], "voided_by_id": [None, voider.user_id],
        "void_reason": [None, reason], "stock": _move_stock(catalog, sale, +1, stock_before)}, moment))
    return None


_EVENTS = {"create": _create, "post": _post, "void": _void}


def _move_stock(catalog: Catalog, sale: _Sale, sign: int, stock_before: dict) -> dict:
    """Take (-1) or give back (+1) the sale's quantities; {sku: [before, after]}."""
    stock = {}
    for index, qty in sale.lines:
        before = catalog.stock[index]
        stock_before.setdefault(index, before)
        catalog.stock[index] = before + sign * qty
        stock[catalog.skus[index]] = [before, catalog.stock[index]]
    return stock


def _entry(actor: audit.Actor, action: str, row: dict, changes: dict, moment: datetime) -> dict:
    return audit.entry(actor, action, "transaction", row["id"], f"Transaction #{row['id']}", changes, at=moment)


def _money(cents: int) -> Decimal:
    return Decimal(cents).scaleb(-2)
