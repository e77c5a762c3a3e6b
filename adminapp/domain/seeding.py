"""Demo data for `manage.py seed`: a shop's years of trading, deterministic for a seed.

Products are spread over the last two years, transactions over the time their products
existed: mostly posted, some drafts and voids, each by a real user. The data is written
set-based (no ORM object per row), together with the audit entries the app itself would
have written, in one valid chain in time order: a created product or transaction, every post
and void; and the stock ledger's movements, in time order too: each new product's opening,
each post's sales and each void's returns, so seeded stock reconciles with its movements.
The whole seed is one unit of work: the caller commits it once.
"""

import heapq
import itertools
import random
import secrets
from array import array
from bisect import bisect_right
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from ..models import AuditEntry, Product, StockMovement, Transaction, TransactionProduct, User, utcnow
from ..vocabularies import AuditAction, MovementKind, Role, TransactionStatus
from . import accounts, audit, bulk, sqlite_lock
from .errors import DomainError

HISTORY = timedelta(days=730)
BRANDS = [
    "Sari",
    "Indo",
    "Nusa",
    "Bintang",
    "Garuda",
    "Melati",
    "Kencana",
    "Cahaya",
    "Sentosa",
    "Makmur",
    "Harapan",
    "Mulia",
    "Jaya",
    "Lestari",
    "Abadi",
    "Sinar",
    "Mitra",
    "Prima",
    "Tunas",
    "Citra",
]
ADJECTIVES = [
    "Classic",
    "Organic",
    "Premium",
    "Fresh",
    "Compact",
    "Deluxe",
    "Spicy",
    "Sweet",
    "Smart",
    "Eco",
    "Golden",
    "Crispy",
    "Natural",
    "Instant",
    "Original",
    "Extra",
    "Mini",
    "Family",
    "Light",
    "Royal",
]
NOUNS = [
    "Coffee",
    "Tea",
    "Rice",
    "Noodles",
    "Soap",
    "Notebook",
    "Lamp",
    "Cable",
    "Bottle",
    "Sambal",
    "Shampoo",
    "Towel",
    "Biscuits",
    "Chocolate",
    "Kecap",
    "Candle",
    "Umbrella",
    "Sandals",
    "Batik",
    "Basket",
    "Crackers",
    "Syrup",
    "Detergent",
    "Toothpaste",
    "Charger",
    "Headset",
    "Backpack",
    "Pillow",
    "Mug",
    "Spoon",
]
SIZES = ["100 g", "250 g", "500 g", "1 kg", "5 kg", "250 ml", "1 L", "S", "M", "L", "XL", "pack of 6"]
VOID_REASONS = ["Customer returned the goods", "Entered twice", "Wrong products", "Payment failed"]
DRAFT_SHARE, VOID_SHARE = 0.06, 0.04  # the rest is posted
BATCH = 20_000  # rows generated and written at a time


@dataclass
class Seeded:
    drafts: int
    posted: int
    voided: int
    rebuilt: list  # the tables whose indexes were built anew


def add_demo_data(
    session: Session, actor: audit.Actor, products: int, transactions: int, lines_each: int, seed: int, progress=None
) -> Seeded:
    """Add ``products`` and then ``transactions`` sold from the catalog. A large seed drops the
    secondary indexes of the tables it fills and builds them again at the end."""
    connection = session.connection()
    _lock_out_writers(connection)
    rebuilt = _filled_tables(connection, products, transactions, lines_each)
    with bulk.indexes_rebuilt(connection, rebuilt):
        new = add_products(session, random.Random(seed), products, progress)
        counts = add_transactions(session, actor, random.Random(seed), transactions, lines_each, new, progress)
    return Seeded(*counts, rebuilt=rebuilt)


