"""The audit trail: an entry for every change, in the same database transaction, on a
tamper-evident hash chain; the read-only /admin/audit/ view, per-object history, the
dashboard's recent actions, and the stale-form message that names who changed the record.

Every test runs against a real database (SQLite and PostgreSQL through the `app` fixture;
the concurrent-writers test on PostgreSQL only). No app context stays pushed while a test
client makes requests.
"""

import csv
import html
import io
import json
import math
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path

import pytest
from babel.dates import format_datetime
from flask import url_for
from sqlalchemy import create_engine, event, func, inspect, select, text
from sqlalchemy.engine import make_url

from adminapp.domain import audit, audit_chain, sales
from adminapp.domain.accounts import name_hash
from adminapp.domain.errors import InsufficientStock
from adminapp.extensions import db as _db
from adminapp.models import AuditEntry, Product, Transaction, User
from tests.support import (
    PASSWORD,
    as_dba,
    clean_environ,
    count_statements,
    flashed,
    fresh_schema,
    login,
    make_app,
    recent_items,
    save_draft,
    skip_line_counts_on_sqlite,
    snapshot,
    statements,
    tamper,
)

AUDIT = "/admin/audit/"
AUDIT_CSV = "/admin/audit/export/csv/"
PRODUCT_NEW = "/admin/product/new/"
PRODUCT_ACTION = "/admin/product/action/"
PRODUCT_DELETE = "/admin/product/delete/"
TXN_NEW = "/admin/transaction/new/"
TXN_ACTION = "/admin/transaction/action/"
TXN_DELETE = "/admin/transaction/delete/"
COLUMNS = tuple(AuditEntry.__table__.columns.keys())  # an entry read as a dict: every column of its row
TIMEOUT = 60  # seconds a concurrent writer may wait before the test calls it a hang


# ------------------------------------------------------------------------------ helpers


def backend(app) -> str:
    return "sqlite" if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite") else "postgresql"


def entries(app, **where) -> list[dict]:
    """The audit entries as plain dicts in chain order, optionally only those matching `where`."""
    with app.app_context():
        stmt = select(AuditEntry).order_by(AuditEntry.id)
        for column, value in where.items():
            stmt = stmt.where(getattr(AuditEntry, column) == value)
        rows = [{c: getattr(e, c) for c in COLUMNS} for e in _db.session.scalars(stmt)]
        _db.session.remove()
    return rows


def newer(app, since_id: int, **where) -> list[dict]:
    return [e for e in entries(app, **where) if e["id"] > since_id]


def last_id(app) -> int:
    with app.app_context():
        value = _db.session.scalar(select(func.max(AuditEntry.id))) or 0
        _db.session.remove()
    return value


def hashes(app) -> list[str]:
    return [e["hash"] for e in entries(app)]


def run_sql(app, sql, **params):
    with app.app_context():
        result = _db.session.execute(text(sql), params)
        rows = result.all() if result.returns_rows else None
        _db.session.commit()
        _db.session.remove()
    return rows


def verify(app):
    """`flask audit-verify`, as the operator runs it."""
    return app.test_cli_runner().invoke(args=["audit-verify"])


def assert_intact(app):
    result = verify(app)
    assert result.exit_code == 0, result.output
    count = len(entries(app))
    assert f"Audit trail intact: {count} entries verified." in result.output
    return count


def page(response) -> str:
    """Page text, whitespace folded and entities decoded."""
    return html.unescape(flashed(response))


def product_form(sku, name, price="12.50", stock="7", active=True, version=""):
    data = {
        "sku": sku,
        "name": name,
        "description": "",
        "price": price,
        "stock": stock,
        "version": str(version),
    }
    if active:
        data["is_active"] = "y"
    return data


def txn_form(*lines, note="", version=""):
    """The transaction form as the browser posts it. A line is (product, qty) or (product, qty, line_id)
    or (product, qty, line_id, "delete")."""
    data = {"note": note, "version": str(version)}
    for i, line in enumerate(lines):
        data[f"lines-{i}-id"] = str(line[2]) if len(line) > 2 else ""
        data[f"lines-{i}-product"] = str(line[0])
        data[f"lines-{i}-product_qty"] = str(line[1])
        if len(line) > 3:
            data[f"del-lines-{i}"] = "on"
    return data


def txn_state(app, txn_id) -> dict | None:
    with app.app_context():
        t = _db.session.get(Transaction, txn_id)
        result = (
            None
            if t is None
            else {
                "status": t.status,
                "version": t.version,
                "line_ids": [line.id for line in t.lines],
            }
        )
        _db.session.remove()
    return result


def listed_ids(response) -> list[int]:
    assert response.status_code == 200, response.status_code
    return [int(v) for v in re.findall(r'<td class="col-id">\s*<a[^>]*>(\d+)</a>\s*</td>', response.text)]


class _Tables(HTMLParser):
    """Every <table> of a page as {attrs, rows: [[cell text, ...], ...]}; a nested table's text
    also counts for the cell of the table around it."""

    def __init__(self):
        super().__init__()
        self.tables, self._open = [], []

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            table = {"attrs": dict(attrs), "rows": []}
            self.tables.append(table)
            self._open.append(table)
        elif self._open and tag == "tr":
            self._open[-1]["rows"].append([])
        elif self._open and tag in ("td", "th") and self._open[-1]["rows"]:
            self._open[-1]["rows"][-1].append("")

    def handle_endtag(self, tag):
        if tag == "table" and self._open:
            self._open.pop()

    def handle_data(self, data):
        for table in self._open:
            if table["rows"] and table["rows"][-1]:
                table["rows"][-1][-1] += data


def tables(markup: str) -> list[dict]:
    parser = _Tables()
    parser.feed(markup)
    for table in parser.tables:
        table["rows"] = [[" ".join(cell.split()) for cell in row] for row in table["rows"]]
    return parser.tables


def history_rows(response) -> list[list[str]]:
    """The rows of a history page: [when, user, action, changes text], newest first."""
    assert response.status_code == 200, response.status_code
    found = [t for t in tables(response.text) if t["attrs"].get("id") == "history"]
    assert found, "no history table on the page"
    return found[0]["rows"][1:]


def change_rows(response) -> list[list[str]]:
    """The rows (field, old, new) of the first changes table on a page."""
    found = [t for t in tables(response.text) if "audit-changes" in t["attrs"].get("class", "")]
    assert found, "no changes table on the page"
    return found[0]["rows"][1:]


def filter_args(response) -> dict[str, dict[str, str]]:
    """{filter label: {operation: url arg}} as the list page itself announces them."""
    match = re.search(r'id="filter-groups-data"[^>]*>(.*?)</div>', response.text, re.S)
    assert match, "the list page announces no filters"
    groups = json.loads(html.unescape(match.group(1)))
    return {label: {f["operation"]: f["arg"] for f in group} for label, group in groups.items()}


def no_hash_anywhere(text_, secrets_):
    for secret in secrets_:
        assert secret not in text_


# ------------------------------------------------------------------------------ fixtures


@pytest.fixture
def client_as(app, make_user):
    """A test client signed in as a new user with this username and role; returns (client, user id)."""

    def sign_in(username, role="staff", remote_addr=None):
        user_id = make_user(username, role)
        client = app.test_client()
        if remote_addr:
            client.environ_base["REMOTE_ADDR"] = remote_addr  # for every request of this client
        response = client.post("/login", data={"username": username, "password": PASSWORD})
        assert response.status_code == 302, response.text
        return client, user_id

    return sign_in


@pytest.fixture
def draft(db):
    """A draft saved through the sales operations: `draft((product_id, qty), ...)` -> id."""

    def make(*lines, note=""):
        with db() as session:
            return save_draft(session, lines, note=note).id

    return make


@pytest.fixture
def posted(db, draft):
    def make(*lines):
        txn_id = draft(*lines)
        with db() as session:
            sales.post(session, session.get(Transaction, txn_id), None)
        return txn_id

    return make


# ======================================================================== what is recorded


def test_product_create_edit_and_delete_through_the_views(app, client_as):
    client, boss_id = client_as("boss", "admin", remote_addr="203.0.113.7")
    start = last_id(app)
    before = datetime.now(UTC)

    response = client.post(PRODUCT_NEW, data=product_form("AUD-1", "Lamp"))
    assert response.status_code == 302, page(response)
    with app.app_context():
        pid = _db.session.scalar(select(Product.id).where(Product.sku == "AUD-1"))
        _db.session.remove()
    response = client.post(
        f"/admin/product/edit/?id={pid}", data=product_form("AUD-1", "Desk lamp", price="13.00", version=1)
    )
    assert response.status_code == 302, page(response)
    response = client.post(PRODUCT_DELETE, data={"id": pid})
    assert response.status_code == 302, page(response)
    after = datetime.now(UTC)

    created, updated, deleted = newer(app, start)
    for entry in (created, updated, deleted):
        assert (entry["user_id"], entry["username"]) == (boss_id, "boss")
        assert (entry["object_type"], entry["object_id"]) == ("product", str(pid))
        assert entry["remote_addr"] == "203.0.113.7"
        assert entry["at"].utcoffset() == timedelta(0)
        assert before - timedelta(seconds=1) <= entry["at"] <= after + timedelta(seconds=1)
    assert [e["action"] for e in (created, updated, deleted)] == ["create", "update", "delete"]
    assert created["object_repr"] == "AUD-1 — Lamp"
    assert created["changes"]["sku"] == [None, "AUD-1"]
    assert created["changes"]["price"] == [None, "12.50"]
    # An update holds the changed fields only, old and new, money as exact strings.
    assert updated["changes"] == {"name": ["Lamp", "Desk lamp"], "price": ["12.50", "13.00"]}
    assert updated["object_repr"] == "AUD-1 — Desk lamp"
    assert deleted["changes"]["sku"] == ["AUD-1", None]
    assert deleted["changes"]["name"] == ["Desk lamp", None]
    assert_intact(app)


