"""SQLite's write lock, taken at most once per database transaction.

SQLite has no row locks: code that decides on what it reads first makes its connection
the only writer, so nothing it read can change before it commits. A transaction that
began with BEGIN IMMEDIATE (a request that changes data), or took the lock once, holds
it until it ends: asking again costs no statement.
"""

from sqlalchemy.engine import Connection

# Kept in Connection.info, which outlives the transaction: every BEGIN sets it afresh.
HOLDS_WRITE_LOCK = "sqlite_holds_write_lock"


def began(connection: Connection, immediate: bool) -> None:
    """Note how the transaction just begun on this SQLite connection started."""
    connection.info[HOLDS_WRITE_LOCK] = immediate


def take(connection: Connection) -> None:
    """Make the connection SQLite's only writer until its transaction ends (elsewhere a no-op)."""
    if connection.dialect.name != "sqlite" or connection.info.get(HOLDS_WRITE_LOCK):
        return
    # Any write takes the lock, even one that changes no row.
    connection.exec_driver_sql("UPDATE transactions SET id = id WHERE 1 = 0")
    connection.info[HOLDS_WRITE_LOCK] = True
