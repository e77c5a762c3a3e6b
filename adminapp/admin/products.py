from decimal import Decimal

from flask_admin.actions import action
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
from .fields import LocaleDecimalField, LocaleIntegerField, ShownIntegerField, VersionField
from .filters import AtLeast, AtMost, IntAtOrBelow, LocalDateTo, RecentLocalDateFrom
from .quick_filters import created, equals, low_stock
from .validators import Regexp, blank_to_none, cents, finite_decimal, plain_text, strip

MAX_PRICE = Decimal("9999999999.99")  # NUMERIC(12,2)
MAX_STOCK = 2**31 - 1  # a 32-bit INTEGER column


class ProductView(SecuredModelView):
    list_template = "admin/adminapp/list.html"
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
