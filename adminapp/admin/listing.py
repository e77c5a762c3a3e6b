"""Lists at a shop's size (a million rows): how a list counts, pages and searches, in one place.

- Counting: a first page that is not full holds the whole list, so it counts itself; an
  unfiltered list of a big PostgreSQL table takes the planner's estimate ("about
  1,000,000"); any other unfiltered list is counted up to COUNT_CAP rows ("10,000+"), a
  filtered one up to NARROWED_COUNT_CAP ("1,000+"). A search that fills its first page is
  not counted at all (Flask-Admin then shows a simple pager): its count would check every
  match against the table, many times the cost of the page. An exact count of a million
  rows would cost more than the page itself.
- Paging goes COUNT_CAP rows deep: OFFSET costs as many rows as it skips. A page past that
  shows the last page within it, with a message.
- Searching matches the bare column (no CAST), so PostgreSQL's trigram indexes serve
  ``ILIKE '%term%'``; SQLite's own LIKE is case-insensitive (for ASCII letters) already, but
  reads every row. Where the table has a search index (models.indexes.SearchIndex), SQLite
  asks it instead for the terms of 3 or more characters (see indexed_search).
"""

from dataclasses import dataclass
from math import ceil

from flask_babel import gettext
from sqlalchemy import ARRAY, Integer, Select, any_, cast, column, false, func, inspect, or_, select, table, text
from sqlalchemy.orm import Session, aliased

from ..formatting import number

COUNT_CAP = 10_000
NARROWED_COUNT_CAP = 1_000
# Execution options of a list query whose rows cost too much to count: it pages without a count.
UNCOUNTED = {"uncounted": True}
# Execution option of a list query whose page finds its rows through their ids (see page_query).
PAGE_THROUGH_IDS = "page_through_ids"


class ListCount(int):
    """A list's size as the pager pages it (at most COUNT_CAP) and as the page shows it."""

    def __new__(cls, pageable: int, shown: str):
        count = super().__new__(cls, pageable)
        count.shown = shown
        return count

    def __str__(self) -> str:
        return self.shown

    @classmethod
    def exact(cls, rows: int) -> "ListCount":
        return cls(rows, number(rows))

    @classmethod
    def at_least(cls, cap: int) -> "ListCount":
        return cls(cap, f"{number(cap)}+")  # the pager offers the pages of the rows counted

    @classmethod
    def narrowed(cls, counted: int) -> "ListCount":
        """A searched or filtered list, ``counted`` up to NARROWED_COUNT_CAP + 1."""
        return cls.exact(counted) if counted <= NARROWED_COUNT_CAP else cls.at_least(NARROWED_COUNT_CAP)

    @classmethod
    def about(cls, estimate: int) -> "ListCount":
        rounded = round(estimate, 2 - len(str(estimate)))  # three significant digits
        return cls(COUNT_CAP, gettext("about %(count)s", count=number(rounded)))


def page_query(session: Session, query):
    """The list query as its page reads it. A filter ``column >= value`` that marks the query
    with PAGE_THROUGH_IDS (filters.RecentLocalDateFrom) has the page take the matching ids
    first, as one array from the column's index, computed once, then sort those rows: the
    sort's own index would be walked through the whole table to reach them. Only while they
    are at most COUNT_CAP (counted from the column's index, no further): sorting that many
    takes milliseconds, while an array of 300,000 took 0.7 s, and so many matches are
    usually met soon along the sort's index."""
    marked = query.get_execution_options().get(PAGE_THROUGH_IDS)
    if marked is None:
        return query
    column, value = marked
    model = column.class_
    key = inspect(model).primary_key[0]
    rows = aliased(model)  # not correlated with the list's own table
    matching = select(getattr(rows, key.key)).where(getattr(rows, column.key) >= value)
    few = session.scalar(select(func.count()).select_from(matching.limit(COUNT_CAP + 1).subquery()))
    if few > COUNT_CAP:
        return query
    ids = select(func.array_agg(getattr(rows, key.key))).where(getattr(rows, column.key) >= value)
    # ANY of an array, not of a subquery: that would be a join, planned as before.
    return query.filter(getattr(model, key.key) == any_(cast(ids.scalar_subquery(), ARRAY(key.type))))


def count_list(session: Session, query, rows: list, whole: bool, searched: bool, filtered: bool) -> ListCount | None:
    """How many rows the list ``query`` has, as cheaply as is honest (None: not counted):
    ``rows`` is the page shown, the whole list when ``whole``."""
    if whole:
        return ListCount.exact(len(rows))
    if searched or query.get_execution_options().get("uncounted"):
        return None
    model = query.column_descriptions[0]["entity"]
    if not filtered:
        estimate = table_estimate(session, model.__table__.name)
        if estimate is not None and estimate > COUNT_CAP:
            return ListCount.about(estimate)
    # The key, not a constant: a filter that is only an EXISTS names no table of the list itself.
    key = inspect(model).primary_key[0]
    capped = query.limit(None).offset(None).order_by(None).enable_eagerloads(False).with_entities(key)
    cap = NARROWED_COUNT_CAP if filtered else COUNT_CAP
    counted = session.scalar(select(func.count()).select_from(capped.limit(cap + 1).subquery()))
    return ListCount.exact(counted) if counted <= cap else ListCount.at_least(cap)