def test_transaction_lifecycle_with_line_differences(app, client_as, make_product):
    client, clerk_id = client_as("clerk")
    a = make_product(sku="LA", price="2.00", stock=20)
    b = make_product(sku="LB", price="3.00", stock=20)
    c = make_product(sku="LC", price="5.00", stock=20)
    start = last_id(app)

    response = client.post(TXN_NEW, data=txn_form((a, 2), (b, 1), note="first"))
    assert response.status_code == 302, page(response)
    with app.app_context():
        txn_id = _db.session.scalar(select(func.max(Transaction.id)))
        _db.session.remove()
    state = txn_state(app, txn_id)
    a_line, b_line = state["line_ids"]
    response = client.post(
        f"/admin/transaction/edit/?id={txn_id}",
        data=txn_form((a, 5, a_line), (b, 1, b_line, "delete"), (c, 4), note="second", version=state["version"]),
    )
    assert response.status_code == 302, page(response)
    response = client.post(TXN_ACTION, data={"action": "post", "rowid": str(txn_id)})
    assert response.status_code == 302
    response = client.post(f"/admin/transaction/void/?id={txn_id}", data={"reason": "customer returned it"})
    assert response.status_code == 302, page(response)

    log = newer(app, start)
    assert [(e["action"], e["object_type"], e["object_id"]) for e in log] == [
        ("create", "transaction", str(txn_id)),
        ("update", "transaction", str(txn_id)),
        ("post", "transaction", str(txn_id)),
        ("void", "transaction", str(txn_id)),
    ], "one entry per change; stock moved by a post or void is in that entry, not in separate ones"
    created, edited, post, void = log
    assert all(e["user_id"] == clerk_id and e["username"] == "clerk" for e in log)
    assert list(created["changes"]["lines"]) == ["added"]
    assert sorted(created["changes"]["lines"]["added"], key=lambda line: line["sku"]) == [
        {"sku": "LA", "qty": 2},
        {"sku": "LB", "qty": 1},
    ]
    assert created["changes"]["total"] == [None, "7.00"]
    assert edited["changes"]["lines"] == {
        "added": [{"sku": "LC", "qty": 4}],
        "removed": [{"sku": "LB", "qty": 1}],
        "changed": [{"sku": "LA", "qty": [2, 5]}],
    }
    assert edited["changes"]["note"] == ["first", "second"]
    assert edited["changes"]["total"] == ["7.00", "30.00"]
    assert set(edited["changes"]) == {"lines", "note", "total"}, "only the changed fields"
    assert post["changes"]["status"] == ["draft", "posted"]
    assert post["changes"]["stock"] == {"LA": [20, 15], "LC": [20, 16]}
    assert void["changes"]["status"] == ["posted", "void"]
    assert void["changes"]["void_reason"] == [None, "customer returned it"]
    assert void["changes"]["stock"] == {"LA": [15, 20], "LC": [16, 20]}
    assert_intact(app)


def test_a_line_switched_to_another_product_is_recorded(app, client_as, make_product, draft):
    client, _ = client_as("clerk")
    old = make_product(sku="OLD-1", price="4.00")
    new = make_product(sku="NEW-1", price="4.00")  # same price and qty: only the product differs
    txn_id = draft((old, 3))
    state = txn_state(app, txn_id)
    start = last_id(app)

    response = client.post(
        f"/admin/transaction/edit/?id={txn_id}", data=txn_form((new, 3, state["line_ids"][0]), version=state["version"])
    )

    assert response.status_code == 302, page(response)
    (entry,) = newer(app, start)
    assert entry["action"] == "update" and entry["object_id"] == str(txn_id)
    assert entry["changes"]["lines"] == {"removed": [{"sku": "OLD-1", "qty": 3}], "added": [{"sku": "NEW-1", "qty": 3}]}


def test_bulk_actions_record_one_entry_per_record(app, db, client_as, make_product, draft):
    client, admin_id = client_as("boss", "admin")
    p1, p2 = make_product(sku="BULK-1"), make_product(sku="BULK-2")
    d1, d2 = draft((p1, 1)), draft((p2, 2))
    with db() as session:
        for pid in (p1, p2):
            session.get(Product, pid).is_active = False
    start = last_id(app)

    assert client.post(PRODUCT_ACTION, data={"action": "activate", "rowid": [p1, p2]}).status_code == 302
    activated = newer(app, start)
    # One entry per product (their order within one flush is not specified).
    assert sorted(((e["action"], e["object_id"], e["changes"]) for e in activated), key=lambda t: int(t[1])) == [
        ("update", str(p1), {"is_active": [False, True]}),
        ("update", str(p2), {"is_active": [False, True]}),
    ]

    mark = last_id(app)
    assert client.post(PRODUCT_ACTION, data={"action": "deactivate", "rowid": [p2]}).status_code == 302
    assert [(e["action"], e["object_id"], e["changes"]) for e in newer(app, mark)] == [
        ("update", str(p2), {"is_active": [True, False]}),
    ]

    mark = last_id(app)
    assert client.post(PRODUCT_ACTION, data={"action": "activate", "rowid": [p2]}).status_code == 302
    assert client.post(TXN_ACTION, data={"action": "post", "rowid": [d1]}).status_code == 302
    assert client.post(TXN_ACTION, data={"action": "delete", "rowid": [d2]}).status_code == 302
    log = newer(app, mark)
    assert [(e["action"], e["object_type"], e["object_id"]) for e in log] == [
        ("update", "product", str(p2)),
        ("post", "transaction", str(d1)),
        ("delete", "transaction", str(d2)),
    ]
    assert log[1]["changes"]["stock"] == {"BULK-1": [10, 9]}
    assert log[2]["changes"]["lines"] == [{"sku": "BULK-2", "qty": 2}]

    spare1, spare2 = make_product(sku="GONE-1"), make_product(sku="GONE-2")
    mark = last_id(app)
    assert client.post(PRODUCT_ACTION, data={"action": "delete", "rowid": [spare1, spare2]}).status_code == 302
    assert sorted(
        ((e["action"], e["object_id"], e["changes"]["sku"]) for e in newer(app, mark)), key=lambda t: int(t[1])
    ) == [
        ("delete", str(spare1), ["GONE-1", None]),
        ("delete", str(spare2), ["GONE-2", None]),
    ]
    assert all(e["user_id"] == admin_id for e in newer(app, start) if e["username"] != "system")
    assert_intact(app)


def test_sign_in_failures_and_sign_out_are_recorded(app, make_user):
    user_id = make_user("walter", "staff")
    client = app.test_client()
    start = last_id(app)
    addr = {"REMOTE_ADDR": "198.51.100.23"}

    assert (
        client.post(
            "/login", data={"username": "walter", "password": "not the password"}, environ_base=addr
        ).status_code
        == 200
    )
    assert (
        client.post(
            "/login", data={"username": "nobody-here", "password": "whatever it is"}, environ_base=addr
        ).status_code
        == 200
    )
    assert (
        client.post("/login", data={"username": "walter", "password": PASSWORD}, environ_base=addr).status_code == 302
    )
    assert client.post("/logout", environ_base=addr).status_code == 302

    wrong, unknown, signed_in, signed_out = newer(app, start)
    assert (wrong["action"], wrong["user_id"], wrong["username"]) == ("login_failed", user_id, "walter")
    assert wrong["changes"] == {"reason": "wrong password"}
    # The name typed without an account is kept only as a keyed hash (it may be a password).
    assert (unknown["action"], unknown["user_id"], unknown["username"]) == ("login_failed", None, None)
    assert unknown["object_repr"] == name_hash(app.config["SECRET_KEY"], "nobody-here")
    assert "nobody-here" not in json.dumps(unknown, default=str)
    assert (signed_in["action"], signed_in["user_id"], signed_in["username"]) == ("login", user_id, "walter")
    assert (signed_out["action"], signed_out["user_id"], signed_out["username"]) == ("logout", user_id, "walter")
    for entry in (wrong, unknown, signed_in, signed_out):
        assert entry["remote_addr"] == "198.51.100.23"
        assert entry["object_type"] == "user"
        assert PASSWORD not in json.dumps(entry, default=str) and "hash" not in json.dumps(entry["changes"])
    assert_intact(app)


def test_the_username_is_a_snapshot(app, db, client_as, make_product):
    client, user_id = client_as("old-name", "admin")
    pid = make_product()
    mark = last_id(app)
    assert client.post(PRODUCT_ACTION, data={"action": "deactivate", "rowid": [pid]}).status_code == 302
    with db() as session:
        session.get(User, user_id).username = "new-name"

    (entry,) = newer(app, mark, object_type="product")
    assert (entry["user_id"], entry["username"]) == (user_id, "old-name")
    rename = newer(app, mark, object_type="user")[-1]
    assert rename["action"] == "update" and rename["changes"] == {"username": ["old-name", "new-name"]}


