"""Index helpers shared by the models: what a list sorts, filters and searches at scale."""

from sqlalchemy import DDL, Index, event, text

from ..extensions import db


def sort_index(table: str, *columns: str) -> Index:
    """An index for sorting by ``columns`` with the id as the tie-breaker, so pages are stable."""
    return Index(f"ix_{table}_{'_'.join(columns)}_id", *columns, "id")


def trigram_index(table: str, column: str) -> Index:
    """A trigram index, so that ``column ILIKE '%term%'`` is an index search on PostgreSQL
    (other databases scan)."""
    return Index(f"ix_{table}_{column}_trgm", column, postgresql_using="gin",
                 postgresql_ops={column: "gin_trgm_ops"}).ddl_if(dialect="postgresql")


def exists_on(dialect: str):
    """Alembic's ``include_object`` for comparing a ``dialect`` database with the models: an
    index that uses a PostgreSQL access method (trigram) exists only on PostgreSQL."""

    def include(obj, name, type_, reflected, compare_to) -> bool:
        return not (type_ == "index" and dialect != "postgresql" and isinstance(obj, Index)
                    and obj.dialect_options["postgresql"]["using"])

    return include


def only_where(condition: str) -> dict:
    """Keyword arguments for a partial index: only the rows meeting ``condition``."""
    return {"postgresql_where": text(condition), "sqlite_where": text(condition)}


# The trigram operator class comes from an extension (part of PostgreSQL's contrib).
event.listen(db.metadata, "before_create",
             DDL("CREATE EXTENSION IF NOT EXISTS pg_trgm").execute_if(dialect="postgresql"))
