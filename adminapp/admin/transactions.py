"""Transactions: drafts edited inline, posted and voided through the sales operations."""

import re

from flask import current_app, flash, g, jsonify, redirect, request, session
from flask_admin import expose
from flask_admin.actions import action
from flask_admin.contrib.sqla.ajax import QueryAjaxModelLoader
from flask_admin.contrib.sqla.fields import InlineModelFormList
from flask_admin.contrib.sqla.filters import BaseSQLAFilter, FilterEqual
from flask_admin.contrib.sqla.form import InlineModelConverter
from flask_admin.form import RenderTemplateWidget
from flask_admin.helpers import get_redirect_target
from flask_admin.model.ajax import DEFAULT_PAGE_SIZE
from flask_admin.model.form import InlineFormAdmin
from flask_babel import gettext, lazy_gettext, ngettext
from flask_login import current_user
from markupsafe import Markup
from sqlalchemy import and_, false, select, true
from sqlalchemy.orm import aliased, selectinload
from wtforms import TextAreaField
from wtforms.validators import InputRequired, Length, NumberRange, Optional

from ..domain import accounts, catalog, sales
from ..domain.errors import DomainError, Immutable, InsufficientStock, InvalidTransaction
from ..extensions import db
from ..formatting import local_time, money, number
from ..forms import Form, InlineForm
from ..labels import STATUS_LABELS, TRANSACTION_FIELDS, status_label
from ..models import Product, Transaction, TransactionProduct, User
from ..permissions import CHANGE, DELETE, VIEW
from ..unit_of_work import run_unit_of_work
from ..vocabularies import TransactionStatus
from .base import SecuredModelView
from .exports import csv_value, stream_csv
from .fields import LocaleIntegerField, VersionField
from .filters import LocalDateFrom, LocalDateTo
from .helpers import parse_id, without_nul
from .listing import UNCOUNTED, term_condition
from .quick_filters import created, created_by_me, equals
from .validators import blank_to_none, plain_text

MAX_QTY = 1_000_000
CHOICE_DETAILS = " · "  # between a product's name and its price and stock in the autocomplete


class ActiveProductLoader(QueryAjaxModelLoader):
    """Autocomplete over active products by SKU or name. An id typed into the POST by
    hand is still loaded; `sales.save_draft` refuses it when the product is inactive."""

    def __init__(self):
        super().__init__(
            "product",
            db,
            Product,
            fields=["sku", "name"],
            page_size=20,
            placeholder=lazy_gettext("Choose a product"),  # Flask-Admin's says "Please select model"
        )

    def get_query(self):
        return super().get_query().filter(Product.is_active)

    def get_list(self, term, offset=0, limit=DEFAULT_PAGE_SIZE):
        """Every word must be in the SKU or the name, matched on the bare columns: the trigram
        indexes then find a rare word at once, where Flask-Admin's CAST scanned the catalog."""
        query = self.get_query()
        for word in without_nul(term).split():
            query = query.filter(term_condition(db.session, [Product.sku, Product.name], word))
        return query.order_by(Product.sku).offset(offset).limit(limit).all()

    def get_one(self, pk):
        product_id = parse_id(pk)
        return None if product_id is None else super().get_one(product_id)

    def format(self, model):
        if model is None:
            return None
        # SKU, name, price and stock: enough to choose without opening the product. The
        # editor shows the part before the first CHOICE_DETAILS once chosen (price and stock
        # have their own columns there).
        details = gettext("%(price)s, %(stock)s in stock", price=money(model.price), stock=number(model.stock))
        return model.id, f"{model.sku} — {model.name}{CHOICE_DETAILS}{details}"


class LineTable(InlineModelFormList):
    """The lines as one table, one row each (Django's TabularInline), instead of a card per line."""

    widget = RenderTemplateWidget("admin/transaction/line_table.html")


class LineConverter(InlineModelConverter):
    inline_field_list_type = LineTable


class LineInline(InlineFormAdmin):
    form_base_class = InlineForm  # validator messages in the user's language
    form_columns = ["id", "product", "product_qty"]
    form_label = TRANSACTION_FIELDS["lines"]
    column_labels = {"product": lazy_gettext("Product"), "product_qty": lazy_gettext("Quantity")}
    form_ajax_refs = {"product": ActiveProductLoader()}
    form_args = {
        "product": {"validators": [InputRequired()]},
        "product_qty": {
            "validators": [InputRequired(), NumberRange(min=1, max=MAX_QTY)],
        },
    }
    form_overrides = {"product_qty": LocaleIntegerField}


