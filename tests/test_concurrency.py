"""Posting under concurrency and failure, on PostgreSQL only (SQLite has no row locks).

Each test builds its own app on the run's throwaway PostgreSQL database, and many
threads drive it at once, each with its own signed-in test client. Without
TEST_DATABASE_URL the `postgres_url` fixture skips them with its reason.
"""

import html
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import OperationalError

from adminapp.domain import sales
from adminapp.extensions import db as _db
from adminapp.models import AuditEntry, Product, Transaction, TransactionProduct, User
from tests.support import PASSWORD, flashed, fresh_schema, login, make_app, product_form

ACTION = "/admin/transaction/action/"
TIMEOUT = 60  # seconds; a thread still waiting after this means a lock was never released


@pytest.fixture
def pg(postgres_url, tmp_path):
    with fresh_schema(make_app(postgres_url, tmp_path)) as app:
        yield app


@pytest.fixture
def run_sql(pg):
    def run(sql, **params):
        with pg.app_context():
            result = _db.session.execute(text(sql), params)
            rows = result.all() if result.returns_rows else None
            _db.session.commit()
            return rows

    return run


@pytest.fixture
def clients(pg):
    """`clients(n)`: n test clients, each signed in as its own staff user."""

    def make(n, prefix="clerk"):
        names = [f"{prefix}-{i}" for i in range(n)]
        with pg.app_context():
            for name in names:
                user = User(username=name, role="staff")
                user.set_password(PASSWORD)
                _db.session.add(user)
            _db.session.commit()
        signed_in = []
        for name in names:
            client = pg.test_client()
            assert login(client, name).status_code == 302
            signed_in.append(client)
        return signed_in

    return make


@pytest.fixture
def product(pg):
    def make(sku, stock, price="10.00"):
        with pg.app_context():
            p = Product(sku=sku, name=f"Product {sku}", price=Decimal(price), stock=stock)
            _db.session.add(p)
            _db.session.commit()
            return p.id

    return make


@pytest.fixture
def draft(pg):
    def make(*lines):
        with pg.app_context():
            txn = Transaction(
                lines=[TransactionProduct(product=_db.session.get(Product, pid), product_qty=qty) for pid, qty in lines]
            )
            _db.session.add(txn)
            sales.save_draft(_db.session, txn, None, is_new=True)
            _db.session.commit()
            return txn.id

    return make


@pytest.fixture
def snapshot(pg):
    """Stock, transactions, lines and the audit row count, as plain values."""

    def take():
        with pg.app_context():
            s = _db.session
            result = {
                "stock": dict(s.execute(select(Product.id, Product.stock)).all()),
                "txns": {
                    t.id: (t.status, t.total, t.posted_at, t.posted_by_id, t.version)
                    for t in s.scalars(select(Transaction))
                },
                "lines": {
                    tp.id: (tp.transaction_id, tp.product_id, tp.product_qty, tp.unit_price)
                    for tp in s.scalars(select(TransactionProduct))
                },
                "audit": s.scalar(select(func.count(AuditEntry.id))),
            }
            s.rollback()
            return result

    return take


def page_text(response) -> str:
    return html.unescape(flashed(response))


def post(client, txn_id):
    response = client.post(ACTION, data={"action": "post", "rowid": str(txn_id)}, follow_redirects=True)
    return response.status_code, page_text(response)


def all_at_once(calls):
    """Run the calls in threads that start together; return their results (or raise theirs)."""
    barrier = threading.Barrier(len(calls))

    def run(call):
        barrier.wait(timeout=TIMEOUT)
        return call()

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        futures = [pool.submit(run, call) for call in calls]
        return [future.result(timeout=TIMEOUT) for future in futures]


def assert_no_unexpected_errors(results):
    for status, page in results:
        assert status < 500
        assert "unexpected error" not in page
        assert "deadlock" not in page.lower()


# ---------------------------------------------------------------------------


