"""Limits on what a request may hold, through the real app on SQLite and PostgreSQL: no
control characters in any text of any form, at most ADMINAPP_MAX_TRANSACTION_LINES lines
in a transaction (refused before any work), and every number a URL carries checked. Each a
clear message and an answer below 500, with nothing saved."""

import pytest
from sqlalchemy import select

from adminapp.models import Transaction, TransactionProduct
from tests.support import PASSWORD, another_app, count_statements, flashed, login, product_form, snapshot

CONTROL = "Remove the control characters from this text."
TOO_BIG = "99999999999999999999"


def txn_form(*lines, note=""):
    data = {"note": note, "version": ""}
    for i, (product, qty) in enumerate(lines):
        data.update({f"lines-{i}-id": "", f"lines-{i}-product": str(product), f"lines-{i}-product_qty": str(qty)})
    return data


def user_form(username="carol", **changes):
    return {
        "username": username,
        "role": "staff",
        "is_active": "y",
        "new_password": "plum orchard lantern",
        "confirm_password": "plum orchard lantern",
        **changes,
    }


@pytest.fixture
def admin(admin_client):
    return admin_client


# ------------------------------------------------------------------- control characters


@pytest.mark.parametrize(
    "field, value",
    [
        ("username", "car\x00ol"),
        ("username", "carol\x1b[31m"),
        ("username", "car\tol"),
        ("username", "car\x85ol"),
    ],
)
def test_control_characters_in_the_users_form_are_refused(app, admin, field, value):
    """A NUL in the username was a 500 on PostgreSQL (its uniqueness check sent it)."""
    before = snapshot(app)

    response = admin.post("/admin/user/new/", data=user_form(**{field: value}))

    assert response.status_code == 200
    assert CONTROL in flashed(response)
    assert snapshot(app) == before


@pytest.mark.parametrize(
    "changes",
    [
        {"name": "tab\there"},
        {"sku": "NEW\n1"},
        {"name": "next\x85line"},
        {"name": "del\x7f"},
    ],
)
def test_a_single_line_field_refuses_tabs_line_breaks_and_other_controls(app, admin, changes):
    before = snapshot(app)

    response = admin.post("/admin/product/new/", data=product_form(**changes))

    assert response.status_code == 200
    assert CONTROL in flashed(response)
    assert snapshot(app) == before


def test_a_text_area_keeps_tabs_and_line_breaks(app, admin, db):
    response = admin.post("/admin/product/new/", data=product_form(description="one\r\n\ttwo"))

    assert response.status_code == 302


def test_control_characters_in_a_new_password_are_refused(app, make_user):
    make_user("alice")
    client = app.test_client()
    assert login(client, "alice").status_code == 302
    before = snapshot(app)

    response = client.post(
        "/account/password",
        data={"current_password": PASSWORD, "new_password": "plum\x00orchard", "confirm_password": "plum\x00orchard"},
    )

    assert response.status_code == 200
    assert "Do not use control characters" in flashed(response)
    assert snapshot(app) == before


def test_control_characters_in_a_transaction_line_are_refused(app, make_product, make_user):
    make_user("clerk", "staff")
    client = app.test_client()
    login(client, "clerk")
    product = make_product()
    before = snapshot(app)

    response = client.post("/admin/transaction/new/", data={**txn_form((product, 1)), "lines-0-product": "1\x00"})

    assert response.status_code == 200
    assert snapshot(app) == before


@pytest.mark.parametrize(
    "query",
    [
        "/admin/product/?search=%00",
        "/admin/product/?search=a%00b",
        "/admin/user/?search=%00",
        "/admin/audit/?search=%00",
        "/admin/transaction/?flt0_created_by_is=%00",
        "/admin/transaction/?flt0_product_contains=%00",
        "/admin/user/?flt0_role_equals=%00",
        "/admin/audit/?flt0_action_equals=%00",
        "/admin/audit/?flt0_object_id_equals=%00",
        "/admin/product/?sort=%00",
        "/admin/product/?page=%00",
        "/admin/product/export/csv/?search=%00",
        "/admin/transaction/ajax/lookup/?name=transactionproduct-product&query=%00",
        "/admin/product/details/?id=%00",
        "/admin/transaction/void/?id=%00",
        "/admin/product/history/?id=%00",
    ],
)
def test_nul_in_a_query_string_is_not_an_error(admin, query):
    assert admin.get(query).status_code < 500


