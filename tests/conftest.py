"""Fixtures: a fresh app and a real database per test, on SQLite and (when
TEST_DATABASE_URL is set) on PostgreSQL, in a database made for this run."""

import os
import uuid
from contextlib import contextmanager
from decimal import Decimal

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from adminapp.extensions import db as _db
from adminapp.models import Product, User

from .support import FAST_HASH, PASSWORD, fresh_schema, login, make_app

BACKENDS = ["sqlite", "postgresql"]


@contextmanager
def new_postgres_database(prefix: str):
    """The URL of a new PostgreSQL database on TEST_DATABASE_URL's server, dropped afterwards."""
    base = os.environ.get("TEST_DATABASE_URL")
    if not base:
        pytest.skip("TEST_DATABASE_URL is not set: PostgreSQL tests skipped")
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    server = create_engine(base, isolation_level="AUTOCOMMIT")
    with server.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(base).set(database=name).render_as_string(hide_password=False)
    finally:
        with server.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        server.dispose()


@pytest.fixture(scope="session")
def postgres_url():
    """A throwaway PostgreSQL database for this test run, dropped afterwards."""
    with new_postgres_database("adminapp_test") as url:
        yield url


@pytest.fixture(params=BACKENDS)
def database_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'test.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture(params=BACKENDS)
def empty_database_url(request, tmp_path):
    """A database without any table, for one test: a new SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'fresh.db'}"
        return
    with new_postgres_database("adminapp_empty") as url:
        yield url


@pytest.fixture
def app(database_url, tmp_path):
    with fresh_schema(make_app(database_url, tmp_path)) as app:
        yield app


@pytest.fixture
def db(app):
    """Run a block against the database: `with db() as session: ...` (commits at the end).

    No app context stays pushed while the test client makes requests: a shared
    context would leak the signed-in user and the session between requests.
    """

    @contextmanager
    def session_scope():
        with app.app_context():
            yield _db.session
            _db.session.commit()

    return session_scope


@pytest.fixture
def make_user(db):
    def make(username, role="staff", password=PASSWORD, **fields):
        with db() as session:
            user = User(username=username, role=role, **fields)
            if password == PASSWORD:
                user.password_hash = FAST_HASH
            else:
                user.set_password(password)
            session.add(user)
            session.flush()
            return user.id

    return make


@pytest.fixture
def make_product(db):
    counter = iter(range(1, 10**6))

    def make(sku=None, name=None, price="10.00", stock=10, is_active=True, **fields):
        n = next(counter)
        with db() as session:
            product = Product(
                sku=sku or f"SKU-{n:04d}",
                name=name or f"Product {n}",
                price=Decimal(price),
                stock=stock,
                is_active=is_active,
                **fields,
            )
            session.add(product)
            session.flush()
            return product.id

    return make


@pytest.fixture
def as_role(app, make_user):
    """`as_role("staff")` returns a test client signed in as a new user of that role."""

    def sign_in(role):
        username = f"{role}-{uuid.uuid4().hex[:6]}"
        make_user(username, role)
        client = app.test_client()
        response = login(client, username)
        assert response.status_code == 302, response.text
        return client

    return sign_in


@pytest.fixture
def admin_client(as_role):
    return as_role("admin")


@pytest.fixture
def staff_client(as_role):
    return as_role("staff")


@pytest.fixture
def auditor_client(as_role):
    return as_role("auditor")
