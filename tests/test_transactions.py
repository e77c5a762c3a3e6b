"""Sales transactions at /admin/transaction/, through the test client on a real database.

Drafts are edited inline (`lines-<i>-...` fields), posted with the bulk action `post`
and voided at /admin/transaction/void/. Every refusal must leave the database exactly
as it was, which the tests prove by comparing full snapshots of the tables.
"""

import csv
import html
import io
import json
import re
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import selectinload

from adminapp.domain import guards, sales
from adminapp.domain.errors import Immutable
from adminapp.extensions import db as _db
from adminapp.models import AuditEntry, Product, Transaction, TransactionProduct, User, utcnow
from tests.support import (
    OFFSITE_TARGETS,
    PASSWORD,
    count_statements,
    flashed,
    insert_transactions,
    login,
    make_app,
    save_draft,
    signed_in,
    skip_line_counts_on_sqlite,
)

LIST = "/admin/transaction/"
NEW = "/admin/transaction/new/"
ACTION = "/admin/transaction/action/"
DELETE = "/admin/transaction/delete/"
EXPORT = "/admin/transaction/export/csv/"
EXPORT_LINES = "/admin/transaction/export-lines/"
LOOKUP = "/admin/transaction/ajax/lookup/?name=transactionproduct-product&query="
LINE_PRODUCTS = "/admin/transaction/line-products/"
TOO_BIG = str(10**20)  # beyond a 32-bit and a 64-bit INTEGER

LINES_HEADER = ["transaction_id", "date", "status", "sku", "product_name", "qty", "unit_price", "line_total"]


def edit_url(txn_id):
    return f"/admin/transaction/edit/?id={txn_id}"


def details_url(txn_id):
    return f"/admin/transaction/details/?id={txn_id}"


def void_url(txn_id):
    return f"/admin/transaction/void/?id={txn_id}"


def line(product=None, qty=None, id="", delete=False):
    """One inline line; a product or qty of None leaves that field out of the POST."""
    return {"product": product, "qty": qty, "id": id, "delete": delete}


def txn_form(*lines, note="", version=""):
    """The create/edit form as a browser posts it. A line is a dict from `line()` or (product, qty)."""
    data = {"note": note, "version": str(version)}
    for i, entry in enumerate(lines):
        if isinstance(entry, tuple):
            entry = line(*entry)
        data[f"lines-{i}-id"] = str(entry["id"])
        if entry["product"] is not None:
            data[f"lines-{i}-product"] = str(entry["product"])
        if entry["qty"] is not None:
            data[f"lines-{i}-product_qty"] = str(entry["qty"])
        if entry["delete"]:
            data[f"del-lines-{i}"] = "on"
    return data


def text(response) -> str:
    """The page text, whitespace folded and HTML entities decoded."""
    return html.unescape(flashed(response))


def listed_ids(response):
    return [int(v) for v in re.findall(r'<td class="col-id">\s*<a[^>]*>(\d+)</a>\s*</td>', response.text)]


def read_csv(response):
    assert response.status_code == 200, response.text[:500]
    assert response.mimetype == "text/csv"
    return list(csv.reader(io.StringIO(response.get_data(as_text=True))))


def post_action(client, action, *ids, follow=True):
    return client.post(ACTION, data={"action": action, "rowid": [str(i) for i in ids]}, follow_redirects=follow)


# ------------------------------------------------------------------ fixtures


@pytest.fixture
def client_as(app, make_user):
    """A test client signed in as a new user with this username and role."""

    def sign_in(username, role="staff"):
        make_user(username, role)
        client = app.test_client()
        assert login(client, username).status_code == 302
        return client

    return sign_in


@pytest.fixture
def draft(db):
    """A draft saved through the sales operations: `draft((product_id, qty), ...)`."""

    def make(*lines, note="", created_by=None, created_at=None):
        with db() as session:
            user = session.scalar(select(User).where(User.username == created_by)) if created_by else None
            return save_draft(session, lines, user, note=note, created_at=created_at).id

    return make


@pytest.fixture
def posted(db, draft):
    def make(*lines, **fields):
        txn_id = draft(*lines, **fields)
        with db() as session:
            sales.post(session, session.get(Transaction, txn_id), None)
        return txn_id

    return make


@pytest.fixture
def voided(db, posted):
    def make(*lines, **fields):
        txn_id = posted(*lines, **fields)
        with db() as session:
            sales.void(session, session.get(Transaction, txn_id), None, "test")
        return txn_id

    return make


@pytest.fixture
def state(db):
    """Every transaction, line, product and audit row as plain tuples, to prove nothing changed."""

    def take():
        with db() as session:
            txns = [
                (
                    t.id,
                    t.status,
                    t.note,
                    t.total,
                    t.version,
                    t.created_by_id,
                    t.created_at,
                    t.posted_at,
                    t.posted_by_id,
                    t.voided_at,
                    t.voided_by_id,
                    t.void_reason,
                )
                for t in session.scalars(select(Transaction).order_by(Transaction.id))
            ]
            lines = [
                (tp.id, tp.transaction_id, tp.product_id, tp.product_qty, tp.unit_price)
                for tp in session.scalars(select(TransactionProduct).order_by(TransactionProduct.id))
            ]
            products = [
                (p.id, p.sku, p.price, p.stock, p.is_active, p.version)
                for p in session.scalars(select(Product).order_by(Product.id))
            ]
            audit = session.scalar(select(func.count(AuditEntry.id)))
            return txns, lines, products, audit

    return take


@pytest.fixture
def txn(db):
    """A transaction as a dict of plain values (lines as (sku, qty, unit_price)), or None."""

    def get(txn_id):
        with db() as session:
            t = session.get(Transaction, txn_id)
            if t is None:
                return None
            return {
                "status": t.status,
                "note": t.note,
                "total": t.total,
                "version": t.version,
                "created_by": t.created_by.username if t.created_by else None,
                "posted_at": t.posted_at,
                "posted_by": t.posted_by.username if t.posted_by else None,
                "voided_at": t.voided_at,
                "voided_by": t.voided_by.username if t.voided_by else None,
                "void_reason": t.void_reason,
                "lines": [(tp.product.sku, tp.product_qty, tp.unit_price) for tp in t.lines],
                "line_ids": [tp.id for tp in t.lines],
            }

    return get


@pytest.fixture
def stock(db):
    def get(product_id):
        with db() as session:
            return session.get(Product, product_id).stock

    return get


@pytest.fixture
def txn_count(db):
    def count():
        with db() as session:
            return session.scalar(select(func.count(Transaction.id)))

    return count


@pytest.fixture
def newest_id(db):
    def get():
        with db() as session:
            return session.scalar(select(func.max(Transaction.id)))

    return get


@pytest.fixture
def set_product(db):
    def change(product_id, **fields):
        with db() as session:
            product = session.get(Product, product_id)
            for key, value in fields.items():
                setattr(product, key, value)

    return change


# ------------------------------------------------------------ create and edit


def test_create_draft_with_lines_prices_it_exactly(staff_client, make_product, txn, newest_id, stock):
    coffee = make_product(sku="COF-1", name="Coffee", price="19.99", stock=10)
    tea = make_product(sku="TEA-1", name="Tea", price="0.10", stock=10)

    response = staff_client.post(NEW, data=txn_form((coffee, 3), (tea, 7), note="first order"))

    assert response.status_code == 302, text(response)
    saved = txn(newest_id())
    assert saved["status"] == "draft"
    assert saved["note"] == "first order"
    assert saved["created_by"].startswith("staff-")
    assert saved["lines"] == [("COF-1", 3, Decimal("19.99")), ("TEA-1", 7, Decimal("0.10"))]
    assert saved["total"] == Decimal("60.67") and isinstance(saved["total"], Decimal)
    assert saved["posted_at"] is None and saved["posted_by"] is None
    assert stock(coffee) == 10 and stock(tea) == 10  # a draft takes no stock
    page = text(staff_client.get(details_url(newest_id())))
    assert "COF-1" in page and "TEA-1" in page and "60.67" in page


def test_lines_are_inserted_in_product_order_whatever_the_forms(staff_client, make_product, txn, newest_id):
    """Each line's foreign key locks its product: in id order, as every other product lock."""
    first, second, third = make_product(sku="P-1"), make_product(sku="P-2"), make_product(sku="P-3")

    assert staff_client.post(NEW, data=txn_form((third, 1), (first, 2), (second, 3))).status_code == 302

    assert [sku for sku, _, _ in txn(newest_id())["lines"]] == ["P-1", "P-2", "P-3"]  # by line id


def test_total_is_exact_decimal(staff_client, make_product, txn, newest_id):
    cheap = make_product(price="0.10")
    cheaper = make_product(price="0.20")

    assert staff_client.post(NEW, data=txn_form((cheap, 7), (cheaper, 1))).status_code == 302

    assert txn(newest_id())["total"] == Decimal("0.90")  # as floats: 0.9000000000000001


def test_new_and_edit_forms_render(staff_client, make_product, draft):
    txn_id = draft((make_product(), 2))

    new_page = staff_client.get(NEW)
    edit_page = staff_client.get(edit_url(txn_id))

    assert new_page.status_code == 200
    assert 'id="lines-button"' in new_page.text
    assert edit_page.status_code == 200
    assert 'name="lines-0-id"' in edit_page.text
    assert 'name="lines-0-product_qty"' in edit_page.text
    assert re.search(r'id="version" name="version" type="hidden" value="1"', edit_page.text)


