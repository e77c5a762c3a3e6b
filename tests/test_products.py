"""The products admin at /admin/product/, through the test client on a real database."""

import csv
import html
import io
import json
import re
from decimal import Decimal
from functools import partial

import pytest
from sqlalchemy import func, insert, select, text
from sqlalchemy.exc import DatabaseError

from adminapp.models import AuditEntry, Product, StockMovement, Transaction, TransactionProduct, utcnow
from adminapp.permissions import ALL, ROLE_RIGHTS
from tests.support import count_statements, detached, field_errors, flashed, product_form, product_rows, save_draft

LIST = "/admin/product/"
NEW = "/admin/product/new/"
DELETE = "/admin/product/delete/"
ACTION = "/admin/product/action/"
EXPORT = "/admin/product/export/csv/"
TOO_BIG_ID = "99999999999999999999"  # beyond a 32-bit (and a 64-bit) INTEGER


def edit_url(product_id):
    return f"/admin/product/edit/?id={product_id}"


def details_url(product_id):
    return f"/admin/product/details/?id={product_id}"


def listed_skus(response):
    """The SKU cells of a list page, in order."""
    cells = re.findall(r'<td class="col-sku">\s*<a[^>]*>(.*?)</a>\s*</td>', response.text, re.S)
    return [html.unescape(s) for s in cells]


def cell(response, column):
    return [html.unescape(s) for s in re.findall(rf'<td class="col-{column}">\s*(.*?)\s*</td>', response.text, re.S)]


def field_value(response, field):
    match = re.search(rf'<input[^>]*\bid="{field}"[^>]*\bvalue="([^"]*)"', response.text)
    if match:
        return html.unescape(match.group(1))
    match = re.search(rf'<textarea[^>]*\bid="{field}"[^>]*>(?:\r?\n)?(.*?)</textarea>', response.text, re.S)
    assert match, f"no field {field!r} on the page"
    return html.unescape(match.group(1))


def sort_index(response, label):
    """The ?sort= index the list page links a column header to."""
    match = re.search(rf'href="/admin/product/\?sort=(\d+)[^"]*" title="Sort by {label}"', response.text)
    assert match, f"column {label} is not sortable"
    return match.group(1)


@pytest.fixture
def snapshot(db):
    """Every product row as plain tuples, to prove nothing changed."""
    return partial(product_rows, db)


@pytest.fixture
def load(db):
    return partial(detached, db, Product)


@pytest.fixture
def sell(db):
    """Record a transaction line for a product, so the product is in use."""

    def make(product_id, qty=1):
        with db() as session:
            transaction = Transaction(status="posted")
            transaction.lines.append(
                TransactionProduct(product_id=product_id, product_qty=qty, unit_price=Decimal("1.00"))
            )
            session.add(transaction)
            session.flush()
            return transaction.id

    return make


@pytest.fixture
def many_products(db):
    def make(count, prefix="BULK"):
        now = utcnow()
        with db() as session:
            session.execute(
                insert(Product),
                [
                    {
                        "sku": f"{prefix}-{n:04d}",
                        "name": f"Bulk {n}",
                        "price": Decimal("1.00") + n,
                        "stock": n,
                        "is_active": True,
                        "created_at": now,
                        "updated_at": now,
                        "version": 1,
                    }
                    for n in range(count)
                ],
            )

    return make


# --------------------------------------------------------------------- list


def test_list_shows_columns_with_money_formatted_price(app, admin_client, make_product):
    make_product(sku="WID-1", name="Widget", price="1234.50", stock=7, is_active=True)
    make_product(sku="WID-2", name="Gadget", price="0.99", stock=0, is_active=False)

    response = admin_client.get(LIST)

    assert response.status_code == 200
    page = response.text
    for header in ("SKU", "Name", "Price", "Stock", "Active"):
        assert f'title="Sort by {header}">{header}</a>' in page
    assert listed_skus(response) == ["WID-1", "WID-2"]
    assert cell(response, "name") == ["Widget", "Gadget"]
    assert app.config["CURRENCY"] == "IDR"
    assert cell(response, "price") == ["IDR\u00a01,234.50", "IDR\u00a00.99"]
    assert "1,234.50" in cell(response, "price")[0]
    assert cell(response, "stock") == ["7", "0"]
    active = cell(response, "is_active")
    assert 'title="Active: Yes"' in active[0]
    assert 'title="Active: No"' in active[1]


def test_default_order_is_by_sku_and_paging_is_stable(admin_client, make_product):
    for n in (17, 3, 25, 9, 1, 12, 20, 5, 24, 2, 11, 8, 22, 14, 19, 6, 4, 23, 10, 16, 13, 21, 7, 18, 15):
        make_product(sku=f"P-{n:03d}")

    first = admin_client.get(LIST + "?page_size=20")
    second = admin_client.get(LIST + "?page_size=20&page=1")

    expected = [f"P-{n:03d}" for n in range(1, 26)]
    assert listed_skus(first) == expected[:20]
    assert listed_skus(second) == expected[20:]


SEARCHES = [
    ("tea", ["COF-9", "TEA-1"]),  # name "Teapot", and the SKU
    ("TEA", ["COF-9", "TEA-1"]),  # case-insensitive
    ("mug", ["MUG-1"]),  # SKU
    ("Coffee", ["MUG-1"]),  # name
    ("green", ["TEA-1"]),
    ("nothing-like-this", []),
]


def test_search_by_sku_or_name(admin_client, make_product):
    make_product(sku="MUG-1", name="Coffee mug")
    make_product(sku="TEA-1", name="Green leaves")
    make_product(sku="COF-9", name="Teapot")

    found = {}
    for term, _ in SEARCHES:
        response = admin_client.get(LIST, query_string={"search": term})
        assert response.status_code == 200, term
        found[term] = listed_skus(response)

    assert found == dict(SEARCHES)