def _lock_out_writers(connection) -> None:
    """The seed reads the catalog's stock first and moves it at the end: nobody may change the
    products meanwhile. Taken before anything else, so that a post, which locks its products
    and then the audit trail, waits for the seed rather than deadlocking with it. On SQLite
    the write lock; on PostgreSQL the products table against writes (pages still read it)."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("LOCK TABLE products IN SHARE ROW EXCLUSIVE MODE"))
    else:
        sqlite_lock.take(connection)


def _filled_tables(connection, products: int, transactions: int, lines_each: int) -> list:
    adding = {
        Product.__table__: products,
        Transaction.__table__: transactions,
        TransactionProduct.__table__: transactions * lines_each,
        AuditEntry.__table__: products + transactions * 2,
        StockMovement.__table__: products + transactions * lines_each,
    }
    return [table for table, rows in adding.items() if bulk.worth_rebuilding(connection, table, rows)]


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
            digits = sku[len("DEMO-") :]
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
        rows.append(
            {
                "sku": f"DEMO-{number:07d}",
                "name": f"{rng.choice(BRANDS)} {rng.choice(ADJECTIVES)} {rng.choice(NOUNS)} {rng.choice(SIZES)}",
                "description": None,
                "price": Decimal(rng.randrange(500, 50_000_000)).scaleb(-2),
                "stock": rng.randrange(0, 500),
                "is_active": rng.random() > 0.05,
                "created_at": created,
                "updated_at": created,
                "version": 1,
            }
        )
    return rows


@dataclass
class NewProducts:
    """Products this seed added whose audit entries are still to be written: with the sales,
    in time order. Ids and creation times (POSIX seconds) both ascend."""

    ids: array = field(default_factory=lambda: array("q"))
    created: array = field(default_factory=lambda: array("d"))
    logged: int = 0


def add_products(session: Session, rng: random.Random, count: int, progress=None) -> NewProducts:
    connection, new = session.connection(), NewProducts()
    first, start = next_demo_number(session), utcnow() - HISTORY
    for batch_start in range(first, first + count, BATCH):
        rows = product_rows(rng, range(batch_start, min(batch_start + BATCH, first + count)), first, count, start)
        for row, product_id in zip(rows, bulk.reserve_ids(connection, Product.__table__, len(rows))):
            row["id"] = product_id
            new.ids.append(product_id)
            new.created.append(row["created_at"].timestamp())
        bulk.insert_rows(connection, Product.__table__, rows)
        if progress:
            progress(len(rows))
    return new


def new_product_rows(session: Session, new: NewProducts, until: datetime | None, limit: int) -> list:
    """Up to ``limit`` new products created up to ``until`` (any time when None) and not yet
    logged, oldest first."""
    end = len(new.ids) if until is None else bisect_right(new.created, until.timestamp())
    end = min(end, new.logged + limit)
    if end <= new.logged:
        return []
    ids = set(new.ids[new.logged : end])
    rows = session.execute(
        select(Product.__table__).where(Product.id.between(min(ids), max(ids))).order_by(Product.id)
    ).mappings()
    new.logged = end
    return [row for row in rows if row["id"] in ids]


def _product_entry(actor: audit.Actor, row) -> dict:
    """As the app writes on every create."""
    return audit.entry(
        actor,
        AuditAction.CREATE,
        "product",
        row["id"],
        f"{row['sku']} — {row['name']}",
        audit.creation(row, Product),
        at=row["created_at"],
    )


# --- transactions ---


@dataclass
class Catalog:
    """The active products, oldest first, in compact arrays (a million fit in ~100 MiB)."""

    ids: array = field(default_factory=lambda: array("q"))
    skus: list = field(default_factory=list)
    cents: array = field(default_factory=lambda: array("q"))
    stock: array = field(default_factory=lambda: array("q"))
    created: array = field(default_factory=lambda: array("d"))  # POSIX seconds
    loaded_stock: array = field(default_factory=lambda: array("q"))

    def moves(self) -> dict[int, int]:
        """{product id: stock taken (-) or given back (+)} since the catalog was loaded."""
        return {
            self.ids[i]: now - then for i, (now, then) in enumerate(zip(self.stock, self.loaded_stock)) if now != then
        }

    def available_at(self, moment: float, wanted: int) -> int:
        """How many of the oldest products a sale at ``moment`` may choose from."""
        return max(bisect_right(self.created, moment), min(wanted, len(self.ids)))


def load_catalog(session: Session) -> Catalog:
    catalog = Catalog()
    rows = session.execute(
        select(Product.id, Product.sku, Product.price, Product.stock, Product.created_at)
        .where(Product.is_active)
        .order_by(Product.created_at, Product.id)
        .execution_options(yield_per=10_000)
    )
    for product_id, sku, price, stock, created in rows:
        catalog.ids.append(product_id)
        catalog.skus.append(sku)
        catalog.cents.append(int(price * 100))
        catalog.stock.append(stock)
        catalog.created.append(created.timestamp())
    catalog.loaded_stock = array("q", catalog.stock)
    return catalog


def sellers(session: Session) -> list[audit.Actor]:
    """The active users who may sell (staff and admins), as the audit trail names them."""
    rows = session.execute(
        select(User.id, User.username).where(User.is_active, User.role != Role.AUDITOR).order_by(User.id)
    )
    return [audit.Actor(user_id, username) for user_id, username in rows]


def sale_times(rng: random.Random, catalog: Catalog, count: int, lines_each: int) -> list[float]:
    """When each of ``count`` sales was made: spread, in order, over the last two years
    (from when the catalog had enough products for a sale, when it is younger)."""
    now = utcnow().timestamp()
    enough = catalog.created[min(lines_each, len(catalog.created)) - 1]
    return sorted(rng.uniform(max(now - HISTORY.total_seconds(), enough), now) for _ in range(count))


def add_transactions(
    session: Session,
    actor: audit.Actor,
    rng: random.Random,
    count: int,
    lines_each: int,
    new: NewProducts,
    progress=None,
) -> tuple[int, int, int]:
    """``count`` sales: each stays a draft, or is posted (and maybe voided later), its stock
    taken and given back in time order, as `sales.post` and `sales.void` would. Every event,
    the new products' creation included, is logged in the order it happened. Returns
    (drafts, posted, voided)."""
    story = _Story(session, actor, new, rng)
    if count:
        story.catalog = load_catalog(session)
        if not story.catalog.ids:
            raise DomainError("No active products: seed products first (--products N).")
        story.users = sellers(session) or [_seller(session)]
        times = sale_times(rng, story.catalog, count, lines_each)
        # All at once: a batch's sales still open when it ends are written with a later one.
        ids = bulk.reserve_ids(session.connection(), Transaction.__table__, count)
        for batch_start in range(0, count, BATCH):
            batch = times[batch_start : batch_start + BATCH]
            for txn_id, moment in zip(ids[batch_start : batch_start + BATCH], batch):
                story.begin(_sale(rng, story.catalog, story.users, txn_id, moment, lines_each))
            story.play_until(datetime.fromtimestamp(batch[-1], UTC))
            if progress:
                progress(len(batch))
    story.play_until(None)  # what happened after the last sale
    if count:
        bulk.add_to_column(session.connection(), Product.__table__, "stock", story.catalog.moves())
    counts = story.counts
    return counts[TransactionStatus.DRAFT], counts[TransactionStatus.POSTED], counts[TransactionStatus.VOID]


class _Story:
    """The seed's events (a product created, a sale created, posted, voided), played and
    written in time order, a batch at a time."""

    def __init__(self, session: Session, actor: audit.Actor, new: NewProducts, rng: random.Random):
        self.session, self.actor, self.new, self.rng = session, actor, new, rng
        self.now = utcnow()  # what would happen later has not happened yet: it is left out
        self.catalog, self.users = None, []
        self.events, self.order = [], itertools.count()
        self.entries, self.finished = [], []
        # Movements in time order, written as soon as the sales they name are: a sale still
        # to be voided is written later, so the movements after its post wait with it.
        self.movements, self.unwritten = deque(), set()
        self.counts = {status: 0 for status in TransactionStatus}

    def push(self, moment: datetime, kind: str, item) -> None:
        heapq.heappush(self.events, (moment, next(self.order), kind, item))

    def begin(self, sale: "_Sale") -> None:
        self.push(sale.row["created_at"], AuditAction.CREATE, sale)

    def play_until(self, until: datetime | None) -> None:
        """Play and write the events up to ``until`` (all when None), the new products'
        creations among them."""
        while True:
            rows = new_product_rows(self.session, self.new, until, limit=BATCH)
            for row in rows:
                self.push(row["created_at"], "product", row)
            more = len(rows) == BATCH
            self._play(rows[-1]["created_at"] if more else until)
            self._write()
            if not more:
                return

    def _play(self, until: datetime | None) -> None:
        while self.events and (until is None or self.events[0][0] <= until):
            moment, _, kind, item = heapq.heappop(self.events)
            if kind == "product":
                self.entries.append(_product_entry(self.actor, item))
                self.movements.append(_opening(self.actor, item))
                continue
            follow_up = _EVENTS[kind](self.rng, self.catalog, self.users, item, moment, self.entries)
            if kind == AuditAction.POST and item.row["status"] == TransactionStatus.POSTED:
                self.unwritten.add(item.row["id"])
                self.movements.extend(_movements(self.catalog, item, MovementKind.SALE, moment, item.row["posted_by"]))
            elif kind == AuditAction.VOID:
                self.movements.extend(
                    _movements(
                        self.catalog, item, MovementKind.RETURN, moment, item.row["voided_by"], item.row["void_reason"]
                    )
                )
            if follow_up and follow_up[0] <= self.now:
                self.push(follow_up[0], follow_up[1], item)
            else:
                self.finished.append(item)

    def _write(self) -> None:
        """The sales with nothing left to happen, and the entries so far."""
        connection, sales = self.session.connection(), self.finished
        bulk.insert_rows(connection, Transaction.__table__, [sale.row for sale in sales])
        bulk.insert_rows(
            connection,
            TransactionProduct.__table__,
            [
                {
                    "transaction_id": sale.row["id"],
                    "product_id": self.catalog.ids[index],
                    "product_qty": qty,
                    "unit_price": _money(self.catalog.cents[index]),
                }
                for sale in sales
                for index, qty in sale.lines
            ],
        )
        if self.entries:
            audit.append(connection, self.entries)
        for sale in sales:
            self.counts[sale.row["status"]] += 1
            self.unwritten.discard(sale.row["id"])
        ready = []
        while self.movements and self.movements[0]["transaction_id"] not in self.unwritten:
            ready.append(self.movements.popleft())
        bulk.insert_rows(connection, StockMovement.__table__, ready)
        self.entries, self.finished = [], []


def _seller(session: Session) -> audit.Actor:
    """The staff member who sells when the database has no one who may."""
    user = accounts.create_user(session, "demo-staff", secrets.token_urlsafe(16), Role.STAFF)
    session.flush()
    return audit.Actor(user.id, user.username)


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
    row = {
        "id": txn_id,
        "status": TransactionStatus.DRAFT,
        "note": rng.choice([None, None, "walk-in", "phone order", "delivery"]),
        "total": _money(sum(catalog.cents[i] * qty for i, qty in lines)),
        "created_at": datetime.fromtimestamp(moment, UTC),
        "created_by": creator.user_id,
        "posted_at": None,
        "posted_by": None,
        "voided_at": None,
        "voided_by": None,
        "void_reason": None,
        "line_count": len(lines),
        "version": 1,
    }
    return _Sale(row, lines, creator)


def _create(rng, catalog, users, sale: _Sale, moment, entries):
    row = sale.row
    changes = {
        "id": [None, row["id"]],
        "status": [None, TransactionStatus.DRAFT],
        "note": [None, row["note"]],
        "total": [None, row["total"]],
        "created_by_id": [None, row["created_by"]],
        "lines": {"added": [{"sku": catalog.skus[i], "qty": qty} for i, qty in sale.lines]},
    }
    if row["note"] is None:
        del changes["note"]
    entries.append(_entry(sale.creator, AuditAction.CREATE, row, changes, moment))
    if rng.random() >= DRAFT_SHARE:
        return moment + timedelta(seconds=rng.randint(30, 1800)), AuditAction.POST
    return None


def _post(rng, catalog, users, sale: _Sale, moment, entries):
    if any(catalog.stock[i] < qty for i, qty in sale.lines):
        return None  # not enough stock left: it stays a draft
    poster = rng.choice(users)
    sale.row.update(status=TransactionStatus.POSTED, posted_at=moment, posted_by=poster.user_id, version=2)
    entries.append(
        _entry(
            poster,
            AuditAction.POST,
            sale.row,
            {
                "status": [TransactionStatus.DRAFT, TransactionStatus.POSTED],
                "posted_at": [None, moment],
                "posted_by_id": [None, poster.user_id],
                "stock": _move_stock(catalog, sale, -1),
            },
            moment,
        )
    )
    if rng.random() < VOID_SHARE / (1 - DRAFT_SHARE):
        return moment + timedelta(minutes=rng.randint(5, 2880)), AuditAction.VOID
    return None


def _void(rng, catalog, users, sale: _Sale, moment, entries):
    voider, reason = rng.choice(users), rng.choice(VOID_REASONS)
    sale.row.update(
        status=TransactionStatus.VOID, voided_at=moment, voided_by=voider.user_id, void_reason=reason, version=3
    )
    entries.append(
        _entry(
            voider,
            AuditAction.VOID,
            sale.row,
            {
                "status": [TransactionStatus.POSTED, TransactionStatus.VOID],
                "voided_at": [None, moment],
                "voided_by_id": [None, voider.user_id],
                "void_reason": [None, reason],
                "stock": _move_stock(catalog, sale, +1),
            },
            moment,
        )
    )
    return None


# A sale's events, by the action each records.
_EVENTS = {AuditAction.CREATE: _create, AuditAction.POST: _post, AuditAction.VOID: _void}


def _move_stock(catalog: Catalog, sale: _Sale, sign: int) -> dict:
    """Take (-1) or give back (+1) the sale's quantities; {sku: [before, after]}."""
    stock = {}
    for index, qty in sale.lines:
        before = catalog.stock[index]
        catalog.stock[index] = before + sign * qty
        stock[catalog.skus[index]] = [before, catalog.stock[index]]
    return stock


