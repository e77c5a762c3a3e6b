"""Index helpers shared by the models: what a list sorts, filters and searches at scale."""

from dataclasses import dataclass

from sqlalchemy import DDL, Index, Table, event, text

from ..extensions import db


def sort_index(table: str, *columns: str) -> Index:
    """An index for sorting by ``columns`` with the id as the tie-breaker, so pages are stable."""
    return Index(f"ix_{table}_{'_'.join(columns)}_id", *columns, "id")


def trigram_index(table: str, column: str) -> Index:
    """A trigram index, so that ``column ILIKE '%term%'`` is an index search on PostgreSQL
    (other databases scan)."""
    return Index(
        f"ix_{table}_{column}_trgm", column, postgresql_using="gin", postgresql_ops={column: "gin_trgm_ops"}
    ).ddl_if(dialect="postgresql")


def exists_on(dialect: str):
    """Alembic's ``include_object`` for comparing a ``dialect`` database with the models: an
    index that uses a PostgreSQL access method (trigram) exists only on PostgreSQL; SQLite's
    search indexes (and the tables FTS5 keeps them in) are no models' tables."""

    def include(obj, name, type_, reflected, compare_to) -> bool:
        if type_ == "table" and reflected and compare_to is None and _is_search_index(name):
            return False
        return not (
            type_ == "index"
            and dialect != "postgresql"
            and isinstance(obj, Index)
            and obj.dialect_options["postgresql"]["using"]
        )

    return include


def _is_search_index(table: str) -> bool:
    names = [t.info["search_index"].name for t in db.metadata.tables.values() if "search_index" in t.info]
    return any(table == name or table.startswith(f"{name}_") for name in names)


def only_where(condition: str) -> dict:
    """Keyword arguments for a partial index: only the rows meeting ``condition``."""
    return {"postgresql_where": text(condition), "sqlite_where": text(condition)}


# The trigram operator class comes from an extension (part of PostgreSQL's contrib).
event.listen(
    db.metadata, "before_create", DDL("CREATE EXTENSION IF NOT EXISTS pg_trgm").execute_if(dialect="postgresql")
)


@dataclass(frozen=True)
class SearchIndex:
    """SQLite's answer to the trigram indexes: an FTS5 index of ``columns`` with the trigram
    tokenizer, which finds the rows whose text contains a term of 3 or more characters without
    reading the table (SQLite's ``LIKE '%term%'`` reads every row). It stores no text of its own
    (``content=`` the table); triggers keep it in step with every insert, update and delete.
    Migration 0006 holds a copy of this DDL."""

    table: str
    columns: tuple[str, ...]

    @property
    def name(self) -> str:
        return f"{self.table}_fts"

    def create(self) -> list[str]:
        columns = ", ".join(self.columns)
        return [
            f"CREATE VIRTUAL TABLE {self.name} USING fts5({columns}, content='{self.table}', "
            f"content_rowid='id', tokenize='trigram')",
            *self.create_triggers(),
        ]

    def create_triggers(self) -> list[str]:
        columns = ", ".join(self.columns)
        new = f"INSERT INTO {self.name}(rowid, {columns}) VALUES (new.id, {self._values('new')});"
        # An external-content index forgets a row by being told the values it indexed.
        old = (
            f"INSERT INTO {self.name}({self.name}, rowid, {columns}) VALUES ('delete', old.id, {self._values('old')});"
        )
        return [
            f"CREATE TRIGGER {self.name}_insert AFTER INSERT ON {self.table} BEGIN {new} END",
            f"CREATE TRIGGER {self.name}_delete AFTER DELETE ON {self.table} BEGIN {old} END",
            f"CREATE TRIGGER {self.name}_update AFTER UPDATE OF {columns} ON {self.table} BEGIN {old} {new} END",
        ]

    def drop_triggers(self) -> list[str]:
        return [f"DROP TRIGGER {self.name}_{kind}" for kind in ("insert", "delete", "update")]

    def rebuild(self) -> str:
        """Index every row of the table anew."""
        return f"INSERT INTO {self.name}({self.name}) VALUES ('rebuild')"

    def _values(self, row: str) -> str:
        return ", ".join(f"{row}.{column}" for column in self.columns)


def search_index(table: Table, *columns: str) -> SearchIndex:
    """Give ``table`` a SearchIndex of ``columns`` on SQLite, made and dropped with the table
    by ``create_all``/``drop_all`` (the triggers go with the table)."""
    index = SearchIndex(table.name, columns)
    table.info["search_index"] = index
    for statement in index.create():
        event.listen(table, "after_create", DDL(statement).execute_if(dialect="sqlite"))
    event.listen(table, "before_drop", DDL(f"DROP TABLE IF EXISTS {index.name}").execute_if(dialect="sqlite"))
    return index