def test_edit_draft_changes_qty_adds_and_removes_lines(staff_client, make_product, draft, txn, stock):
    a = make_product(sku="A-1", price="19.99")
    b = make_product(sku="B-1", price="5.00")
    c = make_product(sku="C-1", price="2.50")
    txn_id = draft((a, 1), (b, 2))
    a_line, b_line = txn(txn_id)["line_ids"]

    response = staff_client.post(
        edit_url(txn_id),
        data=txn_form(
            line(a, 3, id=a_line),
            line(b, 2, id=b_line, delete=True),
            line(c, 4),
            note="changed",
            version=1,
        ),
    )

    assert response.status_code == 302, text(response)
    saved = txn(txn_id)
    assert saved["note"] == "changed"
    assert saved["status"] == "draft"
    assert saved["lines"] == [("A-1", 3, Decimal("19.99")), ("C-1", 4, Decimal("2.50"))]
    assert saved["line_ids"][0] == a_line  # the existing line was updated, not replaced
    assert saved["total"] == Decimal("69.97")
    assert saved["version"] == 2
    assert stock(a) == stock(b) == stock(c) == 10


def test_edit_reprices_a_draft_at_current_prices(staff_client, make_product, draft, txn, set_product):
    product = make_product(price="10.00")
    txn_id = draft((product, 2))
    set_product(product, price=Decimal("12.34"))
    line_id = txn(txn_id)["line_ids"][0]

    response = staff_client.post(edit_url(txn_id), data=txn_form(line(product, 2, id=line_id), version=1))

    assert response.status_code == 302
    assert txn(txn_id)["total"] == Decimal("24.68")


def test_edit_of_a_line_whose_product_was_deactivated_later_still_saves(
    staff_client, make_product, draft, txn, set_product
):
    old = make_product(sku="OLD-1")
    txn_id = draft((old, 1))
    set_product(old, is_active=False)
    line_id = txn(txn_id)["line_ids"][0]

    response = staff_client.post(edit_url(txn_id), data=txn_form(line(old, 1, id=line_id), note="n", version=1))

    assert response.status_code == 302, text(response)
    assert txn(txn_id)["note"] == "n"


BAD_LINES = {
    "qty 0": ("P", "0", "Number must be between 1 and 1000000"),
    "qty negative": ("P", "-3", "Number must be between 1 and 1000000"),
    "qty not a number": ("P", "x", "Not a valid integer value"),
    "qty huge": ("P", TOO_BIG, "Number must be between 1 and 1000000"),
    "qty just above max": ("P", "1000001", "Number must be between 1 and 1000000"),
    "qty fraction": ("P", "1.5", "Not a valid integer value"),
    "qty missing": ("P", None, "This field is required"),
    "qty empty": ("P", "", "This field is required"),
    "product missing": (None, "1", "This field is required"),
    "product empty": ("", "1", "This field is required"),
    "product does not exist": ("999999", "1", "Not a valid choice"),
    "product not a number": ("abc", "1", "Not a valid choice"),
    "product id huge": (TOO_BIG, "1", "Not a valid choice"),
    "product id negative": ("-1", "1", "Not a valid choice"),
}


@pytest.mark.parametrize("case", BAD_LINES, ids=list(BAD_LINES))
def test_bad_line_on_create_saves_nothing(staff_client, make_product, state, case):
    good = make_product(sku="GOOD-1")
    other = make_product(sku="OTHER-1")
    product, qty, message = BAD_LINES[case]
    product = other if product == "P" else product
    before = state()

    response = staff_client.post(NEW, data=txn_form((good, 1), line(product, qty)))

    assert response.status_code == 200
    assert message in text(response)
    assert state() == before


@pytest.mark.parametrize("case", BAD_LINES, ids=list(BAD_LINES))
def test_bad_line_on_edit_changes_nothing(staff_client, make_product, draft, txn, state, case):
    good = make_product(sku="GOOD-1")
    other = make_product(sku="OTHER-1")
    txn_id = draft((good, 1), (other, 2), note="kept")
    good_line, other_line = txn(txn_id)["line_ids"]
    product, qty, message = BAD_LINES[case]
    product = other if product == "P" else product
    before = state()

    response = staff_client.post(
        edit_url(txn_id),
        data=txn_form(
            line(good, 5, id=good_line),
            line(product, qty, id=other_line),
            note="changed",
            version=1,
        ),
    )

    assert response.status_code == 200
    assert message in text(response)
    assert state() == before


@pytest.mark.parametrize("mode", ["create", "edit-new-line", "edit-existing-line"])
def test_inactive_product_forged_into_the_post_is_refused(staff_client, make_product, draft, txn, state, mode):
    good = make_product(sku="GOOD-1")
    retired = make_product(sku="RETIRED-1", is_active=False)
    other = make_product(sku="OTHER-1")
    txn_id = draft((good, 1), (other, 1))
    good_line, other_line = txn(txn_id)["line_ids"]
    before = state()

    if mode == "create":
        response = staff_client.post(NEW, data=txn_form((good, 1), (retired, 1)))
    elif mode == "edit-new-line":
        response = staff_client.post(
            edit_url(txn_id),
            data=txn_form(line(good, 1, id=good_line), line(other, 1, id=other_line), line(retired, 1), version=1),
        )
    else:
        response = staff_client.post(
            edit_url(txn_id), data=txn_form(line(good, 1, id=good_line), line(retired, 1, id=other_line), version=1)
        )

    assert response.status_code == 200
    assert "Inactive products cannot be sold: RETIRED-1" in text(response)
    assert state() == before


@pytest.mark.parametrize("note", ["bad\x00note", "bell\x07", "x" * 2001])
def test_bad_note_is_refused(staff_client, make_product, draft, txn, state, note):
    product = make_product()
    txn_id = draft((product, 1))
    line_id = txn(txn_id)["line_ids"][0]
    before = state()

    created = staff_client.post(NEW, data=txn_form((product, 1), note=note))
    edited = staff_client.post(edit_url(txn_id), data=txn_form(line(product, 1, id=line_id), note=note, version=1))

    for response in (created, edited):
        assert response.status_code == 200
        page = text(response)
        assert "Remove the control characters" in page or "longer than 2000" in page
    assert state() == before


def test_transaction_without_lines_is_refused(staff_client, make_product, draft, txn, state):
    product = make_product()
    txn_id = draft((product, 1))
    line_id = txn(txn_id)["line_ids"][0]
    before = state()

    created = staff_client.post(NEW, data=txn_form(note="nothing"))
    nothing_at_all = staff_client.post(NEW, data={})
    all_deleted = staff_client.post(
        edit_url(txn_id), data=txn_form(line(product, 1, id=line_id, delete=True), version=1)
    )

    for response in (created, nothing_at_all, all_deleted):
        assert response.status_code == 200
        assert "A transaction needs at least one line." in text(response)
    assert state() == before


def test_same_product_twice_is_refused_naming_the_sku(staff_client, make_product, draft, txn, state):
    twice = make_product(sku="TWICE-1")
    other = make_product(sku="OTHER-1")
    txn_id = draft((twice, 1), (other, 1))
    twice_line, other_line = txn(txn_id)["line_ids"]
    before = state()

    created = staff_client.post(NEW, data=txn_form((twice, 1), (other, 1), (twice, 2)))
    changed = staff_client.post(
        edit_url(txn_id), data=txn_form(line(twice, 1, id=twice_line), line(twice, 1, id=other_line), version=1)
    )
    added = staff_client.post(
        edit_url(txn_id),
        data=txn_form(line(twice, 1, id=twice_line), line(other, 1, id=other_line), line(twice, 4), version=1),
    )

    for response in (created, changed, added):
        assert response.status_code == 200
        page = text(response)
        assert "only once per transaction" in page
        assert "TWICE-1" in page
    assert state() == before


def test_same_product_allowed_after_its_old_line_is_deleted(staff_client, make_product, draft, txn):
    product = make_product(sku="MOVE-1", price="1.00")
    txn_id = draft((product, 1))
    line_id = txn(txn_id)["line_ids"][0]

    response = staff_client.post(
        edit_url(txn_id), data=txn_form(line(product, 1, id=line_id, delete=True), line(product, 6), version=1)
    )

    assert response.status_code == 302, text(response)
    assert txn(txn_id)["lines"] == [("MOVE-1", 6, Decimal("1.00"))]
    assert txn(txn_id)["total"] == Decimal("6.00")


def test_same_existing_line_twice_is_refused(staff_client, make_product, draft, txn, state):
    a = make_product()
    b = make_product()
    txn_id = draft((a, 1), (b, 1))
    a_line = txn(txn_id)["line_ids"][0]
    before = state()

    response = staff_client.post(
        edit_url(txn_id), data=txn_form(line(a, 2, id=a_line), line(b, 3, id=a_line), version=1)
    )

    assert response.status_code == 200
    assert f"Line {a_line} was sent twice" in text(response)
    assert state() == before


def test_line_of_another_transaction_cannot_be_taken_over(staff_client, make_product, draft, txn):
    a = make_product(sku="A-1")
    b = make_product(sku="B-1")
    c = make_product(sku="C-1")
    mine = draft((a, 1))
    theirs = draft((b, 2))
    their_line = txn(theirs)["line_ids"][0]
    their_before = txn(theirs)

    response = staff_client.post(
        edit_url(mine), data=txn_form(line(a, 1, id=txn(mine)["line_ids"][0]), line(c, 9, id=their_line), version=1)
    )

    assert response.status_code < 500
    assert txn(theirs) == their_before
    assert their_line not in txn(mine)["line_ids"]