def test_users_created_changed_and_deleted_are_recorded_without_password_hashes(app, db, client_as):
    admin_client, _ = client_as("root-admin", "admin")
    runner = app.test_cli_runner()
    first, second, third = "first secret for carol", "second secret for carol", "a secret for dave"
    start = last_id(app)

    result = runner.invoke(args=["create-user", "carol", "--role", "staff", "--password", first])
    assert result.exit_code == 0, result.output
    with db() as session:
        carol = session.scalar(select(User).where(User.username == "carol"))
        carol_id, hash_1 = carol.id, carol.password_hash
    result = runner.invoke(args=["set-password", "carol", "--password", second])
    assert result.exit_code == 0, result.output
    with db() as session:
        hash_2 = session.get(User, carol_id).password_hash
        dave = User(username="dave", role="staff")
        dave.set_password(third)
        session.add(dave)
        session.flush()
        dave_id, hash_3 = dave.id, dave.password_hash
    with db() as session:
        session.get(User, dave_id).role = "auditor"
    with db() as session:
        session.delete(session.get(User, dave_id))
    carol_client = app.test_client()
    assert login(carol_client, "carol", second).status_code == 302
    assert login(app.test_client(), "carol", first).status_code == 200  # the old one fails now

    log = newer(app, start)
    carol_log = [
        (e["action"], e["username"], e["changes"])
        for e in log
        if (e["object_type"], e["object_id"]) == ("user", str(carol_id))
    ]
    assert carol_log[0][:2] == ("create", "cli")
    assert carol_log[0][2]["username"] == [None, "carol"] and carol_log[0][2]["role"] == [None, "staff"]
    assert carol_log[1][:2] == ("password_change", "cli")
    assert carol_log[1][2]["password"] == "changed"
    assert [a for a, _, _ in carol_log[2:]] == ["login", "login_failed"]
    dave_log = [
        (e["action"], e["changes"]) for e in log if (e["object_type"], e["object_id"]) == ("user", str(dave_id))
    ]
    assert [a for a, _ in dave_log] == ["create", "update", "delete"]
    assert dave_log[1][1] == {"role": ["staff", "auditor"]}

    secrets_ = [hash_1, hash_2, hash_3, first, second, third, "password_hash", "scrypt:", "pbkdf2:"]
    everything = json.dumps(
        [{c: str(e[c]) for c in COLUMNS} for e in entries(app)] + [e["changes"] for e in entries(app)]
    )
    no_hash_anywhere(everything, secrets_)
    stored_json = run_sql(app, "SELECT CAST(changes AS TEXT) FROM audit_entries WHERE changes IS NOT NULL")
    assert any('"password"' in row[0] for row in stored_json)  # the password change is in there
    no_hash_anywhere(" ".join(row[0] for row in stored_json), secrets_)
    csv_text = admin_client.get(AUDIT_CSV).get_data(as_text=True)
    assert "password_change" in csv_text
    no_hash_anywhere(csv_text, secrets_)
    for entry in log:
        details = admin_client.get(f"/admin/audit/details/?id={entry['id']}").get_data(as_text=True)
        no_hash_anywhere(details, secrets_)
    assert_intact(app)


def test_seeding_is_recorded_as_the_app_records_each_change(app, client_as, make_user):
    """The seed writes in bulk, but its entries are those the app itself would have written:
    one per created product and transaction, per post and per void, in one valid chain in
    the order they happened, whose stock figures follow each other."""
    make_user("seller", role="staff")
    client, _ = client_as("clerk")
    assert client.post(PRODUCT_NEW, data=product_form("OWN-1", "Own", stock="5")).status_code == 302
    since = last_id(app)

    result = app.test_cli_runner().invoke(args=["seed", "--products", "40", "--transactions", "300", "--lines", "3"])

    assert result.exit_code == 0, result.output
    log = newer(app, since)
    assert [e["at"] for e in log] == sorted(e["at"] for e in log)
    kinds = [e["object_type"] for e in log]
    assert "product" in kinds[kinds.index("transaction") :]  # the catalog grew while the shop sold
    own_product = entries(app, object_type="product", object_id="1")[0]
    products = [e for e in log if e["object_type"] == "product"]
    assert len(products) == 40 and {e["action"] for e in products} == {"create"}
    assert all(e["username"] == "cli" and e["changes"].keys() == own_product["changes"].keys() for e in products)
    with app.app_context():
        txns = {str(t.id): t for t in _db.session.scalars(select(Transaction))}
        sellers = {u.id: u.username for u in _db.session.scalars(select(User))}
        stock_now = dict(_db.session.execute(select(Product.sku, Product.stock)).all())
        _db.session.expunge_all()
    by_action = {
        action: [e for e in log if e["object_type"] == "transaction" and e["action"] == action]
        for action in ("create", "post", "void")
    }
    assert sorted(e["object_id"] for e in by_action["create"]) == sorted(txns)
    assert sorted(e["object_id"] for e in by_action["post"]) == sorted(
        i for i, t in txns.items() if t.status != "draft"
    )
    assert sorted(e["object_id"] for e in by_action["void"]) == sorted(i for i, t in txns.items() if t.status == "void")
    for action, who in (("create", "created_by_id"), ("post", "posted_by_id"), ("void", "voided_by_id")):
        for e in by_action[action]:
            user_id = getattr(txns[e["object_id"]], who)
            assert (e["user_id"], e["username"]) == (user_id, sellers[user_id])
    stock = {e["changes"]["sku"][1]: e["changes"]["stock"][1] for e in [own_product, *products]}
    for e in log:  # each movement starts where the one before it left the product
        if e["object_type"] == "transaction":
            for sku, (before, after) in e["changes"].get("stock", {}).items():
                assert stock[sku] == before
                stock[sku] = after
    assert stock == stock_now
    assert_intact(app)


@pytest.mark.parametrize("how", ["delete_view", "bulk action"])
def test_deleting_a_user_who_acted_keeps_the_chain_verifiable(app, client_as, make_product, how):
    """Deleting a user through the app is not tampering: whatever the app does (refuse it, or
    delete the user), the entries that user made must still verify and still name them."""
    admin, _ = client_as("root-admin", "admin")
    leaver, leaver_id = client_as("leaver")
    pid = make_product(sku="LEAVER-1")
    assert leaver.post(PRODUCT_ACTION, data={"action": "deactivate", "rowid": [pid]}).status_code == 302
    made = [e["id"] for e in entries(app, user_id=leaver_id)]
    assert len(made) == 2  # sign-in, deactivation

    if how == "delete_view":
        admin.post("/admin/user/delete/", data={"id": leaver_id})
    else:
        admin.post("/admin/user/action/", data={"action": "delete", "rowid": [leaver_id]})

    assert_intact(app)
    assert [e["username"] for e in entries(app) if e["id"] in made] == ["leaver", "leaver"]


# ======================================================= one transaction: change and entry

AUDIT_REFUSES = {
    "sqlite": [
        "CREATE TRIGGER audit_refuses BEFORE INSERT ON audit_entries "
        "BEGIN SELECT RAISE(ABORT, 'audit log unavailable'); END;",
    ],
    "postgresql": [
        "CREATE OR REPLACE FUNCTION audit_refuses() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'audit log unavailable'; END $$",
        "CREATE TRIGGER audit_refuses BEFORE INSERT ON audit_entries FOR EACH ROW EXECUTE FUNCTION audit_refuses()",
    ],
}


@pytest.mark.own_schema
def test_no_change_commits_when_its_entry_cannot_be_written(app, client_as, make_product, draft, posted):
    client, _ = client_as("clerk", "admin")
    pid = make_product(sku="KEEP-1", name="Keep", stock=50)
    other = make_product(sku="KEEP-2", stock=50)
    unused = make_product(sku="KEEP-3")
    draft_id = draft((pid, 1))
    posted_id = posted((other, 2))
    draft_state = txn_state(app, draft_id)
    for sql in AUDIT_REFUSES[backend(app)]:
        run_sql(app, sql)
    before = snapshot(app)

    attempts = [
        ("create product", lambda: client.post(PRODUCT_NEW, data=product_form("NEW-9", "New"))),
        (
            "edit product",
            lambda: client.post(
                f"/admin/product/edit/?id={pid}", data=product_form("KEEP-1", "Changed", stock="50", version=1)
            ),
        ),
        ("deactivate", lambda: client.post(PRODUCT_ACTION, data={"action": "deactivate", "rowid": [pid]})),
        ("delete product", lambda: client.post(PRODUCT_DELETE, data={"id": unused})),
        ("create draft", lambda: client.post(TXN_NEW, data=txn_form((pid, 2)))),
        (
            "edit draft",
            lambda: client.post(
                f"/admin/transaction/edit/?id={draft_id}",
                data=txn_form((pid, 7, draft_state["line_ids"][0]), version=draft_state["version"]),
            ),
        ),
        ("post", lambda: client.post(TXN_ACTION, data={"action": "post", "rowid": [draft_id]})),
        ("void", lambda: client.post(f"/admin/transaction/void/?id={posted_id}", data={"reason": "mistake"})),
        ("delete draft", lambda: client.post(TXN_ACTION, data={"action": "delete", "rowid": [draft_id]})),
    ]
    for what, attempt in attempts:
        response = attempt()
        assert response.status_code < 500, what
        assert snapshot(app) == before, f"{what} was saved although its audit entry could not be written"

    # A sign-in that cannot be recorded does not sign anyone in, and says why (503, not 500).
    anonymous = app.test_client()
    refused = login(anonymous, "clerk")
    assert refused.status_code == 503
    assert "The change could not be recorded in the audit trail, so it was not saved." in flashed(refused)
    assert anonymous.get("/admin/").status_code == 302
    assert snapshot(app) == before

    run_sql(app, "DROP TRIGGER audit_refuses" + (" ON audit_entries" if backend(app) == "postgresql" else ""))
    if backend(app) == "postgresql":
        run_sql(app, "DROP FUNCTION audit_refuses()")
    mark = last_id(app)
    response = client.post(
        f"/admin/product/edit/?id={pid}", data=product_form("KEEP-1", "Changed", stock="50", version=1)
    )
    assert response.status_code == 302, page(response)
    assert [e["action"] for e in newer(app, mark)] == ["update"]
    assert_intact(app)


def test_no_entry_survives_a_change_that_rolled_back(app, db, make_product, draft):
    scarce = make_product(sku="SCARCE", stock=1)
    pid = make_product(sku="RENAME-ME", name="Before")
    big_order = draft((scarce, 5))
    before_entries = entries(app)

    with pytest.raises(InsufficientStock):
        with db() as session:
            session.get(Product, pid).name = "After"
            session.flush()
            # The entry is written, in this very transaction...
            in_transaction = session.scalars(select(AuditEntry).order_by(AuditEntry.id.desc())).first()
            assert in_transaction.action == "update" and in_transaction.changes == {"name": ["Before", "After"]}
            # ...then a domain error fails the unit of work after the flush.
            sales.post(session, session.get(Transaction, big_order), None)

    assert entries(app) == before_entries
    with db() as session:
        assert session.get(Product, pid).name == "Before"
    assert_intact(app)


