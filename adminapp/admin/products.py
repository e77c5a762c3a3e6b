from decimal import Decimal

from flask import flash, redirect, request
from flask_admin import expose
from flask_admin.actions import action
from flask_admin.helpers import get_redirect_target
from flask_babel import gettext, lazy_gettext, ngettext
from flask_login import current_user
from wtforms import fields
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional, StopValidation

from ..domain import catalog, stock
from ..domain.errors import InsufficientStock
from ..extensions import db
from ..formatting import local_time, money, number
from ..labels import MOVEMENT_KIND_LABELS, PRODUCT_FIELDS
from ..models import Product
from ..permissions import CHANGE, DELETE
from ..unit_of_work import run_unit_of_work
from ..vocabularies import MovementKind
from .base import SecuredModelView
from .fields import AdminForm, LocaleDecimalField, LocaleIntegerField, ShownIntegerField, VersionField
from .filters import AtLeast, AtMost, IntAtOrBelow, LocalDateTo, RecentLocalDateFrom
from .helpers import parse_id
from .quick_filters import created, equals, low_stock
from .validators import Regexp, blank_to_none, cents, finite_decimal, plain_text, strip

MAX_PRICE = Decimal("9999999999.99")  # NUMERIC(12,2)
MAX_STOCK = 2**31 - 1  # a 32-bit INTEGER column


class AdjustForm(AdminForm):
    """Goods received, or a count corrected, for one product (the stock ledger's receipt and
    adjustment movements)."""

    kind = fields.SelectField(
        lazy_gettext("Kind"),
        choices=[fields.SelectChoice(kind.value, MOVEMENT_KIND_LABELS[kind]) for kind in stock.MANUAL_KINDS],
        default=MovementKind.RECEIPT.value,
        description=lazy_gettext("A receipt adds the goods received; an adjustment corrects the count either way."),
    )
    quantity = LocaleIntegerField(
        lazy_gettext("Quantity"),
        validators=[InputRequired()],
        description=lazy_gettext("Units: positive adds stock; negative (adjustments only) takes it away."),
    )
    reason = fields.TextAreaField(
        lazy_gettext("Reason"),
        filters=[strip, blank_to_none],
        validators=[Length(max=2000), plain_text],
        description=lazy_gettext("Required for an adjustment: a count correction, breakage, loss…"),
    )
    reference = fields.StringField(
        lazy_gettext("Reference"),
        filters=[strip, blank_to_none],
        validators=[Length(max=200), plain_text],
        description=lazy_gettext("Optional, e.g. the supplier's delivery note number."),
    )

    def validate_quantity(self, field):
        problem = stock.quantity_problem(self.kind.data, field.data)
        if problem:
            raise StopValidation(problem)

    def validate_reason(self, field):
        problem = stock.reason_problem(self.kind.data, field.data)
        if problem:
            raise StopValidation(problem)


