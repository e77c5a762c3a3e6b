"""The Flask-Admin site: one place that registers every view."""

from flask_admin import Admin
from flask_admin.theme import Bootstrap4Theme

from ..extensions import db
from ..models import AuditEntry, Product, Transaction, User
from .audit import AuditView
from .base import DashboardView
from .products import ProductView
from .transactions import TransactionView
from .users import UserView


def init_admin(app) -> Admin:
    admin = Admin(
        app,
        name="adminapp",
        index_view=DashboardView(name="Dashboard", url="/admin"),
        theme=Bootstrap4Theme(swatch="default", fluid=True, base_template="admin/adminapp_master.html"),
    )
    admin.add_view(ProductView(Product, db, name="Products", endpoint="product"))
    admin.add_view(TransactionView(Transaction, db, name="Transactions", endpoint="transaction"))
    admin.add_view(UserView(User, db, name="Users", endpoint="user"))
    admin.add_view(AuditView(AuditEntry, db, name="Audit trail", endpoint="audit"))
    return admin
