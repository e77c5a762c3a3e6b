"""What a failed database statement means for the user, and retrying the ones that pass.

Three kinds are told apart from any other error:

- busy: a deadlock, a serialization failure, a lock not granted within ``lock_timeout``, a
  statement cancelled (PostgreSQL), SQLite's "database is locked", or no pooled connection
  free within the pool's timeout. Nothing is wrong with
  the change: the whole unit of work is run again (``retrying``), then the user is told to
  try again (HTTP 503).
- unavailable: no connection to the database (it is restarting, or down). 503 with
  Retry-After; the pool reconnects by itself once it is back (``pool_pre_ping``).
- unrecorded: the change's audit entry could not be written, so the change was not saved.
"""

import logging
import random
import sqlite3
import time
from enum import Enum

import psycopg.errors
from flask_babel import gettext
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

# What a failed statement, or no connection to run it on, raises.
DATABASE_ERRORS = (DBAPIError, PoolTimeout)
RETRIES = 2  # after the first attempt
log = logging.getLogger(__name__)
RETRY_AFTER_SECONDS = 5  # what a 503 asks the client to wait

_BUSY = (
    psycopg.errors.DeadlockDetected,
    psycopg.errors.SerializationFailure,
    psycopg.errors.LockNotAvailable,
    psycopg.errors.QueryCanceled,
)
_SQLITE_BUSY = ("database is locked", "database table is locked", "database is busy")


class Failure(Enum):
    BUSY = "busy"
    UNAVAILABLE = "unavailable"
    UNRECORDED = "unrecorded"


def failure_of(exc: BaseException) -> Failure | None:
    """Which of the kinds above ``exc`` is, or None for any other error."""
    if isinstance(exc, PoolTimeout):
        return Failure.BUSY
    if not isinstance(exc, DBAPIError):
        return None
    orig = exc.orig
    if isinstance(orig, _BUSY) or (
        isinstance(orig, sqlite3.OperationalError) and str(orig).lower().startswith(_SQLITE_BUSY)
    ):
        return Failure.BUSY
    if exc.connection_invalidated or isinstance(orig, (psycopg.OperationalError, psycopg.InterfaceError)):
        return Failure.UNAVAILABLE  # the busy ones, OperationalErrors too, were told apart above
    if isinstance(orig, sqlite3.OperationalError) and "unable to open" in str(orig):
        return Failure.UNAVAILABLE
    if (exc.statement or "").lstrip().upper().startswith("INSERT INTO AUDIT_ENTRIES"):
        return Failure.UNRECORDED
    return None


def message(failure: Failure) -> str:
    if failure is Failure.BUSY:
        return gettext("The database was busy; nothing was changed. Try again.")
    if failure is Failure.UNAVAILABLE:
        # Not "nothing was changed": the connection may have been lost during the commit itself.
        return gettext(
            "The database cannot be reached just now. Reload the page in a moment to see "
            "whether your change was saved before you try again."
        )
    return gettext("The change could not be recorded in the audit trail, so it was not saved. Tell the administrator.")


def retrying(work, rollback):
    """``work()`` (a whole unit of work, its commit included); when it fails because the
    database was busy, ``rollback()`` and run it again, up to RETRIES times after a short
    random pause, so that two transactions that collided do not collide again."""
    for attempt in range(RETRIES + 1):
        try:
            return work()
        except DBAPIError as exc:  # not a pool timeout: waiting for the pool again would not help
            if attempt == RETRIES or failure_of(exc) is not Failure.BUSY:
                raise
            log.warning("Database busy (%s), running the unit of work again", type(exc.orig).__name__)
            rollback()
            time.sleep(random.uniform(0.02, 0.1) * (attempt + 1))