class ProductView(SecuredModelView):
    list_template = "admin/adminapp/list.html"
    edit_template = "admin/product/edit.html"
    details_template = "admin/product/details.html"
    column_list = ["sku", "name", "price", "stock", "is_active"]
    column_record_link = "sku"
    column_labels = PRODUCT_FIELDS
    column_default_sort = [("sku", False)]  # unique, so paging is stable
    column_sortable_list = ["sku", "name", "price", "stock", "is_active"]
    column_searchable_list = ["sku", "name"]
    column_filters = [
        "is_active",
        AtLeast(Product.price, lazy_gettext("Price")),
        AtMost(Product.price, lazy_gettext("Price")),
        IntAtOrBelow(Product.stock, lazy_gettext("Stock")),
        RecentLocalDateFrom(Product.created_at, lazy_gettext("Created")),
        LocalDateTo(Product.created_at, lazy_gettext("Created")),
    ]
    quick_filters = (
        equals(
            "active",
            PRODUCT_FIELDS["is_active"],
            "active_equals",
            [("1", lazy_gettext("Yes")), ("0", lazy_gettext("No"))],
        ),
        low_stock("stock", lazy_gettext("Stock")),
        created("created", lazy_gettext("Created"), "created"),
    )
    column_details_list = [
        "id",
        "sku",
        "name",
        "description",
        "price",
        "stock",
        "is_active",
        "created_at",
        "updated_at",
        "version",
    ]
    column_formatters = {
        "price": lambda view, context, model, name: money(model.price),
        "created_at": lambda view, context, model, name: local_time(model.created_at),
        "updated_at": lambda view, context, model, name: local_time(model.updated_at),
    }
    column_export_list = [
        "id",
        "sku",
        "name",
        "description",
        "price",
        "stock",
        "is_active",
        "created_at",
        "updated_at",
    ]
    column_formatters_export = {"price": lambda view, context, model, name: f"{model.price:.2f}"}
    export_types = ["csv"]

    form_columns = ["sku", "name", "description", "price", "stock", "is_active", "version"]
    form_extra_fields = {"version": VersionField()}
    form_overrides = {
        "description": fields.TextAreaField,
        "price": LocaleDecimalField,
        "stock": LocaleIntegerField,
    }
    # Flask-Admin adds each column's InputRequired and Length(max=...) itself.
    form_args = {  # labels: column_labels
        "sku": {
            "description": lazy_gettext("The unique stock-keeping code, e.g. KOPI-250G."),
            "filters": [strip],
            "validators": [
                DataRequired(),
                plain_text,
                Regexp(
                    r"^[A-Za-z0-9][A-Za-z0-9._\-/]*$",
                    message=lazy_gettext("Use letters, digits and . _ - / only, starting with a letter or digit."),
                ),
            ],
        },
        "name": {"filters": [strip], "validators": [DataRequired(), plain_text]},
        "description": {"filters": [blank_to_none], "validators": [Optional(), Length(max=5000), plain_text]},
        "price": {
            "description": lazy_gettext(
                "Selling price per unit, with at most 2 decimals. Posted "
                "transactions keep the price they were posted at."
            ),
            "places": 2,
            "validators": [InputRequired(), finite_decimal, NumberRange(min=0, max=MAX_PRICE), cents],
        },
        "stock": {  # on the create form: the opening stock (the edit form shows it read-only)
            "description": lazy_gettext("Units on hand. Posting a transaction takes from it; voiding puts it back."),
            "validators": [InputRequired(), NumberRange(min=0, max=MAX_STOCK)],
        },
        "is_active": {
            "default": True,
            "description": lazy_gettext("Only active products can be added to transactions."),
        },
    }
    action_rights = {"activate": CHANGE, "deactivate": CHANGE, "delete": DELETE}
    extra_method_rights = {"adjust_view": CHANGE}

    def get_edit_form(self):
        """The create form, but for the stock: shown read-only, where it was, and never written.
        Stock changes only through the ledger's movements (sales, voids); a ``stock`` sent to
        the edit form is ignored."""
        form_class = super().get_edit_form()
        shown = ShownIntegerField(
            PRODUCT_FIELDS["stock"],
            description=lazy_gettext(
                "Units on hand. It changes only through stock movements: posting a transaction "
                "takes from it, voiding puts it back."
            ),
        )
        shown.creation_counter = form_class.stock.creation_counter  # in the same place on the page
        return type(f"{form_class.__name__}Edit", (form_class,), {"stock": shown})

    def on_model_change(self, form, model, is_created):
        if not is_created:
            catalog.ensure_current(model, form.version.data, "product")

    def deletion_preview(self, record):
        return catalog.deletion_preview(db.session, record)

    def on_model_delete(self, model):
        super().on_model_delete(model)
        catalog.ensure_deletable(db.session, [model])

    @action("activate", lazy_gettext("Activate"))
    def action_activate(self, ids):
        self.run_action(
            lambda s, i: catalog.set_active(s, i, True),
            ids,
            lambda n: ngettext("%(num)s product activated.", "%(num)s products activated.", n),
        )

    @action("deactivate", lazy_gettext("Deactivate"))
    def action_deactivate(self, ids):
        self.run_action(
            lambda s, i: catalog.set_active(s, i, False),
            ids,
            lambda n: ngettext("%(num)s product deactivated.", "%(num)s products deactivated.", n),
        )

    @action("delete", lazy_gettext("Delete"), lazy_gettext("Delete the selected products?"))
    def action_delete(self, ids):
        self.run_action(
            catalog.delete_products, ids, lambda n: ngettext("%(num)s product deleted.", "%(num)s products deleted.", n)
        )

    @expose("/adjust/", methods=("GET", "POST"))
    def adjust_view(self):
        """Receive goods or adjust the count of one product: one movement in the stock ledger,
        its stock changed with it, in one database transaction."""
        product_id = parse_id(request.args.get("id"))
        product = db.session.get(Product, product_id) if product_id else None
        if product is None:
            flash(gettext("That product does not exist."), "error")
            return redirect(self.get_url(".index_view"))
        form = AdjustForm()
        if form.validate_on_submit():
            kind, quantity = MovementKind(form.kind.data), form.quantity.data
            outcome = run_unit_of_work(
                lambda: stock.receive_or_adjust(
                    db.session,
                    product_id,
                    kind,
                    quantity,
                    current_user._get_current_object(),
                    form.reason.data,
                    form.reference.data,
                ),
                gettext("The stock of %(sku)s was not changed", sku=product.sku),
                where=self.endpoint,
            )
            if outcome.done:
                flash(_moved_message(kind, quantity, outcome.result), "success")
                return redirect(self.back_url(product_id))
            if isinstance(outcome.error, InsufficientStock):
                form.quantity.errors = [*form.quantity.errors, *outcome.error.line_problems.values()]
            product = db.session.get(Product, product_id)  # as it is now, after the rollback
            if product is None:
                return redirect(self.get_url(".index_view"))  # deleted meanwhile: the message says so
        return self.render("admin/product/adjust.html", form=form, record=product, return_url=self.back_url(product_id))

    def back_url(self, product_id) -> str:
        """Where the adjust page goes back to: `url` when given (a local path), else the details."""
        return get_redirect_target() or self.get_url(".details_view", id=product_id)


def _moved_message(kind: MovementKind, quantity: int, product: Product) -> str:
    """What a receipt or an adjustment did: "Received 12 of KOPI-250G — Kopi: 62 in stock."."""
    name = f"{product.sku} — {product.name}"
    if kind == MovementKind.RECEIPT:
        return gettext(
            "Received %(quantity)s of %(product)s: %(stock)s in stock.",
            quantity=number(quantity),
            product=name,
            stock=number(product.stock),
        )
    return gettext(
        "Adjusted %(product)s by %(quantity)s: %(stock)s in stock.",
        quantity=f"+{number(quantity)}" if quantity > 0 else number(quantity),
        product=name,
        stock=number(product.stock),
    )
