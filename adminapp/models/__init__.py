from . import triggers  # noqa: F401  (PostgreSQL's guards, made with the tables)
from .audit import AuditEntry
from .catalog import Product
from .sales import Transaction, TransactionProduct
from .stock import StockMovement
from .types import utcnow
from .users import AddressFailures, LoginFailures, User, UserSession

__all__ = [
    "AddressFailures",
    "AuditEntry",
    "LoginFailures",
    "Product",
    "StockMovement",
    "Transaction",
    "TransactionProduct",
    "User",
    "UserSession",
    "utcnow",
]
