"""Receiving goods and adjusting a count from a product's page (/admin/product/adjust/): one
movement in the stock ledger, the stock changed with it and one audit entry, in one database
transaction; bad input refused next to its field with nothing written."""

import pytest
from sqlalchemy import select

from adminapp.models import AuditEntry, Product
from tests.support import field_errors, flashed, login, snapshot

from .test_csrf import token_in
from .test_stock_ledger import movements, unreconciled


def adjust_url(pid, **args) -> str:
    extra = "".join(f"&{k}={v}" for k, v in args.items())
    return f"/admin/product/adjust/?id={pid}{extra}"


def stock_of(db, pid) -> int:
    with db() as session:
        return session.get(Product, pid).stock


def user_id(db, username) -> int:
    from adminapp.models import User

    with db() as session:
        return session.scalar(select(User.id).where(User.username == username))


@pytest.fixture
def staff(app, make_user):
    make_user("stocker", "staff")
    client = app.test_client()
    assert login(client, "stocker").status_code == 302
    return client


def test_the_page_shows_the_product_and_the_form(staff, make_product):
    pid = make_product(sku="KOPI-250G", name="Kopi", stock=50)
    page = staff.get(adjust_url(pid))
    assert page.status_code == 200
    text = flashed(page)
    assert "KOPI-250G — Kopi: 50 in stock." in text
    for name in ("kind", "quantity", "reason", "reference"):
        assert f'name="{name}"' in page.text
    assert 'value="receipt"' in page.text and 'value="adjustment"' in page.text
    assert 'aria-current="page">Receive or adjust stock<' in page.text  # the breadcrumb
    assert f'href="/admin/product/edit/?id={pid}">KOPI-250G — Kopi<' in page.text


def test_a_receipt_writes_its_movement_and_the_stock(staff, db, make_product):
    pid = make_product(sku="KOPI-250G", name="Kopi", stock=50)
    response = staff.post(adjust_url(pid), data={"kind": "receipt", "quantity": "12", "reference": "DN-4471"})
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/admin/product/details/?id={pid}")
    assert "Received 12 of KOPI-250G — Kopi: 62 in stock." in flashed(staff.get(response.headers["Location"]))
    assert stock_of(db, pid) == 62
    last = movements(db, pid)[-1]
    assert {k: last[k] for k in ("kind", "quantity", "stock_after", "user_id", "reason", "reference")} == {
        "kind": "receipt",
        "quantity": 12,
        "stock_after": 62,
        "user_id": user_id(db, "stocker"),
        "reason": None,
        "reference": "DN-4471",
    }
    with db() as session:
        assert unreconciled(session) == []
        entries = session.scalars(
            select(AuditEntry).where(AuditEntry.object_type == "product", AuditEntry.object_id == str(pid))
        ).all()
        entry = entries[-1]
        assert entry.action == "update" and entry.username == "stocker"
        assert entry.changes == {"stock": [50, 62], "movement": "receipt", "reference": "DN-4471"}


def test_an_adjustment_takes_stock_with_its_reason_and_goes_back_to_url(staff, db, make_product):
    pid = make_product(sku="TEH-1", name="Teh", stock=10)
    back = "/admin/product/"
    response = staff.post(
        adjust_url(pid, url=back), data={"kind": "adjustment", "quantity": "-3", "reason": "Broken in the store"}
    )
    assert response.status_code == 302 and response.headers["Location"].endswith(back)
    assert "Adjusted TEH-1 — Teh by -3: 7 in stock." in flashed(staff.get(back))
    assert stock_of(db, pid) == 7
    last = movements(db, pid)[-1]
    assert (last["kind"], last["quantity"], last["stock_after"], last["reason"]) == (
        "adjustment",
        -3,
        7,
        "Broken in the store",
    )
    with db() as session:
        assert unreconciled(session) == []
    history = staff.get(f"/admin/product/history/?id={pid}")
    assert "Broken in the store" in history.text and "adjustment" in history.text


BAD = [
    ({"kind": "receipt", "quantity": "0"}, "quantity", "Enter a quantity other than zero."),
    ({"kind": "receipt", "quantity": "2.5"}, "quantity", "Not a valid integer value."),
    ({"kind": "receipt", "quantity": "abc"}, "quantity", "Not a valid integer value."),
    ({"kind": "receipt", "quantity": ""}, "quantity", "This field is required."),
    ({"kind": "receipt", "quantity": "1000001"}, "quantity", "Enter at most 1,000,000 units either way."),
    ({"kind": "adjustment", "quantity": "-1000001", "reason": "x"}, "quantity", "Enter at most 1,000,000"),
    ({"kind": "receipt", "quantity": "9" * 30}, "quantity", "Enter at most 1,000,000"),
    ({"kind": "receipt", "quantity": "-4"}, "quantity", "A receipt adds stock"),
    ({"kind": "adjustment", "quantity": "-4"}, "reason", "Give a reason for the adjustment"),
    ({"kind": "adjustment", "quantity": "-4", "reason": "   "}, "reason", "Give a reason for the adjustment"),
    ({"kind": "adjustment", "quantity": "-11", "reason": "Lost"}, "quantity", "Only 10 in stock."),
    ({"kind": "sale", "quantity": "4"}, "kind", "Not a valid choice"),
    ({"kind": "receipt", "quantity": "4", "reference": "x" * 201}, "reference", "200"),
]


