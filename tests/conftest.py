"""Fixtures: a fresh app and a real database per test, on SQLite and (when
TEST_DATABASE_URL is set) on PostgreSQL, in a database made for this run."""

import copy
import os
import uuid
from contextlib import contextmanager
from decimal import Decimal

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from adminapp.extensions import db as _db
from adminapp.models import Product, User

from .support import FAST_HASH, PASSWORD, another_app, empty_tables, fresh_schema, login, make_app

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
    """A throwaway PostgreSQL database for this test run, dropped afterwards: for the tests that
    make their own schema in it (real commits between several connections)."""
    with new_postgres_database("adminapp_test") as url:
        yield url


def pytest_xdist_auto_num_workers(config):
    # `-n auto` (pytest.ini): a process per core and one more, for the time tests spend
    # waiting on the servers and commands they start.
    return len(os.sched_getaffinity(0)) + 1


def pytest_generate_tests(metafunc):
    # Every test that uses the app runs on each backend; a module may narrow them with its own
    # BACKENDS (what a page says does not depend on the database).
    if "backend" in metafunc.fixturenames:
        metafunc.parametrize("backend", getattr(metafunc.module, "BACKENDS", BACKENDS), indirect=True)


def pytest_collection_modifyitems(items):
    # `pytest -m postgresql` runs what needs PostgreSQL: the PostgreSQL variants and the tests
    # that make their own PostgreSQL databases.
    for item in items:
        params = getattr(item, "callspec", None) and item.callspec.params.values()
        if "postgresql" in (params or ()) or "postgres_url" in item.fixturenames:
            item.add_marker(pytest.mark.postgresql)


@pytest.fixture(scope="session")
def backend(request):
    return request.param


@pytest.fixture(scope="session")
def shared_database_url(backend, tmp_path_factory):
    """The database the shared app of this backend runs on, for the whole run."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'test.db'}"
        return
    with new_postgres_database("adminapp_shared") as url:
        yield url


@pytest.fixture(scope="session")
def shared_app(shared_database_url, tmp_path_factory):
    """One app per backend for the whole run, its schema created once: making an app and its
    schema costs more than most tests. Each test starts with the tables empty (see `app`)."""
    app = make_app(shared_database_url, tmp_path_factory.mktemp("shared"))
    with app.app_context():
        _db.create_all()
    yield app
    with app.app_context():
        _db.session.remove()
        _db.drop_all()
        _db.engine.dispose()


@pytest.fixture(params=BACKENDS)
def empty_database_url(request, tmp_path):
    """A database without any table, for one test: a new SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'fresh.db'}"
        return
    with new_postgres_database("adminapp_empty") as url:
        yield url


@pytest.fixture
def app(request, backend, tmp_path):
    """The app on a database with every table empty, its settings as made.

    Tests go through the app's real commits (a test transaction rolled back instead would
    never run PostgreSQL's deferred constraint triggers, which fire at COMMIT); afterwards
    every table is emptied, which costs a few milliseconds where a new schema costs a hundred.
    A test marked `own_schema` (it changes the schema) gets a new app on a schema of its own."""
    if request.node.get_closest_marker("own_schema"):
        url = f"sqlite:///{tmp_path / 'own.db'}" if backend == "sqlite" else request.getfixturevalue("postgres_url")
        with fresh_schema(make_app(url, tmp_path)) as own:
            yield own
        return
    shared = request.getfixturevalue("shared_app")
    settings = copy.deepcopy(dict(shared.config))
    yield shared
    shared.config.clear()
    shared.config.update(settings)
    empty_tables(shared)


@pytest.fixture
def database_url(app):
    """The URL of the database `app` runs on: for a second app with other settings beside it."""
    return app.config["SQLALCHEMY_DATABASE_URI"]


@pytest.fixture
def csrf_app(app, database_url, tmp_path):
    """The app with CSRF on, as in production, on the database the `app` fixture created (and drops afterwards)."""
    with another_app(database_url, tmp_path, WTF_CSRF_ENABLED=True) as protected:
        assert protected.config["WTF_CSRF_ENABLED"] is True
        yield protected


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
