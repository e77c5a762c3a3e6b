"""One unit of work: an operation run as the request's, or the CLI command's, single
database transaction. Domain code never commits; this module alone commits and rolls back.

    with unit_of_work(gettext("Nothing was changed"), where="product") as outcome:
        catalog.set_active(db.session, ids, True)
    if outcome.done:
        flash(...)

On success it commits once. On any error it rolls everything back; then, when the caller
says what failed (``what_failed``), the user is told why in a flashed message and the error
goes no further (``outcome.done`` is False); otherwise the error is raised again, for the
caller or the error pages to explain (a CLI command, a sign-out). ``tell`` narrows which
errors are told (the rest are raised again).

``run_unit_of_work(work, ...)`` is the same for a callable, run again when the database was busy
(``database_errors.retrying``): a ``with`` block cannot run its body twice.
"""

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass

from flask import current_app, flash, g
from flask_babel import gettext
from sqlalchemy.exc import IntegrityError, InvalidRequestError
from sqlalchemy.orm.exc import StaleDataError

from . import database_errors
from .database_errors import Failure, failure_of, retrying
from .domain.errors import DomainError
from .extensions import db

log = logging.getLogger(__name__)


@dataclass
class Outcome:
    done: bool = False  # committed
    result: object = None  # what the work returned (``run_unit_of_work``)
    error: Exception | None = None  # the error the user was told about


def database_failure(exc: Exception) -> bool:
    """Only a busy, unreachable or unrecording database is told (see database_errors)."""
    return failure_of(exc) is not None


@contextmanager
def unit_of_work(
    what_failed: str | None = None, *, where: str = "", tell: Callable[[Exception], bool] | None = None
) -> Iterator[Outcome]:
    """The block, then one commit; on an error, a rollback, then the user told or the error
    raised again (see the module's description)."""
    outcome = Outcome()
    try:
        yield outcome
        db.session.commit()
    except Exception as exc:
        if not _told(exc, outcome, what_failed, where, tell):
            raise
    else:
        outcome.done = True


def run_unit_of_work(
    work: Callable[[], object],
    what_failed: str | None = None,
    *,
    where: str = "",
    tell: Callable[[Exception], bool] | None = None,
    reread: tuple = (),
) -> Outcome:
    """``work()`` and one commit, run again after a rollback when the database was busy;
    failures as with ``unit_of_work``. The ``reread`` records are read afresh before each
    new attempt: loaded only once the work has changed them, they would be flushed first
    (and their versions read back bumped)."""

    def attempt():
        result = work()
        db.session.commit()
        return result

    def roll_back():
        db.session.rollback()
        for record in reread:
            with suppress(InvalidRequestError):  # deleted meanwhile: the next attempt says so
                db.session.refresh(record)

    outcome = Outcome()
    try:
        outcome.result = retrying(attempt, roll_back)
    except Exception as exc:
        if not _told(exc, outcome, what_failed, where, tell):
            raise
    else:
        outcome.done = True
    return outcome


def _told(exc, outcome: Outcome, what_failed, where, tell) -> bool:
    """Roll back; then flash why the change failed, when the caller tells the user about
    such an error. False: the error is to be raised again."""
    told = tell(exc) if tell is not None else what_failed is not None
    if not told:
        # The error pages roll back too; on a connection the database has cut, a rollback
        # fails, and the error raised must stay the one that happened first.
        with suppress(*database_errors.DATABASE_ERRORS):
            db.session.rollback()
        return False
    db.session.rollback()
    flash(failure_message(exc, what_failed, where), getattr(exc, "flash_category", "error"))
    outcome.error = exc
    return True


def failure_message(exc: Exception, what_failed: str | None, where: str = "") -> str:
    """What the user is told about a failed change (everything in it was rolled back).
    ``what_failed`` prefixes a database failure (which record, when a bulk post fails for
    one of several); ``where`` (the view) is logged with an unexpected error."""
    if isinstance(exc, DomainError):
        return str(exc)
    failure = failure_of(exc)
    if failure is Failure.UNAVAILABLE or (failure is not None and what_failed is None):
        return database_errors.message(failure)  # unavailable: perhaps committed after all, not "not saved"
    if failure is not None:
        return gettext("%(what)s: %(message)s", what=what_failed, message=database_errors.message(failure))
    if isinstance(exc, StaleDataError):
        return gettext(
            "This record was changed by someone else while you were saving. "
            "Your changes were not saved: reopen it to see the current data."
        )
    if isinstance(exc, IntegrityError):
        log.warning("Integrity error in %s: %s", where, exc)
        return gettext("The change conflicts with existing data and was not saved.")
    if current_app.debug or current_app.config.get("FLASK_ADMIN_RAISE_ON_VIEW_EXCEPTION"):
        raise exc
    # Anything else is logged with the request ID; the user never sees SQL or internals.
    log.exception("Unexpected error in %s, request ID %s", where, g.get("request_id"))
    return gettext(
        "%(what)s: an unexpected error occurred (request ID %(id)s).", what=what_failed, id=g.get("request_id")
    )
