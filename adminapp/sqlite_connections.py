"""How the app's SQLite connections are set up and begin their transactions.

Installed by the app factory on the app's own engines only: an engine made elsewhere in the
same process keeps SQLite's defaults.
"""

from flask import has_request_context, request
from sqlalchemy import event
from sqlalchemy.engine import Engine

from .domain import sqlite_lock

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
SQLITE_BUSY_TIMEOUT_MS = 10_000


# PRAGMA synchronous: how often SQLite waits for the disk (the SQLITE_SYNCHRONOUS setting).
SYNCHRONOUS_LEVELS = ("OFF", "NORMAL", "FULL", "EXTRA")


def install(engine: Engine, synchronous: str = "NORMAL") -> None:
    """Set up the SQLite (pysqlite) connections of ``engine``, a new engine of the app
    factory's; any other engine is left as it is."""
    if engine.dialect.name != "sqlite" or engine.dialect.driver != "pysqlite":
        return

    def on_connect(dbapi_connection, connection_record):
        _sqlite_pragmas(dbapi_connection, synchronous)

    event.listen(engine, "connect", on_connect)
    event.listen(engine, "begin", _sqlite_begin)


def _sqlite_pragmas(dbapi_connection, synchronous: str) -> None:
    # SQLAlchemy emits BEGIN itself (_sqlite_begin below): pysqlite's own handling would
    # start the transaction only at the first write, leaving the reads before it outside.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    # While another connection writes, wait for it rather than fail with "database is locked".
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    # Write-ahead log: readers and the one writer no longer block each other, so a long
    # export does not hold up every save. Kept in the database file once set.
    cursor.execute("PRAGMA journal_mode=WAL")
    # In WAL mode NORMAL cannot corrupt the database; it syncs at checkpoints instead of at
    # every commit, at the risk of losing the last commits (never half of one) to a power cut.
    # The tests turn syncing off: their databases outlive no power cut.
    cursor.execute(f"PRAGMA synchronous={synchronous}")
    # SQLite ignores foreign keys unless asked, per connection.
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _sqlite_begin(connection):
    # A request that changes data reads (its user) before it writes. In WAL mode a plain
    # BEGIN would take a snapshot at that read, and if another worker commits before this
    # one writes, the write fails at once: the busy timeout cannot help a stale snapshot.
    # So such a request takes the write lock up front and waits its turn. Pages, exports
    # and commands read without it (domain code takes it before a write that needs it).
    changes_data = has_request_context() and request.method not in SAFE_METHODS
    connection.exec_driver_sql("BEGIN IMMEDIATE" if changes_data else "BEGIN")
    sqlite_lock.began(connection, immediate=changes_data)
