from .audit import AuditEntry
from .catalog import Product
from .sales import STATUSES, Transaction, TransactionProduct
from .types import utcnow
from .users import ROLES, AddressFailures, LoginFailures, User, UserSession
from . import triggers  # noqa: F401  (PostgreSQL's guards, made with the tables)

__all__ = [
    "AddressFailures", "AuditEntry", "LoginFailures", "Product", "ROLES", "STATUSES", "Transaction",
    "TransactionProduct", "User", "UserSession", "utcnow",
]