# ------------------------------------------------------------ lines in a transaction


@pytest.fixture
def short_app(app, database_url, tmp_path, make_user):
    """The app on the same database, with transactions of at most 3 lines, and a clerk."""
    make_user("clerk", "staff")
    with another_app(database_url, tmp_path, MAX_TRANSACTION_LINES=3) as short:
        yield short


def clerk(app):
    client = app.test_client()
    assert login(client, "clerk").status_code == 302
    return client


def transactions(db):
    with db() as session:
        return (session.scalars(select(Transaction.id)).all(), session.scalars(select(TransactionProduct.id)).all())


def test_the_default_is_500_lines(app):
    assert app.config["MAX_TRANSACTION_LINES"] == 500


def test_a_transaction_with_too_many_lines_is_refused_before_any_work(short_app, db, make_product):
    products = [make_product() for _ in range(4)]
    client = clerk(short_app)
    before = snapshot(short_app)

    with count_statements(short_app) as statements:
        refused = client.post("/admin/transaction/new/", data=txn_form(*((p, 1) for p in products)))

    assert refused.status_code == 302 and refused.headers["Location"].startswith("/admin/transaction/new/")
    assert statements[0] <= 2  # who is signed in (and SQLite's BEGIN): no product, no line looked at
    assert "A transaction has at most 3 lines, and this form sent 4. Nothing was saved" in flashed(
        client.get(refused.headers["Location"])
    )
    assert snapshot(short_app) == before
    assert client.post("/admin/transaction/new/", data=txn_form(*((p, 1) for p in products[:3]))).status_code == 302
    assert len(transactions(db)[1]) == 3


def test_an_edit_with_too_many_lines_is_refused_and_removed_lines_do_not_count(short_app, db, make_product):
    products = [make_product() for _ in range(4)]
    client = clerk(short_app)
    assert client.post("/admin/transaction/new/", data=txn_form(*((p, 1) for p in products[:3]))).status_code == 302
    (txn_id,), line_ids = transactions(db)
    edit = f"/admin/transaction/edit/?id={txn_id}"
    kept = [
        {f"lines-{i}-id": str(line), f"lines-{i}-product": str(p), f"lines-{i}-product_qty": "1"}
        for i, (line, p) in enumerate(zip(line_ids, products))
    ]
    form = {
        "note": "",
        "version": "1",
        **{k: v for entry in kept for k, v in entry.items()},
        "lines-3-id": "",
        "lines-3-product": str(products[3]),
        "lines-3-product_qty": "1",
    }
    before = snapshot(short_app)

    refused = client.post(edit, data=form)
    assert refused.status_code == 302 and "at most 3 lines" in flashed(client.get(refused.headers["Location"]))
    assert snapshot(short_app) == before

    swapped = client.post(edit, data={**form, "del-lines-0": "y"})  # one removed, one added: 3 lines
    assert swapped.status_code == 302 and swapped.headers["Location"].startswith("/admin/transaction/")
    assert len(transactions(db)[1]) == 3


def test_ten_thousand_lines_are_refused_at_once(app, make_user, make_product):
    """The finding: 10,000 lines (458 kB) took 30 s and ended in a 500."""
    make_user("clerk", "staff")
    product = make_product()
    client = clerk(app)
    data = txn_form(*((product, 1) for _ in range(10_000)))
    before = snapshot(app)

    with count_statements(app) as statements:
        response = client.post("/admin/transaction/new/", data=data)

    assert response.status_code == 302
    assert statements[0] <= 2
    assert snapshot(app) == before


# ------------------------------------------------------------------ numbers in the URL

LISTS = ["product", "transaction", "user", "audit"]
BAD_LIST_ARGS = {
    "page=abc": "is not a page number",
    "page=-1": "is not a page number",
    "page=1.5": "is not a page number",
    "page_size=7": "are not offered",
    "page_size=abc": "are not offered",
    f"page_size={TOO_BIG}": "are not offered",
    "sort=99": "no column",
    "sort=-1": "no column",
    f"sort={TOO_BIG}": "no column",
    "sort=x": "no column",
    "desc=yes": "is not an order",
    "desc=-1": "is not an order",
}
BAD_IDS = ["abc", "-1", "0", "1.5", "2147483648", "9223372036854775808", TOO_BIG, "%00", ""]