@pytest.mark.parametrize("status", ["posted", "void"])
def test_final_transaction_forged_into_an_edit_post_changes_nothing(
    staff_client, make_product, posted, voided, txn, state, status
):
    product = make_product(sku="FINAL-1")
    other = make_product(sku="OTHER-1")
    txn_id = (posted if status == "posted" else voided)((product, 2))
    line_id = txn(txn_id)["line_ids"][0]
    before = state()

    get = staff_client.get(edit_url(txn_id))
    forged = staff_client.post(
        edit_url(txn_id),
        data=txn_form(line(product, 1, id=line_id), line(other, 1), note="forged", version=txn(txn_id)["version"]),
    )
    deleted_line = staff_client.post(
        edit_url(txn_id),
        data=txn_form(line(product, 2, id=line_id, delete=True), line(other, 1), version=txn(txn_id)["version"]),
    )

    for response in (get, forged, deleted_line):
        assert response.status_code == 302
        assert response.headers["Location"].endswith(details_url(txn_id))
    assert f"Transaction #{txn_id} is {status}: it is read-only." in text(
        staff_client.post(edit_url(txn_id), data=txn_form((product, 1)), follow_redirects=True)
    )
    assert state() == before


def test_edit_of_a_missing_transaction_is_not_an_error(staff_client, make_product):
    product = make_product()
    for txn_id in ("999999", "abc", TOO_BIG, ""):
        response = staff_client.post(edit_url(txn_id), data=txn_form((product, 1), version=1))
        assert response.status_code < 500
        assert staff_client.get(edit_url(txn_id)).status_code < 500


# ------------------------------------------------------- optimistic locking


def test_stale_edit_is_refused_and_newer_data_kept(client_as, make_product, draft, txn):
    product = make_product(sku="P-1", price="1.00")
    txn_id = draft((product, 1))
    line_id = txn(txn_id)["line_ids"][0]
    alice, bob = client_as("alice"), client_as("bob")
    assert 'name="version" type="hidden" value="1"' in alice.get(edit_url(txn_id)).text

    bob_saves = bob.post(edit_url(txn_id), data=txn_form(line(product, 2, id=line_id), note="bob", version=1))
    alice_saves = alice.post(edit_url(txn_id), data=txn_form(line(product, 5, id=line_id), note="alice", version=1))

    assert bob_saves.status_code == 302
    assert alice_saves.status_code == 200
    assert "changed by someone else" in text(alice_saves)
    saved = txn(txn_id)
    assert saved["note"] == "bob"
    assert saved["lines"] == [("P-1", 2, Decimal("1.00"))]
    assert saved["version"] == 2


def test_stale_edit_is_refused_after_a_change_to_the_lines_only(client_as, make_product, draft, txn):
    """Bob only swaps a line's product for one at the same price: the total and the note
    stay the same, but Alice's form (opened before) must still be refused."""
    first = make_product(sku="SAME-1", price="4.00")
    second = make_product(sku="SAME-2", price="4.00")
    txn_id = draft((first, 1))
    line_id = txn(txn_id)["line_ids"][0]
    alice, bob = client_as("alice"), client_as("bob")

    bob_saves = bob.post(edit_url(txn_id), data=txn_form(line(second, 1, id=line_id), version=1))
    assert bob_saves.status_code == 302
    assert txn(txn_id)["version"] == 2  # the version moves with every saved change
    alice_saves = alice.post(edit_url(txn_id), data=txn_form(line(first, 3, id=line_id), version=1))

    assert alice_saves.status_code == 200
    assert "changed by someone else" in text(alice_saves)
    assert txn(txn_id)["lines"] == [("SAME-2", 1, Decimal("4.00"))]


@pytest.mark.parametrize("version", [None, "", "abc", "2", "0"])
def test_missing_or_wrong_version_is_refused(staff_client, make_product, draft, txn, state, version):
    product = make_product()
    txn_id = draft((product, 1))
    line_id = txn(txn_id)["line_ids"][0]
    data = txn_form(line(product, 4, id=line_id), note="x", version=version or "")
    if version is None:
        del data["version"]
    before = state()

    response = staff_client.post(edit_url(txn_id), data=data)

    assert response.status_code == 200
    assert "reopen the transaction" in text(response)
    assert state() == before


def test_edit_opened_before_the_draft_was_posted_is_refused(client_as, make_product, draft, txn, state):
    product = make_product(stock=5)
    txn_id = draft((product, 1))
    line_id = txn(txn_id)["line_ids"][0]
    alice, bob = client_as("alice"), client_as("bob")
    alice.get(edit_url(txn_id))
    assert "posted" in text(post_action(bob, "post", txn_id))
    before = state()

    response = alice.post(
        edit_url(txn_id), data=txn_form(line(product, 3, id=line_id), version=1), follow_redirects=True
    )

    assert response.status_code == 200
    assert f"Transaction #{txn_id} is posted: it is read-only." in text(response)
    assert state() == before


# ------------------------------------------------------------------ posting


def test_post_takes_stock_and_fixes_prices(staff_client, make_product, draft, txn, stock, set_product):
    coffee = make_product(sku="COF-1", name="Coffee", price="10.00", stock=10)
    tea = make_product(sku="TEA-1", name="Tea", price="2.00", stock=4)
    txn_id = draft((coffee, 3), (tea, 4))
    set_product(coffee, price=Decimal("19.99"))  # the price at posting time counts

    response = post_action(staff_client, "post", txn_id)

    assert response.status_code == 200
    assert f"Transaction #{txn_id} posted." in text(response)
    saved = txn(txn_id)
    assert saved["status"] == "posted"
    assert saved["lines"] == [("COF-1", 3, Decimal("19.99")), ("TEA-1", 4, Decimal("2.00"))]
    assert saved["total"] == Decimal("67.97")
    assert saved["posted_by"].startswith("staff-")
    assert abs((utcnow() - saved["posted_at"]).total_seconds()) < 60
    assert stock(coffee) == 7 and stock(tea) == 0

    set_product(coffee, price=Decimal("50.00"))  # later price changes leave posted lines alone
    assert txn(txn_id)["lines"][0] == ("COF-1", 3, Decimal("19.99"))
    assert txn(txn_id)["total"] == Decimal("67.97")


def test_three_times_19_99_is_59_97(staff_client, make_product, draft, txn):
    txn_id = draft((make_product(price="19.99"), 3))

    post_action(staff_client, "post", txn_id)

    assert txn(txn_id)["total"] == Decimal("59.97")
    rows = read_csv(staff_client.get(EXPORT))
    assert rows[1][rows[0].index("total")] == "59.97"


def test_post_from_the_details_page_button(staff_client, make_product, draft, txn):
    txn_id = draft((make_product(), 1))
    page = staff_client.get(details_url(txn_id)).text
    form = re.search(r'<form method="post" action="([^"]+)"[^>]*id="post-form">(.*?)</form>', page, re.S)
    assert form, "no Post button on a draft's details page"
    fields = dict(re.findall(r'name="(\w+)" value="([^"]*)"', form.group(2)))

    response = staff_client.post(html.unescape(form.group(1)), data=fields)

    assert response.status_code == 302
    assert response.headers["Location"].endswith(details_url(txn_id))
    assert txn(txn_id)["status"] == "posted"
    details = staff_client.get(details_url(txn_id)).text
    assert 'id="post-form"' not in details
    assert 'id="void-link"' in details


def test_post_with_insufficient_stock_changes_nothing(staff_client, make_product, draft, txn, state):
    enough = make_product(sku="ENOUGH-1", name="Plenty", stock=10)
    short = make_product(sku="SHORT-1", name="Scarce", stock=2)
    txn_id = draft((enough, 1), (short, 3))
    before = state()

    response = post_action(staff_client, "post", txn_id)

    assert response.status_code == 200
    page = text(response)
    assert f"Transaction #{txn_id} was not posted" in page
    assert "SHORT-1 (Scarce): 2 in stock, 3 asked" in page
    assert "ENOUGH-1" not in page
    assert state() == before
    assert txn(txn_id)["status"] == "draft"


def marked_lines(page: str) -> dict[str, str]:
    """{row id: reason} of the lines a page marks as short of stock (the editor's rows, or
    the details page's)."""
    marks = {}
    for row in re.findall(r"<tr\b[^>]*\bline-short\b.*?</tr>", page, re.S):
        row_id = re.search(r'id="(lines-\d+)"', row) or re.search(r"<td>([^<]+)</td>", row)
        note = re.search(r'<div class="line-stock-note"[^>]*>([^<]*)</div>', row)
        marks[row_id.group(1)] = html.unescape(note.group(1)) if note else ""
    return marks


