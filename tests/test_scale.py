"""Lists, search and exports as they must behave at a million rows, asserted by what does not
depend on the machine: statement counts, the SQL's shape, indexes that exist, memory that
stays flat. (How fast they are is measured by scripts/bench_scale.py, never here.)"""

import csv
import io
import re
import tracemalloc
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import insert, select, text

from adminapp.admin import listing
from adminapp.admin.listing import COUNT_CAP, NARROWED_COUNT_CAP
from adminapp.admin.products import ProductView
from adminapp.domain import audit
from adminapp.extensions import db as _db
from adminapp.models import Product, User, utcnow
from tests.support import insert_transactions, statements

PRODUCTS = "/admin/product/"
PAGE = ProductView.page_size  # rows a list page shows by default
TRANSACTIONS = "/admin/transaction/"
AUDIT = "/admin/audit/"
EXPORTS = [
    "/admin/product/export/csv/",
    "/admin/transaction/export/csv/",
    "/admin/transaction/export-lines/",
    "/admin/audit/export/csv/",
    "/admin/user/export/csv/",
]


def backend(app) -> str:
    return "postgresql" if app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql") else "sqlite"


def skus(response) -> list[str]:
    assert response.status_code == 200, response.status_code
    return re.findall(r'<td class="col-sku">\s*(?:<a[^>]*>)?\s*([^<\s]+)', response.text)


def list_count(response) -> str:
    """What the list's tab says it holds: "List (N)"."""
    match = re.search(r'class="nav-link active">[^<(]*\(([^)]*)\)', response.text)
    return match.group(1) if match else ""


@pytest.fixture
def catalog(db):
    """`catalog(n)` adds n products in one statement: SKU-000000, ...; prices repeat every 7."""

    def add(count, start=0):
        now = utcnow()
        with db() as session:
            session.execute(
                insert(Product),
                [
                    {
                        "sku": f"SKU-{n:06d}",
                        "name": f"Item {n}",
                        "price": Decimal(n % 7),
                        "stock": n % 11,
                        "is_active": True,
                        "created_at": now,
                        "updated_at": now,
                        "version": 1,
                    }
                    for n in range(start, start + count)
                ],
            )

    return add


@pytest.fixture
def sales(db, catalog):
    """`sales(n)` adds n posted transactions of 3 lines, sold by one user of three products."""
    made = {}

    def add(count):
        if not made:
            catalog(3, start=900_000)
            with db() as session:
                user = User(username="seller", role="staff", password_hash="x")
                session.add(user)
                session.flush()
                made.update(
                    user=user.id, products=[p.id for p in session.query(Product).filter(Product.sku >= "SKU-900000")]
                )
        with db() as session:
            now = utcnow()
            ids = insert_transactions(
                session,
                [
                    {
                        "status": "posted",
                        "note": f"sale {n}",
                        "created_at": now - timedelta(minutes=n),
                        "created_by_id": made["user"],
                    }
                    for n in range(count)
                ],
                made["products"],
            )
            seller = audit.Actor(made["user"], "seller")
            audit.append(
                session.connection(),
                [
                    audit.entry(
                        seller, "post", "transaction", txn_id, f"Transaction #{txn_id}", {"status": ["draft", "posted"]}
                    )
                    for txn_id in ids
                ],
            )

    return add


def cost(app, client, url) -> int:
    """The statements a page costs (after a first visit: first-request work is not the page's)."""
    client.get(url)
    with statements(app) as seen:
        response = client.get(url)
        response.get_data()
    assert response.status_code == 200, (url, response.status_code)
    return len(seen)


# ------------------------------------------------------------------ counting and paging


def test_a_list_that_fits_on_its_first_page_counts_itself(app, admin_client, catalog):
    catalog(7)

    with statements(app) as seen:
        response = admin_client.get(PRODUCTS)

    assert list_count(response) == "7"
    assert not any("count(" in sql for sql in seen)