def test_page_emits_readable_filter_names(admin_client):
    response = admin_client.get(LIST)

    groups = json.loads(re.search(r'<div id="filter-groups-data" class="d-none">(.*?)</div>', response.text).group(1))
    args = {flt["arg"] for group in groups.values() for flt in group}
    assert {"active_equals", "price_at_least", "price_at_most", "stock_at_or_below"} <= args


@pytest.fixture
def filter_catalog(make_product):
    make_product(sku="A", price="10.00", stock=0, is_active=True)
    make_product(sku="B", price="29.99", stock=5, is_active=False)
    make_product(sku="C", price="30.00", stock=6, is_active=True)
    make_product(sku="D", price="50.00", stock=100, is_active=False)
    make_product(sku="E", price="50.01", stock=3, is_active=True)


FILTERS = [
    ("flt0_active_equals=1", ["A", "C", "E"]),
    ("flt0_active_equals=0", ["B", "D"]),
    ("flt0_price_at_least=30", ["C", "D", "E"]),
    ("flt1_price_at_most=50", ["A", "B", "C", "D"]),
    ("flt0_price_at_least=30&flt1_price_at_most=50", ["C", "D"]),
    ("flt0_price_at_least=29.995", ["C", "D", "E"]),  # exact decimals, no float rounding
    ("flt0_price_at_most=50.005", ["A", "B", "C", "D"]),
    ("flt0_stock_at_or_below=5", ["A", "B", "E"]),
    ("flt0_stock_at_or_below=5&flt1_active_equals=1", ["A", "E"]),
    ("flt0_stock_at_or_below=5&search=E", ["E"]),
    # values a column can never reach still filter correctly, on every database
    ("flt0_price_at_least=1e200000", []),
    ("flt0_price_at_most=1e200000", ["A", "B", "C", "D", "E"]),
    ("flt0_price_at_most=-1e200000", []),
    ("flt0_price_at_least=1e-200000", ["A", "B", "C", "D", "E"]),
    ("flt0_stock_at_or_below=3000000000", ["A", "B", "C", "D", "E"]),
    ("flt0_stock_at_or_below=-3000000000", []),
    ("flt0_stock_at_or_below=9223372036854775807", ["A", "B", "C", "D", "E"]),
    # invalid values are ignored (with a message), never an error page
    ("flt0_price_at_least=abc", ["A", "B", "C", "D", "E"]),
    ("flt0_price_at_least=NaN", ["A", "B", "C", "D", "E"]),
    ("flt0_price_at_least=Infinity", ["A", "B", "C", "D", "E"]),
    ("flt0_price_at_least=%00", ["A", "B", "C", "D", "E"]),
    ("flt0_stock_at_or_below=1.5", ["A", "B", "C", "D", "E"]),
    ("flt0_stock_at_or_below=x", ["A", "B", "C", "D", "E"]),
    ("flt0_stock_at_or_below=" + "9" * 5000, ["A", "B", "C", "D", "E"]),
    ("flt0_active_equals=maybe", ["A", "B", "C", "D", "E"]),
]


def test_filters(admin_client, filter_catalog):
    found = {}
    for query, _ in FILTERS:
        response = admin_client.get(f"{LIST}?{query}")
        found[query] = listed_skus(response) if response.status_code == 200 else response.status_code

    assert found == dict(FILTERS)


def test_invalid_filter_value_is_reported(admin_client, filter_catalog):
    response = admin_client.get(f"{LIST}?flt0_price_at_least=abc")
    page = flashed(response) + flashed(admin_client.get(LIST))

    assert "Invalid Filter Value: abc" in page


def test_sortable_columns(admin_client, make_product):
    rows = [
        dict(sku="S-2", name="beta", price="5.00", stock=30, is_active=True),
        dict(sku="S-1", name="gamma", price="100.00", stock=10, is_active=False),
        dict(sku="S-3", name="alpha", price="20.00", stock=20, is_active=True),
    ]
    for row in rows:
        make_product(**row)
    page = admin_client.get(LIST)

    for label, attribute in [("SKU", "sku"), ("Name", "name"), ("Price", "price"), ("Stock", "stock")]:
        index = sort_index(page, label)
        ascending = listed_skus(admin_client.get(f"{LIST}?sort={index}"))
        descending = listed_skus(admin_client.get(f"{LIST}?sort={index}&desc=1"))
        key = (lambda r: Decimal(r["price"])) if attribute == "price" else (lambda r: r[attribute])
        by_value = [r["sku"] for r in sorted(rows, key=key)]
        assert (label, ascending, descending) == (label, by_value, by_value[::-1])

    index = sort_index(page, "Active")  # ties: only the order between the groups is defined
    assert listed_skus(admin_client.get(f"{LIST}?sort={index}"))[0] == "S-1"
    assert listed_skus(admin_client.get(f"{LIST}?sort={index}&desc=1"))[-1] == "S-1"


def test_page_size_choice(admin_client, many_products):
    many_products(60)

    assert len(listed_skus(admin_client.get(LIST))) == 50  # Django shows 100; 50 by default here
    assert len(listed_skus(admin_client.get(LIST + "?page_size=20"))) == 20
    assert len(listed_skus(admin_client.get(LIST + "?page_size=100"))) == 60
    # a size that is not offered falls back to the default
    assert len(listed_skus(admin_client.get(LIST + "?page_size=7"))) == 50
    assert len(listed_skus(admin_client.get(LIST + "?page_size=100000"))) == 50
    second = admin_client.get(LIST + "?page_size=50&page=1")
    assert listed_skus(second) == [f"BULK-{n:04d}" for n in range(50, 60)]