def test_twelve_concurrent_posts_of_the_last_five_units(pg, clients, product, draft, snapshot):
    item = product("HOT-1", stock=5)
    drafts = [draft((item, 1)) for _ in range(12)]
    signed_in = clients(12)

    results = all_at_once([lambda c=c, t=t: post(c, t) for c, t in zip(signed_in, drafts)])

    assert_no_unexpected_errors(results)
    succeeded = [t for t, (_, page) in zip(drafts, results) if f"Transaction #{t} posted." in page]
    refused = [t for t, (_, page) in zip(drafts, results) if f"Transaction #{t} was not posted" in page]
    assert len(succeeded) == 5
    assert len(refused) == 7
    for t, (_, page) in zip(drafts, results):
        if t in refused:
            assert "HOT-1" in page and "0 in stock, 1 asked" in page
    after = snapshot()
    assert after["stock"][item] == 0
    statuses = {t: after["txns"][t][0] for t in drafts}
    assert sorted(t for t, s in statuses.items() if s == "posted") == sorted(succeeded)
    assert sorted(t for t, s in statuses.items() if s == "draft") == sorted(refused)
    posted_by = {after["txns"][t][3] for t in succeeded}
    assert len(posted_by) == 5 and None not in posted_by


def test_the_same_draft_posted_by_many_at_once_posts_once(pg, clients, product, draft, snapshot):
    item = product("ONCE-1", stock=100)
    txn_id = draft((item, 7))
    signed_in = clients(8)

    results = all_at_once([lambda c=c: post(c, txn_id) for c in signed_in])

    assert_no_unexpected_errors(results)
    assert sum(f"Transaction #{txn_id} posted." in page for _, page in results) == 1
    assert sum(f"Transaction #{txn_id} is already posted: by clerk-" in page for _, page in results) == 7
    after = snapshot()
    assert after["stock"][item] == 93
    assert after["txns"][txn_id][0] == "posted"


@pytest.mark.parametrize(
    "table, target",
    [
        ("products", "third product"),
        ("transaction_products", "third line"),
        ("transactions", "the transaction"),
    ],
)
def test_a_failure_half_way_through_posting_changes_nothing(
    pg, clients, product, draft, snapshot, run_sql, table, target
):
    """A trigger makes one UPDATE of the post fail after others ran: all must roll back."""
    first, second, third = product("F-1", 10, "1.00"), product("F-2", 10, "2.00"), product("F-3", 10, "3.00")
    txn_id = draft((first, 1), (second, 2), (third, 3))
    with pg.app_context():  # new prices, so a post would change every line's unit_price
        for pid in (first, second, third):
            _db.session.get(Product, pid).price += Decimal("0.50")
        _db.session.commit()
        line_ids = [tp.id for tp in _db.session.get(Transaction, txn_id).lines]
    failing_id = {"products": third, "transaction_products": line_ids[2], "transactions": txn_id}[table]
    (client,) = clients(1)
    before = snapshot()

    run_sql(
        "CREATE FUNCTION test_injected_failure() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'injected failure on %', TG_TABLE_NAME; END $$"
    )
    run_sql(
        f"CREATE TRIGGER test_injected_failure BEFORE UPDATE ON {table} FOR EACH ROW "
        f"WHEN (OLD.id = {int(failing_id)}) EXECUTE FUNCTION test_injected_failure()"
    )
    try:
        status, page = post(client, txn_id)
    finally:
        run_sql(f"DROP TRIGGER test_injected_failure ON {table}")
        run_sql("DROP FUNCTION test_injected_failure()")

    assert status < 500
    assert f"Transaction #{txn_id} was not posted" in page, target
    assert f"Transaction #{txn_id} posted." not in page
    after = snapshot()
    assert after == before
    assert after["txns"][txn_id][0] == "draft" and after["txns"][txn_id][2] is None

    # Nothing was left half-done or locked: the same draft posts normally now.
    status, page = post(client, txn_id)
    assert f"Transaction #{txn_id} posted." in page
    final = snapshot()
    assert final["stock"] == {first: 9, second: 8, third: 7}
    assert final["txns"][txn_id][1] == Decimal("1.50") + 2 * Decimal("2.50") + 3 * Decimal("3.50")


