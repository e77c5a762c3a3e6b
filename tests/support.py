"""Helpers the tests import: `from tests.support import make_app, login, ...`."""

import html
import os
import re
import subprocess
import sys
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path

import jinja2
import pytest
from sqlalchemy import event, insert, select, text
from werkzeug.security import generate_password_hash

from adminapp import create_app
from adminapp.domain import guards, sales
from adminapp.extensions import db as _db
from adminapp.models import Product, Transaction, TransactionProduct

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "correct horse battery"
# PASSWORD hashed with one PBKDF2 round, for the users tests start with: signing in stays
# cheap (the app's own scrypt costs ~0.15 s a call). Passwords set through the app are
# hashed the app's way.
FAST_HASH = generate_password_hash(PASSWORD, method="pbkdf2:sha256:1")

# Where no link of the app may send a browser: other sites, however the address is spelled,
# and addresses that do not even parse.
OFFSITE_TARGETS = [
    "https://evil.example/",
    "http://evil.example/admin/",
    "HTTPS://evil.example/",
    "//evil.example",
    "//evil.example/admin/",
    "///evil.example",
    "/\\evil.example",
    "\\\\evil.example",
    "/\\/evil.example",
    "\\/evil.example",
    "/\t/evil.example",
    "/\n/evil.example",
    "https:evil.example",
    "javascript:alert(1)",
    "evil.example",
    "admin/product/",
    " //evil.example",
    "http:evil.example",
    "http://[",
]


# The environment variables that configure the app (see adminapp/config.py): every one whose
# name starts with a prefix, and these names.
APP_VARIABLE_PREFIXES = ("ADMINAPP_", "LOGIN_")
APP_VARIABLES = ("SECRET_KEY", "AUDIT_KEY", "DATABASE_URL", "FLASK_DEBUG")


def is_app_variable(name: str) -> bool:
    return name.startswith(APP_VARIABLE_PREFIXES) or name in APP_VARIABLES


def clean_environ(**variables) -> dict:
    """The environment for a command the tests start (manage.py, gunicorn, a script): this
    one without the app's own variables, whatever the shell running the tests has set, plus
    ``variables``."""
    return {**{name: value for name, value in os.environ.items() if not is_app_variable(name)}, **variables}


def manage(tmp_path, *args, **variables):
    """Run `python manage.py *args` on an SQLite database in ``tmp_path``, the environment clean
    but for ``variables``."""
    env = clean_environ(
        ADMINAPP_INSTANCE_PATH=str(tmp_path / "instance"),
        DATABASE_URL=f"sqlite:///{tmp_path / 'manage.db'}",
        **variables,
    )
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


class _CompiledTemplates(jinja2.BytecodeCache):
    """Templates compiled once for all the apps the tests make (compiling costs ~0.3 s an app)."""

    def __init__(self):
        self.store = {}

    def load_bytecode(self, bucket):
        if bucket.key in self.store:
            bucket.bytecode_from_string(self.store[bucket.key])

    def dump_bytecode(self, bucket):
        self.store[bucket.key] = bucket.bytecode_to_string()


COMPILED_TEMPLATES = _CompiledTemplates()


def make_app(database_url, tmp_path, **overrides):
    config = {
        "TESTING": True,
        "SECRET_KEY": "test-secret",
        "SQLALCHEMY_DATABASE_URI": database_url,
        "WTF_CSRF_ENABLED": False,
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "SQLITE_SYNCHRONOUS": "OFF",  # a test's database need not survive a power cut
        **overrides,
    }
    app = create_app(config)
    app.jinja_env.bytecode_cache = COMPILED_TEMPLATES
    return app


@contextmanager
def fresh_schema(app):
    """The app with every table created empty, dropped again afterwards."""
    with app.app_context():
        _db.drop_all()
        _db.create_all()
    try:
        yield app
    finally:
        with app.app_context():
            _db.session.remove()
            _db.drop_all()
            _db.engine.dispose()


def empty_tables(app) -> None:
    """Delete every row of every table, the database's guards lifted, and start ids at 1 again.
    (On PostgreSQL, DELETE of a test's few rows costs a few milliseconds where TRUNCATE, which
    makes every table and index anew, costs 200.) A PostgreSQL table that had rows is analysed
    again: the lists and the dashboard read its size from the planner's statistics, which would
    otherwise still count the rows of the test before."""
    with app.app_context():
        _db.session.remove()
        engine = _db.engine
    postgresql = engine.dialect.name == "postgresql"
    with engine.begin() as connection:
        if postgresql:
            connection.exec_driver_sql("SET LOCAL session_replication_role = replica")
        emptied = [
            table.name for table in reversed(_db.metadata.sorted_tables) if connection.execute(table.delete()).rowcount
        ]
        if postgresql:
            connection.exec_driver_sql("SELECT setval(oid, 1, false) FROM pg_class WHERE relkind = 'S'")
            if emptied:
                connection.exec_driver_sql(f"ANALYZE {', '.join(emptied)}")


@contextmanager
def another_app(database_url, tmp_path, **config):
    """A second app on a database another fixture made: a second worker with its own settings."""
    app = make_app(database_url, tmp_path, **config)
    try:
        yield app
    finally:
        with app.app_context():
            _db.session.remove()
            _db.engine.dispose()


def detached(session_scope, model, key):
    """The row of `model` with primary key `key` (None if there is none), loaded and taken out of
    its session so that the test reads it after the session has closed. `session_scope` is the
    `db` fixture."""
    with session_scope() as session:
        row = session.get(model, key)
        if row is not None:
            session.expunge(row)
        return row