class ContainsProduct(BaseSQLAFilter):
    """Transactions with a line whose product has every word in its SKU or name."""

    def apply(self, query, value, alias=None):
        words = (term_condition(db.session, [Product.sku, Product.name], word) for word in value.split())
        matching = and_(true(), *words)
        # Counting what a common word matches would read every line that sells it, a second
        # at a million sales: such a list pages without a count.
        return query.filter(Transaction.lines.any(TransactionProduct.product.has(matching))).execution_options(
            **UNCOUNTED
        )

    def operation(self):
        return lazy_gettext("contains")


class PostedTo(LocalDateTo):
    """Posted on or before a day. A sale is posted after it was created (a rule the database
    checks), so it was created before that day's end too: the list then walks its created_at
    index from that day back, not from today."""

    def apply(self, query, value, alias=None):
        return super().apply(query, value, alias).filter(Transaction.created_at < value)


class CreatedBy(BaseSQLAFilter):
    def validate(self, value):
        return True  # any name: one without an account has no transactions

    def clean(self, value):
        # The user's id, looked up first: compared with a known id, the list reads that user's
        # transactions from an index, newest first, however few or many there are. The name
        # is found as sign-in finds it (in any case or width).
        # Looked up once a request: the sidebar's counts apply the filter again (quick_filters).
        known = g.setdefault("created_by_ids", {})
        if value not in known:
            user = accounts.find_user(db.session, value)
            known[value] = user.id if user is not None else None
        return known[value]

    def apply(self, query, value, alias=None):
        return query.filter(Transaction.created_by_id == value if value is not None else false())

    def operation(self):
        return lazy_gettext("is")


class VoidForm(Form):
    reason = TextAreaField(lazy_gettext("Reason"), validators=[InputRequired(), Length(max=2000), plain_text])


def _status_badge(view, context, model, name):
    colour = {
        TransactionStatus.DRAFT: "secondary",
        TransactionStatus.POSTED: "success",
        TransactionStatus.VOID: "danger",
    }[model.status]
    return Markup('<span class="badge badge-{}">{}</span>').format(colour, status_label(model.status))