@pytest.mark.parametrize("query", BAD_LIST_ARGS)
@pytest.mark.parametrize("view", LISTS)
def test_a_wrong_number_in_a_lists_url_is_said_and_left_out(admin, view, query):
    response = admin.get(f"/admin/{view}/?{query}")

    assert response.status_code == 200
    assert BAD_LIST_ARGS[query] in flashed(response)
    assert admin.get(f"/admin/{view}/export/csv/?{query}").status_code == 200


@pytest.mark.parametrize("view", LISTS)
def test_the_numbers_the_list_links_to_are_accepted_without_a_message(admin, view):
    response = admin.get(f"/admin/{view}/?page=0&page_size=50&sort=1&desc=1")

    assert response.status_code == 200
    assert "alert-danger" not in response.text and "alert-error" not in response.text


# Without any id, Flask-Admin's details and edit pages go back to the list: no record was asked for.
@pytest.mark.parametrize(
    "page, record_id",
    [
        (page, record_id)
        for page in ("details", "edit", "history", "delete")
        for record_id in BAD_IDS
        if record_id or page in ("history", "delete")
    ],
)
@pytest.mark.parametrize("view", ["product", "transaction", "user"])
def test_a_record_id_that_is_not_one_is_a_clear_message(admin, view, page, record_id):
    response = admin.get(f"/admin/{view}/{page}/?id={record_id}")

    assert response.status_code == 302
    assert "Record does not exist." in flashed(admin.get(response.headers["Location"]))


@pytest.mark.parametrize("record_id", BAD_IDS)
def test_voiding_a_transaction_id_that_is_not_one_is_a_clear_message(app, admin, record_id):
    before = snapshot(app)
    for method in ("get", "post"):
        response = getattr(admin, method)(f"/admin/transaction/void/?id={record_id}", data={"reason": "typo"})
        assert response.status_code == 302
        assert "That transaction does not exist." in flashed(admin.get(response.headers["Location"]))
    assert snapshot(app) == before


@pytest.mark.parametrize("row_id", BAD_IDS)
@pytest.mark.parametrize(
    "view, action", [("product", "delete"), ("transaction", "post"), ("transaction", "delete"), ("user", "delete")]
)
def test_an_action_on_ids_that_are_not_ones_changes_nothing_and_says_so(app, admin, view, action, row_id):
    before = snapshot(app)

    response = admin.post(f"/admin/{view}/action/", data={"action": action, "rowid": [row_id]}, follow_redirects=True)

    assert response.status_code == 200
    assert "Invalid selection." in flashed(response)
    assert snapshot(app) == before


@pytest.mark.parametrize(
    "query, shown",
    [
        ("/admin/product/?flt0_stock_at_or_below=" + TOO_BIG, True),
        ("/admin/product/?flt0_stock_at_or_below=-" + TOO_BIG, True),
        ("/admin/product/?flt0_stock_at_or_below=abc", False),
        ("/admin/product/?flt0_price_at_least=1e999999", True),
        ("/admin/product/?flt0_price_at_least=NaN", False),
        ("/admin/transaction/?flt0_created_from=99999-01-01", False),
        ("/admin/audit/?flt0_object_id_equals=" + TOO_BIG, True),
        (f"/admin/product/?flt{TOO_BIG}_stock_at_or_below=1", True),
    ],
)
def test_a_filter_value_out_of_range_is_clamped_or_said(admin, make_product, query, shown):
    make_product(sku="FLT-1", stock=3, price="2.00")

    response = admin.get(query)

    assert response.status_code == 200
    assert ("Invalid Filter Value" in flashed(response)) is not shown


@pytest.mark.parametrize("query", [f"id={TOO_BIG}", "id=-1", "id=abc", "id=%00", "&".join(["id=1"] * 2000)])
def test_the_editors_line_products_take_only_ids(admin, make_product, query):
    make_product(price="3.50")

    response = admin.get(f"/admin/transaction/line-products/?{query}")

    assert response.status_code == 200
    assert set(response.json) <= {"1"}


@pytest.mark.parametrize("query", ["recent=all", "recent=" + TOO_BIG, "recent=%00", "page=-1"])
def test_the_dashboard_takes_no_number_it_cannot_read(admin, query):
    assert admin.get(f"/admin/?{query}").status_code == 200