def product_rows(session_scope) -> list[tuple]:
    """Every product as a tuple (id, sku, name, description, price, stock, is_active, version),
    in id order. `session_scope` is the `db` fixture."""
    with session_scope() as session:
        return [
            (p.id, p.sku, p.name, p.description, p.price, p.stock, p.is_active, p.version)
            for p in session.scalars(select(Product).order_by(Product.id))
        ]


def snapshot(app) -> dict:
    """Every row of every table (the audit chain included), to prove that nothing changed."""
    with app.app_context():
        state = {}
        for table in _db.metadata.sorted_tables:
            rows = _db.session.execute(select(table).order_by(*table.primary_key.columns)).all()
            state[table.name] = [tuple(row) for row in rows]
        _db.session.remove()
    return state


def as_dba(session) -> dict:
    """Lift the database's guards for the rest of this database transaction, as a DBA would for
    a repair: on PostgreSQL a superuser's ``session_replication_role = replica`` (the tests
    connect as one), which ordinary triggers do not fire under. Returns the execution options
    that let an ORM bulk statement past the app's guard."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SET LOCAL session_replication_role = replica"))
    return dict(guards.RECORDS_ITS_OWN_ENTRY)


def tamper(app, sql, **params):
    """Change the data behind the app's back, as someone with the database's superuser could."""
    with app.app_context():
        as_dba(_db.session)
        _db.session.execute(text(sql), params)
        _db.session.commit()
        _db.session.remove()


def login(client, username, password=PASSWORD):
    return client.post("/login", data={"username": username, "password": password})


def signed_in(app, username, **headers):
    """A test client signed in as `username`, sending these headers (`Accept_Language="id"`)."""
    client = app.test_client()
    for name, value in headers.items():
        client.environ_base[f"HTTP_{name.upper().replace('-', '_')}"] = value
    assert login(client, username).status_code == 302
    return client


def product_form(**changes):
    """A valid product create/edit form; a value of None leaves the field out of the POST."""
    data = {
        "sku": "NEW-1",
        "name": "New product",
        "description": "",
        "price": "12.50",
        "stock": "7",
        "is_active": "y",
        "version": "",
    }
    data.update(changes)
    return {key: value for key, value in data.items() if value is not None}


@contextmanager
def statements(app):
    """The SQL of every statement run inside the block, whitespace folded and lower case."""
    with app.app_context():
        engine = _db.engine
    seen = []

    def before_cursor_execute(conn, cursor, statement, *args):
        seen.append(" ".join(statement.split()).lower())

    event.listen(engine, "before_cursor_execute", before_cursor_execute)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", before_cursor_execute)


def skip_line_counts_on_sqlite(app) -> None:
    """Saving a transaction costs the same statements whatever its number of lines on PostgreSQL
    only (its lines go in one INSERT ... RETURNING); SQLite's driver returns no ids of a
    multi-row INSERT, so the ORM inserts a new line per statement."""
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        pytest.skip("statement counts constant in lines are PostgreSQL's: SQLite inserts lines one by one")


@contextmanager
def count_statements(app):
    """Count the SQL statements run inside the block: `with count_statements(app) as n: ...; n[0]`."""
    count = [0]
    with statements(app) as seen:
        yield count
    count[0] = len(seen)


def flashed(response) -> str:
    """The page text with whitespace folded, for asserting on messages."""
    return " ".join(response.get_data(as_text=True).split())


def field_errors(response, field):
    """The error messages rendered under one field of an admin form."""
    for group in response.text.split('<div class="form-group')[1:]:
        if f'id="{field}"' in group:
            feedback = group.split('<div class="invalid-feedback">', 1)
            if len(feedback) == 1:
                return []
            return [html.unescape(m) for m in re.findall(r"<li>(.*?)</li>", feedback[1], re.S)]
    raise AssertionError(f"no field {field!r} on the page")


def recent_items(response) -> list[str]:
    """The dashboard's recent-actions entries as text."""
    assert response.status_code == 200
    section = response.text.split('id="recent-actions"', 1)[1].split("</ul>", 1)[0]
    return [
        " ".join(html.unescape(re.sub(r"<[^>]+>", " ", item)).split())
        for item in re.findall(r"<li>(.*?)</li>", section, re.S)
    ]


def insert_transactions(session, transactions: list[dict], product_ids: list[int]) -> list[int]:
    """Transactions inserted in two statements (setup for thousands of rows, not the sales rules):
    each row as given, with a line of one unit at 1.00 of every product and the total and line
    count those lines make. Returns their ids."""
    made = {"total": Decimal("1.00") * len(product_ids), "line_count": len(product_ids), "version": 1}
    ids = session.scalars(
        insert(Transaction).returning(Transaction.id), [{**made, **fields} for fields in transactions]
    ).all()
    session.execute(
        insert(TransactionProduct),
        [
            {"transaction_id": txn_id, "product_id": pid, "product_qty": 1, "unit_price": Decimal("1.00")}
            for txn_id in ids
            for pid in product_ids
        ],
    )
    return ids


def save_draft(session, lines, user=None, **fields) -> Transaction:
    """A draft with these (product id, quantity) lines, saved through the sales rules and flushed."""
    txn = Transaction(
        **fields, lines=[TransactionProduct(product=session.get(Product, pid), product_qty=qty) for pid, qty in lines]
    )
    session.add(txn)
    sales.save_draft(session, txn, user, is_new=True)
    session.flush()
    return txn