def test_a_commit_that_fails_after_the_entry_was_written_leaves_neither(app, client_as, make_product, draft):
    """PostgreSQL: a deferred constraint trigger fails the COMMIT itself, after the post's flush
    wrote the stock, the status and the entry. The id sequence (never rolled back) shows the
    entry really had been inserted."""
    if backend(app) != "postgresql":
        pytest.skip("deferred constraint triggers are PostgreSQL's")
    client, _ = client_as("clerk")
    pid = make_product(sku="DEFER-1", stock=10)
    txn_id = draft((pid, 4))
    run_sql(
        app,
        "CREATE OR REPLACE FUNCTION refuse_at_commit() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'refused at commit'; END $$",
    )
    run_sql(
        app,
        "CREATE CONSTRAINT TRIGGER refuse_at_commit AFTER UPDATE ON transactions "
        "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION refuse_at_commit()",
    )
    before = snapshot(app)
    mark = last_id(app)
    try:
        response = client.post(TXN_ACTION, data={"action": "post", "rowid": [txn_id]}, follow_redirects=True)
        assert response.status_code == 200
        assert "alert-danger" in response.text  # an error message (its wording is the view's business)
        assert snapshot(app) == before
    finally:
        run_sql(app, "DROP TRIGGER refuse_at_commit ON transactions")
        run_sql(app, "DROP FUNCTION refuse_at_commit()")

    assert client.post(TXN_ACTION, data={"action": "post", "rowid": [txn_id]}).status_code == 302
    (entry,) = newer(app, mark)
    assert entry["action"] == "post"
    assert entry["changes"]["stock"] == {"DEFER-1": [10, 6]}  # the movements of this post, not of the failed one
    assert entry["id"] > mark + 1, "the failed post never inserted its entry (nothing was really tested)"
    assert_intact(app)


# ============================================================================ tamper evidence


@pytest.fixture
def chain(app, db, make_product):
    """A chain of a dozen entries: products created and edited."""
    for n in range(4):
        pid = make_product(sku=f"CHAIN-{n}", name=f"Chain {n}")
        with db() as session:
            session.get(Product, pid).name = f"Chain {n} (edited)"
        with db() as session:
            session.get(Product, pid).stock += 1
    ids = [e["id"] for e in entries(app)]
    assert len(ids) == 12
    return ids


def assert_broken_at(app, entry_id):
    result = verify(app)
    assert result.exit_code == 1, result.output
    assert f"BROKEN at entry #{entry_id}:" in result.output, result.output
    return result


def test_an_untouched_chain_verifies(app, chain):
    assert assert_intact(app) == len(chain)
    assert [e["prev_hash"] for e in entries(app)] == [None] + hashes(app)[:-1]


@pytest.mark.parametrize(
    "column, value",
    [
        ("username", "mallory"),
        ("action", "delete"),
        ("object_id", "999"),
        ("object_repr", "CHAIN-X — forged"),
        ("changes", {"name": ["Chain 1", "Something else"]}),
        ("remote_addr", "10.0.0.1"),
        ("at", datetime(2020, 1, 1, tzinfo=UTC)),
    ],
)
def test_altering_an_entry_is_detected_and_named(app, chain, column, value):
    victim = chain[4]
    with app.app_context():
        table = AuditEntry.__table__
        _db.session.execute(
            table.update().where(table.c.id == victim).values({column: value}), execution_options=as_dba(_db.session)
        )
        _db.session.commit()
        _db.session.remove()
    result = assert_broken_at(app, victim)
    assert "altered" in result.output
    assert f"{chain.index(victim)} entries before it are intact" in result.output


def test_altering_an_entry_by_raw_sql_is_detected(app, chain):
    victim = chain[7]
    tamper(app, "UPDATE audit_entries SET username = 'someone else' WHERE id = :id", id=victim)
    assert_broken_at(app, victim)


@pytest.mark.parametrize("position", [0, 5, 10])
def test_deleting_an_entry_is_detected(app, chain, position):
    tamper(app, "DELETE FROM audit_entries WHERE id = :id", id=chain[position])
    result = assert_broken_at(app, chain[position + 1])
    assert "deleted, inserted or moved" in result.output


@pytest.mark.parametrize("first, second", [(3, 8), (5, 6)])
def test_reordering_entries_is_detected(app, chain, first, second):
    """Swap the whole content of two rows (everything but the id)."""
    a, b = chain[first], chain[second]
    order_before = hashes(app)
    with app.app_context():
        table = AuditEntry.__table__
        rows = {r.id: r._asdict() for r in _db.session.execute(select(table).where(table.c.id.in_([a, b])))}
        content = {i: {k: v for k, v in rows[i].items() if k != "id"} for i in (a, b)}
        options = as_dba(_db.session)
        _db.session.execute(table.update().where(table.c.id == a).values(hash="swapping"), execution_options=options)
        _db.session.execute(table.update().where(table.c.id == b).values(content[a]), execution_options=options)
        _db.session.execute(table.update().where(table.c.id == a).values(content[b]), execution_options=options)
        _db.session.commit()
        _db.session.remove()
    assert sorted(hashes(app)) == sorted(order_before) and hashes(app) != order_before  # same rows, another order
    assert_broken_at(app, a)


# ============================================================================ concurrency


@pytest.fixture
def pg_app(postgres_url, tmp_path):
    with fresh_schema(make_app(postgres_url, tmp_path)) as app:
        yield app


def test_concurrent_writers_keep_one_unforked_chain(pg_app):
    writers, rounds = 8, 6
    barrier = threading.Barrier(writers)

    def write(n):
        barrier.wait(timeout=TIMEOUT)
        for r in range(rounds):
            with pg_app.app_context():
                product = Product(sku=f"W{n}-R{r}", name=f"Writer {n} round {r}", price=Decimal("1.00"), stock=1)
                _db.session.add(product)
                _db.session.commit()
                product.stock = 2  # and a second entry, for an update
                _db.session.commit()
                _db.session.remove()
        return n

    with ThreadPoolExecutor(max_workers=writers) as pool:
        done = [f.result(timeout=TIMEOUT) for f in [pool.submit(write, n) for n in range(writers)]]
    assert sorted(done) == list(range(writers))

    log = entries(pg_app)
    assert len(log) == writers * rounds * 2
    assert sorted(e["action"] for e in log) == ["create"] * (writers * rounds) + ["update"] * (writers * rounds)
    prev = [e["prev_hash"] for e in log]
    assert len(set(prev)) == len(prev), "two entries share a prev_hash: the chain forked"
    assert prev.count(None) == 1
    assert assert_intact(pg_app) == writers * rounds * 2


# ============================================================================ /admin/audit/


@pytest.mark.parametrize("role", ["admin", "auditor"])
def test_admin_and_auditor_read_the_trail(app, client_as, make_product, role):
    editor, _ = client_as("editor", "admin")
    pid = make_product(sku="READ-1", name="Readable", price="3.00", description="")
    assert (
        editor.post(
            f"/admin/product/edit/?id={pid}",
            data=product_form("READ-1", "Readable too", price="4.50", stock="10", version=1),
        ).status_code
        == 302
    )
    update = newer(app, 0, action="update", object_type="product")[-1]
    reader, _ = client_as("reader", role)

    listed = listed_ids(reader.get(AUDIT + "?page_size=100"))
    assert listed == sorted((e["id"] for e in entries(app)), reverse=True), "newest first, all of them"

    details = reader.get(f"/admin/audit/details/?id={update['id']}")
    assert details.status_code == 200
    assert ["Name", "Readable", "Readable too"] in change_rows(details)
    assert ["Price", "IDR 3.00", "IDR 4.50"] in change_rows(details)  # money, as the catalog shows it
    assert len(change_rows(details)) == 2
    assert update["hash"] in details.text
    for write_link in ("/admin/audit/new/", "/admin/audit/edit/", "/admin/audit/delete/", "/admin/audit/action/"):
        assert write_link not in details.text


def test_staff_cannot_read_the_trail(app, staff_client, make_product):
    make_product()
    entry_id = entries(app)[0]["id"]
    for url in (AUDIT, f"/admin/audit/details/?id={entry_id}", AUDIT_CSV, "/admin/audit/?search=x"):
        assert staff_client.get(url).status_code == 403, url
    assert "/admin/audit/" not in staff_client.get("/admin/").text


def test_the_audit_view_has_no_write_endpoint_at_all(app, admin_client, make_product):
    make_product()
    audit_rules = [r for r in app.url_map.iter_rules() if r.endpoint.startswith("audit.")]
    assert {r.endpoint for r in audit_rules} >= {"audit.index_view", "audit.details_view", "audit.export"}
    methods = {r.endpoint.split(".", 1)[1] for r in audit_rules}
    assert not methods & {"create_view", "edit_view", "delete_view", "action_view", "ajax_update", "history_view"}
    for rule in audit_rules:
        assert rule.methods <= {"GET", "HEAD", "OPTIONS"}, f"{rule.rule} accepts {sorted(rule.methods)}"
    before = snapshot(app)
    entry_id = entries(app)[0]["id"]
    for url in (
        "/admin/audit/new/",
        f"/admin/audit/edit/?id={entry_id}",
        "/admin/audit/delete/",
        "/admin/audit/action/",
        "/admin/audit/ajax/update/",
        f"/admin/audit/details/?id={entry_id}",
        AUDIT,
    ):
        response = admin_client.post(
            url, data={"id": entry_id, "rowid": entry_id, "action": "delete", "list_form_pk": entry_id, "username": "x"}
        )
        assert response.status_code in (404, 405), f"POST {url}: {response.status_code}"
    assert snapshot(app) == before
    listing = admin_client.get(AUDIT).text
    assert "/admin/audit/new/" not in listing and 'id="action_form"' not in listing


