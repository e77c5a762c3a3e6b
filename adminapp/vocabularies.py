"""The closed sets of values the app stores and compares: each defined here, once.

A member is a ``str`` equal to its value (``TransactionStatus.DRAFT == "draft"``), so the
database, URLs, the audit chain's hashes and CSV exports keep the plain English values, and a
value read back from the database compares equal to its member. What a value reads as in the
user's language is in labels.py, one table per vocabulary keyed by these members.

A module of its own, importing nothing of the app: models, labels, permissions, domain code,
views and the app factory all read these, and labels.py must not import the models.
"""

from enum import StrEnum


class TransactionStatus(StrEnum):
    DRAFT = "draft"
    POSTED = "posted"
    VOID = "void"


class Role(StrEnum):
    ADMIN = "admin"
    STAFF = "staff"
    AUDITOR = "auditor"


class AuditAction(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
    POST = "post"
    VOID = "void"
    LOGIN = "login"
    LOGIN_FAILED = "login_failed"
    LOGOUT = "logout"
    PASSWORD_CHANGE = "password_change"
    SESSIONS_ENDED = "sessions_ended"
    # Nothing writes "seed" now (the seed records each record's own "create"), but the entries
    # of earlier versions hold it: it stays, so that they are named and can be filtered.
    SEED = "seed"
    AUDIT_KEYED = "audit_keyed"  # written once, by migration 0007, when it re-keyed the chain


class MovementKind(StrEnum):
    """Why a product's stock moved: one row of the stock ledger (stock_movements) each."""

    OPENING = "opening"  # the stock a product starts with (or had when the ledger began)
    RECEIPT = "receipt"  # goods received
    ADJUSTMENT = "adjustment"  # a count correction, breakage, loss
    SALE = "sale"  # a posted transaction took it
    RETURN = "return"  # a voided transaction gave it back


class Language(StrEnum):
    """The interface languages. English first: the source language and the fallback."""

    ENGLISH = "en"
    INDONESIAN = "id"


def sql_values(vocabulary: type[StrEnum]) -> str:
    """The members as an SQL list of literals, for CHECK constraints: ``'draft', 'posted', 'void'``."""
    return ", ".join(f"'{member}'" for member in vocabulary)
