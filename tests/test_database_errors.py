"""When the database is busy, away, or cannot record the audit entry: retried, then said plainly
(503 where no form can show it), never a 500, and nothing half saved."""

import shutil
import sqlite3
import threading
from contextlib import contextmanager
from decimal import Decimal

import psycopg.errors
import pytest
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from adminapp.database_errors import Failure, failure_of, retrying
from adminapp.domain import sales
from adminapp.extensions import db as _db
from adminapp.models import AuditEntry, Product, Transaction, TransactionProduct
from tests.support import another_app, flashed, login, make_app, product_form, signed_in, snapshot

BUSY = "The database was busy; nothing was changed. Try again."
AWAY = "The database cannot be reached just now. Reload the page in a moment to see whether your change was saved"
UNRECORDED = "The change could not be recorded in the audit trail, so it was not saved."
LOCK_TIMEOUT_MS = 200


@pytest.fixture
def impatient(app, database_url, tmp_path, make_user):
    """The app on the same database waiting only 200 ms for a lock, a staff client, and the URL
    for another connection to hold locks with. PostgreSQL only: SQLite has no row locks."""
    if not database_url.startswith("postgresql"):
        pytest.skip("lock timeouts are PostgreSQL's")
    make_user("clerk", "staff")
    with another_app(database_url, tmp_path, LOCK_TIMEOUT_MS=LOCK_TIMEOUT_MS) as patient:
        yield patient, signed_in(patient, "clerk"), database_url


@pytest.fixture
def draft(db, make_product):
    def make(qty=2):
        product = make_product(stock=10)
        with db() as session:
            txn = Transaction(lines=[TransactionProduct(product=session.get(Product, product), product_qty=qty)])
            session.add(txn)
            sales.save_draft(session, txn, None, is_new=True)
            session.flush()
            return txn.id, product

    return make


def holding_row(url, table, row_id, seconds):
    """Lock one row from another connection, released after ``seconds`` (None: until the returned
    function is called)."""
    engine = create_engine(url)
    connection = engine.connect()
    connection.execute(text(f"SELECT 1 FROM {table} WHERE id = :id FOR UPDATE"), {"id": row_id})
    released = threading.Event()

    def release():
        if not released.is_set():
            released.set()
            connection.rollback()
            connection.close()
            engine.dispose()

    if seconds is not None:
        threading.Timer(seconds, release).start()
    return release


def post(client, txn_id):
    return client.post(
        "/admin/transaction/action/", data={"action": "post", "rowid": str(txn_id)}, follow_redirects=True
    )


def test_a_lock_held_briefly_is_waited_out_by_a_retry(app, impatient, draft):
    patient_app, clerk, postgres_url = impatient
    txn_id, product = draft()
    holding_row(postgres_url, "transactions", txn_id, seconds=LOCK_TIMEOUT_MS * 1.5 / 1000)

    page = flashed(post(clerk, txn_id))

    assert f"Transaction #{txn_id} posted." in page and BUSY not in page
    with patient_app.app_context():
        assert _db.session.get(Product, product).stock == 8
        assert _db.session.scalar(select(func.count()).where(AuditEntry.action == "post")) == 1


def test_a_lock_held_past_the_retries_is_said_busy_and_nothing_changes(app, impatient, draft):
    patient_app, clerk, postgres_url = impatient
    txn_id, _ = draft()
    before = snapshot(app)
    release = holding_row(postgres_url, "transactions", txn_id, seconds=None)
    try:
        page = flashed(post(clerk, txn_id))
    finally:
        release()

    assert f"Transaction #{txn_id} was not posted: {BUSY}" in page
    assert snapshot(app) == before


def test_a_save_that_waited_out_a_brief_lock_is_saved_once(app, impatient, make_product):
    patient_app, clerk, postgres_url = impatient
    product = make_product(sku="WAIT-1", stock=5)
    holding_row(postgres_url, "products", product, seconds=LOCK_TIMEOUT_MS * 1.5 / 1000)

    response = clerk.post(
        f"/admin/product/edit/?id={product}",
        data=product_form(sku="WAIT-1", name="Renamed", price="9.99", stock="5", version="1"),
    )

    assert response.status_code == 302, flashed(response)
    with patient_app.app_context():
        saved = _db.session.get(Product, product)
        assert (saved.name, saved.price, saved.version) == ("Renamed", Decimal("9.99"), 2)
        assert _db.session.scalar(select(func.count()).where(AuditEntry.action == "update")) == 1


