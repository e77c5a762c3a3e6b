"""The stock ledger (stock_movements): every change of stock has its movement, written with the
change, and movements are never changed or deleted; seeded and migrated stock reconciles."""

from datetime import timedelta

import flask_migrate
import pytest
from sqlalchemy import func, insert, select, text, update
from sqlalchemy.exc import DBAPIError

from adminapp.domain import guards, sales, seeding
from adminapp.domain.errors import MovementsAreFinal
from adminapp.extensions import db as _db
from adminapp.models import AuditEntry, Product, StockMovement, Transaction, User, utcnow
from tests.support import flashed, make_app, product_form, save_draft

from .test_transactions import post_action, void_url


def backend(app) -> str:
    return "postgresql" if app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql") else "sqlite"


def movements(db, product_id=None) -> list[dict]:
    """The movements (of a product), in the order they were written."""
    with db() as session:
        query = select(StockMovement).order_by(StockMovement.id)
        if product_id is not None:
            query = query.where(StockMovement.product_id == product_id)
        return [
            {
                "product_id": m.product_id,
                "kind": m.kind,
                "quantity": m.quantity,
                "stock_after": m.stock_after,
                "user_id": m.user_id,
                "reason": m.reason,
                "reference": m.reference,
                "transaction_id": m.transaction_id,
                "created_at": m.created_at,
            }
            for m in session.scalars(query)
        ]


def unreconciled(session) -> list[str]:
    """What does not reconcile: a product whose stock is not the sum of its movements, or a
    movement whose stock after does not follow from the one before (in id order)."""
    problems, running = [], {}
    rows = session.execute(
        select(StockMovement.product_id, StockMovement.quantity, StockMovement.stock_after).order_by(StockMovement.id)
    )
    for product_id, quantity, after in rows:
        running[product_id] = running.get(product_id, 0) + quantity
        if running[product_id] != after:
            problems.append(f"product {product_id}: stock after {after}, expected {running[product_id]}")
    for product_id, stock in session.execute(select(Product.id, Product.stock)):
        if running.get(product_id) != stock:
            problems.append(f"product {product_id}: stock {stock}, movements {running.get(product_id)}")
    return problems


@pytest.fixture
def draft(db):
    def make(*lines):
        with db() as session:
            return save_draft(session, lines).id

    return make


@pytest.fixture
def posted(db, draft):
    def make(*lines):
        txn_id = draft(*lines)
        with db() as session:
            sales.post(session, session.get(Transaction, txn_id), None)
        return txn_id

    return make


@pytest.fixture
def voided(db, posted):
    def make(*lines):
        txn_id = posted(*lines)
        with db() as session:
            sales.void(session, session.get(Transaction, txn_id), None, "test")
        return txn_id

    return make


# ------------------------------------------------------------------ written with the change


def test_a_product_created_in_the_form_opens_its_ledger_with_its_stock(db, as_role):
    client = as_role("admin")

    response = client.post("/admin/product/new/", data=product_form(sku="LEDGER-1", stock="7"))

    assert response.status_code == 302, flashed(response)
    with db() as session:
        product = session.scalar(select(Product).where(Product.sku == "LEDGER-1"))
        entries = session.scalar(
            select(func.count()).select_from(AuditEntry).where(AuditEntry.object_type == "product")
        )
        admin = session.scalar(select(User.id).where(User.role == "admin"))
        product_id = product.id
    [opening] = movements(db, product_id)
    assert opening["kind"] == "opening" and opening["quantity"] == opening["stock_after"] == 7
    assert opening["user_id"] == admin and opening["transaction_id"] is None
    assert utcnow() - timedelta(minutes=1) < opening["created_at"] <= utcnow()
    assert entries == 1  # the product's "create"; the movement has no entry of its own


def test_a_product_created_with_no_stock_opens_at_zero(db, make_product):
    product_id = make_product(stock=0)

    assert [(m["kind"], m["quantity"], m["stock_after"]) for m in movements(db, product_id)] == [("opening", 0, 0)]


