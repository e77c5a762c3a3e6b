"""The app's listeners are the app's: on the engines it makes and on db.session's sessions,
installed by the app factory, once however many apps a process makes. An engine or a Session
made elsewhere in the process (a script, a test, another library) keeps SQLAlchemy's defaults."""

from decimal import Decimal

import pytest
from sqlalchemy import create_engine, func, select, update
from sqlalchemy.orm import Session

from adminapp.domain import guards
from adminapp.extensions import db as _db
from adminapp.models import AuditEntry, Product

from .support import another_app


def sqlite_settings(connection) -> dict:
    return {name: connection.exec_driver_sql(f"PRAGMA {name}").scalar() for name in ("foreign_keys", "journal_mode")}


def test_an_sqlite_engine_the_app_did_not_make_keeps_sqlites_defaults(app, tmp_path):
    if not app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        pytest.skip("the connection settings are SQLite's")
    with app.app_context(), _db.engine.connect() as connection:
        assert sqlite_settings(connection) == {"foreign_keys": 1, "journal_mode": "wal"}
    plain = create_engine(f"sqlite:///{tmp_path / 'elsewhere.db'}")
    try:
        with plain.connect() as connection:
            assert sqlite_settings(connection) == {"foreign_keys": 0, "journal_mode": "delete"}
    finally:
        plain.dispose()


def test_a_plain_session_on_the_apps_engine_is_neither_guarded_nor_audited(app):
    """The guard and the audit trail are db.session's: code that opens a Session of its own
    (none in adminapp does) answers for what it writes."""
    with app.app_context(), Session(_db.engine) as session:
        session.add(Product(sku="PLAIN-1", name="Plain", price=Decimal("1.00"), stock=1))
        session.flush()
        session.execute(update(Product).values(stock=2))  # the app's session refuses this
        assert session.scalar(select(func.count()).select_from(AuditEntry)) == 0
        session.rollback()


def test_the_apps_session_is_guarded_and_audited_once_with_a_second_app_in_the_process(app, database_url, tmp_path):
    with another_app(database_url, tmp_path):
        with app.app_context():
            with pytest.raises(guards.UnrecordedWrite):
                _db.session.execute(update(Product).values(stock=2))
            _db.session.rollback()
            _db.session.add(Product(sku="APP-1", name="App", price=Decimal("1.00"), stock=1))
            _db.session.flush()
            assert _db.session.scalar(select(func.count()).select_from(AuditEntry)) == 1  # not one per app
            _db.session.rollback()
