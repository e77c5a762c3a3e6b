"""The Flask-Admin site: one place that registers every view."""

from pathlib import Path

from flask_admin import Admin
from flask_admin.theme import Bootstrap4Theme
from flask_babel import lazy_gettext

from ..extensions import db
from ..models import AuditEntry, Product, Transaction, User
from .audit import AuditView
from .dashboard import DashboardView
from .products import ProductView
from .transactions import TransactionView
from .users import UserView


def init_admin(app) -> Admin:
    admin = Admin(
        app,
        name="adminapp",
        index_view=DashboardView(name=lazy_gettext("Dashboard"), url="/admin"),
        translations_path=str(Path(__file__).resolve().parent.parent / "translations"),
        theme=Bootstrap4Theme(swatch="default", fluid=True, base_template="admin/adminapp_master.html"),
    )
    admin.add_view(ProductView(Product, db, name=lazy_gettext("Products"), endpoint="product"))
    admin.add_view(TransactionView(Transaction, db, name=lazy_gettext("Transactions"), endpoint="transaction"))
    admin.add_view(UserView(User, db, name=lazy_gettext("Users"), endpoint="user"))
    admin.add_view(AuditView(AuditEntry, db, name=lazy_gettext("Audit trail"), endpoint="audit"))
    return admin