@pytest.fixture
def varied_trail(app, db, client_as, make_product):
    """Entries by two users over products and a transaction, three of them moved to set dates."""
    alice, _ = client_as("alice")
    bob, _ = client_as("bob")
    p1 = make_product(sku="FLT-1", name="Filter one")
    p2 = make_product(sku="FLT-2", name="Filter two")
    assert alice.post(PRODUCT_ACTION, data={"action": "deactivate", "rowid": [p1]}).status_code == 302
    assert bob.post(PRODUCT_ACTION, data={"action": "deactivate", "rowid": [p2]}).status_code == 302
    assert bob.post(TXN_NEW, data=txn_form((make_product(sku="FLT-3"), 1))).status_code == 302
    with app.app_context():
        table = AuditEntry.__table__
        days = [
            datetime(2020, 1, 10, 12, tzinfo=UTC),
            datetime(2020, 2, 11, 12, tzinfo=UTC),
            datetime(2020, 3, 12, 12, tzinfo=UTC),
        ]
        dated = dict(zip(sorted(e["id"] for e in entries(app))[:3], days))
        options = as_dba(_db.session)  # test data: the filters need entries of other days
        for entry_id, moment in dated.items():
            _db.session.execute(
                table.update().where(table.c.id == entry_id).values(at=moment), execution_options=options
            )
        _db.session.commit()
        _db.session.remove()
    return {"p1": p1, "p2": p2, "dated": dated}


def ids_where(app, predicate):
    return sorted((e["id"] for e in entries(app) if predicate(e)), reverse=True)


def test_filters_by_user_action_object_and_dates(app, auditor_client, varied_trail):
    listing = auditor_client.get(AUDIT)
    args = filter_args(listing)
    # The URL arguments are part of the interface: bookmarked and linked filtered views use them.
    assert args == {
        "User": {"equals": "user_equals"},
        "Action": {"equals": "action_equals"},
        "Object type": {"equals": "object_type_equals"},
        "Object ID": {"equals": "object_id_equals"},
        "When": {"from": "when_from", "to": "when_to"},
    }

    def filtered(by_label):
        query = {"page_size": 100}
        for n, ((label, operation), value) in enumerate(by_label.items()):
            query[f"flt{n}_{args[label][operation]}"] = value
        return listed_ids(auditor_client.get(AUDIT, query_string=query))

    assert filtered({("User", "equals"): "bob"}) == ids_where(app, lambda e: e["username"] == "bob")
    assert filtered({("Action", "equals"): "update"}) == ids_where(app, lambda e: e["action"] == "update")
    assert filtered({("Object type", "equals"): "transaction"}) == ids_where(
        app, lambda e: e["object_type"] == "transaction"
    )
    p1 = str(varied_trail["p1"])
    assert filtered({("Object type", "equals"): "product", ("Object ID", "equals"): p1}) == ids_where(
        app, lambda e: e["object_type"] == "product" and e["object_id"] == p1
    )
    assert len(filtered({("Object type", "equals"): "product", ("Object ID", "equals"): p1})) == 2

    jan, feb, mar = sorted(varied_trail["dated"])
    assert filtered({("When", "from"): "2020-02-01", ("When", "to"): "2020-02-29"}) == [feb]
    assert filtered({("When", "from"): "2020-02-11", ("When", "to"): "2020-02-11"}) == [feb]
    assert filtered({("When", "to"): "2020-01-31"}) == [jan]
    assert filtered({("When", "from"): "2020-01-01", ("When", "to"): "2020-12-31"}) == [mar, feb, jan]
    assert filtered({("When", "from"): "2021-01-01"}) == ids_where(app, lambda e: e["id"] not in (jan, feb, mar))


def test_search_finds_entries_by_object_user_and_action(app, auditor_client, varied_trail):
    def found(term):
        return listed_ids(auditor_client.get(AUDIT, query_string={"search": term, "page_size": 100}))

    assert found("FLT-2") == ids_where(app, lambda e: "FLT-2" in (e["object_repr"] or ""))
    assert len(found("FLT-2")) == 2  # created, deactivated
    assert found("alice") == ids_where(
        app, lambda e: "alice" in (e["username"] or "") or "alice" in (e["object_repr"] or "")
    )
    assert found("login_failed") == []


def test_csv_export(app, auditor_client, varied_trail):
    response = auditor_client.get(AUDIT_CSV)
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert sorted(int(r["ID"]) for r in rows) == sorted(e["id"] for e in entries(app))
    by_id = {int(r["ID"]): r for r in rows}
    for entry in entries(app):
        row = by_id[entry["id"]]
        assert (row["User"], row["Action"], row["Hash"]) == (entry["username"] or "", entry["action"], entry["hash"])
        if entry["changes"]:
            assert json.loads(row["Changes"]) == entry["changes"]
    args = filter_args(auditor_client.get(AUDIT))
    filtered = auditor_client.get(AUDIT_CSV, query_string={f"flt0_{args['Action']['equals']}": "update"})
    rows = list(csv.DictReader(io.StringIO(filtered.get_data(as_text=True))))
    assert rows and {r["Action"] for r in rows} == {"update"}


# ============================================================================ history per object


def test_history_links_on_edit_and_details_pages(app, admin_client, make_product, draft):
    pid = make_product()
    txn_id = draft((pid, 1))
    for url, history in [
        (f"/admin/product/edit/?id={pid}", f"/admin/product/history/?id={pid}"),
        (f"/admin/product/details/?id={pid}", f"/admin/product/history/?id={pid}"),
        (f"/admin/transaction/edit/?id={txn_id}", f"/admin/transaction/history/?id={txn_id}"),
        (f"/admin/transaction/details/?id={txn_id}", f"/admin/transaction/history/?id={txn_id}"),
    ]:
        response = admin_client.get(url)
        assert response.status_code == 200, url
        assert f'href="{history}"' in response.text, f"no History link on {url}"


def test_product_history_newest_first_also_after_deletion(app, client_as, auditor_client, make_product):
    client, _ = client_as("keeper", "admin")
    pid = make_product(sku="HIST-1", name="Name v1")
    other = make_product(sku="HIST-2", name="Unrelated")
    for version, name in ((1, "Name v2"), (2, "Name v3")):
        response = client.post(
            f"/admin/product/edit/?id={pid}", data=product_form("HIST-1", name, stock="10", version=version)
        )
        assert response.status_code == 302, page(response)
    assert client.post(PRODUCT_ACTION, data={"action": "deactivate", "rowid": [other]}).status_code == 302

    rows = history_rows(client.get(f"/admin/product/history/?id={pid}"))
    assert [row[2] for row in rows] == ["update", "update", "create"]
    assert rows[0][1] == "keeper" and "Name v2" in rows[0][3] and "Name v3" in rows[0][3]
    assert "Name v1" in rows[1][3] and "Name v2" in rows[1][3]
    assert all("Unrelated" not in row[3] for row in rows)

    assert client.post(PRODUCT_DELETE, data={"id": pid}).status_code == 302
    response = auditor_client.get(f"/admin/product/history/?id={pid}")
    rows = history_rows(response)
    assert [row[2] for row in rows] == ["delete", "update", "update", "create"]
    assert f"product #{pid}" in page(response)


def test_transaction_history(app, client_as, make_product):
    client, _ = client_as("seller")
    pid = make_product(sku="TH-1", stock=5)
    assert client.post(TXN_NEW, data=txn_form((pid, 1))).status_code == 302
    with app.app_context():
        txn_id = _db.session.scalar(select(func.max(Transaction.id)))
        _db.session.remove()
    state = txn_state(app, txn_id)
    assert (
        client.post(
            f"/admin/transaction/edit/?id={txn_id}",
            data=txn_form((pid, 2, state["line_ids"][0]), version=state["version"]),
        ).status_code
        == 302
    )
    assert client.post(TXN_ACTION, data={"action": "post", "rowid": [txn_id]}).status_code == 302

    rows = history_rows(client.get(f"/admin/transaction/history/?id={txn_id}"))
    assert [row[2] for row in rows] == ["post", "update", "create"]
    assert "TH-1" in rows[1][3]
    # Who posted it by name and the total as money, not a user id and a bare number.
    assert "Posted byseller" in rows[0][3], rows[0]
    assert "TotalIDR 10.00IDR 20.00" in rows[1][3], rows[1]


def history_changes(response) -> list[list[list[str]]]:
    """The (field, old, new) rows of each entry's changes table on a history page, newest first."""
    assert response.status_code == 200, response.status_code
    return [t["rows"][1:] for t in tables(response.text) if "audit-changes" in t["attrs"].get("class", "")]


def indonesian_auditor(app, make_user):
    make_user("ibu-auditor", "auditor", locale="id")
    client = app.test_client()
    assert login(client, "ibu-auditor").status_code == 302
    return client


def test_history_shows_line_quantities_as_sku_times_quantity(app, client_as, make_user, make_product):
    client, _ = client_as("seller")
    kopi = make_product(sku="KOPI-250G", price="142500.00", stock=5000)
    teh = make_product(sku="TEH-100G", price="20000.00", stock=5000)
    gula = make_product(sku="GULA-1KG", price="15000.00", stock=5000)
    assert client.post(TXN_NEW, data=txn_form((kopi, 3), (teh, 1))).status_code == 302
    with app.app_context():
        txn_id = _db.session.scalar(select(func.max(Transaction.id)))
        _db.session.remove()
    state = txn_state(app, txn_id)
    kopi_line, teh_line = state["line_ids"]
    edited = txn_form((kopi, 1200, kopi_line), (teh, 1, teh_line, "delete"), (gula, 2), version=state["version"])
    assert client.post(f"/admin/transaction/edit/?id={txn_id}", data=edited).status_code == 302
    url = f"/admin/transaction/history/?id={txn_id}"

    update, create = history_changes(client.get(url))
    assert ["Line added", "", "KOPI-250G × 3"] in create
    assert ["Line added", "", "TEH-100G × 1"] in create
    assert ["Line added", "", "GULA-1KG × 2"] in update
    assert ["Quantity changed", "KOPI-250G × 3", "KOPI-250G × 1,200"] in update
    assert ["Line removed", "TEH-100G × 1", ""] in update
    assert ["Total", "IDR 447,500.00", "IDR 171,030,000.00"] in update
    assert not any("{" in cell or "qty" in cell for row in update + create for cell in row), update + create

    # In Indonesian: the quantities grouped the Indonesian way, the money as Indonesian writes it.
    update, create = history_changes(indonesian_auditor(app, make_user).get(url))
    assert "KOPI-250G × 1.200" in [row[2] for row in update], update
    assert ["Total", "Rp 447.500,00", "Rp 171.030.000,00"] in update


