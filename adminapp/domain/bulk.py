"""Writing rows in bulk, for data that arrives by the hundred thousand (the demo seed).

Rows are dicts keyed by column name. On PostgreSQL a large batch goes through COPY,
many times faster than INSERTs; elsewhere (and for a handful of rows) through one
executemany INSERT. Neither path runs ORM events: callers write their own audit entries.
"""

import json

from sqlalchemy import JSON, Table, func, select, text
from sqlalchemy.engine import Connection

COPY_FROM = 1000  # below this many rows an INSERT costs no more than a COPY


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
            copy.write_row([json.dumps(row[name]) if dumped and row[name] is not None else row[name]
                            for name, dumped in zip(names, as_json)])


def reserve_ids(connection: Connection, table: Table, count: int) -> list[int]:
    """``count`` new primary keys for ``table``, in increasing order, that nobody else gets."""
    if connection.dialect.name == "postgresql":
        sequence = func.pg_get_serial_sequence(table.name, "id")
        return list(connection.scalars(select(func.nextval(sequence)).select_from(func.generate_series(1, count))))
    # SQLite: a write first makes this connection the only writer until it commits.
    connection.execute(text(f"UPDATE {table.name} SET id = id WHERE 1 = 0"))
    last = connection.scalar(select(func.max(table.c.id))) or 0
    return list(range(last + 1, last + 1 + count))


def add_to_column(connection: Connection, table: Table, column: str, amounts: dict[int, int]) -> None:
    """``UPDATE table SET column = column + amount WHERE id = key`` for every item, set-based
    (adding, not overwriting: a change someone else made meanwhile is kept)."""
    if not amounts:
        return
    if connection.dialect.name != "postgresql":
        connection.execute(text(f"UPDATE {table.name} SET {column} = {column} + :amount WHERE id = :id"),
                           [{"id": key, "amount": amount} for key, amount in amounts.items()])
        return
    staged = f"staged_{table.name}_{column}"  # dropped at commit
    connection.execute(text(f"CREATE TEMPORARY TABLE {staged} (id integer PRIMARY KEY, amount "
                            f"{table.c[column].type.compile(connection.dialect)}) ON COMMIT DROP"))
    cursor = connection.connection.driver_connection.cursor()
    with cursor, cursor.copy(f"COPY {staged} (id, amount) FROM STDIN") as copy:
        for item in amounts.items():
            copy.write_row(item)
    connection.execute(text(f"UPDATE {table.name} SET {column} = {column} + {staged}.amount FROM {staged} "
                            f"WHERE {table.name}.id = {staged}.id"))