def test_posting_and_voiding_write_one_movement_per_product_with_one_entry_each(db, as_role, make_product, draft):
    client = as_role("staff")
    coffee, tea = make_product(sku="KOPI", stock=10), make_product(sku="TEH", stock=5)
    txn_id = draft((coffee, 3), (tea, 5))

    assert post_action(client, "post", txn_id, follow=False).status_code == 302
    assert client.post(void_url(txn_id), data={"reason": "Customer returned the goods"}).status_code == 302

    with db() as session:
        staff = session.scalar(select(User.id).where(User.role == "staff"))
        stock = dict(session.execute(select(Product.sku, Product.stock)).all())
        entries = session.scalars(
            select(AuditEntry.action).where(AuditEntry.object_type == "transaction").order_by(AuditEntry.id)
        ).all()
        txn = session.get(Transaction, txn_id)
        posted_at, voided_at = txn.posted_at, txn.voided_at
    moved = [m for m in movements(db) if m["kind"] != "opening"]
    assert [(m["product_id"], m["kind"], m["quantity"], m["stock_after"]) for m in moved] == [
        (coffee, "sale", -3, 7),
        (tea, "sale", -5, 0),
        (coffee, "return", 3, 10),
        (tea, "return", 5, 5),
    ]
    assert {(m["user_id"], m["transaction_id"]) for m in moved} == {(staff, txn_id)}
    assert [m["reason"] for m in moved] == [None, None, "Customer returned the goods", "Customer returned the goods"]
    assert [m["created_at"] for m in moved] == [posted_at, posted_at, voided_at, voided_at]
    assert stock == {"KOPI": 10, "TEH": 5}
    assert entries == ["create", "post", "void"]  # one entry per change, not one per movement
    with db() as session:
        assert unreconciled(session) == []


def test_a_refused_post_writes_no_movement(db, as_role, make_product, draft):
    client = as_role("staff")
    product = make_product(stock=2)
    txn_id = draft((product, 3))

    response = post_action(client, "post", txn_id)

    assert "was not posted" in flashed(response)
    assert [m["kind"] for m in movements(db, product)] == ["opening"]


def test_stock_is_the_sum_of_its_movements_after_a_mix_of_operations(db, make_product, draft, posted, voided):
    a, b, c = make_product(stock=20), make_product(stock=8), make_product(stock=0)
    posted((a, 2), (b, 3))
    voided((a, 5))
    posted((b, 5))
    draft((a, 1), (b, 1))  # a draft moves nothing
    posted((a, 13))

    with db() as session:
        assert unreconciled(session) == []
        assert (session.get(Product, a).stock, session.get(Product, b).stock) == (5, 0)
    assert [m["quantity"] for m in movements(db, a)] == [20, -2, -5, 5, -13]
    assert [m["stock_after"] for m in movements(db, a)] == [20, 18, 13, 18, 5]
    assert [m["stock_after"] for m in movements(db, b)] == [8, 5, 0]
    assert [m["quantity"] for m in movements(db, c)] == [0]


def test_deleting_an_unsold_product_takes_its_movements_with_it(db, as_role, make_product):
    client = as_role("admin")
    product = make_product(stock=4)

    response = client.post("/admin/product/delete/", data={"id": product, "url": "/admin/product/"})

    assert response.status_code == 302, flashed(response)
    assert movements(db, product) == []


# ------------------------------------------------------------------ never changed nor deleted


def test_the_flush_refuses_to_change_or_delete_a_movement(app, db, make_product):
    product = make_product(stock=3)
    for change in (lambda m: setattr(m, "quantity", 99), lambda m: _db.session.delete(m)):
        with app.app_context():
            movement = _db.session.scalar(select(StockMovement).where(StockMovement.product_id == product))
            change(movement)
            with pytest.raises(MovementsAreFinal):
                _db.session.flush()
            _db.session.rollback()
    assert [(m["quantity"], m["stock_after"]) for m in movements(db, product)] == [(3, 3)]


@pytest.mark.parametrize("statement", ["update", "delete"])
def test_a_bulk_statement_cannot_change_movements_even_marked_as_recorded(app, db, make_product, statement):
    product = make_product(stock=3)
    with app.app_context():
        query = (
            update(StockMovement).values(quantity=1)
            if statement == "update"
            else StockMovement.__table__.delete().where(StockMovement.product_id == product)
        )
        with pytest.raises(guards.UnrecordedWrite, match="append-only"):
            _db.session.execute(query, execution_options=guards.RECORDS_ITS_OWN_ENTRY)
        _db.session.rollback()
    assert len(movements(db, product)) == 1


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE stock_movements SET quantity = 99",
        "DELETE FROM stock_movements",
        "TRUNCATE stock_movements",
    ],
)
def test_postgresql_refuses_any_sql_that_changes_or_deletes_movements(app, db, make_product, sql):
    if backend(app) != "postgresql":
        pytest.skip("the database's triggers are PostgreSQL's")
    product = make_product(stock=3)
    with app.app_context():
        with pytest.raises(DBAPIError, match="stock_movements is append-only"):
            _db.session.execute(text(sql))
        _db.session.rollback()
    assert [(m["quantity"], m["stock_after"]) for m in movements(db, product)] == [(3, 3)]


