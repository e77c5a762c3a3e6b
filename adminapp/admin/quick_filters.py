"""One-click filters beside a list, as Django's ``list_filter`` sidebar: each choice is a link
that sets the list's own filter arguments, with how many rows it would show.

A choice is written as the filter arguments it sets (``{"status_equals": "draft"}``), so its
link is the URL the Add Filter form makes for the same filter (``?flt0_status_equals=draft``):
readable, bookmarkable, and combined with any other filter, the search, the sort and the page
size, which a click keeps. "All" takes the group's arguments away. Dates are written as the
days they are, in the user's time zone, as Django's date filters write them: a bookmarked
"Today" keeps showing that day.

The counts are facets, as Django's ``show_facets``: each says how many rows the list would
have after that click (the other filters applied), counted up to NARROWED_COUNT_CAP
("1,000+"), all in one statement, each from an index. A list that is not counted shows its
choices without counts: a searched one (as listing does not count a search: each count would
check every match against the table, 20 to 55 ms a choice at a million products for a common
word) and one with a filter too costly to count (listing.UNCOUNTED).
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from flask import current_app
from flask_babel import get_timezone, lazy_gettext
from flask_login import current_user

from ..extensions import db
from . import listing

Values = dict[str, str]  # filter argument (as in the URL, without flt<n>_) -> value


@dataclass(frozen=True)
class Choice:
    key: str  # the choice's name in the page (data-choice), the same in every language
    label: object  # a lazy translated string
    values: Callable[[], Values]  # the filter arguments it sets, worked out per request


@dataclass(frozen=True)
class QuickFilter:
    key: str
    title: object
    arguments: tuple[str, ...]  # what "All" takes away
    choices: tuple[Choice, ...]


@dataclass
class Link:
    key: str
    label: str
    url: str
    current: bool
    count: str | None = None


@dataclass
class Group:
    key: str
    title: str
    links: list[Link] = field(default_factory=list)  # "All" first


# --- the choices the views declare ---


def equals(key: str, title, argument: str, options) -> QuickFilter:
    """One choice per (value, label) of ``options``: ``argument`` equals that value."""
    choices = tuple(Choice(str(value), label, lambda value=value: {argument: str(value)}) for value, label in options)
    return QuickFilter(key, title, (argument,), choices)


def created(key: str, title, prefix: str) -> QuickFilter:
    """Today, the last 7 days (today included) and this month, as the user's calendar has
    them, through the ``<prefix>_from`` and ``<prefix>_to`` day filters (filters.LocalDateFrom)."""
    start, end = f"{prefix}_from", f"{prefix}_to"

    def days(first: Callable[[date], date], last: Callable[[date], date]):
        def values() -> Values:
            today = local_today()
            return {start: first(today).isoformat(), end: last(today).isoformat()}

        return values

    return QuickFilter(
        key,
        title,
        (start, end),
        (
            Choice("today", lazy_gettext("Today"), days(lambda d: d, lambda d: d)),
            Choice("week", lazy_gettext("Last 7 days"), days(lambda d: d - timedelta(days=6), lambda d: d)),
            Choice("month", lazy_gettext("This month"), days(lambda d: d.replace(day=1), _month_end)),
        ),
    )


def low_stock(key: str, title) -> QuickFilter:
    """The dashboard's low stock: active products with at most LOW_STOCK_THRESHOLD units,
    as the dashboard links to it. "All" takes the stock limit away and leaves "Active" as it is."""

    def values() -> Values:
        return {"stock_at_or_below": str(current_app.config["LOW_STOCK_THRESHOLD"]), "active_equals": "1"}

    return QuickFilter(key, title, ("stock_at_or_below",), (Choice("low", lazy_gettext("Low stock"), values),))


def created_by_me(key: str, title) -> QuickFilter:
    return QuickFilter(
        key,
        title,
        ("created_by_is",),
        (Choice("me", lazy_gettext("Me"), lambda: {"created_by_is": current_user.username}),),
    )


def local_today() -> date:
    return datetime.now(get_timezone()).date()


def _month_end(day: date) -> date:
    next_month = (day.replace(day=28) + timedelta(days=4)).replace(day=1)
    return next_month - timedelta(days=1)


# --- the sidebar of one list page ---


def sidebar(view, view_args) -> list[Group]:
    """The groups of ``view.quick_filters`` for the list ``view_args`` shows (Flask-Admin's
    parsed list arguments): links, which is current, and the counts."""
    if not view.quick_filters:
        return []
    by_argument = {argument: index for argument, (index, _) in (view._filter_args or {}).items()}
    active = [(view.get_filter_arg(index, view._filters[index]), value) for index, _, value in view_args.filters or ()]

    def filters_for(pairs) -> list[tuple]:
        return [(by_argument[a], str(view._filters[by_argument[a]].name), v) for a, v in pairs]

    groups, counted = [], []
    for quick in view.quick_filters:
        kept = [(a, v) for a, v in active if a not in quick.arguments]
        group = Group(quick.key, str(quick.title))
        group.links.append(
            Link(
                "all",
                str(lazy_gettext("All")),
                _url(view, view_args, filters_for(kept)),
                current=len(kept) == len(active),
            )
        )
        for choice in quick.choices:
            values = choice.values()
            chosen = [(a, v) for a, v in kept if a not in values] + list(values.items())
            filters = filters_for(chosen)
            group.links.append(
                Link(
                    choice.key,
                    _sentence(str(choice.label)),
                    _url(view, view_args, filters),
                    current=all((a, v) in active for a, v in values.items()),
                )
            )
            counted.append((group.links[-1], filters))
        groups.append(group)

    if view_args.search:
        return groups  # a searched list is not counted either (listing): each count would check every match
    queries = [view.get_list(0, None, False, None, filters, execute=False, page_size=0)[1] for _, filters in counted]
    counts = listing.count_each(db.session, queries)
    if counts is not None:
        for (link, _), count in zip(counted, counts, strict=True):
            link.count = str(count)
    return groups


def _sentence(label: str) -> str:
    """A label as a choice reads, with a capital: "draft" is "Draft" (a status label is also
    used inside sentences)."""
    return label[:1].upper() + label[1:]


def _url(view, view_args, filters) -> str:
    """The list with these filters, its search, sort and page size kept, from its first page."""
    return view._get_list_url(view_args.clone(page=None, filters=filters))
