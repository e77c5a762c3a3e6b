"""Helpers the tests import: `from tests.support import make_app, login, ...`."""

import os
from contextlib import contextmanager

from sqlalchemy import event

from adminapp import create_app
from adminapp.extensions import db as _db

PASSWORD = "correct horse battery"


def make_app(database_url, tmp_path, **overrides):
    config = {
        "TESTING": True,
        "SECRET_KEY": "test-secret",
        "SQLALCHEMY_DATABASE_URI": database_url,
        "WTF_CSRF_ENABLED": False,
        **overrides,
    }
    os.environ["ADMINAPP_INSTANCE_PATH"] = str(tmp_path / "instance")
    return create_app(config)


def login(client, username, password=PASSWORD):
    return client.post("/login", data={"username": username, "password": password})


@contextmanager
def count_statements(app):
    """Count the SQL statements run inside the block: `with count_statements(app) as n: ...; n[0]`."""
    with app.app_context():
        engine = _db.engine
    count = [0]

    def before_cursor_execute(*args):
        count[0] += 1

    event.listen(engine, "before_cursor_execute", before_cursor_execute)
    try:
        yield count
    finally:
        event.remove(engine, "before_cursor_execute", before_cursor_execute)


def flashed(response) -> str:
    """The page text with whitespace folded, for asserting on messages."""
    return " ".join(response.get_data(as_text=True).split())