ODD_LIST_QUERIES = [
    "page=-1",
    "page=abc",
    "page=" + TOO_BIG_ID,
    "sort=99",
    "sort=-1",
    "sort=x&desc=y",
    "page_size=-5",
    "search=%00",
    "search=a%00b",
    "search=" + "x" * 10000,
    "search=%25",
    "search=_",
]


def test_odd_list_parameters_do_not_break_the_page(admin_client, make_product):
    make_product(sku="ODD-1")

    statuses = {query: admin_client.get(f"{LIST}?{query}").status_code for query in ODD_LIST_QUERIES}
    exports = {query: admin_client.get(f"{EXPORT}?{query}").status_code for query in ODD_LIST_QUERIES}

    assert statuses == {query: 200 for query in ODD_LIST_QUERIES}
    assert exports == {query: 200 for query in ODD_LIST_QUERIES}


def test_page_beyond_the_end_is_empty_not_an_error(admin_client, make_product):
    make_product(sku="ODD-1")

    for query in ("page=5", "page=" + TOO_BIG_ID):
        response = admin_client.get(f"{LIST}?{query}")
        assert response.status_code == 200
        assert listed_skus(response) == []


def test_details_view(admin_client, make_product):
    product_id = make_product(sku="DET-1", name="Detailed", price="7.25", stock=4, description="Long text here")

    response = admin_client.get(details_url(product_id))

    assert response.status_code == 200
    page = flashed(response)
    for shown in ("DET-1", "Detailed", "Long text here", "7.25", "Version"):
        assert shown in page


def test_details_edit_and_delete_of_a_missing_product_redirect(admin_client, make_product, snapshot):
    make_product()
    before = snapshot()

    for bad_id in ["424242", "abc", TOO_BIG_ID, "%00", "", "-1", "1.0"]:
        for response in (
            admin_client.get(f"/admin/product/details/?id={bad_id}"),
            admin_client.get(f"/admin/product/edit/?id={bad_id}"),
            admin_client.post(edit_url(bad_id), data=product_form(version="1")),
            admin_client.post(DELETE, data={"id": bad_id}),
        ):
            assert response.status_code == 302, (bad_id, response.request.path)
            assert response.headers["Location"].startswith(LIST)
    assert "Record does not exist." in flashed(admin_client.get(LIST))
    assert snapshot() == before


# ----------------------------------------------------------- create and edit


def test_create_product(admin_client, db):
    response = admin_client.post(
        NEW, data=product_form(sku="CR-1", name="Created", description="Text", price="12.50", stock="7")
    )

    assert response.status_code == 302
    assert "was added" in flashed(admin_client.get(LIST))
    with db() as session:
        product = session.scalars(select(Product)).one()
        assert (product.sku, product.name, product.description, product.price, product.stock, product.is_active) == (
            "CR-1",
            "Created",
            "Text",
            Decimal("12.50"),
            7,
            True,
        )
        assert product.version == 1


def test_create_inactive_product_without_the_checkbox(admin_client, db):
    response = admin_client.post(NEW, data=product_form(is_active=None))

    assert response.status_code == 302
    with db() as session:
        assert session.scalars(select(Product)).one().is_active is False


def test_text_is_stripped_on_create(admin_client, db):
    admin_client.post(NEW, data=product_form(sku="  PAD-1 ", name="  Padded  "))

    with db() as session:
        product = session.scalars(select(Product)).one()
        assert (product.sku, product.name) == ("PAD-1", "Padded")


def test_price_is_stored_as_an_exact_decimal(admin_client, db):
    admin_client.post(NEW, data=product_form(sku="M-1", price="19.99"))
    admin_client.post(NEW, data=product_form(sku="M-2", price="0.10"))
    admin_client.post(NEW, data=product_form(sku="M-3", price="0.20"))

    with db() as session:
        prices = dict(session.execute(select(Product.sku, Product.price)).all())
        total = session.scalar(select(func.sum(Product.price)).where(Product.sku.in_(["M-2", "M-3"])))
    assert isinstance(prices["M-1"], Decimal)
    assert prices["M-1"] == Decimal("19.99")
    assert str(prices["M-1"]) == "19.99"
    assert Decimal(total) == Decimal("0.30")


def test_edit_product(admin_client, make_product, load):
    product_id = make_product(sku="ED-1", name="Before", price="1.00", stock=1)

    form = admin_client.get(edit_url(product_id))
    assert form.status_code == 200
    assert field_value(form, "version") == "1"
    assert field_value(form, "name") == "Before"
    assert field_value(form, "stock") == "1"
    response = admin_client.post(
        edit_url(product_id),
        data=product_form(sku="ED-1", name="After", price="2.50", stock="1", is_active=None, version="1"),
    )

    assert response.status_code == 302
    assert "was changed." in flashed(admin_client.get(LIST))
    product = load(product_id)
    assert (product.name, product.price, product.stock, product.is_active) == ("After", Decimal("2.50"), 1, False)
    assert product.version == 2


def test_duplicate_sku_on_create_is_a_form_error(admin_client, make_product, snapshot):
    make_product(sku="DUP-1", name="Original")
    before = snapshot()

    for sku in ("DUP-1", "  DUP-1  "):
        response = admin_client.post(NEW, data=product_form(sku=sku, name="Copy"))

        assert response.status_code == 200
        assert field_errors(response, "sku") == ["Already exists."]
        assert "Failed to create record." in flashed(response)
    assert snapshot() == before