def test_a_post_refused_from_the_editor_marks_the_short_lines_there(
    staff_client, make_product, draft, txn, state, set_product
):
    enough = make_product(sku="ENOUGH-1", stock=10)
    short = make_product(sku="SHORT-1", name="Scarce", stock=2)
    retired = make_product(sku="OLD-1", stock=50)
    txn_id = draft((enough, 1), (short, 3), (retired, 1))
    set_product(retired, is_active=False)
    editor = staff_client.get(edit_url(txn_id)).text
    assert marked_lines(editor) == {}
    post_form = re.search(r'<form method="post" action="([^"]+)"[^>]*id="post-form">(.*?)</form>', editor, re.S)
    fields = dict(re.findall(r'name="(\w+)" value="([^"]*)"', post_form.group(2)))
    assert html.unescape(fields["url_if_refused"]) == edit_url(txn_id)
    before = state()

    response = staff_client.post(html.unescape(post_form.group(1)), data=fields)

    assert response.status_code == 302
    assert response.headers["Location"].endswith(edit_url(txn_id))  # back to the editor
    page = staff_client.get(response.headers["Location"]).text
    alert = re.search(r'<div class="alert[^"]*">(.*?)</div>', page, re.S).group(1)
    assert "was not posted" in alert and "SHORT-1 (Scarce): 2 in stock, 3 asked" in html.unescape(alert)
    assert marked_lines(page) == {
        "lines-1": "Only 2 in stock",
        "lines-2": "This product is inactive and cannot be sold.",
    }
    # The quantity box is tied to the reason, for screen readers.
    assert re.search(r'<input[^>]*aria-describedby="lines-1-note"[^>]*id="lines-1-product_qty"', page)
    assert state() == before and txn(txn_id)["status"] == "draft"
    # Shown once, as the message is: the next visit shows the lines as they are.
    assert marked_lines(staff_client.get(edit_url(txn_id)).text) == {}


def test_a_post_refused_from_the_details_page_marks_the_short_lines_there(staff_client, make_product, draft):
    short = make_product(sku="SHORT-2", stock=0)
    txn_id = draft((make_product(sku="FINE-2"), 1), (short, 1))

    response = staff_client.post(ACTION, data={"action": "post", "rowid": str(txn_id), "url": details_url(txn_id)})

    assert response.headers["Location"].endswith(details_url(txn_id))
    page = staff_client.get(details_url(txn_id)).text
    assert "was not posted" in html.unescape(page)
    assert marked_lines(page) == {"SHORT-2": "Out of stock"}


def test_a_post_of_one_row_from_the_list_leaves_no_marks_for_later(staff_client, make_product, draft):
    """The list is not the transaction's page: marks kept for its next opening would be stale."""
    txn_id = draft((make_product(sku="SHORT-4", stock=0), 1))

    page = text(post_action(staff_client, "post", txn_id))

    assert f"Transaction #{txn_id} was not posted" in page
    assert marked_lines(staff_client.get(edit_url(txn_id)).text) == {}


def test_a_bulk_post_refused_for_stock_leaves_no_marks_behind(staff_client, make_product, draft):
    short = make_product(sku="SHORT-3", stock=1)
    first, second = draft((short, 2)), draft((short, 3))

    page = text(post_action(staff_client, "post", first, second))

    assert f"Transaction #{first} was not posted" in page and f"Transaction #{second} was not posted" in page
    assert marked_lines(staff_client.get(edit_url(first)).text) == {}
    assert marked_lines(staff_client.get(edit_url(second)).text) == {}


def test_a_post_repeated_from_a_stale_editor_goes_to_the_details_page(staff_client, make_product, posted):
    """Posted meanwhile (a second click, another tab): nothing to edit, so the details page."""
    txn_id = posted((make_product(), 1))

    response = staff_client.post(
        ACTION,
        data={"action": "post", "rowid": str(txn_id), "url": details_url(txn_id), "url_if_refused": edit_url(txn_id)},
    )

    assert response.headers["Location"].endswith(details_url(txn_id))
    assert f"Transaction #{txn_id} is already posted" in text(staff_client.get(response.headers["Location"]))


@pytest.mark.parametrize("target", OFFSITE_TARGETS + ["http:evil.example", "http://["])
def test_a_post_refusal_offered_to_another_site_is_refused_unread(staff_client, make_product, draft, target):
    txn_id = draft((make_product(stock=0), 1))
    response = staff_client.post(
        ACTION,
        data={"action": "post", "rowid": str(txn_id), "url": details_url(txn_id), "url_if_refused": target},
    )
    assert response.status_code == 400, target


def test_post_names_every_product_short_of_stock(staff_client, make_product, draft, state):
    a = make_product(sku="A-1", stock=0)
    b = make_product(sku="B-1", stock=1)
    txn_id = draft((a, 1), (b, 2))
    before = state()

    page = text(post_action(staff_client, "post", txn_id))

    assert "A-1" in page and "0 in stock, 1 asked" in page
    assert "B-1" in page and "1 in stock, 2 asked" in page
    assert state() == before


def test_post_of_an_inactive_product_changes_nothing(staff_client, make_product, draft, set_product, state):
    active = make_product(sku="ACTIVE-1")
    retired = make_product(sku="RETIRED-1", name="Old thing", stock=50)
    txn_id = draft((active, 1), (retired, 1))
    set_product(retired, is_active=False)
    before = state()

    page = text(post_action(staff_client, "post", txn_id))

    assert f"Transaction #{txn_id} was not posted" in page
    assert "RETIRED-1 (Old thing) is inactive" in page
    assert state() == before


def test_bulk_post_posts_each_all_or_nothing_and_reports_both(staff_client, make_product, draft, txn, stock, state):
    shared = make_product(sku="SHARED-1", stock=5)
    rare = make_product(sku="RARE-1", stock=1)
    first = draft((shared, 2))
    failing = draft((shared, 1), (rare, 2))
    third = draft((shared, 3))
    failing_before = txn(failing)

    response = post_action(staff_client, "post", third, failing, first)

    page = text(response)
    assert f"Transaction #{first} posted." in page
    assert f"Transaction #{third} posted." in page
    assert f"Transaction #{failing} was not posted" in page
    assert "RARE-1" in page and "1 in stock, 2 asked" in page
    assert txn(first)["status"] == txn(third)["status"] == "posted"
    assert txn(failing) == failing_before
    assert stock(shared) == 0  # 2 + 3 taken, none by the failed one
    assert stock(rare) == 1


def test_bulk_post_where_a_later_one_runs_out(staff_client, make_product, draft, txn, stock):
    product = make_product(sku="LAST-1", stock=3)
    ids = [draft((product, 2)) for _ in range(3)]

    page = text(post_action(staff_client, "post", *ids))

    assert [txn(i)["status"] for i in ids] == ["posted", "draft", "draft"]
    assert f"Transaction #{ids[1]} was not posted" in page and "1 in stock, 2 asked" in page
    assert f"Transaction #{ids[2]} was not posted" in page
    assert stock(product) == 1


def test_posting_a_void_transaction_is_refused(staff_client, make_product, voided, state):
    product = make_product(stock=10)
    txn_id = voided((product, 2))
    before = state()

    page = text(post_action(staff_client, "post", txn_id))

    assert f"Transaction #{txn_id} is void; only drafts can be posted." in page
    assert state() == before


def test_posting_a_posted_transaction_again_says_it_is_done(app, make_user, make_product, draft, state):
    """The post of a lost response, or a second click: done already, by whom and when."""
    make_user("dora", "staff")
    dora = signed_in(app, "dora")
    txn_id = draft((make_product(stock=10), 2))
    post_action(dora, "post", txn_id)
    before = state()

    post_action(dora, "post", txn_id, follow=False)

    with dora.session_transaction() as session:
        [(category, message)] = session["_flashes"]
    assert category == "info"
    assert re.fullmatch(rf"Transaction #{txn_id} is already posted: by dora, \w+ \d+, \d{{4}}, .+\.", message)
    assert state() == before


@pytest.mark.parametrize("rowid", ["999999", "abc", TOO_BIG, "", "-1"])
def test_post_of_a_missing_or_malformed_id_is_not_an_error(staff_client, make_product, draft, state, rowid):
    draft((make_product(), 1))
    before = state()

    response = post_action(staff_client, "post", rowid)

    assert response.status_code == 200
    assert state() == before


# ------------------------------------------------------------------ voiding


def test_void_restores_stock_and_records_who_and_why(staff_client, make_product, posted, txn, stock):
    a = make_product(sku="A-1", price="19.99", stock=10)
    b = make_product(sku="B-1", stock=4)
    txn_id = posted((a, 3), (b, 4))
    assert stock(a) == 7 and stock(b) == 0
    posted_before = txn(txn_id)

    form_page = staff_client.get(void_url(txn_id))
    response = staff_client.post(void_url(txn_id), data={"reason": "Customer returned it"})

    assert form_page.status_code == 200 and 'name="reason"' in form_page.text
    assert response.status_code == 302
    assert response.headers["Location"].endswith(details_url(txn_id))
    saved = txn(txn_id)
    assert saved["status"] == "void"
    assert saved["void_reason"] == "Customer returned it"
    assert saved["voided_by"].startswith("staff-")
    assert abs((utcnow() - saved["voided_at"]).total_seconds()) < 60
    assert saved["lines"] == posted_before["lines"]
    assert saved["total"] == posted_before["total"] == Decimal("99.97")
    assert saved["posted_at"] == posted_before["posted_at"]
    assert stock(a) == 10 and stock(b) == 4
    details = text(staff_client.get(details_url(txn_id)))
    assert "Customer returned it" in details
    assert "void-link" not in staff_client.get(details_url(txn_id)).text


@pytest.mark.parametrize("data", [{}, {"reason": ""}, {"reason": "   \n "}, {"reason": "bad\x00reason"}])
def test_void_needs_a_reason(staff_client, make_product, posted, state, data):
    txn_id = posted((make_product(), 1))
    before = state()

    response = staff_client.post(void_url(txn_id), data=data)

    assert response.status_code == 200
    page = text(response)
    assert "This field is required" in page or "Give a reason" in page or "control characters" in page
    assert state() == before