class TransactionView(SecuredModelView):
    list_template = "admin/transaction/list.html"
    create_template = "admin/transaction/create.html"
    edit_template = "admin/transaction/edit.html"
    details_template = "admin/transaction/details.html"

    column_list = ["id", "created_at", "created_by", "status", "line_count", "total"]
    column_record_link = "id"
    column_labels = TRANSACTION_FIELDS
    column_default_sort = [("created_at", True), ("id", True)]
    column_sortable_list = ["id", "created_at", "status", "line_count", "total"]
    column_searchable_list = ["id", "note"]  # a number finds that id exactly: 2 (or #2) is not 12
    column_filters = [
        FilterEqual(
            Transaction.status,
            lazy_gettext("Status"),
            options=[(status, STATUS_LABELS[status]) for status in TransactionStatus],
        ),
        LocalDateFrom(Transaction.created_at, lazy_gettext("Created")),
        LocalDateTo(Transaction.created_at, lazy_gettext("Created")),
        CreatedBy(Transaction.created_by_id, lazy_gettext("Created by")),
        ContainsProduct(Transaction.id, lazy_gettext("Product")),
        LocalDateFrom(Transaction.posted_at, lazy_gettext("Posted")),
        PostedTo(Transaction.posted_at, lazy_gettext("Posted")),
    ]
    quick_filters = (
        equals("status", lazy_gettext("Status"), "status_equals", STATUS_LABELS.items()),
        created("created", lazy_gettext("Created"), "created"),
        created_by_me("created_by", lazy_gettext("Created by")),
    )
    column_formatters = {
        "created_at": lambda v, c, m, n: local_time(m.created_at),
        "total": lambda v, c, m, n: money(m.total),
        "status": _status_badge,
    }
    column_details_list = [
        "id",
        "status",
        "note",
        "created_at",
        "created_by",
        "posted_at",
        "posted_by",
        "voided_at",
        "voided_by",
        "void_reason",
        "total",
        "version",
    ]
    column_formatters_detail = {
        "created_at": lambda v, c, m, n: local_time(m.created_at),
        "posted_at": lambda v, c, m, n: local_time(m.posted_at),
        "voided_at": lambda v, c, m, n: local_time(m.voided_at),
        "total": lambda v, c, m, n: money(m.total),
        "status": _status_badge,
    }
    export_types = ["csv"]

    form_columns = ["note", "lines", "version"]
    form_extra_fields = {"version": VersionField()}
    form_args = {"note": {"filters": [blank_to_none], "validators": [Optional(), Length(max=2000), plain_text]}}
    form_overrides = {"note": TextAreaField}
    inline_models = [LineInline(TransactionProduct)]
    inline_model_form_converter = LineConverter  # the lines drawn as a table

    action_rights = {"post": CHANGE, "delete": DELETE}
    extra_method_rights = {"void_view": CHANGE, "export_lines": VIEW, "line_products": VIEW}
    get_one_options = (selectinload(Transaction.lines).joinedload(TransactionProduct.product),)
    choice_details = CHOICE_DETAILS  # for the editor's script
    statuses = TransactionStatus  # for the templates: model.status == admin_view.statuses.DRAFT

    def offers_change(self, record) -> bool:
        return record.status == TransactionStatus.DRAFT  # posted and void are final

    # --- the unit of work: hooks delegate to sales, the view commits once ---
    def on_model_change(self, form, model, is_created):
        if not is_created:
            catalog.ensure_current(model, form.version.data, "transaction")
        try:
            sales.save_draft(db.session, model, current_user._get_current_object(), is_created)
        except InvalidTransaction as exc:
            _show_on_lines(form, exc.line_problems)
            raise

    def deletion_preview(self, record):
        return sales.deletion_preview(record)

    def on_model_delete(self, model):
        super().on_model_delete(model)
        sales.ensure_deletable(model)

    def create_model(self, form):
        return super().create_model(form) or self._reload_products_after_refusal()

    def update_model(self, form, model):
        return super().update_model(form, model) or self._reload_products_after_refusal()

    def _reload_products_after_refusal(self):
        # The rollback expired the products the form shows: reload them in one query, or
        # showing the form again would cost a SELECT per line.
        g.prefetched_products = sales.prefetch_products(db.session, _posted_product_ids())
        return False

    def validate_form(self, form):
        # Load every product the form names in one query, so the lines' lookups hit the
        # session's identity map instead of costing one SELECT per line.
        g.prefetched_products = sales.prefetch_products(db.session, _posted_product_ids())
        return super().validate_form(form) and (not hasattr(form, "lines") or _no_repeated_line_ids(form))

    @expose("/new/", methods=("GET", "POST"))
    def create_view(self):
        return self._refuse_too_many_lines() or super().create_view()

    @expose("/edit/", methods=("GET", "POST"))
    def edit_view(self):
        refused = self._refuse_too_many_lines()
        if refused:
            return refused
        txn = self.get_one(request.args.get("id"))
        if txn is not None and txn.status != TransactionStatus.DRAFT:
            flash(
                gettext(
                    "Transaction #%(id)s is %(status)s: it is read-only.", id=txn.id, status=status_label(txn.status)
                ),
                "warning",
            )
            return redirect(self.get_url(".details_view", id=txn.id))
        return super().edit_view()

    def _refuse_too_many_lines(self):
        """A POST with more lines than MAX_TRANSACTION_LINES is refused from the fields' names
        alone, before a form is built for each line (10,000 lines took 30 s and ended in a
        500): the form is shown again, as stored, with the reason."""
        if request.method != "POST":
            return None
        most = current_app.config["MAX_TRANSACTION_LINES"]
        kept, sent = _posted_line_counts()
        if kept <= most and sent <= 2 * most:  # lines removed on the way are sent too
            return None
        flash(
            gettext(
                "A transaction has at most %(max)s lines, and this form sent %(count)s. Nothing was "
                "saved: split the sale into several transactions.",
                max=most,
                count=kept,
            ),
            "error",
        )
        return redirect(request.full_path)

    # --- post and void ---
    @action("post", lazy_gettext("Post"), lazy_gettext("Post the selected drafts? Their stock is taken."))
    def action_post(self, ids):
        """Each transaction is posted all-or-nothing in its own database transaction."""
        user = current_user._get_current_object()
        txn_ids = {parse_id(i) for i in ids}
        if None in txn_ids or not txn_ids:
            flash(gettext("Invalid selection."), "error")
            return
        for txn_id in sorted(txn_ids):

            def post_it(txn_id=txn_id):
                txn = db.session.get(Transaction, txn_id)
                if txn is None:
                    raise DomainError(gettext("Transaction #%(id)s does not exist.", id=txn_id))
                sales.post(db.session, txn, user)

            outcome = run_unit_of_work(
                post_it, gettext("Transaction #%(id)s was not posted", id=txn_id), where=self.endpoint
            )
            if outcome.done:
                flash(gettext("Transaction #%(id)s posted.", id=txn_id), "success")
            elif isinstance(outcome.error, InsufficientStock) and self.posted_from_its_page(txn_id):
                # The page the user goes back to marks the short lines (a post from the list
                # only reports: its transactions are not on screen).
                _remember_refused_lines(txn_id, outcome.error.line_problems)
        # A draft's post refused: back to the editor it came from, its short lines marked. (A
        # transaction posted meanwhile is no longer editable: on to its details.)
        still_draft = not outcome.done and not isinstance(outcome.error, Immutable)
        refused = len(txn_ids) == 1 and still_draft and get_redirect_target("url_if_refused")
        return redirect(refused) if refused else None

    def posted_from_its_page(self, txn_id) -> bool:
        """Whether the post came from the transaction's editor or details page, where it goes back."""
        return "url_if_refused" in request.form or request.form.get("url") == self.get_url(".details_view", id=txn_id)

    def refused_lines(self, txn_id) -> dict[int, str]:
        """{product id: why} for the lines of the transaction a post just refused, once: the
        page that shows it marks those lines (as flash() shows a message once)."""
        refused = session.get(_REFUSED_LINES) or {}
        if str(txn_id) not in refused:
            return {}
        mine = refused.pop(str(txn_id))
        if refused:
            session[_REFUSED_LINES] = refused
        else:
            session.pop(_REFUSED_LINES)
        return {int(k): v for k, v in mine.items()}

    @action("delete", lazy_gettext("Delete"), lazy_gettext("Delete the selected drafts?"))
    def action_delete(self, ids):
        self.run_action(
            sales.delete_drafts, ids, lambda n: ngettext("%(num)s draft deleted.", "%(num)s drafts deleted.", n)
        )

    @expose("/void/", methods=("GET", "POST"))
    def void_view(self):
        txn_id = parse_id(request.args.get("id"))
        txn = db.session.get(Transaction, txn_id) if txn_id else None  # get_one would load lines not shown here
        if txn is None:
            flash(gettext("That transaction does not exist."), "error")
            return redirect(self.get_url(".index_view"))
        form = VoidForm()
        if form.validate_on_submit():
            outcome = run_unit_of_work(
                lambda: sales.void(
                    db.session,
                    db.session.get(Transaction, txn_id),
                    current_user._get_current_object(),
                    form.reason.data,
                ),
                gettext("Transaction #%(id)s was not voided", id=txn_id),
                where=self.endpoint,
            )
            if outcome.done:  # txn_id: reading txn.id now would reload the committed transaction
                flash(gettext("Transaction #%(id)s voided; its stock was put back.", id=txn_id), "success")
                return redirect(self.get_url(".details_view", id=txn_id))
        return self.render("admin/transaction/void.html", form=form, txn=txn)

    # --- helpers for the editor and the auditors ---
    @expose("/line-products/")
    def line_products(self):
        """Price and stock of the products the editor's lines name: `?id=1` ->
        {"1": {"price": "10.50", "stock": 4, "stock_text": "4"}}."""
        ids = [i for i in (parse_id(v) for v in request.args.getlist("id")) if i is not None]
        ids = ids[: current_app.config["MAX_TRANSACTION_LINES"]]
        rows = (
            db.session.execute(select(Product.id, Product.price, Product.stock).where(Product.id.in_(ids)))
            if ids
            else []
        )
        return jsonify(
            {
                str(pid): {"price": f"{price:.2f}", "stock": stock, "stock_text": number(stock)}
                for pid, price, stock in rows
            }
        )

    # CSV headers and values stay English and unformatted whatever the user's language:
    # exports are machine-readable.
    def export_query(self, query):
        """Transactions with the names of who created, posted and voided them."""
        created, posted, voided = aliased(User), aliased(User), aliased(User)
        return (
            query.enable_eagerloads(False)
            .outerjoin(created, Transaction.created_by_id == created.id)
            .outerjoin(posted, Transaction.posted_by_id == posted.id)
            .outerjoin(voided, Transaction.voided_by_id == voided.id)
            .with_entities(
                Transaction.id,
                Transaction.created_at,
                created.username,
                Transaction.status,
                Transaction.note,
                Transaction.line_count,
                Transaction.total,
                Transaction.posted_at,
                posted.username,
                Transaction.voided_at,
                voided.username,
                Transaction.void_reason,
            )
        )

    def get_export_name(self, export_type="csv"):
        return "transactions.csv"

    def export_header(self):
        return [
            "id",
            "created_at",
            "created_by",
            "status",
            "note",
            "lines",
            "total",
            "posted_at",
            "posted_by",
            "voided_at",
            "voided_by",
            "void_reason",
        ]

    def export_values(self, row):
        return [csv_value(value) for value in row]

    @expose("/export-lines/")
    def export_lines(self):
        """One CSV row per line of the transactions the list shows (search and filters honoured)."""
        query = (
            self.list_query()
            .enable_eagerloads(False)
            .join(TransactionProduct, TransactionProduct.transaction_id == Transaction.id)
            .join(Product, Product.id == TransactionProduct.product_id)
            .order_by(TransactionProduct.id)
            .with_entities(
                Transaction.id,
                Transaction.created_at,
                Transaction.status,
                Product.sku,
                Product.name,
                TransactionProduct.product_qty,
                TransactionProduct.unit_price,
            )
        )
        header = ["transaction_id", "date", "status", "sku", "product_name", "qty", "unit_price", "line_total"]

        def line_values(row):
            *head, qty, price = row
            line_total = None if price is None else price * qty
            return [csv_value(v) for v in (*head, qty, price, line_total)]

        return stream_csv("transaction_lines.csv", header, query.statement, line_values)