def test_a_failure_while_voiding_changes_nothing(pg, clients, product, draft, snapshot, run_sql):
    first, second = product("V-1", 10), product("V-2", 10)
    txn_id = draft((first, 1), (second, 2))
    (client,) = clients(1)
    assert f"Transaction #{txn_id} posted." in post(client, txn_id)[1]
    before = snapshot()

    run_sql(
        "CREATE FUNCTION test_injected_failure() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'injected failure'; END $$"
    )
    run_sql(
        f"CREATE TRIGGER test_injected_failure BEFORE UPDATE ON products FOR EACH ROW "
        f"WHEN (OLD.id = {int(second)}) EXECUTE FUNCTION test_injected_failure()"
    )
    try:
        response = client.post(f"/admin/transaction/void/?id={txn_id}", data={"reason": "returned"})
    finally:
        run_sql("DROP TRIGGER test_injected_failure ON products")
        run_sql("DROP FUNCTION test_injected_failure()")

    assert response.status_code < 500
    assert "was not voided" in page_text(response)
    assert snapshot() == before


def test_posts_sharing_products_in_opposite_order_do_not_deadlock(pg, clients, product, draft, snapshot):
    items = [product(f"X-{n}", stock=1000) for n in range(5)]
    alice, bob = clients(2)
    rounds = 8
    for _ in range(rounds):
        forwards = draft(*[(pid, 1) for pid in items])
        backwards = draft(*[(pid, 2) for pid in reversed(items)])

        results = all_at_once([lambda: post(alice, forwards), lambda: post(bob, backwards)])

        assert_no_unexpected_errors(results)
        assert f"Transaction #{forwards} posted." in results[0][1]
        assert f"Transaction #{backwards} posted." in results[1][1]
    after = snapshot()
    assert all(after["stock"][pid] == 1000 - rounds * 3 for pid in items)


def test_a_post_holding_its_products_lets_new_lines_sell_them_but_no_other_post(pg, product, draft):
    """Posting locks its products FOR NO KEY UPDATE: the foreign-key check of a line saved
    meanwhile does not wait for it (it would for FOR UPDATE), another post's lock does."""
    item = product("NOKEY-1", stock=10)
    txn_id = draft((item, 2))
    insert_draft = (
        "INSERT INTO transactions (status, total, created_at, line_count, version) "
        "VALUES ('draft', 0, now(), 1, 1) RETURNING id"
    )
    with pg.app_context():
        sales.post(_db.session, _db.session.get(Transaction, txn_id), None)  # locked until the commit
        with _db.engine.connect() as other:
            other.execute(text("SET LOCAL lock_timeout = '2s'"))
            other_id = other.execute(text(insert_draft)).scalar()
            other.execute(
                text(
                    "INSERT INTO transaction_products (transaction_id, product_id, product_qty) "
                    "VALUES (:txn, :product, 1)"
                ),
                {"txn": other_id, "product": item},
            )
            other.commit()

            other.execute(text("SET LOCAL lock_timeout = '200ms'"))
            with pytest.raises(OperationalError, match="lock timeout"):
                other.execute(text("SELECT stock FROM products WHERE id = :id FOR NO KEY UPDATE"), {"id": item})
            other.rollback()
        _db.session.commit()
        assert _db.session.get(Product, item).stock == 8