def test_history_of_a_post_names_the_user_the_time_the_status_and_the_stock(app, client_as, make_user, make_product):
    client, _ = client_as("seller")
    kopi = make_product(sku="KOPI-250G", price="142500.00", stock=2000)
    assert client.post(TXN_NEW, data=txn_form((kopi, 1500))).status_code == 302
    with app.app_context():
        txn_id = _db.session.scalar(select(func.max(Transaction.id)))
        _db.session.remove()
    assert client.post(TXN_ACTION, data={"action": "post", "rowid": [txn_id]}).status_code == 302
    posted = newer(app, 0, action="post")[-1]
    posted_at = datetime.fromisoformat(posted["changes"]["posted_at"][1])
    url = f"/admin/transaction/history/?id={txn_id}"

    post = history_changes(client.get(url))[0]
    assert ["Posted by", "", "seller"] in post
    assert ["Status", "draft", "posted"] in post
    assert ["Posted at", "", " ".join(format_datetime(posted_at, "medium", tzinfo=UTC, locale="en").split())] in post
    assert ["Stock of KOPI-250G", "2,000", "500"] in post
    assert len(post) == 4, post  # nothing else: the total was already the draft's

    post = history_changes(indonesian_auditor(app, make_user).get(url))[0]
    values = [row[1:] for row in post]
    assert ["draf", "diposting"] in values, post
    assert ["2.000", "500"] in values, post  # the stock, grouped the Indonesian way
    assert ["", " ".join(format_datetime(posted_at, "medium", tzinfo=UTC, locale="id").split())] in values, post


def test_history_shows_yes_no_and_labels_for_a_products_fields(app, client_as, make_user, make_product):
    client, _ = client_as("keeper", "admin")
    pid = make_product(sku="YN-1", name="Yes or no", price="1000.00", stock=10)
    changed = product_form("YN-1", "Yes or no", price="2500000", stock="10", active=False, version=1)
    assert client.post(f"/admin/product/edit/?id={pid}", data=changed).status_code == 302

    update = history_changes(client.get(f"/admin/product/history/?id={pid}"))[0]
    assert ["Active", "Yes", "No"] in update
    assert ["Price", "IDR 1,000.00", "IDR 2,500,000.00"] in update
    assert not any(row[0] in ("is_active", "price", "stock") for row in update)


def test_the_audit_entrys_page_and_the_history_say_the_same(app, client_as, auditor_client, make_product):
    client, _ = client_as("seller")
    kopi = make_product(sku="KOPI-250G", stock=50)
    assert client.post(TXN_NEW, data=txn_form((kopi, 3))).status_code == 302
    created = newer(app, 0, action="create", object_type="transaction")[-1]

    details = change_rows(auditor_client.get(f"/admin/audit/details/?id={created['id']}"))
    assert ["Line added", "", "KOPI-250G × 3"] in details
    assert ["Created by", "", "seller"] in details


def test_every_recorded_field_has_a_label():
    """A column the trail records reads by its label in the history, never by its stored name."""
    from adminapp.labels import FIELDS_BY_OBJECT_TYPE

    for model, object_type in audit.AUDITED.items():
        recorded = [a.key for a in inspect(model).column_attrs if a.key not in audit.UNRECORDED]
        assert [key for key in recorded if key not in FIELDS_BY_OBJECT_TYPE[object_type]] == [], object_type


def test_odd_changes_are_shown_as_they_are_never_a_500(app, db, auditor_client, make_user, make_product):
    """Entries written by older versions or by hand may hold shapes the app does not write now."""
    make_user("boss", "admin")
    pid = make_product(sku="ODD-1")
    with db() as session:
        txn_id = save_draft(session, [(pid, 1)]).id
    odd = {
        "lines": {"added": ["a line as text", {"sku": "NOQTY"}], "changed": [{"sku": "Y-1", "qty": "7"}]},
        "stock": {"Z-1": 5},
        "mystery": [1, 2, 3],
        "posted_at": [None, "not a time"],
        "total": ["lots", "12.5"],
    }
    with db() as session:
        audit.record(session, "update", object_type="transaction", object_id=txn_id, object_repr="ODD-1", changes=odd)
        audit.record(session, "teleport", object_type="spaceship", object_id=7, object_repr="Enterprise")
    entry_ids = [e["id"] for e in newer(app, 0) if e["object_repr"] in ("ODD-1", "Enterprise")]

    for entry_id in entry_ids:
        assert auditor_client.get(f"/admin/audit/details/?id={entry_id}").status_code == 200
    rows = change_rows(auditor_client.get(f"/admin/audit/details/?id={entry_ids[0]}"))
    assert ["Line added", "", "a line as text"] in rows
    assert ["Line added", "", "NOQTY"] in rows
    assert ["mystery", "[1, 2, 3]"] in rows  # a field no label knows: by its stored name
    assert ["Total", "lots", "IDR 12.50"] in rows
    assert ["Posted at", "", "not a time"] in rows
    assert ["Stock of Z-1", "", "5"] in rows
    assert auditor_client.get(f"/admin/transaction/history/?id={txn_id}").status_code == 200
    dashboard = signed_in_as(app, "boss").get("/admin/?recent=all")
    assert dashboard.status_code == 200
    assert "Enterprise" in dashboard.text


def signed_in_as(app, username):
    client = app.test_client()
    assert login(client, username).status_code == 302
    return client


# ============================================================================ dashboard


def sentence(entry) -> str:
    """What the dashboard says of one of these tests' entries (an update or a creation by a user)."""
    verb = {"update": "changed", "create": "added"}[entry["action"]]
    kind = "" if entry["object_type"] == "transaction" else f"{entry['object_type']} "
    return f"{entry['username']} {verb} {kind}{entry['object_repr']}"


def test_recent_actions_are_my_own_last_ten(app, client_as, make_product):
    sam, sam_id = client_as("sam")
    olga, _ = client_as("olga", "admin")
    pid = make_product(sku="REC-1", name="Recent")
    olgas = make_product(sku="OLGA-P", name="Olga's")
    for n in range(6):
        assert (
            sam.post(
                PRODUCT_ACTION, data={"action": "deactivate" if n % 2 == 0 else "activate", "rowid": [pid]}
            ).status_code
            == 302
        )
    for n in range(6):
        assert sam.post(TXN_NEW, data=txn_form((make_product(sku=f"REC-T{n}"), 1))).status_code == 302
    assert olga.post(PRODUCT_ACTION, data={"action": "deactivate", "rowid": [olgas]}).status_code == 302

    mine = [e for e in entries(app) if e["user_id"] == sam_id][::-1][:10]
    for url in ("/admin/", "/admin/?recent=all"):  # staff cannot widen it to everyone
        items = recent_items(sam.get(url))
        assert len(items) == 10, url
        for item, entry in zip(items, mine):
            assert item.endswith(f" — {sentence(entry)}"), (item, entry)
        assert not any("OLGA-P" in item or "olga" in item for item in items)
    assert "recent=all" not in sam.get("/admin/").text


@pytest.mark.parametrize("role", ["admin", "auditor"])
def test_admin_and_auditor_can_see_everyones_recent_actions(app, client_as, as_role, make_product, role):
    sam, _ = client_as("sam")
    pid = make_product(sku="ALL-1")
    for _ in range(3):
        assert sam.post(PRODUCT_ACTION, data={"action": "deactivate", "rowid": [pid]}).status_code == 302
        assert sam.post(PRODUCT_ACTION, data={"action": "activate", "rowid": [pid]}).status_code == 302
    reader = as_role(role)

    own = recent_items(reader.get("/admin/"))
    assert own and all("sam" not in item and "ALL-1" not in item for item in own)
    assert 'href="/admin/?recent=all"' in reader.get("/admin/").text
    everyone = recent_items(reader.get("/admin/?recent=all"))
    latest = entries(app)[::-1][:10]
    assert len(everyone) == 10
    for item, entry in zip(everyone, latest):
        said = item.split(" — ", 1)[1]
        if entry["user_id"] is not None:  # by whom; what the app did itself is told in the passive voice
            assert said.startswith(f"{entry['username']} "), (item, entry)
        else:
            assert said.endswith(" was added") and entry["username"] not in said, (item, entry)
    assert sum(" — sam changed product ALL-1 — " in item for item in everyone) >= 6, everyone


# ============================================================================ stale forms


def test_stale_product_form_names_who_changed_it_and_when(app, client_as, make_product):
    alice, _ = client_as("alice")
    bob, _ = client_as("bob")
    pid = make_product(sku="STALE-1", name="Original")
    # Both opened the form at version 1; Bob saves first.
    assert (
        bob.post(
            f"/admin/product/edit/?id={pid}", data=product_form("STALE-1", "Bob's name", stock="10", version=1)
        ).status_code
        == 302
    )
    bobs = newer(app, 0, object_type="product", object_id=str(pid))[-1]
    before = snapshot(app)

    response = alice.post(
        f"/admin/product/edit/?id={pid}",
        data=product_form("STALE-1", "Alice's name", stock="10", version=1),
        follow_redirects=True,
    )

    message = page(response)
    assert "changed by someone else (bob, at " + bobs["at"].strftime("%Y-%m-%d %H:%M UTC") + ")" in message
    assert "(alice" not in message
    assert snapshot(app) == before