def test_void_of_a_draft_is_refused(staff_client, make_product, draft, state):
    txn_id = draft((make_product(), 1))
    before = state()

    response = staff_client.post(void_url(txn_id), data={"reason": "mistake"})

    assert response.status_code == 200
    assert f"Transaction #{txn_id} is draft; only posted transactions can be voided." in text(response)
    assert state() == before


def test_void_twice_is_refused_and_stock_returned_once(staff_client, make_product, posted, txn, stock, state):
    product = make_product(stock=10)
    txn_id = posted((product, 4))

    first = staff_client.post(void_url(txn_id), data={"reason": "once"})
    after_first = state()
    second = staff_client.post(void_url(txn_id), data={"reason": "twice"})

    assert first.status_code == 302
    assert second.status_code == 200
    assert f"Transaction #{txn_id} is void; only posted transactions can be voided." in text(second)
    assert state() == after_first
    assert stock(product) == 10
    assert txn(txn_id)["void_reason"] == "once"


@pytest.mark.parametrize("txn_id", ["999999", "abc", TOO_BIG, ""])
def test_void_of_a_missing_transaction(staff_client, txn_id):
    response = staff_client.post(void_url(txn_id), data={"reason": "x"}, follow_redirects=True)

    assert response.status_code == 200
    assert "That transaction does not exist." in text(response)


# ----------------------------------------------------------------- deleting


def test_delete_of_a_draft_deletes_its_lines(staff_client, make_product, draft, db, txn, stock):
    product = make_product(stock=10)
    txn_id = draft((product, 2), (make_product(), 1))
    keep = draft((product, 1))

    response = staff_client.post(DELETE, data={"id": str(txn_id), "url": LIST}, follow_redirects=True)

    assert response.status_code == 200
    assert txn(txn_id) is None
    assert txn(keep) is not None
    with db() as session:
        assert session.scalar(select(func.count()).where(TransactionProduct.transaction_id == txn_id)) == 0
        assert session.scalar(select(func.count(TransactionProduct.id))) == 1
    assert stock(product) == 10


def confirm_url(txn_id):
    return f"{DELETE}?id={txn_id}&url={LIST}"


def test_confirmation_page_lists_the_lines_that_go_with_a_draft(app, staff_client, make_product, draft, txn):
    kopi = make_product(sku="KOPI-250G", name="Kopi 250 g")
    teh = make_product(sku="TEH-100", name="Teh 100 g")
    txn_id = draft((kopi, 1200), (teh, 1))

    response = staff_client.get(confirm_url(txn_id))

    assert response.status_code == 200
    page = text(response)
    assert f"Are you sure you want to delete Transaction #{txn_id}?" in page
    assert "These 2 records are deleted with it:" in page
    assert re.findall(r"<li>(Line: [^<]*)</li>", html.unescape(response.text)) == [
        "Line: 1,200 × KOPI-250G — Kopi 250 g",
        "Line: 1 × TEH-100 — Teh 100 g",
    ]
    assert f'value="{txn_id}"' in response.text and 'action="/admin/transaction/delete/"' in response.text
    assert txn(txn_id) is not None


def test_a_draft_changed_after_the_confirmation_page_is_not_deleted(staff_client, make_product, draft, txn):
    kopi, teh = make_product(), make_product()
    txn_id = draft((kopi, 1))
    page = staff_client.get(confirm_url(txn_id)).text
    shown = re.search(r'name="version" value="(\d+)"', page).group(1)
    line_id = txn(txn_id)["line_ids"][0]
    assert (
        staff_client.post(
            edit_url(txn_id), data=txn_form(line(kopi, 1, id=line_id), line(teh, 5), version=shown)
        ).status_code
        == 302
    )  # someone adds a line

    refused = staff_client.post(DELETE, data={"id": txn_id, "url": LIST, "version": shown}, follow_redirects=True)

    assert f"Transaction #{txn_id} was changed after the confirmation page was opened, and was not deleted." in text(
        refused
    )
    assert len(txn(txn_id)["lines"]) == 2
    fresh = re.search(r'name="version" value="(\d+)"', staff_client.get(confirm_url(txn_id)).text).group(1)
    done = staff_client.post(DELETE, data={"id": txn_id, "url": LIST, "version": fresh}, follow_redirects=True)
    assert "was deleted" in text(done) and txn(txn_id) is None


def test_confirmation_page_costs_the_same_whatever_the_number_of_lines(app, staff_client, make_product, draft):
    products = [make_product() for _ in range(30)]
    small, large = draft((products[0], 1)), draft(*[(p, 1) for p in products])
    staff_client.get(confirm_url(small))  # warm up

    with count_statements(app) as one_line:
        staff_client.get(confirm_url(small))
    with count_statements(app) as thirty_lines:
        response = staff_client.get(confirm_url(large))

    assert len(re.findall(r"<li>Line: ", response.text)) == 30
    assert thirty_lines[0] == one_line[0]


@pytest.mark.parametrize("status", ["posted", "void"])
def test_confirmation_page_of_a_final_transaction_says_why_and_offers_no_delete(
    staff_client, make_product, posted, voided, state, status
):
    txn_id = (posted if status == "posted" else voided)((make_product(), 2))
    before = state()

    response = staff_client.get(confirm_url(txn_id))

    assert response.status_code == 200
    page = text(response)
    assert f"Cannot delete Transaction #{txn_id}" in page
    assert f"Transaction #{txn_id} is {status} and cannot be deleted; void it instead" in page
    assert 'action="/admin/transaction/delete/"' not in response.text
    assert state() == before


@pytest.mark.parametrize("status", ["posted", "void"])
def test_delete_of_a_final_transaction_is_refused(staff_client, make_product, posted, voided, state, status):
    txn_id = (posted if status == "posted" else voided)((make_product(), 2))
    before = state()

    single = staff_client.post(DELETE, data={"id": str(txn_id), "url": LIST}, follow_redirects=True)
    bulk = post_action(staff_client, "delete", txn_id)

    for response in (single, bulk):
        assert response.status_code == 200
        assert f"Transaction #{txn_id} is {status} and cannot be deleted" in text(response)
    assert state() == before


def test_bulk_delete_is_all_or_nothing(staff_client, make_product, draft, posted, state, txn_count):
    product = make_product(stock=10)
    drafts = [draft((product, 1)) for _ in range(3)]
    final = posted((product, 1))
    before = state()

    refused = post_action(staff_client, "delete", drafts[0], final, drafts[1])
    assert f"Transaction #{final} is posted and cannot be deleted" in text(refused)
    assert state() == before

    missing = post_action(staff_client, "delete", drafts[0], 999999)
    assert "No transaction with id 999999; nothing was deleted." in text(missing)
    assert state() == before

    malformed = post_action(staff_client, "delete", drafts[0], "abc")
    assert malformed.status_code == 200
    assert state() == before

    done = post_action(staff_client, "delete", *drafts)
    assert "3 drafts deleted." in text(done)
    assert txn_count() == 1


# ---------------------------------------------------------------- the guard


@pytest.fixture
def final_txn(make_product, posted, voided):
    def make(status):
        first = make_product(sku="G-1", stock=10)
        second = make_product(sku="G-2", stock=10)
        make_product(sku="G-3", stock=10)
        return (posted if status == "posted" else voided)((first, 1), (second, 2))

    return make


def _change_note(session, t, line_id):
    t.note = "changed"


def _change_total(session, t, line_id):
    t.total = Decimal("0.01")


def _back_to_draft(session, t, line_id):
    t.status = "draft"


def _change_qty(session, t, line_id):
    t.lines[0].product_qty = 9


def _change_unit_price(session, t, line_id):
    t.lines[0].unit_price = Decimal("0.01")


def _change_line_product(session, t, line_id):
    t.lines[0].product = session.scalar(select(Product).where(Product.sku == "G-3"))


def _delete_line(session, t, line_id):
    session.delete(t.lines[0])


def _remove_line_from_collection(session, t, line_id):
    t.lines.remove(t.lines[0])


def _add_line(session, t, line_id):
    t.lines.append(
        TransactionProduct(
            product=session.scalar(select(Product).where(Product.sku == "G-3")),
            product_qty=1,
            unit_price=Decimal("1.00"),
        )
    )


def _add_line_by_foreign_key(session, t, line_id):
    product_id = session.scalar(select(Product.id).where(Product.sku == "G-3"))
    session.add(TransactionProduct(transaction_id=t.id, product_id=product_id, product_qty=1))


def _move_line_to_a_draft(session, t, line_id):
    draft = Transaction(note="thief", status="draft")
    session.add(draft)
    t.lines[0].transaction = draft


def _move_line_to_a_draft_by_foreign_key(session, t, line_id):
    draft = Transaction(note="thief", status="draft")
    session.add(draft)
    session.flush()
    session.get(TransactionProduct, line_id).transaction_id = draft.id


def _delete_line_by_id(session, t, line_id):
    session.delete(session.get(TransactionProduct, line_id))


def _delete_transaction(session, t, line_id):
    session.delete(t)


def _change_void_reason(session, t, line_id):
    t.void_reason = "rewritten"


GUARDED = [
    _change_note,
    _change_total,
    _back_to_draft,
    _change_qty,
    _change_unit_price,
    _change_line_product,
    _delete_line,
    _remove_line_from_collection,
    _add_line,
    _add_line_by_foreign_key,
    _move_line_to_a_draft,
    _move_line_to_a_draft_by_foreign_key,
    _delete_line_by_id,
    _delete_transaction,
    _change_void_reason,
]