def test_a_draft_edit_that_waited_out_a_brief_lock_keeps_one_set_of_lines(app, impatient, draft, make_product):
    """The whole form is applied again on the retry: its new line is added once, not twice."""
    patient_app, clerk, postgres_url = impatient
    txn_id, product = draft(qty=2)
    added = make_product(sku="ADD-1", stock=5)
    with patient_app.app_context():
        line_id = _db.session.get(Transaction, txn_id).lines[0].id
    form = {
        "note": "edited",
        "version": "1",
        "lines-0-id": str(line_id),
        "lines-0-product": str(product),
        "lines-0-product_qty": "3",
        "lines-1-id": "",
        "lines-1-product": str(added),
        "lines-1-product_qty": "1",
    }
    holding_row(postgres_url, "transactions", txn_id, seconds=LOCK_TIMEOUT_MS * 1.5 / 1000)

    response = clerk.post(f"/admin/transaction/edit/?id={txn_id}", data=form)

    assert response.status_code == 302, flashed(response)
    with patient_app.app_context():
        txn = _db.session.get(Transaction, txn_id)
        assert [(line.product_id, line.product_qty) for line in txn.lines] == [(product, 3), (added, 1)]
        assert (txn.note, txn.version, txn.line_count) == ("edited", 2, 2)


def test_a_busy_save_keeps_the_form_and_its_input(app, impatient, make_product):
    patient_app, clerk, postgres_url = impatient
    product = make_product(sku="BUSY-1", stock=5)
    release = holding_row(postgres_url, "products", product, seconds=None)
    try:
        response = clerk.post(
            f"/admin/product/edit/?id={product}",
            data=product_form(sku="BUSY-1", name="Typed in", price="9.99", stock="5", version="1"),
        )
    finally:
        release()

    assert response.status_code == 200
    assert BUSY in flashed(response) and 'value="Typed in"' in response.text
    with patient_app.app_context():
        assert _db.session.get(Product, product).price != Decimal("9.99")


def test_a_page_whose_table_is_locked_answers_503_with_retry_after(app, impatient):
    patient_app, clerk, postgres_url = impatient
    engine = create_engine(postgres_url)
    with engine.connect() as locker:
        locker.execute(text("LOCK TABLE products IN ACCESS EXCLUSIVE MODE"))
        response = clerk.get("/admin/product/")
        locker.rollback()
    engine.dispose()

    assert response.status_code == 503
    assert response.headers["Retry-After"].isdigit()
    assert BUSY in flashed(response)


# ------------------------------------------------------------------- the database away


@pytest.fixture(params=["sqlite", "postgresql"])
def app_away_from_its_database(request):
    """`app_away_from_its_database(tmp_path)`: an app whose database cannot be reached."""
    if request.param == "postgresql":
        request.getfixturevalue("postgres_url")  # skipped, with its reason, without PostgreSQL

    def make(path):
        if request.param == "postgresql":
            return make_app("postgresql+psycopg://postgres@127.0.0.1:1/test", path)  # nothing listens on port 1
        folder = path / "database"
        app = make_app(f"sqlite:///{folder / 'adminapp.db'}", path)
        shutil.rmtree(folder)  # the app made the file; gone, it cannot be opened
        return app

    return make


def test_sign_in_answers_503_while_the_database_is_away(app_away_from_its_database, tmp_path):
    app = app_away_from_its_database(tmp_path)

    response = app.test_client().post("/login", data={"username": "ann", "password": "whatever it is"})

    assert response.status_code == 503
    assert response.headers["Retry-After"].isdigit()
    assert AWAY in flashed(response) and "adminapp" in response.text  # the app's frame


def test_a_signed_in_page_answers_503_while_the_database_is_away(app, make_user, app_away_from_its_database, tmp_path):
    make_user("ann", "staff")
    live = signed_in(app, "ann")
    away = app_away_from_its_database(tmp_path / "away").test_client()
    away.set_cookie("session", live.get_cookie("session").value)

    response = away.get("/admin/product/")

    assert response.status_code == 503
    assert AWAY in flashed(response)


# -------------------------------------------------------- an audit trail that refuses entries


@contextmanager
def refusing_entries(app):
    """audit_entries refuses every INSERT, as a full disk or a revoked grant would."""
    sqlite = app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite")
    statements = (
        ["CREATE TRIGGER refuse_entries BEFORE INSERT ON audit_entries BEGIN SELECT RAISE(ABORT, 'refused'); END"]
        if sqlite
        else [
            "CREATE FUNCTION refuse_entries() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'refused'; END $$",
            "CREATE TRIGGER refuse_entries BEFORE INSERT ON audit_entries FOR EACH ROW "
            "EXECUTE FUNCTION refuse_entries()",
        ]
    )
    with app.app_context():
        for statement in statements:
            _db.session.execute(text(statement))
        _db.session.commit()
    try:
        yield
    finally:
        with app.app_context():
            _db.session.execute(
                text("DROP TRIGGER refuse_entries" if sqlite else "DROP TRIGGER refuse_entries ON audit_entries")
            )
            if not sqlite:
                _db.session.execute(text("DROP FUNCTION refuse_entries()"))
            _db.session.commit()