def test_stale_transaction_form_names_who_changed_it_and_when(app, client_as, make_product, draft):
    alice, _ = client_as("alice")
    bob, _ = client_as("bob")
    pid = make_product(sku="STALE-T")
    txn_id = draft((pid, 1))
    opened = txn_state(app, txn_id)
    line_id = opened["line_ids"][0]
    assert (
        bob.post(
            f"/admin/transaction/edit/?id={txn_id}", data=txn_form((pid, 2, line_id), version=opened["version"])
        ).status_code
        == 302
    )
    bobs = newer(app, 0, object_type="transaction", object_id=str(txn_id))[-1]
    assert bobs["username"] == "bob"
    before = snapshot(app)

    response = alice.post(
        f"/admin/transaction/edit/?id={txn_id}",
        data=txn_form((pid, 3, line_id), version=opened["version"]),
        follow_redirects=True,
    )

    message = page(response)
    assert "changed by someone else (bob, at " + bobs["at"].strftime("%Y-%m-%d %H:%M UTC") + ")" in message
    assert snapshot(app) == before


# ============================================================================ the auditor writes nothing


class Fixtures:
    """Fresh records for each request, so every write request would really change something."""

    def __init__(self, app, db, make_product, draft, posted, make_user):
        self.app, self.db = app, db
        self.make_product, self.draft, self.posted, self.make_user = make_product, draft, posted, make_user

    def product(self, **fields):
        return self.make_product(sku=f"FX-{uuid.uuid4().hex[:8]}", **fields)

    def new_draft(self):
        pid = self.product(stock=50)
        txn_id = self.draft((pid, 1))
        return txn_id, pid, txn_state(self.app, txn_id)

    def user(self):
        return self.make_user(f"u-{uuid.uuid4().hex[:8]}", "staff")


def admin_requests(endpoint, http_method, fx: Fixtures):
    """[(query, form data)] for one admin endpoint: for writes, real requests that would change
    the database if allowed; for reads, requests that open a real record."""
    view, _, method = endpoint.partition(".")
    get = http_method == "GET"
    if endpoint == "admin.index":
        return [(None, None), ({"recent": "all"}, None)]
    if method in ("details_view", "history_view") or (get and method == "edit_view"):
        record = {
            "product": lambda: fx.product(),
            "transaction": lambda: fx.new_draft()[0],
            "user": fx.user,
            "audit": lambda: entries(fx.app)[0]["id"],
        }.get(view)
        return [({"id": record()}, None)] if record else [(None, None)]
    if view == "product" and not get:
        if method == "create_view":
            return [(None, product_form(f"NEW-{uuid.uuid4().hex[:6]}", "Created"))]
        if method == "edit_view":
            pid = fx.product()
            return [({"id": pid}, product_form(f"ED-{pid}", "Edited", version=1))]
        if method == "delete_view":
            return [(None, {"id": fx.product()})]
        if method == "action_view":
            return [
                (None, {"action": "delete", "rowid": [fx.product()]}),
                (None, {"action": "activate", "rowid": [fx.product(is_active=False)]}),
                (None, {"action": "deactivate", "rowid": [fx.product()]}),
            ]
        if method == "ajax_update":
            return [(None, {"list_form_pk": fx.product(), "name": "Edited inline"})]
    if view == "product" and method == "adjust_view":
        return [({"id": fx.product(stock=5)}, None if get else {"kind": "receipt", "quantity": "3"})]
    if view == "transaction":
        if method == "void_view":
            posted = fx.posted((fx.product(stock=50), 1))
            return [({"id": posted}, None if get else {"reason": "auditor tries"})]
        if not get and method == "create_view":
            return [(None, txn_form((fx.product(), 2), note="created"))]
        if not get and method == "edit_view":
            txn_id, pid, state = fx.new_draft()
            return [({"id": txn_id}, txn_form((pid, 3, state["line_ids"][0]), note="edited", version=state["version"]))]
        if method == "delete_view":
            return [(None, {"id": fx.new_draft()[0]})]
        if method == "action_view":
            return [
                (None, {"action": "post", "rowid": [fx.new_draft()[0]]}),
                (None, {"action": "delete", "rowid": [fx.new_draft()[0]]}),
            ]
        if method == "ajax_update":
            return [(None, {"list_form_pk": fx.new_draft()[0], "note": "inline"})]
        if method == "line_products":
            return [({"id": fx.product()}, None)]
    if view == "user" and not get:
        if method == "create_view":
            secret = "a long enough secret 1"
            return [
                (
                    None,
                    {
                        "username": f"new-{uuid.uuid4().hex[:6]}",
                        "role": "staff",
                        "is_active": "y",
                        "new_password": secret,
                        "confirm_password": secret,
                    },
                )
            ]
        if method == "edit_view":
            uid = fx.user()
            with fx.app.app_context():
                username = _db.session.get(User, uid).username
                _db.session.remove()
            return [({"id": uid}, {"username": username, "role": "admin", "is_active": "y"})]
        if method == "delete_view":
            return [(None, {"id": fx.user()})]
        if method == "action_view":
            return [(None, {"action": "delete", "rowid": [fx.user()]})]
        if method == "ajax_update":
            return [(None, {"list_form_pk": fx.user(), "role": "admin"})]
    if method == "action_view":
        return [(None, {"action": "delete", "rowid": ["1"]})]
    if method == "ajax_lookup":
        return [
            ({"name": "product", "query": "FX"}, None),
            ({"name": "transactionproduct-product", "query": "FX"}, None),
        ]
    return [(None, None if get else {"id": "1"})]


def admin_rules(app):
    return sorted(
        (r for r in app.url_map.iter_rules() if r.rule.startswith("/admin") and r.endpoint != "admin.static"),
        key=lambda r: r.rule,
    )


def rule_url(app, rule):
    with app.test_request_context():
        return url_for(rule.endpoint, **({"export_type": "csv"} if "export_type" in rule.arguments else {}))


def send(client, http_method, url, query, data):
    if http_method == "GET":
        response = client.get(url, query_string=query)
    else:
        response = client.post(url, query_string=query, data=data or {})
    response.get_data()  # run streamed bodies (CSV exports) to their end
    response.close()
    return response


@pytest.fixture
def fx(app, db, make_product, draft, posted, make_user):
    return Fixtures(app, db, make_product, draft, posted, make_user)


def test_the_auditor_changes_nothing_through_any_endpoint(app, auditor_client, fx):
    fx.posted((fx.product(stock=50), 1))  # some history to look at
    refused, reads, problems = [], [], []
    for rule in admin_rules(app):
        url = rule_url(app, rule)
        for http_method in sorted(rule.methods & {"GET", "POST"}):
            for query, data in admin_requests(rule.endpoint, http_method, fx):
                before_rows, before_chain = snapshot(app), hashes(app)
                response = send(auditor_client, http_method, url, query, data)
                where = f"auditor {http_method} {url} {query or ''} {data or ''}"
                if response.status_code >= 500:
                    problems.append(f"{where}: {response.status_code}")
                after_rows = snapshot(app)
                if {t: len(r) for t, r in after_rows.items()} != {t: len(r) for t, r in before_rows.items()}:
                    problems.append(f"{where}: row counts changed")
                if after_rows != before_rows:
                    problems.append(f"{where}: rows changed")
                if hashes(app) != before_chain:
                    problems.append(f"{where}: the audit chain changed")
                (reads if response.status_code == 200 else refused).append((rule.endpoint, http_method))
                if http_method == "POST" and response.status_code not in (403, 404, 405):
                    problems.append(f"{where}: a POST answered {response.status_code}, not 403")
    assert not problems, "\n".join(problems)
    assert ("product.edit_view", "POST") in refused and ("transaction.void_view", "POST") in refused
    assert ("audit.index_view", "GET") in reads and ("product.history_view", "GET") in reads
    assert_intact(app)


WRITES = [  # (endpoint, http method): the write requests an admin makes to prove they are real
    ("product.create_view", "POST"),
    ("product.edit_view", "POST"),
    ("product.delete_view", "POST"),
    ("product.action_view", "POST"),
    ("transaction.create_view", "POST"),
    ("transaction.edit_view", "POST"),
    ("transaction.delete_view", "POST"),
    ("transaction.action_view", "POST"),
    ("transaction.void_view", "POST"),
    ("product.adjust_view", "POST"),
]


@pytest.mark.parametrize("endpoint, http_method", WRITES)
def test_the_same_requests_from_an_admin_change_data_and_are_recorded(app, client_as, fx, endpoint, http_method):
    """The control for the test above: its write requests are real ones, and each change they
    make comes with its audit entries, by the one who made it."""
    client, admin_id = client_as("controller", "admin")
    rule = next(r for r in app.url_map.iter_rules() if r.endpoint == endpoint)
    url = rule_url(app, rule)
    for query, data in admin_requests(endpoint, http_method, fx):
        before, mark = snapshot(app), last_id(app)
        response = send(client, http_method, url, query, data)
        assert response.status_code == 302, f"{endpoint} {data}: {response.status_code}"
        after = snapshot(app)
        changed = {t for t in before if after[t] != before[t]} - {"audit_entries"}
        assert changed, f"{endpoint} {data} changed nothing"
        recorded = newer(app, mark)
        assert recorded, f"{endpoint} {data} changed {changed} without an audit entry"
        assert all(e["user_id"] == admin_id for e in recorded)
        assert {e["object_type"] for e in recorded} <= {"product", "transaction"}
    assert_intact(app)


# ============================================================================ cost of recording