def _show_on_lines(form, line_problems: dict[int, str]) -> None:
    """Each line a rule refused gets the reason under its product, as in Django's inline
    formsets; the whole message stays at the top of the form too."""
    for entry in form.lines.entries:
        product = entry.form.product.data
        if product is not None and product.id in line_problems and not form.lines.should_delete(entry):
            entry.form.product.errors = [*entry.form.product.errors, line_problems[product.id]]


_REFUSED_LINES = "refused_lines"


def _remember_refused_lines(txn_id: int, line_problems: dict[int, str]) -> None:
    refused = session.get(_REFUSED_LINES, {})
    refused[str(txn_id)] = {str(k): v for k, v in line_problems.items()}
    session[_REFUSED_LINES] = refused


_LINE_FIELD = re.compile(r"(del-)?lines-(\d+)(?:-|$)")


def _posted_line_counts() -> tuple[int, int]:
    """The lines a POST keeps and the line entries it sends (kept ones and removed ones),
    counted from the fields' names: ``lines-<n>-...`` and ``del-lines-<n>``."""
    entries, removed = set(), set()
    for name in request.form.keys():
        match = _LINE_FIELD.match(name)
        if match:
            (removed if match.group(1) else entries).add(match.group(2))
    return len(entries - removed), len(entries | removed)


def _posted_product_ids() -> list[int]:
    values = (v for k, v in request.form.items() if k.startswith("lines-") and k.endswith("-product"))
    return [i for i in map(parse_id, values) if i is not None]


def _no_repeated_line_ids(form) -> bool:
    seen = set()
    for entry in form.lines.entries:
        line_id = entry.form.id.data
        if line_id and line_id in seen:
            flash(gettext("Line %(id)s was sent twice; reload the transaction and try again.", id=line_id), "error")
            return False
        seen.add(line_id)
    return True