def test_duplicate_sku_on_edit_is_a_form_error(admin_client, make_product, snapshot):
    make_product(sku="DUP-1")
    other = make_product(sku="DUP-2")
    before = snapshot()

    response = admin_client.post(edit_url(other), data=product_form(sku="DUP-1", version="1"))

    assert response.status_code == 200
    assert field_errors(response, "sku") == ["Already exists."]
    assert snapshot() == before


def test_keeping_the_own_sku_on_edit_is_fine(admin_client, make_product, load):
    product_id = make_product(sku="OWN-1")

    response = admin_client.post(edit_url(product_id), data=product_form(sku="OWN-1", name="Renamed", version="1"))

    assert response.status_code == 302
    assert load(product_id).name == "Renamed"


BAD_INPUTS = [
    ("price", "-0.01", "between 0 and"),
    ("price", "-1", "between 0 and"),
    ("price", "10.555", "at most 2 decimal places"),
    ("price", "0.001", "at most 2 decimal places"),
    ("price", "abc", "Not a valid decimal value"),
    ("price", "1,50", "Not a valid decimal value"),
    ("price", "NaN", "Enter a number"),
    ("price", "sNaN", "Enter a number"),
    ("price", "Infinity", "Enter a number"),
    ("price", "-Infinity", "Enter a number"),
    ("price", "1e30", "between 0 and"),
    ("price", "10000000000.00", "between 0 and"),
    ("price", "", "This field is required"),
    ("price", None, "This field is required"),
    ("stock", "-1", "between 0 and"),
    ("stock", "1.5", "Not a valid integer value"),
    ("stock", "x", "Not a valid integer value"),
    ("stock", str(10**20), "between 0 and"),
    ("stock", str(2**31), "between 0 and"),
    ("stock", "", "This field is required"),
    ("stock", None, "This field is required"),
    ("sku", "S" * 10_000, "cannot be longer than 64 characters"),
    ("sku", "S" * 65, "cannot be longer than 64 characters"),
    ("sku", "AB\x00C", "control characters"),
    ("sku", "has space", "Use letters, digits"),
    ("sku", "-lead", "Use letters, digits"),
    ("sku", "ÄÖ-1", "Use letters, digits"),
    ("sku", "", "This field is required"),
    ("sku", "   ", "This field is required"),
    ("sku", None, "This field is required"),
    ("name", "N" * 10_000, "cannot be longer than 200 characters"),
    ("name", "N" * 201, "cannot be longer than 200 characters"),
    ("name", "bad\x00name", "control characters"),
    ("name", "bell\x07", "control characters"),
    ("name", "", "This field is required"),
    ("name", "   ", "This field is required"),
    ("name", None, "This field is required"),
    ("description", "D" * 10_000, "cannot be longer than 5000 characters"),
    ("description", "bad\x00text", "control characters"),
]


def form_problems(response, field, message):
    """Why a refused form does not look right, or None."""
    if response.status_code != 200:
        return f"HTTP {response.status_code}"
    errors = field_errors(response, field)
    if not any(message in error for error in errors):
        return f"errors {errors}"
    return None


def test_bad_input_on_create_is_a_form_error(admin_client, snapshot):
    problems = {}
    for field, value, message in BAD_INPUTS:
        response = admin_client.post(NEW, data=product_form(**{field: value}))
        problems[(field, value)] = form_problems(response, field, message)

    assert {case: problem for case, problem in problems.items() if problem} == {}
    assert snapshot() == []


def test_bad_input_on_edit_is_a_form_error(admin_client, make_product, snapshot):
    product_id = make_product(sku="KEEP-1", name="Keep", description="Keep me")
    before = snapshot()

    problems = {}
    for field, value, message in BAD_INPUTS:
        if field == "stock":
            continue  # the edit form never reads the stock (test_a_stock_sent_to_the_edit_form_is_ignored)
        data = product_form(sku="KEEP-1", version="1")
        data.update(product_form(**{field: value}))
        if value is None:
            del data[field]
        response = admin_client.post(edit_url(product_id), data=data)
        problems[(field, value)] = form_problems(response, field, message)

    assert {case: problem for case, problem in problems.items() if problem} == {}
    assert snapshot() == before


def test_several_bad_fields_are_reported_together(admin_client, snapshot):
    response = admin_client.post(NEW, data=product_form(sku="", name="", price="-1", stock="x"))

    assert response.status_code == 200
    assert field_errors(response, "sku") and field_errors(response, "name")
    assert field_errors(response, "price") and field_errors(response, "stock")
    assert snapshot() == []


def test_boundary_prices_are_accepted(admin_client, db):
    cases = [
        ("B-1", "0", "0.00"),
        ("B-2", "0.5", "0.50"),
        ("B-3", "9999999999.99", "9999999999.99"),
        ("B-4", "1e2", "100.00"),
        ("B-5", " 3.10 ", "3.10"),
        ("B-6", "007.70", "7.70"),
    ]
    for sku, price, _ in cases:
        response = admin_client.post(NEW, data=product_form(sku=sku, price=price))
        assert response.status_code == 302, (price, field_errors(response, "price"))

    with db() as session:
        stored = dict(session.execute(select(Product.sku, Product.price)).all())
    assert stored == {sku: Decimal(value) for sku, _, value in cases}


def test_largest_stock_is_accepted(admin_client, db):
    response = admin_client.post(NEW, data=product_form(stock=str(2**31 - 1)))

    assert response.status_code == 302
    with db() as session:
        assert session.scalars(select(Product.stock)).one() == 2**31 - 1


UNICODE_NAME = "Kopi Susu ☕ ñ 漢字"
UNICODE_TEXT = "Gula aren 🍯\nBaris kedua — «ok»"


