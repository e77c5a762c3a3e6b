from .audit import AuditEntry
from .catalog import Product
from .sales import STATUSES, Transaction, TransactionProduct
from .types import utcnow
from .users import ROLES, LoginFailures, User, UserSession

__all__ = [
    "AuditEntry", "LoginFailures", "Product", "ROLES", "STATUSES", "Transaction", "TransactionProduct",
    "User", "UserSession", "utcnow",
]