def _movement(product_id, kind, quantity, after, moment, user_id, reason=None, transaction_id=None) -> dict:
    return {
        "product_id": product_id,
        "kind": str(kind),
        "quantity": quantity,
        "stock_after": after,
        "created_at": moment,
        "user_id": user_id,
        "reason": reason,
        "reference": None,
        "transaction_id": transaction_id,
    }


def _opening(actor: audit.Actor, row) -> dict:
    """A new product's opening movement, as the app writes on every create."""
    return _movement(row["id"], MovementKind.OPENING, row["stock"], row["stock"], row["created_at"], actor.user_id)


def _movements(catalog: Catalog, sale: _Sale, kind, moment, user_id, reason=None) -> list[dict]:
    """A post's (or void's) movements, one per line in product order, with the stock it left
    (``_move_stock`` has just moved it)."""
    sign = -1 if kind == MovementKind.SALE else 1
    return [
        _movement(catalog.ids[index], kind, sign * qty, catalog.stock[index], moment, user_id, reason, sale.row["id"])
        for index, qty in sorted(sale.lines, key=lambda line: catalog.ids[line[0]])
    ]


def _entry(actor: audit.Actor, action: AuditAction, row: dict, changes: dict, moment: datetime) -> dict:
    return audit.entry(actor, action, "transaction", row["id"], f"Transaction #{row['id']}", changes, at=moment)


def _money(cents: int) -> Decimal:
    return Decimal(cents).scaleb(-2)