def test_concurrent_edit_and_post_of_one_draft_stay_consistent(pg, clients, product, draft, snapshot):
    """Whichever wins, a posted transaction took exactly the stock of the lines it kept."""
    items = [product(f"E-{n}", stock=1000, price="1.00") for n in range(3)]
    editor, poster = clients(2)
    for _ in range(6):
        txn_id = draft(*[(pid, 1) for pid in items])
        stock_before = snapshot()["stock"]
        with pg.app_context():
            line_ids = [tp.id for tp in _db.session.get(Transaction, txn_id).lines]
        form = {"note": "edited", "version": "1"}
        for i, (pid, line_id) in enumerate(zip(items, line_ids)):
            form.update({f"lines-{i}-id": str(line_id), f"lines-{i}-product": str(pid), f"lines-{i}-product_qty": "5"})

        def edit():
            response = editor.post(f"/admin/transaction/edit/?id={txn_id}", data=form, follow_redirects=True)
            return response.status_code, page_text(response)

        results = all_at_once([edit, lambda: post(poster, txn_id)])

        assert_no_unexpected_errors(results)
        after = snapshot()
        status, total = after["txns"][txn_id][:2]
        qtys = [after["lines"][line_id][2] for line_id in line_ids]
        assert qtys in ([1, 1, 1], [5, 5, 5])
        assert total == Decimal(sum(qtys))
        assert status == "posted"
        assert f"Transaction #{txn_id} posted." in results[1][1]
        assert [after["stock"][pid] for pid in items] == [stock_before[pid] - q for pid, q in zip(items, qtys)]
        if qtys == [1, 1, 1]:  # the post won: the edit was refused, not half applied
            assert "was changed." not in results[0][1]


@pytest.mark.parametrize("mode", ["create", "edit"])
def test_a_failure_half_way_through_saving_a_draft_changes_nothing(
    pg, clients, product, draft, snapshot, run_sql, mode
):
    """The third line's INSERT fails after the transaction row and two lines went in."""
    first, second, third = product("S-1", 10), product("S-2", 10), product("S-3", 10)
    (client,) = clients(1)
    form = {"note": "new", "version": ""}
    existing = None
    if mode == "edit":
        other = product("S-0", 10)
        existing = draft((other, 1))
        with pg.app_context():
            line_id = _db.session.get(Transaction, existing).lines[0].id
        form = {
            "note": "edited",
            "version": "1",
            "lines-3-id": str(line_id),
            "lines-3-product": str(other),
            "lines-3-product_qty": "4",
        }
    for i, pid in enumerate((first, second, third)):
        form.update({f"lines-{i}-id": "", f"lines-{i}-product": str(pid), f"lines-{i}-product_qty": "2"})
    before = snapshot()

    run_sql(
        "CREATE FUNCTION test_injected_failure() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'injected failure'; END $$"
    )
    run_sql(
        f"CREATE TRIGGER test_injected_failure BEFORE INSERT ON transaction_products FOR EACH ROW "
        f"WHEN (NEW.product_id = {int(third)}) EXECUTE FUNCTION test_injected_failure()"
    )
    try:
        url = "/admin/transaction/new/" if mode == "create" else f"/admin/transaction/edit/?id={existing}"
        response = client.post(url, data=form)
    finally:
        run_sql("DROP TRIGGER test_injected_failure ON transaction_products")
        run_sql("DROP FUNCTION test_injected_failure()")

    assert response.status_code == 200  # the form again, with a message
    assert "Nothing was saved: an unexpected error occurred (request ID" in page_text(response)
    assert snapshot() == before


def test_a_product_edit_saved_while_a_post_holds_the_product_waits_and_keeps_the_sale(pg, clients, product, draft):
    """The product form never writes the stock (it changes only through movements): an edit
    saved while a post holds the product waits for it, then saves its own fields and leaves
    the sale's stock as it is, whatever stock the form sends."""
    (editor,) = clients(1)
    item = product("EDIT-1", stock=10)
    txn_id = draft((item, 2))
    form = product_form(sku="EDIT-1", name="Renamed", price="10.00", stock="15", version="1")
    with pg.app_context():
        sales.post(_db.session, _db.session.get(Transaction, txn_id), None)  # locked until the commit
        with ThreadPoolExecutor(1) as pool:
            saving = pool.submit(editor.post, f"/admin/product/edit/?id={item}", data=form)
            time.sleep(1)
            assert not saving.done()  # waiting for the post's lock
            _db.session.commit()
            response = saving.result(timeout=TIMEOUT)

    assert response.status_code == 302, page_text(response)
    with pg.app_context():
        saved = _db.session.get(Product, item)
        assert (saved.name, saved.stock) == ("Renamed", 8)