@pytest.mark.parametrize("data, field, message", BAD)
def test_bad_input_is_refused_next_to_its_field_with_nothing_written(app, staff, make_product, data, field, message):
    pid = make_product(sku="KEEP-1", stock=10)
    before = snapshot(app)
    response = staff.post(adjust_url(pid), data=data)
    assert response.status_code == 200
    assert any(message in error for error in field_errors(response, field)), field_errors(response, field)
    assert snapshot(app) == before
    if data.get("quantity"):
        assert f'value="{data["quantity"]}"' in response.text  # the input is kept


def test_going_below_zero_says_so_at_the_top_too(app, staff, make_product):
    pid = make_product(sku="KEEP-1", stock=10)
    response = staff.post(adjust_url(pid), data={"kind": "adjustment", "quantity": "-11", "reason": "Lost"})
    assert "Only 10 of KEEP-1 in stock" in flashed(response)
    assert "KEEP-1 — Product" in flashed(response) and ": 10 in stock." in flashed(response)


@pytest.mark.parametrize("pid", ["999999", "abc", "", "-1"])
def test_an_unknown_product_is_a_message_not_an_error(app, staff, make_product, pid):
    make_product()
    before = snapshot(app)
    posted = staff.post(adjust_url(pid), data={"kind": "receipt", "quantity": "5"})
    for response in (staff.get(adjust_url(pid)), posted):
        assert response.status_code == 302 and response.headers["Location"].endswith("/admin/product/")
    assert "That product does not exist." in flashed(staff.get("/admin/product/"))
    assert snapshot(app) == before


def test_auditors_may_neither_open_nor_post(app, auditor_client, make_product):
    pid = make_product(stock=10)
    before = snapshot(app)
    assert auditor_client.get(adjust_url(pid)).status_code == 403
    assert auditor_client.post(adjust_url(pid), data={"kind": "receipt", "quantity": "5"}).status_code == 403
    assert snapshot(app) == before
    details = auditor_client.get(f"/admin/product/details/?id={pid}")
    assert details.status_code == 200 and 'id="adjust-link"' not in details.text


def test_the_product_pages_link_to_it_for_those_who_may_change(staff, make_product):
    pid = make_product(stock=10)
    for page in ("edit", "details"):
        response = staff.get(f"/admin/product/{page}/?id={pid}")
        assert f'id="adjust-link" href="/admin/product/adjust/?id={pid}"' in response.text
        assert "Receive or adjust stock" in response.text


def test_other_views_have_no_such_link(app, staff, make_product, db):
    from tests.support import save_draft

    pid = make_product(stock=10)
    with db() as session:
        txn_id = save_draft(session, [(pid, 1)]).id
    assert 'id="adjust-link"' not in staff.get(f"/admin/transaction/edit/?id={txn_id}").text


def test_indonesian_thousands_are_read(app, make_user, make_product, db):
    make_user("ibu", "staff", locale="id")
    client = app.test_client()
    assert login(client, "ibu").status_code == 302
    pid = make_product(sku="GULA-1", name="Gula", stock=5)
    response = client.post(adjust_url(pid), data={"kind": "receipt", "quantity": "1.000"})
    assert response.status_code == 302
    assert stock_of(db, pid) == 1005
    assert movements(db, pid)[-1]["quantity"] == 1000


def test_csrf_is_required(csrf_app, db, make_user, make_product):
    make_user("alice", "admin")
    from .test_csrf import sign_in

    client = sign_in(csrf_app.test_client())
    pid = make_product(stock=10)
    before = snapshot(csrf_app)
    assert client.post(adjust_url(pid), data={"kind": "receipt", "quantity": "5"}).status_code == 400
    assert snapshot(csrf_app) == before
    token = token_in(client.get(adjust_url(pid)).text, form_id="adjust-form")
    response = client.post(adjust_url(pid), data={"kind": "receipt", "quantity": "5", "csrf_token": token})
    assert response.status_code == 302
    assert stock_of(db, pid) == 15


def test_concurrent_receipts_and_adjustments_lose_no_unit(app, make_user, make_product, db):
    """Many workers at once on one product: each takes the product's lock in turn, so every
    unit is counted and the stock never goes below zero (PostgreSQL's row locks; SQLite's
    single writer is tried by every other test here)."""
    if not app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql"):
        pytest.skip("row locks under concurrency: PostgreSQL's")
    from tests.test_concurrency import all_at_once

    pid = make_product(sku="HOT-1", stock=3)
    clients = []
    for i in range(10):
        make_user(f"worker-{i}", "staff")
        client = app.test_client()
        assert login(client, f"worker-{i}").status_code == 302
        clients.append(client)
    receipts = [{"kind": "receipt", "quantity": "2"}] * 2  # +4
    takes = [{"kind": "adjustment", "quantity": "-1", "reason": "Count"}] * 8  # 8 asked of at most 7

    def send(client, data):
        response = client.post(adjust_url(pid), data=data)
        return response.status_code

    results = all_at_once([lambda c=c, d=d: send(c, d) for c, d in zip(clients, receipts + takes)])

    assert all(status in (200, 302) for status in results)
    done = [data for data, status in zip(receipts + takes, results) if status == 302]
    stock = stock_of(db, pid)
    assert stock == 3 + sum(int(data["quantity"]) for data in done) >= 0
    assert len(movements(db, pid)) == 1 + len(done)
    with db() as session:
        assert unreconciled(session) == []
