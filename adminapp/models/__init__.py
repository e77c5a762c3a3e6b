from .audit import AuditEntry
from .catalog import Product
from .sales import STATUSES, Transaction, TransactionProduct
from .types import utcnow
from .users import ROLES, AddressFailures, LoginFailures, User

__all__ = [
    "AddressFailures", "AuditEntry", "LoginFailures", "Product", "ROLES", "STATUSES", "Transaction", "TransactionProduct",
    "User", "utcnow",
]