@pytest.mark.parametrize("status", ["posted", "void"])
@pytest.mark.parametrize("change", GUARDED, ids=[f.__name__.strip("_") for f in GUARDED])
def test_guard_refuses_changes_to_final_transactions_at_flush(app, final_txn, state, status, change):
    txn_id = final_txn(status)
    before = state()

    with app.app_context():
        line_id = _db.session.scalar(
            select(func.min(TransactionProduct.id)).where(TransactionProduct.transaction_id == txn_id)
        )
        t = _db.session.get(Transaction, txn_id)
        change(_db.session, t, line_id)
        with pytest.raises(Immutable):
            _db.session.flush()
        _db.session.rollback()
        _db.session.remove()

    assert state() == before


def test_guard_lets_drafts_change_and_posted_be_voided(app, make_product, draft, posted, txn):
    product = make_product(sku="D-1", stock=10)
    draft_id = draft((product, 1))
    posted_id = posted((product, 1))

    with app.app_context():
        d = _db.session.get(Transaction, draft_id)
        d.note = "fine"
        d.lines[0].product_qty = 2
        sales.void(_db.session, _db.session.get(Transaction, posted_id), None, "reason")
        _db.session.commit()

    assert txn(draft_id)["note"] == "fine"
    assert txn(posted_id)["status"] == "void"


def test_guard_refuses_a_void_that_also_changes_other_fields(app, final_txn, state):
    txn_id = final_txn("posted")
    before = state()

    with app.app_context():
        t = _db.session.get(Transaction, txn_id)
        sales.void(_db.session, t, None, "reason")
        t.total = Decimal("0.00")
        with pytest.raises(Immutable):
            _db.session.flush()
        _db.session.rollback()

    assert state() == before


# ------------------------------------------------- list, filters and search


@pytest.fixture
def ledger(make_user, make_product, draft, posted, voided):
    """Four transactions by two users on known days; returns their ids by name."""
    make_user("alice")
    make_user("bob")
    coffee = make_product(sku="COF-1", name="Coffee beans", price="19.99", stock=100)
    tea = make_product(sku="TEA-1", name="Green tea", price="2.50", stock=100)
    sugar = make_product(sku="SUG-1", name="Sugar", price="1.00", stock=100)

    def at(day, hour=12, minute=0):
        return datetime(2024, *day, hour, minute, tzinfo=UTC)

    return {
        "t1": draft((coffee, 1), note="morning order", created_by="alice", created_at=at((1, 10))),
        "t2": posted((tea, 2), (sugar, 1), created_by="bob", created_at=at((1, 15), 23, 30)),
        "t3": voided((coffee, 3), (tea, 1), created_by="alice", created_at=at((2, 1), 0, 10)),
        "t4": posted((sugar, 5), note="big sugar", created_by="bob", created_at=at((2, 20))),
    }


def test_list_shows_columns_newest_first(app, staff_client, ledger):
    response = staff_client.get(LIST)

    assert response.status_code == 200
    page = response.text
    for header in ("ID", "Created at", "Created by", "Status", "Lines", "Total"):
        assert f">{header}</a>" in page, header
    assert listed_ids(response) == [ledger["t4"], ledger["t3"], ledger["t2"], ledger["t1"]]
    cells = lambda col: [  # noqa: E731
        " ".join(html.unescape(re.sub(r"<[^>]+>", " ", c)).split())
        for c in re.findall(rf'<td class="col-{col}">(.*?)</td>', page, re.S)
    ]
    assert cells("status") == ["posted", "void", "posted", "draft"]
    assert cells("line_count") == ["1", "2", "2", "1"]
    assert cells("created_by") == ["bob", "alice", "bob", "alice"]
    totals = cells("total")
    assert [re.sub(r"[^\d.]", "", c) for c in totals] == ["5.00", "62.47", "6.00", "19.99"]
    assert all(c.startswith(app.config["CURRENCY"]) for c in totals), totals


def test_list_emits_the_named_filter_urls(staff_client, ledger):
    page = staff_client.get(LIST).text
    groups = json.loads(html.unescape(re.search(r'id="filter-groups-data"[^>]*>(.*?)</div>', page, re.S).group(1)))

    args = {f["arg"]: f["index"] for group in groups.values() for f in group}

    assert args == {
        "status_equals": 0,
        "created_from": 1,
        "created_to": 2,
        "created_by_is": 3,
        "product_contains": 4,
        "posted_from": 5,
        "posted_to": 6,
    }


FILTERS = {
    "status posted": ("flt0_status_equals=posted", ["t4", "t2"]),
    "status draft": ("flt0_status_equals=draft", ["t1"]),
    "status void": ("flt0_status_equals=void", ["t3"]),
    "created from": ("flt1_created_from=2024-02-01", ["t4", "t3"]),
    "created to (whole day)": ("flt2_created_to=2024-01-15", ["t2", "t1"]),
    "created between": ("flt1_created_from=2024-01-11&flt2_created_to=2024-02-01", ["t3", "t2"]),
    "created by": ("flt3_created_by_is=alice", ["t3", "t1"]),
    "created by nobody": ("flt3_created_by_is=nobody", []),
    "product by sku": ("flt4_product_contains=TEA", ["t3", "t2"]),
    "product by name": ("flt4_product_contains=coffee", ["t3", "t1"]),
    "status and product": ("flt0_status_equals=posted&flt4_product_contains=sug", ["t4", "t2"]),
    "status and date": ("flt0_status_equals=posted&flt1_created_from=2024-02-01", ["t4"]),
    "posted from": ("flt5_posted_from=2024-01-01", ["t4", "t3", "t2"]),  # posted (and t3 voided) today
    "posted to, before any": ("flt6_posted_to=2024-01-01", []),
    "posted to (today included)": (f"flt6_posted_to={datetime.now(UTC).date()}", ["t4", "t3", "t2"]),
    "search note": ("search=morning", ["t1"]),
    "search note and filter": ("search=sugar&flt0_status_equals=posted", ["t4"]),
}


@pytest.mark.parametrize("case", FILTERS, ids=list(FILTERS))
def test_filters_and_search_apply_to_list_and_both_exports(staff_client, ledger, case):
    query, names = FILTERS[case]
    expected = [ledger[n] for n in names]

    listed = listed_ids(staff_client.get(f"{LIST}?{query}"))
    exported = [int(row[0]) for row in read_csv(staff_client.get(f"{EXPORT}?{query}"))[1:]]
    lines = read_csv(staff_client.get(f"{EXPORT_LINES}?{query}"))

    assert listed == expected
    assert exported == expected
    assert lines[0] == LINES_HEADER
    assert sorted({int(row[0]) for row in lines[1:]}) == sorted(expected)


def test_search_by_id(staff_client, ledger):
    target = ledger["t2"]

    for term in (str(target), f"%23{target}"):  # 12 or #12
        listed = listed_ids(staff_client.get(f"{LIST}?search={term}"))
        assert listed == [target], term


def test_search_by_id_is_exact_not_a_substring(staff_client, make_product, draft):
    product = make_product()
    ids = [draft((product, 1)) for _ in range(12)]  # ids 1..12 (fresh schema per test)
    assert ids[1] == 2 and ids[11] == 12

    listed = listed_ids(staff_client.get(f"{LIST}?search=2&page_size=100"))
    exported = read_csv(staff_client.get(f"{EXPORT}?search=2"))

    assert listed == [2]
    assert [int(row[0]) for row in exported[1:]] == [2]


@pytest.mark.parametrize(
    "query",
    [
        "flt1_created_from=not-a-date",
        "flt2_created_to=2024-13-45",
        "flt0_status_equals=bogus",
        "flt9_nothing=1",
        "search=%00",
        "search=a%00b",
        "search=" + "x" * 3000,
        f"search={TOO_BIG}",
        "flt0_status_equals=%00",
        "flt3_created_by_is=%00",
        "flt4_product_contains=%00",
        "flt4_product_contains=%25_",
        "flt3_created_by_is=" + "x" * 3000,
        "page=abc",
        f"page={TOO_BIG}",
        "page=-1",
        "page_size=abc",
        "page_size=100000",
        "sort=99",
        "sort=abc",
        "sort=-1&desc=1",
    ],
)
def test_odd_list_queries_are_not_errors(staff_client, make_product, draft, query):
    draft((make_product(), 1), note="something")
    for url in (LIST, EXPORT, EXPORT_LINES):
        response = staff_client.get(f"{url}?{query}")
        assert response.status_code < 500, (url, query)
        response.get_data()


def test_days_at_the_ends_of_the_calendar_are_not_errors(database_url, tmp_path, app, make_user):
    """Local midnight of 0001-01-01 east of UTC, or the day after 9999-12-31, is no datetime."""
    jakarta = make_app(database_url, tmp_path, BABEL_DEFAULT_TIMEZONE="Asia/Jakarta")
    make_user("zoe", "staff")
    client = jakarta.test_client()
    assert login(client, "zoe").status_code == 302
    for query in (
        "flt1_created_from=0001-01-01",
        "flt2_created_to=9999-12-31",
        "flt5_posted_from=0001-01-01",
        "flt6_posted_to=9999-12-31",
    ):
        for url in (LIST, EXPORT, EXPORT_LINES):
            response = client.get(f"{url}?{query}")
            assert response.status_code < 500, (url, query)
            response.get_data()
    with jakarta.app_context():
        _db.engine.dispose()


