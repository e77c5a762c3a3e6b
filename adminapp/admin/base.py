"""The secured ModelView every admin view derives from.

It holds, once: login and role checks on every endpoint (403 for a signed-in
user without the right), CSRF on every form, and every save, delete and bulk
action run as one unit of work (see unit_of_work: one commit, or a rollback
and a message).
"""

import json
import re
from functools import cached_property

from flask import Response, abort, flash, g, redirect, request, session
from flask_admin import expose
from flask_admin.babel import gettext as admin_gettext
from flask_admin.contrib.sqla import ModelView
from flask_admin.helpers import get_redirect_target
from flask_admin.model import typefmt
from flask_admin.model.base import ViewArgs
from flask_admin.model.template import BaseListRowAction, DeleteRowAction, EditRowAction
from flask_babel import gettext
from flask_login import current_user
from jinja2 import pass_context
from markupsafe import Markup, escape
from sqlalchemy import inspect

from ..domain import audit
from ..domain.deletion import DeletionPreview
from ..domain.errors import StaleVersion
from ..extensions import db
from ..formatting import csv_safe
from ..labels import record_label, record_subject, saved_message
from ..permissions import ADD, CHANGE, DELETE, METHOD_RIGHTS, VIEW, can
from ..redirects import local_path
from ..unit_of_work import Outcome, run_unit_of_work
from . import exports, listing
from .fields import AdminForm
from .formatters import bool_icon, bool_text
from .helpers import login_redirect, parse_id, without_nul
from .quick_filters import sidebar

REDIRECT_FIELDS = ("url", "url_if_refused")  # where a form may send the user next


def untranslated(text) -> str:
    """The English source of a lazy translated string (a plain string stays as it is)."""
    return str(getattr(text, "_args", (text,))[0])


def _unique(attribute) -> bool:
    """True when no two rows share the attribute's value (a key or a unique column)."""
    columns = getattr(getattr(attribute, "property", None), "columns", [])
    return len(columns) == 1 and bool(columns[0].primary_key or columns[0].unique)


def _whole_number_arg(name: str, default: int, minimum: int = 0, maximum: int = 2**31 - 1) -> int:
    """A whole number from the URL's ``name`` (``default`` when absent); 400 when it is not one in range."""
    value = request.args.get(name)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        abort(400)
    if not minimum <= number <= maximum:
        abort(400)
    return number


def _whole_number(value: str) -> int | None:
    """A whole number of 0 or more, as a URL writes it; None for anything else."""
    return int(value) if value.isascii() and value.isdigit() else None


def _shown(value: str) -> str:
    """A value from the URL as a message quotes it: short, and without control characters."""
    printable = "".join(c for c in value[:20] if c.isprintable())
    return f"\u201c{printable}\u201d" + ("\u2026" if len(value) > 20 else "")


class ConfirmDeleteRowAction(BaseListRowAction):
    """The list's delete icon, as in Django's admin: a link to the confirmation page,
    instead of Flask-Admin's POST button behind a JavaScript confirm()."""

    def __init__(self):
        super().__init__(title=admin_gettext("Delete Record"))  # Flask-Admin's own caption

    def render(self, context, row_id, row):
        # The names Flask-Admin's list template defines: its row_actions macros and get_url.
        link, get_url = context.resolve("row_actions").link, context.resolve("get_url")
        return link(self, get_url(".delete_view", id=row_id, url=context.resolve("return_url")), "fa fa-trash")


class OfferedRowAction(BaseListRowAction):
    """A row's icon shown only on the rows where its action can work (``offered(row)``)."""

    def __init__(self, action: BaseListRowAction, offered):
        super().__init__(title=action.title)
        self.action, self.offered = action, offered

    def render(self, context, row_id, row):
        return self.action.render(context, row_id, row) if self.offered(row) else ""