def count_each(session: Session, queries: list) -> list[ListCount] | None:
    """How many rows each list query has, each counted up to NARROWED_COUNT_CAP + 1, all in
    one statement (a scalar subquery each); None when one of them is not to be counted."""
    if not queries or any(query.get_execution_options().get("uncounted") for query in queries):
        return None
    subqueries = []
    for query in queries:
        key = inspect(query.column_descriptions[0]["entity"]).primary_key[0]
        capped = query.limit(None).offset(None).order_by(None).enable_eagerloads(False).with_entities(key)
        subqueries.append(
            select(func.count()).select_from(capped.limit(NARROWED_COUNT_CAP + 1).subquery()).scalar_subquery()
        )
    return [ListCount.narrowed(counted) for counted in session.execute(select(*subqueries)).one()]


def table_estimate(session: Session, table: str) -> int | None:
    """PostgreSQL's own idea of a table's size (kept by ANALYZE and autovacuum), or None."""
    if session.get_bind().dialect.name != "postgresql":
        return None
    estimate = session.scalar(text("SELECT reltuples::bigint FROM pg_class WHERE oid = to_regclass(:t)"), {"t": table})
    return estimate if estimate is not None and estimate >= 0 else None  # -1: never analysed


def last_page(page_size: int) -> int:
    """The deepest page (counted from 0) that paging reaches."""
    return max(ceil(COUNT_CAP / page_size) - 1, 0)


def beyond_cap_message() -> str:
    return gettext(
        "Only the first %(count)s rows of a list can be paged through, so the last of those pages is "
        "shown. Search, filter or sort the other way to reach the others.",
        count=number(COUNT_CAP),
    )


# --- search ---


def term_condition(session: Session, columns, term: str):
    """The rows where one search term matches any of ``columns``: text contains it (``^term``:
    starts with it, ``=term``: is it), a whole-number column is it (``12`` or ``#12``)."""
    conditions = [_matches(session, column, term) for column in columns]
    conditions = [condition for condition in conditions if condition is not None]
    return or_(*conditions) if conditions else false()


def _matches(session: Session, column, term: str):
    if isinstance(column.type, Integer):
        value = _whole_number(term.removeprefix("#"))
        return None if value is None else column == value
    if term.startswith("=") and len(term) > 1:
        return column == term[1:]
    pattern = f"{_escape_like(term[1:])}%" if term.startswith("^") and len(term) > 1 else f"%{_escape_like(term)}%"
    if session.get_bind().dialect.name == "postgresql":
        return column.ilike(pattern, escape="\\")
    return column.like(pattern, escape="\\")  # SQLite: already case-insensitive, and lower() would cost


def _whole_number(text_: str) -> int | None:
    """A number a 32-bit integer key can hold, or None."""
    try:
        value = int(text_)
    except ValueError:
        return None
    return value if -(2**31) <= value < 2**31 else None


def _escape_like(term: str) -> str:
    """The term taken literally: % and _ are characters the user typed, not wildcards."""
    return term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


# --- search through SQLite's search index ---


@dataclass
class IndexedSearch:
    """A search split between the table's search index and LIKE."""

    matching: Select  # the ids of the rows that contain every indexed term
    rest: str  # the terms the index cannot answer, for term_condition

    def count(self, session: Session) -> int:
        """How many rows the index finds, up to NARROWED_COUNT_CAP + 1: from the index alone."""
        return session.scalar(select(func.count()).select_from(self.matching.limit(NARROWED_COUNT_CAP + 1).subquery()))


def indexed_search(session: Session, model, columns: list[str], search: str) -> IndexedSearch | None:
    """The part of ``search`` over ``columns`` that SQLite's search index of ``model``'s table can
    answer, or None: on another database, without an index of exactly those columns, or when
    no term is indexable.

    Indexable: 3 or more characters (a trigram), neither ``^prefix`` nor ``=exact``. The index
    finds the same rows as LIKE, with one difference: it folds the case of every letter
    (``É`` finds ``é``), where SQLite's LIKE folds only ASCII letters."""
    index = model.__table__.info.get("search_index")
    if session.get_bind().dialect.name != "sqlite" or index is None or set(columns) != set(index.columns):
        return None
    terms = search.split()
    indexed = [term for term in terms if _indexable(term)]
    if not indexed:
        return None
    # Each term is an FTS5 string, so nothing the user types is query syntax (AND, NEAR, *, -...);
    # a string matches the rows where any column contains it.
    phrase = " AND ".join('"' + term.replace('"', '""') + '"' for term in indexed)
    matching = (
        select(column("rowid"))
        .select_from(table(index.name))
        .where(text(f"{index.name} MATCH :phrase").bindparams(phrase=phrase))
    )
    return IndexedSearch(matching, " ".join(term for term in terms if not _indexable(term)))


def _indexable(term: str) -> bool:
    return len(term) >= 3 and term[0] not in "^="