def test_unicode_text_saves_and_shows(admin_client, db):
    response = admin_client.post(NEW, data=product_form(sku="KOPI-1", name=UNICODE_NAME, description=UNICODE_TEXT))
    assert response.status_code == 302

    with db() as session:
        product = session.scalars(select(Product)).one()
        product_id = product.id
        assert (product.name, product.description) == (UNICODE_NAME, UNICODE_TEXT)
    assert cell(admin_client.get(LIST), "name") == [UNICODE_NAME]
    assert UNICODE_NAME in admin_client.get(LIST, query_string={"search": "漢字"}).text
    details = admin_client.get(details_url(product_id)).text
    assert UNICODE_NAME in details
    assert "Gula aren 🍯" in details
    edit = admin_client.get(edit_url(product_id))
    assert field_value(edit, "name") == UNICODE_NAME
    assert field_value(edit, "description") == UNICODE_TEXT


SCRIPT = "<script>alert(1)</script>"
IMG = '<img src=x onerror="alert(2)">'


def test_html_in_text_is_escaped_everywhere(admin_client, make_product):
    product_id = make_product(sku="XSS-1", name=SCRIPT, description=IMG)
    escaped_name = "&lt;script&gt;alert(1)&lt;/script&gt;"

    pages = {
        "list": admin_client.get(LIST),
        "details": admin_client.get(details_url(product_id)),
        "edit": admin_client.get(edit_url(product_id)),
        "search": admin_client.get(LIST, query_string={"search": SCRIPT}),
    }

    for name, response in pages.items():
        assert response.status_code == 200, name
        assert SCRIPT not in response.text, name
        assert "<img src=x" not in response.text, name
        assert "alert(1)" in response.text, name
    assert escaped_name in pages["list"].text
    assert escaped_name in pages["details"].text
    assert field_value(pages["edit"], "name") == SCRIPT
    assert field_value(pages["edit"], "description") == IMG


def test_html_in_a_rejected_form_is_escaped(admin_client, snapshot):
    response = admin_client.post(NEW, data=product_form(name=SCRIPT, price="oops"))

    assert response.status_code == 200
    assert SCRIPT not in response.text
    assert field_value(response, "name") == SCRIPT
    assert snapshot() == []


# --------------------------------------------------------- optimistic locking


def test_stale_edit_is_refused_and_keeps_the_newer_data(admin_client, make_product, db, load):
    product_id = make_product(sku="LOCK-1", name="Original", price="5.00", stock=5)
    opened = admin_client.get(edit_url(product_id))
    seen_version = field_value(opened, "version")
    assert seen_version == "1"

    with db() as session:  # someone else saves meanwhile
        session.get(Product, product_id).name = "Theirs"
    assert load(product_id).version == 2

    response = admin_client.post(
        edit_url(product_id),
        data=product_form(sku="LOCK-1", name="Mine", price="6.00", stock="6", version=seen_version),
    )

    assert response.status_code == 200
    page = flashed(response)
    assert "changed by someone else" in page
    assert "after you opened it" in page
    assert "Your changes were not saved" in page
    product = load(product_id)
    assert (product.name, product.price, product.stock, product.version) == ("Theirs", Decimal("5.00"), 5, 2)
    # the user's input is shown again, not lost
    assert field_value(response, "name") == "Mine"
    assert field_value(response, "price") == "6.00"
    assert field_value(response, "stock") == "5"  # read-only: the stock as it is

    # reopened at the current version, the same change goes through
    reopened = admin_client.get(edit_url(product_id))
    assert field_value(reopened, "version") == "2"
    response = admin_client.post(
        edit_url(product_id), data=product_form(sku="LOCK-1", name="Mine", price="6.00", stock="6", version="2")
    )
    assert response.status_code == 302
    assert (load(product_id).name, load(product_id).version) == ("Mine", 3)


def test_submitting_the_same_form_twice_is_refused_the_second_time(admin_client, make_product, load):
    product_id = make_product(sku="TWICE-1", name="Original")

    first = admin_client.post(edit_url(product_id), data=product_form(sku="TWICE-1", name="First", version="1"))
    second = admin_client.post(edit_url(product_id), data=product_form(sku="TWICE-1", name="Second", version="1"))

    assert first.status_code == 302
    assert second.status_code == 200
    assert "changed by someone else" in flashed(second)
    assert (load(product_id).name, load(product_id).version) == ("First", 2)


def test_missing_or_wrong_version_is_refused(admin_client, make_product, snapshot):
    product_id = make_product(sku="VER-1", name="Original")
    before = snapshot()

    for version in [None, "", "abc", "1.0", "1\x00", "2", "0", "-1", TOO_BIG_ID]:
        response = admin_client.post(
            edit_url(product_id), data=product_form(sku="VER-1", name="Changed", version=version)
        )

        assert response.status_code == 200, repr(version)
        page = flashed(response)
        if version in ("2", "0", "-1", TOO_BIG_ID):
            assert "changed by someone else" in page, repr(version)
        else:
            assert "missing its version" in page, repr(version)
        assert field_value(response, "name") == "Changed"
    assert snapshot() == before


# ------------------------------------------------- stock moved by sales meanwhile

FORM_FIELDS = ("sku", "name", "description", "price", "stock", "version")


def opened_form(response) -> dict:
    """The edit form as the browser would send it back untouched."""
    assert response.status_code == 200
    return {**{name: field_value(response, name) for name in FORM_FIELDS}, "is_active": "y"}