class SecuredModelView(ModelView):
    form_base_class = AdminForm  # CSRF token on create/edit, row delete and action forms
    create_template = "admin/adminapp/create.html"
    edit_template = "admin/adminapp/edit.html"
    details_template = "admin/adminapp/details.html"
    has_history = True  # a History page, as in Django's admin
    named_filter_urls = True
    can_set_page_size = True
    page_size = 50  # Django shows 100: back-office users page less with more rows
    page_size_options = (20, 50, 100)
    can_view_details = True
    column_type_formatters = {**typefmt.BASE_FORMATTERS, bool: bool_icon}
    column_type_formatters_detail = {**typefmt.DETAIL_FORMATTERS, bool: bool_text}
    # The right each bulk action needs; an action missing here is refused.
    action_rights = {"delete": DELETE}
    # Rights for a view's own @expose endpoints, beside permissions.METHOD_RIGHTS.
    extra_method_rights: dict[str, str] = {}
    # The one-click filters beside the list (quick_filters.QuickFilter), as Django's list_filter.
    quick_filters: tuple = ()

    # --- permissions, all read from permissions.ROLE_RIGHTS ---
    def has_right(self, right) -> bool:
        return can(current_user, self.endpoint, right)

    def is_accessible(self):
        return self.has_right(VIEW)

    def may_view(self, endpoint: str) -> bool:
        """Whether the user may open the pages of another view (for links to its records)."""
        return can(current_user, endpoint, VIEW)

    def inaccessible_callback(self, name, **kwargs):
        if not current_user.is_authenticated:
            return login_redirect()
        abort(403)

    def _handle_view(self, name, **kwargs):
        refused = super()._handle_view(name, **kwargs)
        if refused is not None:
            return refused
        if name == "action_view":
            right = self.action_rights.get(request.form.get("action"))
        else:
            # A view method listed in neither table is refused.
            right = self.extra_method_rights.get(name) or METHOD_RIGHTS.get(name)
        if right is None or not self.has_right(right):
            abort(403)
        # Flask-Admin redirects to `url` after a save or delete (a refused post goes back to
        # `url_if_refused`), and its own check lets `http:evil.example` through: only a path
        # on this site is accepted.
        for target in REDIRECT_FIELDS:
            back = request.values.get(target)
            if back and local_path(back) is None:
                abort(400)
        return None

    @property
    def can_create(self):
        return self.has_right(ADD)

    @property
    def can_edit(self):
        return self.has_right(CHANGE)

    @property
    def can_delete(self):
        return self.has_right(DELETE)

    @property
    def can_export(self):
        return self.has_right(VIEW)

    def is_action_allowed(self, name):
        right = self.action_rights.get(name)
        return right is not None and self.has_right(right)

    def get_one(self, id):
        """The record for a URL id, or None for a missing or malformed one (never a 500)."""
        record_id = parse_id(id)
        return None if record_id is None else db.session.get(self.model, record_id, options=self.get_one_options)

    get_one_options: tuple = ()

    @expose("/history/")
    def history_view(self):
        """The audit entries of one record, newest first (also after it was deleted)."""
        object_id = parse_id(request.args.get("id"))
        if object_id is None:
            flash(gettext("Record does not exist."), "error")
            return redirect(self.get_url(".index_view"))
        return self.render(
            "admin/adminapp/history.html",
            entries=audit.history(db.session, self.endpoint, object_id),
            record=self.get_one(object_id),
            object_type=self.endpoint,
            object_id=object_id,
        )

    # --- delete, as in Django's admin: a confirmation page first ---
    @expose("/delete/", methods=("GET", "POST"))
    def delete_view(self):
        """GET: what deleting the record would take with it, or why it is refused, and a
        button that confirms. POST: the delete itself (Flask-Admin's)."""
        if request.method == "POST":
            return super().delete_view()
        return_url = get_redirect_target() or self.get_url(".index_view")
        record = self.get_one(request.args.get("id"))
        if record is None:
            flash(gettext("Record does not exist."), "error")
            return redirect(return_url)
        return self.render(
            "admin/adminapp/delete.html",
            record=record,
            return_url=return_url,
            record_label=record_label(self.endpoint, record),
            preview=self.deletion_preview(record),
            delete_form=self.get_delete_form()(),
        )

    def on_model_delete(self, model):
        """The confirmation page sends the version it showed: a record changed since then is
        not deleted unseen (a POST without a version, from a script, is not checked)."""
        seen, current = request.form.get("version"), getattr(model, "version", None)
        if seen is not None and current is not None and seen != str(current):
            raise StaleVersion(
                gettext(
                    "%(record)s was changed after the confirmation page was opened, and was not deleted. "
                    "Look at it again, then delete it.",
                    record=record_label(self.endpoint, model),
                )
            )

    def deletion_preview(self, record) -> DeletionPreview:
        """What the confirmation page says; each view asks its domain module."""
        return DeletionPreview()

    def offers_change(self, record) -> bool:
        """Whether editing or deleting ``record`` can work: the pages offer neither otherwise
        (a posted transaction). The rules that refuse them stay in the domain."""
        return True

    # The list's column whose cell opens the record (Django links the first column).
    column_record_link: str | None = None

    @pass_context  # as Flask-Admin's: the list template passes its context
    def get_list_value(self, context, model, name):
        value = super().get_list_value(context, model, name)
        if name != self.column_record_link:
            return value
        url = self.record_url(model, url=context.resolve("return_url"))
        return Markup('<a href="{}">{}</a>').format(url, value) if url else value

    def get_list_row_actions(self):
        actions = []
        for action in super().get_list_row_actions():
            if isinstance(action, DeleteRowAction):
                action = ConfirmDeleteRowAction()
            if isinstance(action, EditRowAction | ConfirmDeleteRowAction):
                action = OfferedRowAction(action, self.offers_change)
            actions.append(action)
        return actions

    # --- the line editor's autocomplete ---
    LOOKUP_LIMIT = 50  # the most rows one lookup returns

    @expose("/ajax/lookup/")
    def ajax_lookup(self):
        """Flask-Admin's lookup with its paging checked: a limit is clamped to LOOKUP_LIMIT, an
        offset reaches no deeper than a list pages, anything else than such numbers is a 400."""
        offset = _whole_number_arg("offset", 0, maximum=listing.COUNT_CAP)
        limit = min(_whole_number_arg("limit", 10, minimum=1), self.LOOKUP_LIMIT)
        loader = self._form_ajax_refs.get(request.args.get("name"))
        if not loader:
            abort(404)
        rows = loader.get_list(request.args.get("query"), offset, limit)
        return Response(json.dumps([loader.format(row) for row in rows]), mimetype="application/json")

    # --- lists at scale: a stable order, paging within the cap, a cheap count (see listing) ---
    simple_list_pager = True  # Flask-Admin counts nothing itself: get_list counts, the cheap way

    def get_list(self, page, sort_column, sort_desc, search, filters, execute=True, page_size=None):
        """Flask-Admin's list query, with the id breaking ties (so paging is stable), paged no
        deeper than the listing cap, and counted as `listing.count_list` decides.

        A search that SQLite's search index can answer is counted by the index first. With at
        most NARROWED_COUNT_CAP matches, the index narrows the list (LIKE would read the whole
        table to find so few); with more, LIKE walking the sorted index fills a page soon."""
        # No text column holds NUL (PostgreSQL refuses it even in a LIKE pattern).
        filters = [(index, name, without_nul(value)) for index, name, value in filters or ()]
        page_size = self.page_size if page_size is None else page_size
        page = min(max(page or 0, 0), listing.last_page(page_size) if page_size else 0)
        pk = inspect(self.model).primary_key[0]
        indexed = matches = None
        if execute and search:
            indexed = listing.indexed_search(db.session, self.model, self.column_searchable_list, without_nul(search))
        if indexed is not None:
            matches = indexed.count(db.session)
            if matches <= listing.NARROWED_COUNT_CAP:
                search = indexed.rest
        # Flask-Admin searches CAST(column AS TEXT) ILIKE: the search is ours (see apply_search).
        _, query = super().get_list(0, sort_column, sort_desc, None, filters, execute=False, page_size=0)
        query = self.apply_search(query, search)
        if indexed is not None and matches <= listing.NARROWED_COUNT_CAP:
            query = query.filter(pk.in_(indexed.matching))
        if sort_column is not None and not _unique(getattr(self.model, sort_column, None)):
            query = query.order_by(pk.desc() if sort_desc else pk)
        if not execute:
            return None, query
        paged = listing.page_query(db.session, query)
        rows = (paged.limit(page_size).offset(page * page_size) if page_size else paged).all()
        if indexed is not None and not (indexed.rest or filters):  # the index's count is the list's
            return listing.ListCount.narrowed(matches), rows
        whole = page == 0 and (not page_size or len(rows) < page_size)  # the page holds the whole list
        return listing.count_list(db.session, query, rows, whole, bool(search or indexed), bool(filters)), rows

    def _get_list_extra_args(self):
        """The list's arguments from the URL, the page kept within the depth paging reaches."""
        args = super()._get_list_extra_args()
        deepest = listing.last_page(self.get_safe_page_size(args.page_size))
        return args.clone(page=min(max(args.page or 0, 0), deepest))

    @expose("/")
    def index_view(self):
        for message in self.list_arg_problems():
            flash(message, "error")
        page_size = self.get_safe_page_size(request.args.get("page_size", 0, type=int))
        if request.args.get("page", 0, type=int) > listing.last_page(page_size):
            flash(listing.beyond_cap_message(), "info")
        return super().index_view()

    def quick_filter_groups(self, filters, search, sort, sort_desc, page_size, extra_args) -> list:
        """The sidebar of one-click filters for the list the page shows (the list template's
        own variables: ``active_filters``, ``search``, ``sort_column``...)."""
        shown = ViewArgs(None, page_size, sort, sort_desc, search, filters, extra_args)
        return sidebar(self, shown)

    def list_arg_problems(self) -> list[str]:
        """What is wrong with the numbers in the list's URL (page, page_size, sort, desc), in
        words: each such value is then left out (Flask-Admin's default), never an error."""
        args, problems = request.args, []
        if "page" in args and _whole_number(args["page"]) is None:
            problems.append(
                gettext("%(value)s is not a page number: the first page is shown.", value=_shown(args["page"]))
            )
        if "page_size" in args and _whole_number(args["page_size"]) not in self.page_size_options:
            problems.append(
                gettext(
                    "Pages of %(value)s rows are not offered: pages of %(size)s rows are shown (choose %(sizes)s).",
                    value=_shown(args["page_size"]),
                    size=self.page_size,
                    sizes=", ".join(map(str, self.page_size_options)),
                )
            )
        if "sort" in args:
            column = self._get_column_by_idx(_whole_number(args["sort"]))
            if column is None or column[0] not in self._sortable_columns:
                problems.append(
                    gettext(
                        "There is no column %(value)s to sort by: the usual order is used.", value=_shown(args["sort"])
                    )
                )
        if args.get("desc", "1") not in ("0", "1"):
            problems.append(
                gettext(
                    "%(value)s is not an order (1 is descending): the usual order is used.", value=_shown(args["desc"])
                )
            )
        return problems

    def apply_search(self, query, search):
        """Every word must match one of the searchable columns (see listing.term_condition)."""
        if not (search and self.column_searchable_list):
            return query
        columns = [getattr(self.model, name) for name in self.column_searchable_list]
        for term in without_nul(search).split():
            query = query.filter(listing.term_condition(db.session, columns, term))
        return query

    # --- CSV exports: streamed (see exports), in English, of what the list shows ---
    @expose("/export/<export_type>/")
    def export(self, export_type):
        """The list (its search, filters and order) as CSV, read from a server-side cursor."""
        if export_type not in self.export_types or not self.can_export:
            flash(admin_gettext("Permission denied."), "error")
            return redirect(get_redirect_target() or self.get_url(".index_view"))
        return exports.stream_csv(
            self.get_export_name("csv"),
            self.export_header(),
            self.export_query(self.list_query()).statement,
            self.export_values,
        )

    def list_query(self):
        """The list's query for the request's search, filters and sort, not paged."""
        args = self._get_list_extra_args()
        column = self._get_column_by_idx(args.sort)
        return self.get_list(
            0, column[0] if column else None, args.sort_desc, args.search, args.filters, execute=False, page_size=0
        )[1]

    def export_query(self, query):
        """Only the exported columns: rows, not ORM objects, stream fast and in little memory."""
        names = [name for name, _ in self.get_export_columns()]
        return query.enable_eagerloads(False).with_entities(*(getattr(self.model, name) for name in names))

    def export_header(self) -> list[str]:
        # CSV headers stay English whatever the user's language: exports are machine-readable
        # and scripts read them by column name. (Values are exported unformatted, too.)
        return [untranslated(label) for _, label in self.get_export_columns()]

    def export_values(self, row) -> list:
        """Flask-Admin's get_export_value for plain columns (no dotted names, no choices), with
        what it looks up per cell looked up once: a million rows have ten million cells."""
        values = []
        for name, formatter in self._export_formatters:
            value = formatter(self, None, row, name) if formatter else getattr(row, name)
            type_formatter = self.column_type_formatters_export.get(type(value))
            values.append(csv_safe(type_formatter(self, value, name) if type_formatter else value))
        return values

    @cached_property
    def _export_formatters(self) -> list[tuple]:
        formatters = self.column_formatters_export or {}
        return [(name, formatters.get(name)) for name, _ in self.get_export_columns()]

    # --- saves and deletes: Flask-Admin's steps, committed by the unit of work ---
    def create_model(self, form):
        def create():
            model = self.build_new_instance()
            form.populate_obj(model)
            db.session.add(model)
            self._on_model_change(form, model, True)
            return model

        outcome = self.saving(create)
        if not outcome.done:
            return False
        self.after_model_change(form, outcome.result, True)
        return outcome.result

    def update_model(self, form, model):
        def update():
            form.populate_obj(model)
            self._on_model_change(form, model, False)

        if not self.saving(update, model).done:
            return False
        self.after_model_change(form, model, False)
        return True

    def delete_model(self, model):
        def delete():
            self.on_model_delete(model)
            db.session.flush()
            db.session.delete(model)

        label = record_subject(self.endpoint, model)  # read while the record is still there
        if not self.saving(delete, model).done:
            return False
        self.after_model_delete(model)
        g.saved_message = saved_message("deleted", label)
        return True

    # --- a save's message names the record and links to it (Django's admin does) ---
    def after_model_change(self, form, model, is_created):
        super().after_model_change(form, model, is_created)
        g.saved_message = saved_message("added" if is_created else "changed", self.record_link(model))

    def record_url(self, record, **args) -> str | None:
        """Where a record opens: its edit page for those who may change it, else its details."""
        if self.can_edit and self.offers_change(record):
            return self.get_url(".edit_view", id=record.id, **args)
        if self.can_view_details:
            return self.get_url(".details_view", id=record.id, **args)
        return None

    def record_link(self, record) -> Markup:
        """The record's name to begin a sentence, linked to where it opens."""
        label, url = record_subject(self.endpoint, record), self.record_url(record)
        return Markup('<a href="{}" class="alert-link">{}</a>').format(url, label) if url else escape(label)

    def _run_view(self, fn, *args, **kwargs):
        """Flask-Admin's view, its "Record was successfully saved." replaced by the message
        naming the record (it flashes that one right after the save)."""
        flashed_before = len(session.get("_flashes", []))
        response = super()._run_view(fn, *args, **kwargs)
        named = g.pop("saved_message", None)
        if named is not None:
            flashes = list(session.get("_flashes", []))
            generic = next((i for i in range(flashed_before, len(flashes)) if flashes[i][0] == "success"), None)
            if generic is not None:
                flashes[generic] = ("success", named)
                session["_flashes"] = flashes
        return response

    def saving(self, save, record=None) -> Outcome:
        """A save or a delete as the request's unit of work, run again when the database was
        busy (the form then applied afresh to the record read again); on failure, the form is
        shown again with the message."""
        return run_unit_of_work(
            save, gettext("Nothing was saved"), where=self.endpoint, reread=() if record is None else (record,)
        )

    # --- filter URLs and CSV headers do not depend on the user's language ---
    def get_filter_arg(self, index, flt):
        """Flask-Admin's named filter argument (``price_at_least``), always from the English
        name and operation: a bookmarked or linked filtered list works in every language.
        (Flask-Admin untranslates the operation but formats the name in the current locale.)"""
        if not self.named_filter_urls:
            return str(index)
        name = f"{untranslated(flt.name)} {untranslated(flt.operation())}".lower()
        return re.sub(" +", "_", re.sub("[^a-z0-9 ]", "", name))  # Flask-Admin's own rule

    # --- bulk actions: parse ids, run one operation, commit once ---
    def run_action(self, operation, ids, done_message):
        """Run ``operation(session, ids)`` as the request's single transaction; on success,
        flash ``done_message(count)``."""
        row_ids = [parse_id(i) for i in ids]
        if None in row_ids:
            flash(gettext("Invalid selection."), "error")
            return
        if not row_ids:
            flash(gettext("No rows selected."), "error")
            return
        outcome = run_unit_of_work(
            lambda: operation(db.session, row_ids), gettext("Nothing was changed"), where=self.endpoint
        )
        if outcome.done:
            flash(done_message(outcome.result), "success")