def test_export_columns_and_values(staff_client, ledger, txn):
    rows = read_csv(staff_client.get(EXPORT))

    assert rows[0] == [
        "id",
        "created_at",
        "created_by",
        "status",
        "note",
        "lines",
        "total",
        "posted_at",
        "posted_by",
        "voided_at",
        "voided_by",
        "void_reason",
    ]
    by_id = {int(row[0]): dict(zip(rows[0], row)) for row in rows[1:]}
    assert [int(row[0]) for row in rows[1:]] == [ledger["t4"], ledger["t3"], ledger["t2"], ledger["t1"]]
    t3 = by_id[ledger["t3"]]
    assert t3["status"] == "void" and t3["created_by"] == "alice" and t3["lines"] == "2"
    assert t3["total"] == "62.47" and t3["void_reason"] == "test"
    assert t3["created_at"].startswith("2024-02-01T00:10")
    assert by_id[ledger["t1"]]["note"] == "morning order"
    assert by_id[ledger["t1"]]["posted_at"] == ""


def test_lines_export_columns_and_values(staff_client, ledger):
    rows = read_csv(staff_client.get(EXPORT_LINES))

    assert rows[0] == LINES_HEADER
    t2 = [row for row in rows[1:] if int(row[0]) == ledger["t2"]]
    assert [row[2:] for row in t2] == [
        ["posted", "TEA-1", "Green tea", "2", "2.50", "5.00"],
        ["posted", "SUG-1", "Sugar", "1", "1.00", "1.00"],
    ]
    assert t2[0][1].startswith("2024-01-15T23:30")
    t3 = [row[2:] for row in rows[1:] if int(row[0]) == ledger["t3"]]
    assert t3 == [
        ["void", "COF-1", "Coffee beans", "3", "19.99", "59.97"],
        ["void", "TEA-1", "Green tea", "1", "2.50", "2.50"],
    ]
    assert len(rows) == 1 + 1 + 2 + 2 + 1


def test_exports_quote_awkward_text(staff_client, make_product, draft):
    odd = make_product(sku='Q"1,2', name="Line\nbreak, comma")
    with_note = draft((odd, 1), note='He said "hi", then\nleft')

    rows = read_csv(staff_client.get(EXPORT))
    lines = read_csv(staff_client.get(EXPORT_LINES))

    assert rows[1][0] == str(with_note) and rows[1][4] == 'He said "hi", then\nleft'
    assert lines[1][3:5] == ['Q"1,2', "Line\nbreak, comma"]


# ------------------------------------------------------ lookup and prices


def test_lookup_returns_active_products_only(staff_client, make_product):
    live = make_product(sku="COF-LIVE", name="Coffee live")
    make_product(sku="COF-DEAD", name="Coffee retired", is_active=False)
    tea = make_product(sku="TEA-9", name="Black tea")

    by_name = staff_client.get(LOOKUP + "coffee")
    by_sku = staff_client.get(LOOKUP + "COF-DEAD")
    other = staff_client.get(LOOKUP + "tea-9")

    assert by_name.status_code == 200
    assert [row[0] for row in by_name.json] == [live]
    assert "COF-LIVE" in by_name.json[0][1]
    assert by_sku.json == []
    assert [row[0] for row in other.json] == [tea]


def test_lookup_odd_queries_are_not_errors(staff_client, make_product):
    make_product()
    for query in ("", "%", "_", "'", "\\", "%00", "a%00b", "x" * 5000):
        response = staff_client.get(LOOKUP + query)
        assert response.status_code < 500, query
    assert staff_client.get("/admin/transaction/ajax/lookup/?name=nope&query=x").status_code < 500


def test_lookup_shows_price_and_stock(staff_client, make_product):
    make_product(sku="KOPI-250G", name="Kopi Luwak", price="47500.00", stock=1234)

    [(_, label)] = staff_client.get(LOOKUP + "kopi").json

    assert label == "KOPI-250G — Kopi Luwak · IDR\u00a047,500.00, 1,234 in stock"


def test_line_products_give_price_and_stock(staff_client, make_product):
    a = make_product(price="19.99", stock=1500)
    b = make_product(price="0.10", stock=0)

    response = staff_client.get(f"{LINE_PRODUCTS}?id={a}&id={b}&id=abc&id={TOO_BIG}&id=999999")

    assert response.status_code == 200
    assert response.json == {
        str(a): {"price": "19.99", "stock": 1500, "stock_text": "1,500"},
        str(b): {"price": "0.10", "stock": 0, "stock_text": "0"},
    }
    assert staff_client.get(LINE_PRODUCTS).json == {}


# --------------------------------------------------------- statement counts


@pytest.fixture
def many_transactions(db, make_product):
    def make(count, lines_each):
        products = [make_product(stock=1000) for _ in range(lines_each)]
        with db() as session:
            user = User(username="bulk", role="staff", password_hash="x")
            session.add(user)
            session.flush()
            now = utcnow()
            insert_transactions(
                session,
                [
                    {
                        "status": ("draft", "posted")[n % 2],
                        "note": f"bulk {n}",
                        "created_at": now,
                        "created_by_id": user.id,
                    }
                    for n in range(count)
                ],
                products,
            )

    return make


def test_list_statement_count_does_not_grow_with_page_size(app, staff_client, many_transactions):
    many_transactions(120, 3)

    with count_statements(app) as small:
        page_20 = staff_client.get(f"{LIST}?page_size=20")
    with count_statements(app) as large:
        page_100 = staff_client.get(f"{LIST}?page_size=100")
    with count_statements(app) as filtered:
        page_filtered = staff_client.get(f"{LIST}?page_size=100&flt0_status_equals=posted&flt4_product_contains=SKU")

    assert len(listed_ids(page_20)) == 20
    assert len(listed_ids(page_100)) == 100
    assert len(listed_ids(page_filtered)) == 60
    line_counts = re.findall(r'<td class="col-line_count">\s*(\d+)\s*</td>', page_100.text)
    assert line_counts == ["3"] * 100
    assert small[0] == large[0]
    assert filtered[0] <= large[0] + 1


def _line_products(make_product, n):
    return [make_product(price="1.25", stock=1000) for _ in range(n)]


def test_creating_50_lines_costs_no_more_statements_than_1_line(app, staff_client, make_product, txn, newest_id):
    skip_line_counts_on_sqlite(app)
    products = _line_products(make_product, 51)

    with count_statements(app) as one:
        assert staff_client.post(NEW, data=txn_form((products[0], 2))).status_code == 302
    with count_statements(app) as fifty:
        response = staff_client.post(NEW, data=txn_form(*[(p, 2) for p in products[1:]]))

    assert response.status_code == 302, text(response)
    saved = txn(newest_id())
    assert len(saved["lines"]) == 50
    assert saved["total"] == Decimal("125.00")
    assert fifty[0] <= one[0] + 3, (one[0], fifty[0])


def test_editing_50_lines_costs_no_more_statements_than_1_line(app, staff_client, make_product, draft, txn):
    products = _line_products(make_product, 51)
    small = draft((products[0], 1))
    big = draft(*[(p, 1) for p in products[1:]])

    def edit(txn_id, n_products):
        line_ids = txn(txn_id)["line_ids"]
        data = txn_form(*[line(p, 3, id=i) for p, i in zip(n_products, line_ids)], note="edited", version=1)
        with count_statements(app) as n:
            response = staff_client.post(edit_url(txn_id), data=data)
        assert response.status_code == 302, text(response)
        return n[0]

    one = edit(small, products[:1])
    fifty = edit(big, products[1:])

    assert txn(big)["total"] == Decimal("187.50")
    assert fifty <= one + 3, (one, fifty)


def test_a_refused_form_costs_the_same_whatever_the_number_of_lines(app, staff_client, make_product, txn_count):
    products = _line_products(make_product, 31)
    retired = make_product(sku="OLD-1", is_active=False)

    def refused(n_products):
        data = txn_form(*[(p, 1) for p in n_products], (retired, 1))
        with count_statements(app) as n:
            response = staff_client.post(NEW, data=data)
        assert response.status_code == 200 and "Inactive products cannot be sold" in text(response)
        return n[0]

    refused(products[:1])  # warm up
    assert refused(products[:30]) == refused(products[:1])
    assert txn_count() == 0


@pytest.mark.parametrize("prices_changed", [False, True], ids=["same prices", "new prices"])
def test_posting_and_voiding_cost_the_same_few_statements_whatever_the_number_of_lines(
    app, db, staff_client, make_product, draft, txn, stock, prices_changed
):
    """Stock, its movements and prices change set-based: the whole request, 1, 5 or 50 lines,
    costs the same."""
    sizes = (1, 5, 50)
    products = {n: _line_products(make_product, n) for n in sizes}
    drafts = {n: draft(*[(p, 2) for p in products[n]]) for n in sizes}
    if prices_changed:  # every line's price is then fixed at posting
        with db() as session:
            session.execute(
                update(Product).values(price=Decimal("1.50")), execution_options=guards.RECORDS_ITS_OWN_ENTRY
            )  # test data, not a change to record
    warm_up = draft((make_product(stock=5), 1))
    assert post_action(staff_client, "post", warm_up, follow=False).status_code == 302

    def cost(request):
        with count_statements(app) as n:
            response = request()
        assert response.status_code == 302
        return n[0]

    posting = {n: cost(lambda n=n: post_action(staff_client, "post", drafts[n], follow=False)) for n in sizes}
    assert {txn(drafts[n])["status"] for n in sizes} == {"posted"}
    assert {stock(p) for n in sizes for p in products[n]} == {998}
    assert txn(drafts[50])["total"] == (Decimal("150.00") if prices_changed else Decimal("125.00"))
    voiding = {n: cost(lambda n=n: staff_client.post(void_url(drafts[n]), data={"reason": "r"})) for n in sizes}
    assert {txn(drafts[n])["status"] for n in sizes} == {"void"}
    assert {stock(p) for n in sizes for p in products[n]} == {1000}

    # One statement each for the stock ledger's movements, however many lines.
    assert posting[1] == posting[5] == posting[50] <= 11, posting
    assert voiding[1] == voiding[5] == voiding[50] <= 11, voiding


