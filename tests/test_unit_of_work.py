"""The unit of work: one commit on success; on any error everything rolled back, then the user
told why (with the view's message rules) or the error raised again. The views' own tests show
it in use (a form keeps what the user typed, a bulk post commits each transaction alone)."""

import logging
import sqlite3
from contextlib import contextmanager
from decimal import Decimal

import pytest
from flask import get_flashed_messages
from sqlalchemy import event, func, select
from sqlalchemy.exc import DBAPIError

from adminapp.domain.errors import AlreadyPosted, DomainError
from adminapp.extensions import db as _db
from adminapp.models import Product
from adminapp.unit_of_work import database_failure, run_unit_of_work, unit_of_work

BUSY = "The database was busy; nothing was changed. Try again."


def busy():
    return DBAPIError("UPDATE products SET price = 1", {}, sqlite3.OperationalError("database is locked"))


def add_product(sku):
    _db.session.add(Product(sku=sku, name=f"Product {sku}", price=Decimal("1.00"), stock=1))
    _db.session.flush()


def product_count(app) -> int:
    with app.app_context():
        return _db.session.scalar(select(func.count(Product.id)))


@contextmanager
def commits(app):
    """The commits the database receives inside the block: `with commits(app) as n: ...; n[0]`."""
    with app.app_context():
        engine = _db.engine
    count = [0]

    def on_commit(connection):
        count[0] += 1

    event.listen(engine, "commit", on_commit)
    try:
        yield count
    finally:
        event.remove(engine, "commit", on_commit)


@pytest.fixture
def request_context(app):
    with app.test_request_context(method="POST"):
        yield


def test_the_block_is_committed_once(app, request_context):
    with commits(app) as committed:
        with unit_of_work("Nothing was changed") as outcome:
            add_product("A")
            add_product("B")

    assert outcome.done and outcome.error is None
    assert committed[0] == 1
    assert product_count(app) == 2
    assert get_flashed_messages() == []


def test_a_refusal_rolls_back_the_whole_block_and_is_told(app, request_context):
    with commits(app) as committed:
        with unit_of_work("Nothing was changed") as outcome:
            add_product("A")
            raise DomainError("Not like that.")

    assert not outcome.done and isinstance(outcome.error, DomainError)
    assert committed[0] == 0
    assert product_count(app) == 0
    assert get_flashed_messages(with_categories=True) == [("error", "Not like that.")]


def test_a_database_failure_is_told_with_what_failed(app, request_context):
    with unit_of_work("Transaction #7 was not posted") as outcome:
        add_product("A")
        raise busy()

    assert not outcome.done
    assert product_count(app) == 0
    assert get_flashed_messages() == [f"Transaction #7 was not posted: {BUSY}"]


def test_news_keeps_its_own_flash_category(app, request_context):
    with unit_of_work("Nothing was changed"):
        raise AlreadyPosted("Transaction #7 is already posted.")

    assert get_flashed_messages(with_categories=True) == [("info", "Transaction #7 is already posted.")]


def test_an_unexpected_error_is_logged_and_told_without_its_details(app, request_context, caplog):
    with caplog.at_level(logging.ERROR, logger="adminapp.unit_of_work"):
        with unit_of_work("Nothing was saved", where="product"):
            add_product("A")
            raise RuntimeError("internal detail")

    assert product_count(app) == 0
    [message] = get_flashed_messages()
    assert message.startswith("Nothing was saved: an unexpected error occurred (request ID")
    assert "internal detail" not in message
    assert "Unexpected error in product" in caplog.text


def test_without_what_failed_the_error_is_raised_after_the_rollback(app, request_context):
    with pytest.raises(DomainError):
        with unit_of_work():
            add_product("A")
            raise DomainError("Not like that.")

    assert product_count(app) == 0
    assert get_flashed_messages() == []


def test_tell_chooses_which_errors_are_told(app, request_context):
    outcome = run_unit_of_work(lambda: (add_product("A"), _raise(busy())), tell=database_failure)
    assert not outcome.done
    assert get_flashed_messages() == [BUSY]  # no "what failed": the message alone

    with pytest.raises(DomainError):
        run_unit_of_work(lambda: _raise(DomainError("Not like that.")), tell=database_failure)
    assert product_count(app) == 0


def test_run_tries_again_when_the_database_was_busy_and_commits_once(app, request_context):
    attempts = []

    def work():
        attempts.append(1)
        add_product(f"P{len(attempts)}")
        if len(attempts) == 1:
            raise busy()
        return "done"

    with commits(app) as committed:
        outcome = run_unit_of_work(work, "Nothing was changed")

    assert outcome.done and outcome.result == "done"
    assert len(attempts) == 2
    assert committed[0] == 1
    with app.app_context():  # the first attempt's product was rolled back
        assert _db.session.scalars(select(Product.sku)).all() == ["P2"]
    assert get_flashed_messages() == []


def _raise(exc):
    raise exc