@pytest.fixture
def sold(db, staff_client):
    """`sold(product_id, qty)`: a sale of the product, posted by a clerk through the transactions admin."""

    def post(product_id, qty):
        with db() as session:
            txn_id = save_draft(session, [(product_id, qty)]).id
        response = staff_client.post(
            "/admin/transaction/action/", data={"action": "post", "rowid": str(txn_id)}, follow_redirects=True
        )
        assert f"Transaction #{txn_id} posted." in flashed(response)

    return post


def test_a_product_form_opened_before_a_sale_keeps_the_sale_when_saved(admin_client, make_product, sold, load, db):
    product_id = make_product(sku="SOLD-1", name="Before", stock=10)
    form = opened_form(admin_client.get(edit_url(product_id)))
    assert (form["stock"], form["version"]) == ("10", "1")

    sold(product_id, 3)
    assert (load(product_id).stock, load(product_id).version) == (7, 1), "a sale leaves the form current"
    response = admin_client.post(edit_url(product_id), data={**form, "name": "After"})

    assert response.status_code == 302, flashed(response)
    product = load(product_id)
    assert (product.name, product.stock, product.version) == ("After", 7, 2)
    with db() as session:
        edit = session.scalars(
            select(AuditEntry).where(AuditEntry.object_type == "product").order_by(AuditEntry.id.desc()).limit(1)
        ).one()
        assert (edit.action, edit.changes) == ("update", {"name": ["Before", "After"]})


@pytest.mark.parametrize("sent", ["25", "0", "-1", "x", "", None])
def test_a_stock_sent_to_the_edit_form_is_ignored(admin_client, make_product, sold, load, db, sent):
    """Stock changes only through movements: the edit form shows it read-only, and a stock
    forged into the POST (any value, or none) is never applied nor refused; the rest is saved."""
    product_id = make_product(sku="FORGED-1", name="Before", stock=10)
    form = opened_form(admin_client.get(edit_url(product_id)))
    sold(product_id, 3)
    data = {**form, "name": "After", "stock": sent}

    response = admin_client.post(edit_url(product_id), data={k: v for k, v in data.items() if v is not None})

    assert response.status_code == 302, flashed(response)
    product = load(product_id)
    assert (product.name, product.stock, product.version) == ("After", 7, 2)
    with db() as session:
        changes = session.scalars(
            select(AuditEntry.changes)
            .where(AuditEntry.object_type == "product")
            .order_by(AuditEntry.id.desc())
            .limit(1)
        ).one()
        kinds = session.scalars(
            select(StockMovement.kind).where(StockMovement.product_id == product_id).order_by(StockMovement.id)
        ).all()
    assert changes == {"name": ["Before", "After"]}
    assert kinds == ["opening", "sale"]


def test_the_edit_form_shows_the_stock_read_only_and_the_create_form_takes_it(admin_client, make_product):
    product_id = make_product(sku="SHOWN-1", stock=4)

    edit = admin_client.get(edit_url(product_id)).text
    create = admin_client.get(NEW).text

    stock_input = re.compile(r"<input[^>]*\bname=\"stock\"[^>]*>")
    assert "readonly" in stock_input.search(edit).group(0)
    assert "readonly" not in stock_input.search(create).group(0)


# ------------------------------------------------------------------- delete


def test_delete_unreferenced_product(admin_client, make_product, load):
    product_id = make_product(sku="DEL-1")
    keep_id = make_product(sku="DEL-2")

    response = admin_client.post(DELETE, data={"id": product_id}, follow_redirects=True)

    assert response.status_code == 200
    assert "was deleted" in flashed(response)
    assert load(product_id) is None
    assert load(keep_id) is not None


def test_delete_of_a_product_in_use_is_refused(admin_client, make_product, sell, load, db):
    product_id = make_product(sku="USED-1")
    sell(product_id)

    response = admin_client.post(DELETE, data={"id": product_id}, follow_redirects=True)

    assert response.status_code == 200
    page = flashed(response)
    assert "Cannot delete USED-1" in page
    assert "Deactivate the product instead" in page
    assert "was deleted" not in page
    assert load(product_id) is not None
    with db() as session:
        assert session.scalar(select(func.count(TransactionProduct.id))) == 1


# ------------------------------------------------ delete confirmation page


def confirm_url(product_id, back=LIST):
    return f"{DELETE}?id={product_id}&url={back}"


def test_confirmation_page_asks_before_deleting(admin_client, make_product, load):
    product_id = make_product(sku="DEL-1", name="Old stock")

    response = admin_client.get(confirm_url(product_id))

    assert response.status_code == 200
    page = flashed(response)
    assert "Are you sure you want to delete product “DEL-1 — Old stock”?" in page
    assert "Nothing else is deleted with it." in page
    assert f'<input id="id" name="id" type="hidden" value="{product_id}">' in response.text
    assert 'action="/admin/product/delete/"' in response.text and 'method="post"' in response.text
    assert load(product_id) is not None  # looking is not deleting

    confirmed = admin_client.post(DELETE, data={"id": product_id, "url": LIST}, follow_redirects=True)
    assert "was deleted" in flashed(confirmed)
    assert load(product_id) is None


def test_confirmation_page_of_a_product_in_use_says_why_and_offers_no_delete(admin_client, make_product, sell, load):
    product_id = make_product(sku="USED-1")
    first, second = sell(product_id), sell(product_id)

    response = admin_client.get(confirm_url(product_id))

    assert response.status_code == 200
    page = flashed(response)
    assert "Cannot delete product “USED-1 — Product 1”" in page
    assert "Cannot delete USED-1: transactions refer to it." in page
    links = re.findall(
        r'<li><a href="/admin/transaction/details/\?id=(\d+)">Transaction #\d+ \(posted\)</a></li>', response.text
    )
    assert links == [str(second), str(first)]  # newest first
    assert 'action="/admin/product/delete/"' not in response.text
    assert load(product_id) is not None