def test_post_and_void_move_every_lines_stock_and_record_it_without_a_new_product_version(
    app, db, staff_client, make_product, draft, stock
):
    products = [make_product(sku=f"MOVE-{n:02d}", stock=100 + n) for n in range(30)]
    txn_id = draft(*[(p, n + 1) for n, p in enumerate(products)])

    def last_entry():
        with db() as session:
            entry = session.scalars(select(AuditEntry).order_by(AuditEntry.id.desc()).limit(1)).one()
            return entry.action, entry.object_id, entry.changes

    def versions():
        with db() as session:
            return set(session.scalars(select(Product.version).where(Product.id.in_(products))))

    assert post_action(staff_client, "post", txn_id, follow=False).status_code == 302
    action, object_id, changes = last_entry()
    assert (action, object_id) == ("post", str(txn_id))
    assert changes["stock"] == {f"MOVE-{n:02d}": [100 + n, 99] for n in range(30)}
    assert [stock(p) for p in products] == [99] * 30
    assert versions() == {1}  # a sale leaves open product forms current

    assert staff_client.post(void_url(txn_id), data={"reason": "returned"}).status_code == 302
    action, object_id, changes = last_entry()
    assert (action, object_id) == ("void", str(txn_id))
    assert changes["stock"] == {f"MOVE-{n:02d}": [99, 100 + n] for n in range(30)}
    assert [stock(p) for p in products] == [100 + n for n in range(30)]
    assert versions() == {1}


# -------------------------------------------------------------------- seeding


def test_seed_transactions_keeps_stock_consistent(app, db):
    runner = app.test_cli_runner()
    seeded = runner.invoke(args=["seed", "--products", "25", "--seed", "3"])
    assert seeded.exit_code == 0, seeded.output
    with db() as session:
        stock_before = dict(session.execute(select(Product.id, Product.stock)).all())

    result = runner.invoke(args=["seed", "--transactions", "300", "--lines", "4", "--seed", "3"])

    assert result.exit_code == 0, result.output
    match = re.search(r"Added 300 transactions: (\d+) posted, (\d+) void, (\d+) drafts\.", result.output)
    assert match, result.output
    assert sum(map(int, match.groups())) == 300 and all(int(n) > 0 for n in match.groups())
    with db() as session:
        txns = session.scalars(select(Transaction).options(selectinload(Transaction.lines))).all()
        taken = {}
        for t in txns:
            assert len(t.lines) == 4
            assert len({tp.product_id for tp in t.lines}) == 4
            assert t.total == sum((tp.unit_price * tp.product_qty for tp in t.lines), Decimal("0"))
            assert all(1 <= tp.product_qty <= 3 for tp in t.lines)
            assert all(tp.unit_price == tp.product.price for tp in t.lines)
            if t.status == "posted":  # a void one gave its stock back
                for tp in t.lines:
                    taken[tp.product_id] = taken.get(tp.product_id, 0) + tp.product_qty
        stock_after = dict(session.execute(select(Product.id, Product.stock)).all())
    assert all(value >= 0 for value in stock_after.values())
    assert stock_after == {pid: stock_before[pid] - taken.get(pid, 0) for pid in stock_before}


def test_seed_transactions_without_products_fails_cleanly(app, txn_count):
    result = app.test_cli_runner().invoke(args=["seed", "--transactions", "5"])

    assert result.exit_code != 0
    assert "seed products first" in result.output
    assert txn_count() == 0


def test_seed_transactions_with_scarce_stock_never_goes_negative(app, db, make_product):
    for _ in range(3):
        make_product(stock=2)

    result = app.test_cli_runner().invoke(args=["seed", "--transactions", "40", "--lines", "2"])

    assert result.exit_code == 0, result.output
    with db() as session:
        assert session.scalar(select(func.min(Product.stock))) >= 0
        posted_qty = session.scalar(
            select(func.coalesce(func.sum(TransactionProduct.product_qty), 0))
            .join(Transaction)
            .where(Transaction.status == "posted")
        )
    assert posted_qty <= 6


# ------------------------------------------------------------------- auditor


def test_auditor_can_read_but_not_change(auditor_client, make_product, draft, posted, txn, state):
    product = make_product(stock=10)
    draft_id = draft((product, 1))
    posted_id = posted((product, 2))
    line_id = txn(draft_id)["line_ids"][0]
    before = state()

    refused = [
        auditor_client.get(NEW),
        auditor_client.post(NEW, data=txn_form((product, 1))),
        auditor_client.get(edit_url(draft_id)),
        auditor_client.post(edit_url(draft_id), data=txn_form(line(product, 5, id=line_id), version=1)),
        post_action(auditor_client, "post", draft_id, follow=False),
        post_action(auditor_client, "delete", draft_id, follow=False),
        auditor_client.post(DELETE, data={"id": str(draft_id)}),
        auditor_client.get(void_url(posted_id)),
        auditor_client.post(void_url(posted_id), data={"reason": "no"}),
    ]

    assert [r.status_code for r in refused] == [403] * len(refused)
    assert state() == before
    for url in (
        LIST,
        details_url(draft_id),
        details_url(posted_id),
        EXPORT,
        EXPORT_LINES,
        LOOKUP + "SKU",
        f"{LINE_PRODUCTS}?id={product}",
    ):
        assert auditor_client.get(url).status_code == 200, url
    assert 'id="post-form"' not in auditor_client.get(details_url(draft_id)).text
    assert 'id="void-link"' not in auditor_client.get(details_url(posted_id)).text


def test_anonymous_is_sent_to_login(app, make_product, draft, state):
    txn_id = draft((make_product(), 1))
    client = app.test_client()
    before = state()

    for response in (
        client.get(LIST),
        client.post(ACTION, data={"action": "post", "rowid": str(txn_id)}),
        client.post(void_url(txn_id), data={"reason": "x"}),
        client.get(EXPORT_LINES),
        client.get(f"{LINE_PRODUCTS}?id=1"),
    ):
        assert response.status_code == 302
        assert "/login" in response.headers["Location"]
    assert state() == before


# ----------------------------------------------------------------------- CSRF


def test_create_and_post_with_csrf_enforced(csrf_app, make_product):
    """With CSRF on, the real forms (tokens scraped from the pages) work and a tokenless POST does not."""
    app = csrf_app
    with app.app_context():
        user = User(username="csrf-staff", role="staff")
        user.set_password(PASSWORD)
        _db.session.add(user)
        _db.session.commit()
    product_id = make_product(stock=5)
    client = app.test_client()

    def token(page):
        return re.search(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', page).group(1)

    login_token = token(client.get("/login").text)
    assert (
        client.post(
            "/login", data={"username": "csrf-staff", "password": PASSWORD, "csrf_token": login_token}
        ).status_code
        == 302
    )

    without = client.post(NEW, data=txn_form((product_id, 1)))
    assert without.status_code in (200, 400)
    with app.app_context():
        assert _db.session.scalar(select(func.count(Transaction.id))) == 0

    data = txn_form((product_id, 2))
    data["csrf_token"] = token(client.get(NEW).text)
    assert client.post(NEW, data=data).status_code == 302
    with app.app_context():
        txn_id = _db.session.scalar(select(Transaction.id))
    post_data = {"action": "post", "rowid": str(txn_id), "csrf_token": token(client.get(details_url(txn_id)).text)}
    assert client.post(ACTION, data=post_data).status_code == 302
    with app.app_context():
        assert _db.session.get(Transaction, txn_id).status == "posted"
        assert _db.session.get(Product, product_id).stock == 3


# ------------------------------------------------------------------ only what will work


def test_posted_and_void_transactions_offer_no_edit_or_delete(admin_client, make_product, draft, posted, voided):
    product = make_product(stock=50)
    ids = {"draft": draft((product, 1)), "posted": posted((product, 1)), "void": voided((product, 1))}
    listed = admin_client.get(LIST).text

    for status, txn_id in ids.items():
        draft_only = status == "draft"
        edit, delete = f"/admin/transaction/edit/?id={txn_id}&", f"/admin/transaction/delete/?id={txn_id}&"
        assert (edit in listed, delete in listed) == (draft_only, draft_only), status
        details = admin_client.get(details_url(txn_id)).text
        assert (edit in details, 'id="delete-link"' in details) == (draft_only, draft_only), status
        assert ('id="post-form"' in details, 'id="void-link"' in details) == (draft_only, status == "posted")


def test_a_transactions_pages_name_it_and_its_status(staff_client, make_product, draft, posted):
    product = make_product(stock=50)
    draft_id, posted_id = draft((product, 1)), posted((product, 1))

    for url, title in [
        (f"/admin/transaction/edit/?id={draft_id}", f"Transaction #{draft_id} — draft"),
        (details_url(posted_id), f"Transaction #{posted_id} — posted"),
    ]:
        page = staff_client.get(url).text
        assert f"<title>{title} - " in page and f'id="record-title">{title}</h1>' in page, url