def test_recording_cost_does_not_grow_with_the_number_of_lines(app, client_as, make_product):
    client, _ = client_as("bulk-clerk")
    products = [make_product(sku=f"COST-{n:03d}", price="1.00", stock=1000) for n in range(50)]
    audit_statements = []

    def form(n):
        data = {"note": f"{n} lines", "version": ""}
        for i, pid in enumerate(products[:n]):
            data.update({f"lines-{i}-id": "", f"lines-{i}-product": str(pid), f"lines-{i}-product_qty": "1"})
        return data

    with app.app_context():
        engine = _db.engine

    def watch(conn, cursor, statement, *args):
        if "audit_entries" in statement or "pg_advisory" in statement:
            audit_statements.append(statement)

    def save(n):
        audit_statements.clear()
        event.listen(engine, "before_cursor_execute", watch)
        try:
            with count_statements(app) as count:
                response = client.post(TXN_NEW, data=form(n))
        finally:
            event.remove(engine, "before_cursor_execute", watch)
        assert response.status_code == 302, page(response)
        return count[0], len(audit_statements)

    save(1)  # warm up: first-use queries of the app and the pool
    one, one_audit = save(1)
    fifty, fifty_audit = save(50)

    assert one_audit == fifty_audit <= 3, "recording costs a small constant number of statements"
    created = newer(app, 0, object_type="transaction")[-1]
    assert len(created["changes"]["lines"]["added"]) == 50
    skip_line_counts_on_sqlite(app)  # the lines' own INSERTs, not the recording's
    assert fifty <= one + 3, f"1 line: {one} statements, 50 lines: {fifty}"


# ======================================================================= verifying at scale


def test_the_canonical_form_and_hash_of_an_entry_are_pinned():
    """Every stored hash depends on these exact bytes: a change here breaks existing chains."""
    actor = audit.Actor(user_id=7, username="zoë", remote_addr="10.0.0.2")
    at = datetime(2024, 2, 29, 23, 59, 58, 123456, tzinfo=timezone(timedelta(hours=7)))
    changes = {
        "price": [Decimal("10.50"), Decimal("9.99")],
        "name": ["a", "b"],
        "on": [True, None],
        "lines": {"removed": [{"sku": "X", "qty": 2}], "added": []},
    }
    entry = audit.entry(actor, "update", "product", 42, 'Café ☕ — "quoted"', changes, at=at.astimezone(UTC))

    assert audit_chain.canonical(entry) == (
        '{"action":"update","at":"2024-02-29T16:59:58.123456+00:00","changes":{"lines":{"added":[],'
        '"removed":[{"qty":2,"sku":"X"}]},"name":["a","b"],"on":[true,null],"price":["10.50","9.99"]},'
        '"object_id":"42","object_repr":"Café ☕ — \\"quoted\\"","object_type":"product",'
        '"remote_addr":"10.0.0.2","user_id":7,"username":"zoë"}'
    )
    # The unkeyed hash of chains before migration 0007, which re-keys them (see test_audit_chain.py).
    assert audit_chain.legacy_hash(None, entry) == "0f3df7961447461da08f4358d32dd30a16c71831a1ccef767df32585d40c7910"
    assert (
        audit_chain.legacy_hash("ab" * 32, entry) == "06cc8768ba0f2da232f5c80176917aefae71e4acc59849503c51cf5d7b23348b"
    )


@pytest.mark.parametrize("batch", [1, 4, 5, 12, 13])
def test_a_chain_read_in_batches_verifies_whole(app, chain, monkeypatch, batch):
    monkeypatch.setattr(audit, "VERIFY_BATCH", batch)
    assert assert_intact(app) == len(chain)


# With batches of 5, the dozen entries of `chain` are read as [0-4] [5-9] [10-11].
@pytest.mark.parametrize("position", [4, 5, 7], ids=["last of a batch", "first of a batch", "mid-batch"])
def test_an_altered_entry_is_found_wherever_it_falls_in_a_batch(app, chain, monkeypatch, position):
    monkeypatch.setattr(audit, "VERIFY_BATCH", 5)
    tamper(app, "UPDATE audit_entries SET object_repr = 'forged' WHERE id = :id", id=chain[position])
    result = assert_broken_at(app, chain[position])
    assert "altered" in result.output
    assert f"{position} entries before it are intact" in result.output


@pytest.mark.parametrize("position", [5, 7], ids=["across a batch boundary", "mid-batch"])
def test_a_broken_link_is_found_wherever_it_falls_in_a_batch(app, chain, monkeypatch, position):
    """Deleting entry 5 leaves [0-4] [6-10]: only the hash carried over from the previous batch
    shows that entry 6 does not follow entry 4."""
    monkeypatch.setattr(audit, "VERIFY_BATCH", 5)
    tamper(app, "DELETE FROM audit_entries WHERE id = :id", id=chain[position])
    result = assert_broken_at(app, chain[position + 1])
    assert "deleted, inserted or moved" in result.output
    assert f"{position} entries before it are intact" in result.output


def test_an_entry_inserted_below_the_first_id_is_found(app, chain):
    """The first read has no lower bound on the id: a forged entry placed before the chain is read too."""
    run_sql(
        app,
        "INSERT INTO audit_entries (id, at, action, hash) SELECT 0, at, 'forged', 'forged' "
        "FROM audit_entries WHERE id = :id",
        id=chain[0],
    )
    assert_broken_at(app, 0)


@pytest.mark.parametrize("batch", [2, 5])
def test_verify_reads_the_chain_in_batches_not_per_entry(app, chain, monkeypatch, batch):
    monkeypatch.setattr(audit, "VERIFY_BATCH", batch)
    with statements(app) as seen:
        with app.app_context():
            verdict = audit.verify(_db.session)
            _db.session.remove()
    reads = [s for s in seen if "from audit_entries" in s]

    assert verdict.ok and verdict.checked == len(chain)
    assert len(reads) == math.ceil(len(chain) / batch) + 1  # every batch, then the empty read that ends it
    assert all("order by audit_entries.id" in s and "limit" in s for s in reads)


# ------------------------------------------------------------------ the benchmark script

BENCH = Path(__file__).resolve().parent.parent / "scripts" / "bench_audit_verify.py"


def bench_command(tmp_path, *args):
    env = clean_environ(ADMINAPP_INSTANCE_PATH=str(tmp_path / "instance"), PYTHONUNBUFFERED="1")
    return [sys.executable, str(BENCH), *args], env


def pg_databases(server_url) -> set[str]:
    engine = create_engine(server_url)
    with engine.connect() as conn:
        names = set(conn.scalars(text("SELECT datname FROM pg_database")))
    engine.dispose()
    return names


def sentinel_rows(url) -> tuple[list, list]:
    """The tables of a database and the rows of its sentinel table."""
    engine = create_engine(url)
    with engine.connect() as conn:
        tables = sorted(inspect(conn).get_table_names())
        rows = conn.execute(text("SELECT note FROM sentinel")).all()
    engine.dispose()
    return tables, rows


@pytest.fixture
def pg_server(postgres_url):
    """TEST_DATABASE_URL, the server the bench makes its own databases on."""
    return os.environ["TEST_DATABASE_URL"]


@pytest.fixture
def someone_elses_database(pg_server):
    """A PostgreSQL database the bench did not create, holding a table of its own."""
    name = f"adminapp_sentinel_{uuid.uuid4().hex[:12]}"
    server = create_engine(pg_server, isolation_level="AUTOCOMMIT")
    with server.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(pg_server).set(database=name).render_as_string(hide_password=False)
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE sentinel (note text)"))
        conn.execute(text("INSERT INTO sentinel VALUES ('keep me')"))
    engine.dispose()
    yield url
    with server.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    server.dispose()


def test_the_bench_works_in_a_database_of_its_own_and_drops_it(someone_elses_database, tmp_path):
    command, env = bench_command(tmp_path, "--entries", "30", "--database-url", someone_elses_database)
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)

    assert result.returncode == 0, result.stderr
    assert "verified 30 entries" in result.stdout and "intact: True" in result.stdout
    own = re.search(r"created database (adminapp_bench_\w+)", result.stdout).group(1)
    assert f"dropped database {own}" in result.stdout
    assert own not in pg_databases(someone_elses_database)
    assert sentinel_rows(someone_elses_database) == (["sentinel"], [("keep me",)])


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_the_bench_drops_its_database_when_interrupted(someone_elses_database, tmp_path, signum):
    command, env = bench_command(tmp_path, "--entries", "5000000", "--database-url", someone_elses_database)
    # A shell may start background jobs with Ctrl-C ignored; the bench must see it as a user would.
    process = subprocess.Popen(
        command,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        first_line = process.stdout.readline()
        own = re.search(r"created database (adminapp_bench_\w+)", first_line).group(1)
        assert own in pg_databases(someone_elses_database)
        time.sleep(1)  # into the writing, with connections open on its database
        process.send_signal(signum)
        output = first_line + process.communicate(timeout=60)[0]
    finally:
        process.kill()
        process.wait()

    assert process.returncode != 0 and "verified" not in output, output
    assert f"dropped database {own}" in output
    assert own not in pg_databases(someone_elses_database)
    assert sentinel_rows(someone_elses_database) == (["sentinel"], [("keep me",)])


def test_the_bench_refuses_a_sqlite_file_it_was_given(tmp_path):
    given = tmp_path / "given.db"
    engine = create_engine(f"sqlite:///{given}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE sentinel (note text)"))
        conn.execute(text("INSERT INTO sentinel VALUES ('keep me')"))
    engine.dispose()
    before = given.read_bytes()

    command, env = bench_command(tmp_path, "--entries", "30", "--database-url", f"sqlite:///{given}")
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)

    assert result.returncode == 2
    assert "only a PostgreSQL server URL is accepted" in result.stderr
    assert given.read_bytes() == before


def test_the_trail_links_each_record_for_those_who_may_open_it(app, admin_client, auditor_client, make_product):
    product = make_product(sku="LINK-1", name="Linked")
    admin_client.post(
        "/admin/user/new/",
        data={
            "username": "newbie",
            "role": "staff",
            "is_active": "y",
            "new_password": "plum orchard lantern",
            "confirm_password": "plum orchard lantern",
        },
    )
    product_link = f'<a href="/admin/product/details/?id={product}">LINK-1 — Linked</a>'
    assert product_link in admin_client.get(AUDIT).text
    assert product_link in auditor_client.get(AUDIT).text
    assert '<a href="/admin/user/details/' in admin_client.get(AUDIT).text
    assert "/admin/user/details/" not in auditor_client.get(AUDIT).text  # auditors may not open users