# --------------------------------------------------------------- a mixed load over shared products

LOAD_SECONDS = 30
LOAD_THREADS = 8


def save_new_draft(client, lines):
    """The create form with these (product id, qty) lines, in the order given."""
    form = {"note": "load", "version": ""}
    for i, (pid, qty) in enumerate(lines):
        form.update({f"lines-{i}-id": "", f"lines-{i}-product": str(pid), f"lines-{i}-product_qty": str(qty)})
    response = client.post("/admin/transaction/new/", data=form, follow_redirects=True)
    return response.status_code, page_text(response)


def edit_draft(pg, client, txn_id, qty):
    """The edit form of a draft as stored, every line set to ``qty`` (lines in reverse order)."""
    with pg.app_context():
        txn = _db.session.get(Transaction, txn_id)
        if txn is None or txn.status != "draft":
            return 200, "not a draft any more"
        form = {"note": "edited", "version": str(txn.version)}
        for i, line in enumerate(reversed(txn.lines)):
            form.update(
                {
                    f"lines-{i}-id": str(line.id),
                    f"lines-{i}-product": str(line.product_id),
                    f"lines-{i}-product_qty": str(qty),
                }
            )
        _db.session.rollback()
    response = client.post(f"/admin/transaction/edit/?id={txn_id}", data=form, follow_redirects=True)
    return response.status_code, page_text(response)


def void(client, txn_id):
    response = client.post(f"/admin/transaction/void/?id={txn_id}", data={"reason": "returned"}, follow_redirects=True)
    return response.status_code, page_text(response)


def edit_price(pg, client, pid, price):
    """The product form as opened now, saved with another price and the stock it showed."""
    with pg.app_context():
        p = _db.session.get(Product, pid)
        form = product_form(sku=p.sku, name=p.name, price=price, stock=str(p.stock), version=str(p.version))
        _db.session.rollback()
    response = client.post(f"/admin/product/edit/?id={pid}", data=form, follow_redirects=True)
    return response.status_code, page_text(response)


def ids_of(pg, status):
    with pg.app_context():
        found = list(_db.session.scalars(select(Transaction.id).where(Transaction.status == status)))
        _db.session.rollback()
    return found


def test_drafts_edits_posts_voids_and_price_edits_over_shared_products_never_deadlock(pg, clients, product, snapshot):
    """Saves put their lines in any order, posts and voids lock products, price edits update
    them, all at once for half a minute: no deadlock, no "busy", no 5xx, and the books agree."""
    import random

    items = [product(f"LOAD-{n}", stock=400, price="2.00") for n in range(3)]
    signed_in = clients(LOAD_THREADS)
    deadlocks_before = deadlocks(pg)
    outcomes, deadline = [], time.monotonic() + LOAD_SECONDS

    def work(client, seed):
        rnd = random.Random(seed)
        while time.monotonic() < deadline:
            kind = rnd.choice(["save", "save", "edit", "post", "post", "void", "price"])
            if kind == "save":
                chosen = rnd.sample(items, rnd.randint(1, 3))
                result = save_new_draft(client, [(pid, rnd.randint(1, 4)) for pid in chosen])
            elif kind == "price":
                result = edit_price(pg, client, rnd.choice(items), f"{rnd.randint(1, 9)}.{rnd.randint(0, 99):02d}")
            else:
                candidates = ids_of(pg, "posted" if kind == "void" else "draft")
                if not candidates:
                    continue
                txn_id = rnd.choice(candidates)
                result = {
                    "edit": lambda: edit_draft(pg, client, txn_id, rnd.randint(1, 4)),
                    "post": lambda: post(client, txn_id),
                    "void": lambda: void(client, txn_id),
                }[kind]()
            outcomes.append((kind, *result))

    with ThreadPoolExecutor(LOAD_THREADS) as pool:
        for future in [pool.submit(work, client, n) for n, client in enumerate(signed_in)]:
            future.result(timeout=LOAD_SECONDS + TIMEOUT)

    failures = [
        (kind, status, page[:300])
        for kind, status, page in outcomes
        if status >= 500 or "unexpected error" in page or "busy" in page or "deadlock" in page.lower()
    ]
    assert not failures, failures
    assert {kind for kind, *_ in outcomes} >= {"save", "post", "void", "price"}
    # Not one deadlock, even one a retry would have hidden from the pages.
    assert deadlocks(pg) == deadlocks_before
    assert_books_agree(pg, items, initial=400)


