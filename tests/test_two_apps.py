"""Two apps in one process, each on its own database, as the tests make them and as a WSGI
server with two configurations would: nothing of one may serve the other.

The tests share one app per backend for speed (conftest.py), which would hide anything kept
for the whole process from the first app that used it: an engine, a setting, a key. Here a
second app, with its own database, key and settings, works after the shared one has served
every kind of page."""

import csv
import io

import pytest
from sqlalchemy import select

from adminapp.extensions import db as _db
from adminapp.models import Product, Transaction, User
from tests.support import FAST_HASH, fresh_schema, make_app, save_draft, signed_in

PAGES = ["/admin/", "/admin/product/", "/admin/transaction/", "/admin/audit/", "/admin/user/"]
EXPORTS = [
    "/admin/product/export/csv/",
    "/admin/transaction/export/csv/",
    "/admin/transaction/export-lines/",
    "/admin/audit/export/csv/",
]


def use_every_page(client):
    for url in PAGES + EXPORTS:
        response = client.get(url)
        assert response.status_code == 200, url
        response.get_data()


def exported(client, url) -> list[dict]:
    return list(csv.DictReader(io.StringIO(client.get(url).get_data(as_text=True))))


@pytest.fixture
def second_app(tmp_path):
    """An app of its own: another SQLite file, instance folder (so audit key) and currency."""
    with fresh_schema(make_app(f"sqlite:///{tmp_path / 'second.db'}", tmp_path / "second", CURRENCY="EUR")) as app:
        with app.app_context():
            _db.session.add(User(username="second-admin", role="admin", password_hash=FAST_HASH))
            product = Product(sku="SECOND-1", name="Only in the second", price=5, stock=9)
            _db.session.add(product)
            _db.session.flush()
            save_draft(_db.session, [(product.id, 2)])
            _db.session.commit()
        yield app


def test_a_second_app_serves_only_its_own_database(app, admin_client, make_product, second_app):
    make_product(sku="SHARED-1")
    use_every_page(admin_client)
    client = signed_in(second_app, "second-admin")

    use_every_page(client)

    assert [row["SKU"] for row in exported(client, EXPORTS[0])] == ["SECOND-1"]
    assert len(exported(client, EXPORTS[1])) == 1
    assert [row["sku"] for row in exported(client, EXPORTS[2])] == ["SECOND-1"]
    assert {row["User"] for row in exported(client, EXPORTS[3])} <= {"system", "second-admin"}
    assert "€" in client.get("/admin/product/").get_data(as_text=True)  # its own settings


def test_a_second_app_keeps_its_own_audit_chain(app, admin_client, make_product, second_app):
    make_product(sku="SHARED-1")
    use_every_page(admin_client)
    client = signed_in(second_app, "second-admin")
    with second_app.app_context():
        txn_id = _db.session.scalar(select(Transaction.id))
    assert client.post("/admin/transaction/action/", data={"action": "post", "rowid": [str(txn_id)]}).status_code == 302

    verified = second_app.test_cli_runner().invoke(args=["audit-verify"])

    assert verified.exit_code == 0, verified.output
    with second_app.app_context():
        assert _db.session.get(Transaction, txn_id).status == "posted"
    assert app.test_cli_runner().invoke(args=["audit-verify"]).exit_code == 0