# ------------------------------------------------------------------ the seed


@pytest.mark.parametrize("batch", [seeding.BATCH, 7], ids=["one batch", "small batches"])
def test_seeded_stock_reconciles_with_its_movements(app, db, make_user, make_product, monkeypatch, batch):
    monkeypatch.setattr(seeding, "BATCH", batch)
    make_user("seller", role="staff")
    existing = make_product(stock=500)  # sold from too: its opening was written when it was made
    runner = app.test_cli_runner()

    result = runner.invoke(args=["seed", "--products", "40", "--transactions", "120", "--lines", "2", "--seed", "3"])

    assert result.exit_code == 0, result.output
    with db() as session:
        assert unreconciled(session) == []
        kinds = dict(session.execute(select(StockMovement.kind, func.count()).group_by(StockMovement.kind)).all())
        lines_sold = session.scalar(
            text(
                "SELECT count(*) FROM transaction_products l JOIN transactions t ON t.id = l.transaction_id "
                "WHERE t.status <> 'draft'"
            )
        )
        lines_voided = session.scalar(
            text(
                "SELECT count(*) FROM transaction_products l JOIN transactions t ON t.id = l.transaction_id "
                "WHERE t.status = 'void'"
            )
        )
        product_entries = session.scalar(
            select(func.count()).select_from(AuditEntry).where(AuditEntry.object_type == "product")
        )
        wrong_times = session.scalar(
            select(func.count())
            .select_from(StockMovement)
            .join(Transaction, Transaction.id == StockMovement.transaction_id)
            .where(
                ((StockMovement.kind == "sale") & (StockMovement.created_at != Transaction.posted_at))
                | ((StockMovement.kind == "return") & (StockMovement.created_at != Transaction.voided_at))
            )
        )
    assert kinds["opening"] == 41 and kinds["sale"] == lines_sold > 0 and kinds["return"] == lines_voided > 0
    assert product_entries == 41  # the audit trail: one entry per product, none per movement
    assert wrong_times == 0
    assert movements(db, existing)[0]["kind"] == "opening"


# ------------------------------------------------------------------ the migration


@pytest.fixture
def fresh_app(empty_database_url, tmp_path):
    app = make_app(empty_database_url, tmp_path)
    yield app
    with app.app_context():
        _db.session.remove()
        _db.engine.dispose()


def test_the_migration_opens_the_ledger_of_every_product_there_already(fresh_app):
    row = {"name": "Old stock", "price": 1, "is_active": True, "version": 1}
    with fresh_app.app_context():
        flask_migrate.upgrade(revision="0011")
        before = utcnow()
        _db.session.execute(
            insert(Product.__table__),
            [
                {**row, "sku": "OLD-1", "stock": 12, "created_at": before, "updated_at": before},
                {**row, "sku": "OLD-2", "stock": 0, "created_at": before, "updated_at": before},
            ],
        )
        _db.session.commit()
        flask_migrate.upgrade()
        openings = [
            (sku, m.kind, m.quantity, m.stock_after, m.reason, m.user_id, m.transaction_id, m.reference, m.created_at)
            for sku, m in _db.session.execute(
                select(Product.sku, StockMovement)
                .join(StockMovement, StockMovement.product_id == Product.id)
                .order_by(StockMovement.id)
            )
        ]
        problems = unreconciled(_db.session)
        _db.session.rollback()

    assert [row[:4] for row in openings] == [("OLD-1", "opening", 12, 12), ("OLD-2", "opening", 0, 0)]
    assert {row[4:8] for row in openings} == {("stock before the ledger", None, None, None)}
    assert all(before <= row[8] <= utcnow() for row in openings)  # dated at the migration
    assert problems == []


def test_posting_after_the_migration_continues_the_ledger(fresh_app):
    with fresh_app.app_context():
        flask_migrate.upgrade()
        product = Product(sku="P-1", name="P", price=1, stock=5)
        _db.session.add(product)
        _db.session.flush()
        txn = save_draft(_db.session, [(product.id, 2)])
        sales.post(_db.session, txn, None)
        _db.session.commit()
        assert unreconciled(_db.session) == []
        _db.session.rollback()