@pytest.mark.own_schema
def test_a_save_whose_entry_cannot_be_written_says_so_and_saves_nothing(app, make_user, make_product):
    make_user("clerk", "staff")
    clerk = signed_in(app, "clerk")
    product = make_product(sku="REC-1", stock=5)
    before = snapshot(app)
    with refusing_entries(app):
        response = clerk.post(
            f"/admin/product/edit/?id={product}", data=product_form(sku="REC-1", name="Renamed", stock="5", version="1")
        )

    assert response.status_code == 200
    assert UNRECORDED in flashed(response) and 'value="Renamed"' in response.text
    assert "conflicts with existing data" not in flashed(response)
    assert snapshot(app) == before


@pytest.mark.own_schema
def test_a_sign_in_whose_entry_cannot_be_written_answers_503_not_500(app, make_user):
    make_user("clerk", "staff")
    client = app.test_client()
    with refusing_entries(app):
        response = login(client, "clerk")

    assert response.status_code == 503
    assert UNRECORDED in flashed(response)
    assert client.get("/admin/").status_code == 302  # not signed in: to the sign-in page


def test_no_free_connection_in_the_pool_is_busy_not_an_error(app, database_url, tmp_path, make_user):
    make_user("ann", "staff")
    pool = {"pool_pre_ping": True, "pool_size": 1, "max_overflow": 0, "pool_timeout": 0.2}
    with another_app(database_url, tmp_path, SQLALCHEMY_ENGINE_OPTIONS=pool) as small:
        ann = signed_in(small, "ann")
        with small.app_context():
            held = _db.engine.connect()  # the pool's one connection
        try:
            response = ann.get("/admin/product/")
        finally:
            held.close()

    assert response.status_code == 503
    assert response.headers["Retry-After"].isdigit() and BUSY in flashed(response)


def test_a_connection_cut_after_the_last_query_does_not_fail_the_request(app, database_url):
    """The database restarts between a page's last query and the end of its request: the
    session's closing rollback fails, and the page already made must still be sent."""
    if not database_url.startswith("postgresql"):
        pytest.skip("cutting a connection from outside is PostgreSQL's")
    with app.app_context():
        backend = _db.session.scalar(text("SELECT pg_backend_pid()"))  # the request's connection
        engine = create_engine(database_url)
        with engine.connect() as admin:
            admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": backend})
        engine.dispose()
    # Leaving the context closed the session without raising; the pool has a working connection.
    with app.app_context():
        assert _db.session.scalar(text("SELECT 1")) == 1


# ------------------------------------------------------------------- what each error is


def wrapped(orig, statement="UPDATE products SET price = 1", invalidated=False):
    return DBAPIError(statement, {}, orig, connection_invalidated=invalidated)


@pytest.mark.parametrize(
    "error, failure",
    [
        (wrapped(psycopg.errors.DeadlockDetected("deadlock detected")), Failure.BUSY),
        (wrapped(psycopg.errors.SerializationFailure("could not serialize access")), Failure.BUSY),
        (wrapped(psycopg.errors.LockNotAvailable("canceling statement due to lock timeout")), Failure.BUSY),
        (wrapped(psycopg.errors.QueryCanceled("canceling statement due to statement timeout")), Failure.BUSY),
        (wrapped(sqlite3.OperationalError("database is locked")), Failure.BUSY),
        (PoolTimeout("QueuePool limit of size 5 overflow 5 reached"), Failure.BUSY),
        (wrapped(psycopg.OperationalError("connection refused")), Failure.UNAVAILABLE),
        (
            wrapped(psycopg.errors.AdminShutdown("terminating connection due to administrator command")),
            Failure.UNAVAILABLE,
        ),
        (wrapped(sqlite3.OperationalError("unable to open database file")), Failure.UNAVAILABLE),
        (
            wrapped(psycopg.errors.RaiseException("refused"), "INSERT INTO audit_entries (at) VALUES (now())"),
            Failure.UNRECORDED,
        ),
        (wrapped(psycopg.errors.UniqueViolation("duplicate key")), None),
        (wrapped(sqlite3.IntegrityError("UNIQUE constraint failed")), None),
        (ValueError("not the database's"), None),
    ],
)
def test_each_database_error_is_told_apart(error, failure):
    assert failure_of(error) is failure


def test_a_retry_is_logged_with_its_cause(caplog):
    attempts = []

    def deadlocked_once():
        attempts.append(1)
        if len(attempts) == 1:
            raise wrapped(psycopg.errors.DeadlockDetected("deadlock detected"))
        return "done"

    assert retrying(deadlocked_once, lambda: None) == "done"
    assert len(attempts) == 2
    assert "Database busy (DeadlockDetected), running the unit of work again" in caplog.text


def test_a_busy_sign_in_is_retried(app, impatient, make_user):
    """The sign-in's own row is held briefly by another transaction (an admin saving the user)."""
    patient_app, _, postgres_url = impatient
    user_id = make_user("dora", "staff")
    holding_row(postgres_url, "users", user_id, seconds=LOCK_TIMEOUT_MS * 1.5 / 1000)

    assert login(patient_app.test_client(), "dora").status_code == 302