def deadlocks(pg) -> int:
    """PostgreSQL's count of deadlocks detected in the test database (its statistics reach the
    view within a second of each transaction's end)."""
    time.sleep(1.5)
    with pg.app_context():
        _db.session.execute(text("SELECT pg_stat_clear_snapshot()"))
        found = _db.session.scalar(text("SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()"))
        _db.session.rollback()
    return found


def assert_books_agree(pg, items, initial):
    """Stock is what posts took, the totals are their lines', one entry per post and per void,
    and the audit chain verifies."""
    with pg.app_context():
        s = _db.session
        sold = dict(
            s.execute(
                select(TransactionProduct.product_id, func.sum(TransactionProduct.product_qty))
                .join(Transaction)
                .where(Transaction.status == "posted")
                .group_by(TransactionProduct.product_id)
            ).all()
        )
        stock = dict(s.execute(select(Product.id, Product.stock).where(Product.id.in_(items))).all())
        assert stock == {pid: initial - sold.get(pid, 0) for pid in items}
        assert min(stock.values()) >= 0
        for txn in s.scalars(select(Transaction).where(Transaction.status != "draft")):
            assert txn.total == sum(line.unit_price * line.product_qty for line in txn.lines)
            assert txn.posted_at is not None and txn.posted_by_id is not None
            entries = dict(
                s.execute(
                    select(AuditEntry.action, func.count())
                    .where(AuditEntry.object_type == "transaction", AuditEntry.object_id == str(txn.id))
                    .group_by(AuditEntry.action)
                ).all()
            )
            assert entries.get("post") == 1 and entries.get("void", 0) == (txn.status == "void")
        s.rollback()
    result = pg.test_cli_runner().invoke(args=["audit-verify"])
    assert result.exit_code == 0, result.output


# ------------------------------------------------------ price edits while the product sells


def test_a_price_edit_saved_while_the_product_sells_goes_through_and_keeps_the_sales(pg, clients, product, draft):
    item = product("SELL-1", stock=100, price="5.00")
    editor, seller = clients(2)
    for round_ in range(6):
        txn_id = draft((item, 3))
        price = f"{6 + round_}.00"

        results = all_at_once([lambda: edit_price(pg, editor, item, price), lambda: post(seller, txn_id)])

        assert_no_unexpected_errors(results)
        assert "was changed." in results[0][1], results[0][1]
        assert f"Transaction #{txn_id} posted." in results[1][1]
    with pg.app_context():
        saved = _db.session.get(Product, item)
        assert (saved.price, saved.stock) == (Decimal("11.00"), 100 - 6 * 3)


def test_two_people_editing_one_price_still_conflict(pg, clients, product):
    item = product("BOTH-1", stock=10, price="5.00")
    alice, bob = clients(2)
    with pg.app_context():
        opened = _db.session.get(Product, item)
        forms = [
            product_form(sku=opened.sku, name=opened.name, price=price, stock="10", version=str(opened.version))
            for price in ("6.00", "7.00")
        ]
        _db.session.rollback()

    def save(client, form):
        response = client.post(f"/admin/product/edit/?id={item}", data=form, follow_redirects=True)
        return response.status_code, page_text(response)

    results = all_at_once([lambda: save(alice, forms[0]), lambda: save(bob, forms[1])])

    assert_no_unexpected_errors(results)
    assert sum("was changed." in page for _, page in results) == 1
    assert sum("changed" in page and "not saved" in page for _, page in results) == 1