def test_a_long_list_is_counted_up_to_the_cap(app, admin_client, catalog):
    catalog(COUNT_CAP + 5)

    with statements(app) as seen:
        response = admin_client.get(PRODUCTS)

    # PostgreSQL may take its estimate instead, once the table has been analysed.
    assert list_count(response) == f"{COUNT_CAP:,}+" or list_count(response).startswith("about")
    assert "&laquo;" in response.text  # a pager, up to the cap's last page
    assert f"page={COUNT_CAP // PAGE - 1}" in response.text
    if list_count(response).endswith("+"):
        assert any("count(" in sql and "limit" in sql for sql in seen)  # stops counting at the cap


def test_a_filtered_list_is_counted_up_to_a_smaller_cap(app, admin_client, catalog):
    """Each match of a filter is checked against the table: its count stops sooner, and its
    pager offers the pages of the rows counted."""
    catalog(NARROWED_COUNT_CAP + 500)
    free = {"flt0_stock_at_or_below": "10"}  # stock is n % 11: every product

    with statements(app) as seen:
        response = admin_client.get(PRODUCTS, query_string=free)
    deep = admin_client.get(PRODUCTS, query_string={**free, "page": NARROWED_COUNT_CAP // PAGE + 5})

    assert list_count(response) == f"{NARROWED_COUNT_CAP:,}+"
    assert any("count(" in sql and "limit" in sql for sql in seen)
    assert f"page={NARROWED_COUNT_CAP // PAGE - 1}" in response.text
    assert f"page={NARROWED_COUNT_CAP // PAGE}" not in response.text
    assert len(skus(deep)) == PAGE  # a page beyond still shows its rows


def test_a_search_that_fills_its_first_page_is_not_counted(app, admin_client, catalog):
    """Counting a search would check every match against the table: many times the page's
    cost. A search that fits its first page is counted by that page; a longer one pages on."""
    catalog(300)

    with statements(app) as seen:
        long = admin_client.get(PRODUCTS, query_string={"search": "KU"})  # too short for SQLite's index
    short = admin_client.get(PRODUCTS, query_string={"search": "SKU-00012"})  # 120 .. 129

    assert list_count(long) == "" and not any("count(" in sql for sql in seen)
    assert 'class="pagination"' in long.text
    assert list_count(short) == "10"


def test_a_filtered_list_below_the_cap_is_counted_exactly(admin_client, catalog):
    catalog(300)

    response = admin_client.get(PRODUCTS, query_string={"flt0_stock_at_or_below": "0"})

    assert list_count(response) == "28"  # stock n % 11 == 0 for n < 300


def test_a_list_filtered_by_what_its_lines_sell_pages_without_counting(app, admin_client, sales):
    sales(25)  # each sells SKU-900000 .. SKU-900002
    filtered = {"flt0_product_contains": "SKU-900001", "page_size": 20}

    with statements(app) as seen:
        first = admin_client.get(TRANSACTIONS, query_string=filtered)
    last = admin_client.get(TRANSACTIONS, query_string={**filtered, "page": 1})

    assert list_count(first) == "" and not any("count(" in sql for sql in seen)
    assert 'class="pagination"' in first.text and len(re.findall(r'class="col-id"', last.text)) == 5
    assert list_count(admin_client.get(TRANSACTIONS, query_string={**filtered, "page_size": 50})) == "25"


def test_a_big_unfiltered_table_on_postgresql_shows_the_planners_estimate(app, admin_client, catalog):
    if backend(app) != "postgresql":
        pytest.skip("the planner's estimate is PostgreSQL's")
    catalog(COUNT_CAP + 2000)
    with app.app_context():
        _db.session.execute(text("ANALYZE products"))
        _db.session.commit()

    with statements(app) as seen:
        response = admin_client.get(PRODUCTS)

    assert list_count(response) == "about 12,000"
    assert not any("count(" in sql for sql in seen)


def test_a_page_past_the_cap_shows_the_last_page_within_it_with_a_message(admin_client, catalog):
    catalog(COUNT_CAP + 50)

    deepest = admin_client.get(PRODUCTS, query_string={"page": COUNT_CAP // PAGE - 1})
    beyond = admin_client.get(PRODUCTS, query_string={"page": 10**9})

    assert skus(deepest)[-1] == f"SKU-{COUNT_CAP - 1:06d}"
    assert skus(beyond) == skus(deepest)
    assert "Only the first 10,000 rows of a list can be paged through" in beyond.text
    assert "Only the first" not in deepest.text
    assert admin_client.get(PRODUCTS, query_string={"page": -3}).status_code == 200


def test_paging_is_stable_when_the_sorted_column_has_ties(admin_client, catalog):
    catalog(45)  # seven prices only: many ties

    seen = []
    for page in range(3):
        response = admin_client.get(PRODUCTS, query_string={"sort": 2, "page": page, "page_size": 20})
        seen += skus(response)

    assert sorted(seen) == [f"SKU-{n:06d}" for n in range(45)]  # each product once, none skipped


@pytest.mark.parametrize("url", [PRODUCTS, TRANSACTIONS, AUDIT, "/admin/user/"])
def test_statements_of_a_list_do_not_grow_with_page_size_depth_or_data(app, admin_client, catalog, sales, url):
    catalog(60)
    sales(60)
    small = cost(app, admin_client, f"{url}?page_size=20&page=1")

    catalog(200, start=1000)
    sales(200)

    assert cost(app, admin_client, f"{url}?page_size=100&page=1") == small
    assert cost(app, admin_client, f"{url}?page_size=20&page=8") == small


@pytest.mark.parametrize(
    "url",
    [
        f"{PRODUCTS}?sort=0",
        f"{PRODUCTS}?sort=1&desc=1",
        f"{PRODUCTS}?sort=2",
        f"{PRODUCTS}?sort=3&desc=1",
        f"{PRODUCTS}?sort=4",
        f"{TRANSACTIONS}?sort=0",
        f"{TRANSACTIONS}?sort=2",
        f"{TRANSACTIONS}?sort=3&desc=1",
        f"{TRANSACTIONS}?sort=4",
        f"{AUDIT}?sort=1",
        f"{AUDIT}?sort=2",
        f"{AUDIT}?sort=3&desc=1",
    ],
)
def test_every_sort_breaks_ties_by_id(app, admin_client, catalog, sales, url):
    catalog(5)
    sales(5)

    with statements(app) as seen:
        assert admin_client.get(url).status_code == 200

    page_query = next(sql for sql in seen if " order by " in sql and " limit " in sql)
    order = page_query.split(" order by ")[-1]
    assert re.search(r"\.id( desc)?\b", order) or ".sku" in order, order  # SKUs are unique already


# ------------------------------------------------------------------------------ search


def test_search_matches_the_bare_columns_as_each_database_can_index(app, admin_client, catalog):
    catalog(30)

    with statements(app) as seen:
        response = admin_client.get(PRODUCTS, query_string={"search": "item 2"})

    assert skus(response) == [
        "SKU-000002",
        "SKU-000012",
        "SKU-000020",
        "SKU-000021",
        "SKU-000022",
        "SKU-000023",
        "SKU-000024",
        "SKU-000025",
        "SKU-000026",
        "SKU-000027",
        "SKU-000028",
        "SKU-000029",
    ]
    search_sql = " ".join(sql for sql in seen if "products.name" in sql and "like" in sql)
    assert "cast(" not in search_sql and "lower(" not in search_sql
    assert ("ilike" in search_sql) == (backend(app) == "postgresql")


def test_search_takes_percent_and_underscore_literally(admin_client, make_product):
    make_product(sku="DISC-50", name="50% off")
    make_product(sku="DISC-500", name="500 grams")
    make_product(sku="A_B", name="Underscore")
    make_product(sku="AXB", name="No underscore")

    assert skus(admin_client.get(PRODUCTS, query_string={"search": "50%"})) == ["DISC-50"]
    assert skus(admin_client.get(PRODUCTS, query_string={"search": "A_B"})) == ["A_B"]


def test_the_line_editor_lookup_finds_every_word_without_casting(app, staff_client, make_product):
    make_product(sku="KOPI-1", name="Sari Arabica Coffee")
    make_product(sku="KOPI-2", name="Sari Robusta Coffee")
    make_product(sku="TEH-1", name="Sari Jasmine Tea")
    make_product(sku="KOPI-3", name="Sari Arabica Coffee", is_active=False)

    with statements(app) as seen:
        response = staff_client.get(
            "/admin/transaction/ajax/lookup/",
            query_string={"name": "transactionproduct-product", "query": "sari coffee"},
        )

    assert [label.split(" — ")[0] for _, label in response.json] == ["KOPI-1", "KOPI-2"]
    assert not any("cast(" in sql for sql in seen)


# ------------------------------------------------- search through SQLite's search index

SEARCHED = [  # (sku, name): text a search index could mistake for its own syntax, and plain text
    ("KOPI-001", "Sari Arabica Coffee 250 g"),
    ("KOPI-002", "Sari Robusta Coffee 1 kg"),
    ("KOPI-0012", "Nusa Coffee Mug"),
    ("TEH-001", "Sari Jasmine Tea"),
    ("TEH-002", "coffee-free tea"),
    ("QUOTE-1", 'He said "Kopi"'),
    ("STAR-1", "Star*Bucks * 2"),
    ("NEAR-1", "NEAR(by) AND NOT OR"),
    ("DASH-1", "Self-service -Tea"),
    ("COL-1", "sku:KOPI name:Tea"),
    ("DISC-50", "50% off_all"),
    ("UNI-1", "Türk Çay 100 g"),
    ("UNI-2", "Crème brûlée 🍮"),
    ("SHORT-1", "Ab"),
]
SEARCH_TERMS = [
    "coffee",
    "COFFEE",
    "Sari coffee",
    "sari co",
    "kopi-00",
    "KOPI-001",
    "001",
    "0012",
    "ee",
    "Co",
    "zzzq",
    '"',
    'said "Kopi"',
    '"Kopi',
    "*",
    "Star*",
    "*Bucks",
    "AND",
    "NEAR(",
    "NEAR(by)",
    "NOT OR",
    "-",
    "-Tea",
    "sku:KOPI",
    "50%",
    "off_all",
    "f_a",
    "Çay",
    "Türk",
    "brûlée",
    "🍮",
    "^KOPI",
    "^kop",
    "=TEH-001",
    "=teh-001",
    "coffee ^TEH",
    "Tea =TEH-002",
]


@pytest.fixture
def searched(make_product):
    for sku, name in SEARCHED:
        make_product(sku=sku, name=name)


def like_search(app, search: str, *conditions) -> list[str]:
    """The SKUs LIKE (ILIKE on PostgreSQL) finds for ``search``, as the list orders them."""
    with app.app_context():
        columns = [Product.sku, Product.name]
        query = select(Product.sku).where(*conditions).order_by(Product.sku)
        for term in search.split():
            query = query.where(listing.term_condition(_db.session, columns, term))
        found = list(_db.session.scalars(query))
        _db.session.remove()
    return found


@pytest.mark.parametrize("search", SEARCH_TERMS)
def test_the_search_index_finds_what_like_finds_in_the_same_order(app, admin_client, searched, search):
    with statements(app) as seen:
        response = admin_client.get(PRODUCTS, query_string={"search": search, "page_size": 100})

    assert skus(response) == like_search(app, search)
    assert list_count(response) == (str(len(skus(response))) if skus(response) else "")  # an empty list: "List"
    indexable = [term for term in search.split() if len(term) >= 3 and term[0] not in "^="]
    assert any("products_fts match" in sql for sql in seen) == bool(indexable and backend(app) == "sqlite")


def test_the_search_index_folds_the_case_of_every_letter(app, admin_client, searched):
    """The one difference from SQLite's LIKE, which folds ASCII letters only."""
    if backend(app) != "sqlite":
        pytest.skip("SQLite's search index")

    assert skus(admin_client.get(PRODUCTS, query_string={"search": "TÜRK"})) == ["UNI-1"]
    assert like_search(app, "TÜRK") == []


def test_a_search_with_filters_and_short_terms_narrows_by_all_of_them(app, admin_client, searched, db):
    with db() as session:
        session.scalars(select(Product).where(Product.sku == "KOPI-002")).one().is_active = False

    for search in ("coffee", "coffee co", "sari co"):
        response = admin_client.get(PRODUCTS, query_string={"search": search, "flt0_active_equals": "1"})

        assert skus(response) == like_search(app, search, Product.is_active.is_(True))
        assert "KOPI-002" not in skus(response)


def test_a_search_page_past_its_matches_is_empty(app, admin_client, searched):
    response = admin_client.get(PRODUCTS, query_string={"search": "coffee", "page": 3})

    assert skus(response) == []
    assert list_count(response) == ("4" if backend(app) == "sqlite" else "")  # SQLite's index counts


def test_a_search_with_many_matches_pages_and_counts_as_before(app, admin_client, catalog):
    """More matches than NARROWED_COUNT_CAP: the rows come from LIKE walking the sort order; on
    SQLite the count from the index alone, elsewhere none (see listing)."""
    catalog(NARROWED_COUNT_CAP + 50)

    with statements(app) as seen:
        response = admin_client.get(PRODUCTS, query_string={"search": "Item", "page": 2})

    assert skus(response) == like_search(app, "Item")[2 * PAGE : 3 * PAGE]
    assert list_count(response) == (f"{NARROWED_COUNT_CAP:,}+" if backend(app) == "sqlite" else "")
    if backend(app) == "sqlite":
        page = next(sql for sql in seen if " limit " in sql and "products.name" in sql)
        assert "products_fts" not in page and " like " in page


@pytest.mark.parametrize("search", ["Item", "Item 1", "SKU-000"])
@pytest.mark.parametrize("filtered", [False, True])
def test_statements_of_a_search_do_not_grow_with_page_size_depth_or_matches(
    app, admin_client, catalog, search, filtered
):
    url = f"{PRODUCTS}?search={search.replace(' ', '+')}" + ("&flt0_active_equals=1" if filtered else "")
    catalog(60)
    small = cost(app, admin_client, f"{url}&page_size=20&page=1")

    catalog(NARROWED_COUNT_CAP + 100, start=1000)  # past the cap: LIKE pages instead of the index

    assert cost(app, admin_client, f"{url}&page_size=100&page=1") == small
    assert cost(app, admin_client, f"{url}&page_size=20&page=8") == small


# ------------------------------------------------------------------------------ exports


@pytest.mark.parametrize("url", EXPORTS)
def test_exports_stream_without_counting_and_leave_no_transaction_open(app, admin_client, sales, url):
    sales(30)

    with statements(app) as seen:
        response = admin_client.get(url)
        assert response.is_streamed
        body = response.get_data(as_text=True)

    assert len(list(csv.reader(io.StringIO(body)))) > 1
    assert not any("count(" in sql for sql in seen)
    if backend(app) == "postgresql":
        with app.app_context():
            open_transactions = _db.session.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND state = 'idle in transaction' AND pid <> pg_backend_pid()"
                )
            )
            _db.session.remove()
        assert open_transactions == 0


def test_an_export_reads_in_batches_in_flat_memory(app, admin_client, catalog):
    def peak_while_exporting() -> int:
        response = admin_client.get("/admin/product/export/csv/")
        tracemalloc.start()
        for _ in response.response:  # the body as it is produced, chunk by chunk
            pass
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return peak

    catalog(1_000)  # one batch
    small = peak_while_exporting()
    catalog(9_000, start=1_000)
    large = peak_while_exporting()

    assert large < small * 2, (small, large)  # ten times the rows, not ten times the memory


def test_an_export_looks_its_columns_up_once_not_for_every_row(admin_client, catalog, monkeypatch):
    """Flask-Admin works out a column's export value afresh for every cell: at a million rows
    that lookup, not the database, was most of an export's time."""
    from adminapp.admin.base import SecuredModelView

    looked_up = []
    original = SecuredModelView.get_export_columns
    monkeypatch.setattr(SecuredModelView, "get_export_columns", lambda view: looked_up.append(1) or original(view))
    catalog(500)

    body = admin_client.get("/admin/product/export/csv/").get_data(as_text=True)

    assert len(body.splitlines()) == 501
    assert len(looked_up) <= 3  # the query, the header, the formatters: not once a row