def test_confirmation_page_links_only_to_what_the_user_may_open(as_role, make_product, sell, monkeypatch):
    monkeypatch.setitem(ROLE_RIGHTS, "staff", {"product": ALL})  # a role without transactions
    product_id = make_product(sku="USED-1")
    txn_id = sell(product_id)

    response = as_role("staff").get(confirm_url(product_id))

    assert response.status_code == 200
    assert f"<li>Transaction #{txn_id} (posted)</li>" in response.text
    assert "/admin/transaction/details/" not in response.text


def test_confirmation_page_counts_what_it_does_not_list(app, admin_client, make_product, db):
    product_id = make_product(sku="BUSY-1")

    def sold_in(count):
        with db() as session:
            for _ in range(count):
                session.add(
                    Transaction(
                        status="posted",
                        lines=[TransactionProduct(product_id=product_id, product_qty=1, unit_price=Decimal("1.00"))],
                    )
                )

    sold_in(1)
    admin_client.get(confirm_url(product_id))  # warm up
    with count_statements(app) as few:
        admin_client.get(confirm_url(product_id))
    sold_in(29)
    with count_statements(app) as many:
        response = admin_client.get(confirm_url(product_id))

    assert len(re.findall(r'<li><a href="/admin/transaction/details/', response.text)) == 20
    assert "and 10 more" in flashed(response)
    assert many[0] <= few[0] + 1  # the count, once there are more than the page lists


@pytest.mark.parametrize("product_id", ["999999", "abc", TOO_BIG_ID, ""])
def test_confirmation_page_of_a_missing_product_goes_back_to_the_list(admin_client, product_id):
    response = admin_client.get(confirm_url(product_id), follow_redirects=True)
    assert response.status_code == 200
    assert response.request.path == LIST
    assert "Record does not exist." in flashed(response)


def test_list_details_and_edit_link_to_the_confirmation_page(admin_client, make_product):
    product_id = make_product()
    for url in (LIST, details_url(product_id), edit_url(product_id)):
        assert re.search(rf'href="/admin/product/delete/\?id={product_id}&amp;url=', admin_client.get(url).text), url


# ------------------------------------------------------------- bulk actions


def search_index_agrees(db) -> bool:
    """On SQLite, whether the search index holds exactly the products' SKUs and names (FTS5
    compares them with the table itself); PostgreSQL searches the table."""
    with db() as session:
        if session.get_bind().dialect.name != "sqlite":
            return True
        try:
            session.execute(text("INSERT INTO products_fts(products_fts, rank) VALUES ('integrity-check', 1)"))
        except DatabaseError:
            return False
    return True


def test_the_search_finds_products_as_they_are_created_edited_and_deleted(admin_client, make_product, db):
    make_product(sku="OLD-1", name="Kopi Tubruk")
    admin_client.post(NEW, data=product_form(sku="NEW-KOPI", name="Kopi Luwak"))
    with db() as session:
        luwak = session.scalar(select(Product.id).where(Product.sku == "NEW-KOPI"))

    assert listed_skus(admin_client.get(LIST, query_string={"search": "kopi"})) == ["NEW-KOPI", "OLD-1"]

    admin_client.post(edit_url(luwak), data=product_form(sku="RENAMED-1", name="Teh Melati", version="1"))
    post_action(admin_client, "deactivate", luwak)  # changes neither SKU nor name

    assert listed_skus(admin_client.get(LIST, query_string={"search": "kopi"})) == ["OLD-1"]
    assert listed_skus(admin_client.get(LIST, query_string={"search": "melati"})) == ["RENAMED-1"]
    assert listed_skus(admin_client.get(LIST, query_string={"search": "renamed"})) == ["RENAMED-1"]
    assert listed_skus(admin_client.get(LIST, query_string={"search": "new-kopi"})) == []
    assert search_index_agrees(db)

    admin_client.post(DELETE, data={"id": luwak})

    assert listed_skus(admin_client.get(LIST, query_string={"search": "melati"})) == []
    assert search_index_agrees(db)


@pytest.mark.own_schema
def test_the_search_index_check_notices_a_product_it_lacks(app, db, make_product):
    """The check above can fail."""
    if not app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        pytest.skip("SQLite's search index")
    make_product(sku="SEEN-1")
    with db() as session:
        session.execute(text("DROP TRIGGER products_fts_insert"))
    make_product(sku="UNSEEN-1")

    assert not search_index_agrees(db)


def post_action(client, action, *ids):
    return client.post(ACTION, data={"action": action, "rowid": [str(i) for i in ids]}, follow_redirects=True)


@pytest.mark.parametrize(
    "action, start, end, message",
    [
        ("activate", False, True, "2 products activated."),
        ("deactivate", True, False, "2 products deactivated."),
    ],
)
def test_bulk_activate_and_deactivate(admin_client, make_product, load, action, start, end, message):
    first = make_product(is_active=start)
    second = make_product(is_active=start)
    untouched = make_product(is_active=start)

    response = post_action(admin_client, action, first, second)

    assert response.status_code == 200
    assert message in flashed(response)
    for product_id in (first, second):
        product = load(product_id)
        assert (product.is_active, product.version) == (end, 2)
    assert (load(untouched).is_active, load(untouched).version) == (start, 1)


