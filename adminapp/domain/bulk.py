"""Loading data by the hundred thousand rows (the demo seed): writing rows in bulk, and the
indexes and statistics of the tables loaded.

Rows are dicts keyed by column name. On PostgreSQL a large batch goes through COPY,
many times faster than INSERTs; elsewhere (and for a handful of rows) through one
executemany INSERT. Neither path runs ORM events: callers write their own audit entries.
"""

import json
from contextlib import contextmanager

from sqlalchemy import JSON, Table, func, inspect, select, text
from sqlalchemy.engine import Connection

from . import sqlite_lock

COPY_FROM = 1000  # below this many rows an INSERT costs no more than a COPY
REBUILD_FROM = 50_000  # rows added at once from which building a table's indexes anew pays


def worth_rebuilding(connection: Connection, table: Table, adding: int) -> bool:
    """Whether adding ``adding`` rows is cheaper with the indexes built afterwards: for a large
    load into a table holding fewer rows than that."""
    if adding < REBUILD_FROM:
        return False
    holding = connection.scalar(select(func.count()).select_from(select(table.c.id).limit(adding).subquery()))
    return holding < adding


@contextmanager
def indexes_rebuilt(connection: Connection, tables: list[Table]):
    """Drop the tables' secondary indexes, and create them again when the block has run: built
    once from all the rows, an index costs a fraction of updating it row by row (PostgreSQL's
    "Populating a Database"). Unique indexes stay: they guard the data as it arrives. In one
    transaction: should the block fail, the rollback restores the indexes too. Without fresh
    statistics the planners see the tables as they were (SQLite has none until ANALYZE, and
    then sorts a whole table where an index would give a page in order)."""
    inspector = inspect(connection)
    dropped = []
    for table in tables:
        present = {index["name"] for index in inspector.get_indexes(table.name)}
        dropped += [index for index in table.indexes if index.name in present and not index.unique]
    # SQLite's search indexes: their triggers go too, and each is rebuilt from the table.
    present = set(inspector.get_table_names()) if connection.dialect.name == "sqlite" else set()
    searches = [
        table.info["search_index"]
        for table in tables
        if "search_index" in table.info and table.info["search_index"].name in present
    ]
    for index in dropped:
        index.drop(connection)
    for search in searches:
        for statement in search.drop_triggers():
            connection.execute(text(statement))
    yield
    if dropped and connection.dialect.name == "postgresql":
        connection.execute(text("SET LOCAL maintenance_work_mem = '256MB'"))  # sorts in memory
    for index in dropped:
        index.create(connection)
    for table in tables:  # the planner's statistics of the tables as they now are
        connection.execute(text(f"ANALYZE {table.name}"))
    for search in searches:
        connection.execute(text(search.rebuild()))
        for statement in search.create_triggers():
            connection.execute(text(statement))


def insert_rows(connection: Connection, table: Table, rows: list[dict]) -> None:
    if not rows:
        return
    if connection.dialect.name == "postgresql" and len(rows) >= COPY_FROM:
        _copy(connection, table, rows)
    else:
        connection.execute(table.insert(), rows)


def _copy(connection: Connection, table: Table, rows: list[dict]) -> None:
    # COPY bypasses the column types: datetimes must already be aware UTC, JSON is dumped here.
    names = list(rows[0])
    as_json = [isinstance(table.c[name].type, JSON) for name in names]
    cursor = connection.connection.driver_connection.cursor()
    with cursor, cursor.copy(f"COPY {table.name} ({', '.join(names)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(
                [
                    json.dumps(row[name]) if dumped and row[name] is not None else row[name]
                    for name, dumped in zip(names, as_json)
                ]
            )


def reserve_ids(connection: Connection, table: Table, count: int) -> list[int]:
    """``count`` new primary keys for ``table``, in increasing order, that nobody else gets."""
    if connection.dialect.name == "postgresql":
        sequence = func.pg_get_serial_sequence(table.name, "id")
        return list(connection.scalars(select(func.nextval(sequence)).select_from(func.generate_series(1, count))))
    sqlite_lock.take(connection)  # the only writer until it commits: nobody else takes these ids
    last = connection.scalar(select(func.max(table.c.id))) or 0
    return list(range(last + 1, last + 1 + count))


def add_to_column(connection: Connection, table: Table, column: str, amounts: dict[int, int]) -> None:
    """``UPDATE table SET column = column + amount WHERE id = key`` for every item, set-based
    (adding, not overwriting: a change someone else made meanwhile is kept)."""
    if not amounts:
        return
    if connection.dialect.name != "postgresql":
        connection.execute(
            text(f"UPDATE {table.name} SET {column} = {column} + :amount WHERE id = :id"),
            [{"id": key, "amount": amount} for key, amount in amounts.items()],
        )
        return
    staged = f"staged_{table.name}_{column}"  # dropped at commit
    connection.execute(
        text(
            f"CREATE TEMPORARY TABLE {staged} (id integer PRIMARY KEY, amount "
            f"{table.c[column].type.compile(connection.dialect)}) ON COMMIT DROP"
        )
    )
    cursor = connection.connection.driver_connection.cursor()
    with cursor, cursor.copy(f"COPY {staged} (id, amount) FROM STDIN") as copy:
        for item in amounts.items():
            copy.write_row(item)
    connection.execute(
        text(
            f"UPDATE {table.name} SET {column} = {column} + {staged}.amount FROM {staged} "
            f"WHERE {table.name}.id = {staged}.id"
        )
    )
