from decimal import Decimal

from flask_admin.actions import action
from flask_admin.helpers import is_form_submitted
from flask_babel import lazy_gettext, ngettext
from wtforms import fields
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional

from ..domain import catalog
from ..extensions import db
from ..formatting import local_time, money
from ..labels import PRODUCT_FIELDS
from ..models import Product
from ..permissions import CHANGE, DELETE
from .base import SecuredModelView
from .fields import InitialValueField, LocaleDecimalField, LocaleIntegerField, VersionField
from .filters import AtLeast, AtMost, IntAtOrBelow
from .validators import Regexp, blank_to_none, cents, finite_decimal, plain_text, strip

MAX_PRICE = Decimal("9999999999.99")  # NUMERIC(12,2)
MAX_STOCK = 2**31 - 1  # a 32-bit INTEGER column


class ProductView(SecuredModelView):
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
    ]
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

    form_columns = ["sku", "name", "description", "price", "stock", "is_active", "version", "initial_stock"]
    form_extra_fields = {"version": VersionField(), "initial_stock": InitialValueField()}
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
        "stock": {
            "description": lazy_gettext("Units on hand. Posting a transaction takes from it; voiding puts it back."),
            "validators": [InputRequired(), NumberRange(min=0, max=MAX_STOCK)],
        },
        "is_active": {
            "default": True,
            "description": lazy_gettext("Only active products can be added to transactions."),
        },
    }
    action_rights = {"activate": CHANGE, "deactivate": CHANGE, "delete": DELETE}

    def edit_form(self, obj=None):
        form = super().edit_form(obj)
        if obj is not None and not is_form_submitted():
            form.initial_stock.data = obj.stock
        return form

    def on_model_change(self, form, model, is_created):
        if not is_created:
            catalog.ensure_current(model, form.version.data, "product")
            catalog.keep_stock_moves(db.session, model, form.initial_stock.data)

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