def test_bulk_action_bumps_the_version_so_open_forms_go_stale(admin_client, make_product, load):
    product_id = make_product(sku="BV-1", is_active=True)
    opened = admin_client.get(edit_url(product_id))

    post_action(admin_client, "deactivate", product_id)
    response = admin_client.post(
        edit_url(product_id), data=product_form(sku="BV-1", name="Edited", version=field_value(opened, "version"))
    )

    assert response.status_code == 200
    assert "changed by someone else" in flashed(response)
    assert load(product_id).is_active is False


def test_bulk_delete(admin_client, make_product, load):
    first, second, kept = make_product(), make_product(), make_product()

    response = post_action(admin_client, "delete", first, second)

    assert "2 products deleted." in flashed(response)
    assert load(first) is None and load(second) is None
    assert load(kept) is not None


def test_bulk_delete_is_all_or_nothing(admin_client, make_product, sell, snapshot):
    free = make_product(sku="FREE-1")
    used = make_product(sku="USED-1")
    sell(used)
    before = snapshot()

    response = post_action(admin_client, "delete", free, used)

    page = flashed(response)
    assert "Cannot delete USED-1" in page
    assert "Deactivate the product instead" in page
    assert "deleted." not in page
    assert snapshot() == before


def test_bulk_action_with_a_missing_id_changes_nothing(admin_client, make_product, snapshot):
    active = make_product(is_active=True)
    inactive = make_product(is_active=False)
    before = snapshot()

    for action, existing in [("activate", inactive), ("deactivate", active), ("delete", active)]:
        response = post_action(admin_client, action, existing, 424242)

        assert "No product with id 424242; nothing was changed." in flashed(response), action
    assert snapshot() == before


def test_bulk_action_with_garbage_ids_changes_nothing(admin_client, make_product, snapshot):
    existing = make_product(is_active=False)
    before = snapshot()

    for bad in ["abc", "", "1.5", "-1", "0", TOO_BIG_ID, "-" + TOO_BIG_ID]:
        response = post_action(admin_client, "activate", existing, bad)

        assert response.status_code == 200, bad
        page = flashed(response)
        assert "Invalid selection." in page or "nothing was changed" in page, bad
        assert "SQL" not in page and "psycopg" not in page, bad
    assert snapshot() == before


def test_bulk_action_without_rows(admin_client, make_product, snapshot):
    make_product(is_active=False)
    before = snapshot()

    response = admin_client.post(ACTION, data={"action": "activate"}, follow_redirects=True)

    assert "No rows selected." in flashed(response)
    assert snapshot() == before


def test_bulk_action_counts_each_product_once(admin_client, make_product, load):
    product_id = make_product(is_active=False)

    response = post_action(admin_client, "activate", product_id, product_id)

    assert "1 product activated." in flashed(response)
    assert load(product_id).version == 2


def test_unknown_bulk_action_is_refused(admin_client, make_product, snapshot):
    product_id = make_product()
    before = snapshot()

    response = admin_client.post(ACTION, data={"action": "explode", "rowid": [str(product_id)]})

    assert response.status_code == 403
    assert snapshot() == before


# ------------------------------------------------------------------- export


def export_rows(client, query=""):
    response = client.get(EXPORT + query)
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    return list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))


def test_csv_export_has_plain_prices(admin_client, make_product):
    make_product(sku="EX-1", name="Export me", price="10.50", stock=3)
    make_product(sku="EX-2", name="Big", price="1234567.00", stock=0, is_active=False)

    rows = export_rows(admin_client)

    assert [(r["SKU"], r["Name"], r["Price"], r["Stock"]) for r in rows] == [
        ("EX-1", "Export me", "10.50", "3"),
        ("EX-2", "Big", "1234567.00", "0"),
    ]


def test_csv_export_honours_search_and_filters(admin_client, filter_catalog, make_product):
    make_product(sku="SPECIAL-1", name="Special", price="40.00", stock=1)

    assert [r["SKU"] for r in export_rows(admin_client, "?flt0_price_at_least=30&flt1_price_at_most=50")] == [
        "C",
        "D",
        "SPECIAL-1",
    ]
    assert [r["SKU"] for r in export_rows(admin_client, "?flt0_active_equals=0")] == ["B", "D"]
    assert [r["SKU"] for r in export_rows(admin_client, "?search=special")] == ["SPECIAL-1"]
    assert [r["SKU"] for r in export_rows(admin_client, "?search=special&flt0_stock_at_or_below=0")] == []
    assert [r["Price"] for r in export_rows(admin_client, "?flt0_stock_at_or_below=0")] == ["10.00"]


def test_csv_export_with_odd_search_does_not_break(admin_client, make_product):
    make_product(sku="EX-1")

    assert export_rows(admin_client, "?search=%00") is not None


# ------------------------------------------------------------- performance


def test_list_statement_count_does_not_grow_with_page_size(app, admin_client, many_products):
    many_products(120)
    admin_client.get(LIST)  # warm up: first-request work is not what is measured

    with count_statements(app) as small:
        response = admin_client.get(LIST + "?page_size=20")
    assert len(listed_skus(response)) == 20
    with count_statements(app) as large:
        response = admin_client.get(LIST + "?page_size=100")
    assert len(listed_skus(response)) == 100

    assert small[0] == large[0]
    assert large[0] <= 5  # user, count, page, ... and the one-click filters' counts (one statement)


def test_a_products_pages_name_it(admin_client, make_product):
    product = make_product(sku="KOPI-250G", name="Kopi Luwak 250 g")

    for url in (f"/admin/product/edit/?id={product}", f"/admin/product/details/?id={product}"):
        page = admin_client.get(url).text
        assert "<title>KOPI-250G — Kopi Luwak 250 g - " in page, url
        assert 'id="record-title">KOPI-250G — Kopi Luwak 250 g</h1>' in page, url
