"""What the user reads for stored values and field names, in the user's language.

The values themselves (statuses, roles, audit actions, field names) stay English in the
database, in URLs, in the audit chain and in CSV exports; only their display is translated.
The *_label functions translate at call time (inside a request); the lazy_* helpers give
objects that translate whenever they are turned into text, for class-level definitions
(column labels, filter options, select choices).
"""

from datetime import datetime
from decimal import Decimal, InvalidOperation

from flask_babel import gettext, lazy_gettext, lazy_pgettext, pgettext
from flask_babel.speaklater import LazyString
from markupsafe import Markup, escape

from .formatting import local_time, money
from .vocabularies import AuditAction, Language, Role, TransactionStatus

# --- the vocabularies (vocabularies.py): one label table each, keyed by its members ---

# The interface languages, each by its name in itself (a user who cannot read the current
# language still finds their own): never translated.
LANGUAGES = {Language.ENGLISH: "English", Language.INDONESIAN: "Bahasa Indonesia"}

STATUS_LABELS = {
    TransactionStatus.DRAFT: lazy_pgettext("transaction status", "draft"),
    TransactionStatus.POSTED: lazy_pgettext("transaction status", "posted"),
    TransactionStatus.VOID: lazy_pgettext("transaction status", "void"),
}

ROLE_LABELS = {
    Role.ADMIN: lazy_pgettext("role", "admin"),
    Role.STAFF: lazy_pgettext("role", "staff"),
    Role.AUDITOR: lazy_pgettext("role", "auditor"),
}

# In English an action reads as its stored value.
ACTION_LABELS = {
    AuditAction.CREATE: lazy_pgettext("audit action", "create"),
    AuditAction.UPDATE: lazy_pgettext("audit action", "update"),
    AuditAction.DELETE: lazy_pgettext("audit action", "delete"),
    AuditAction.POST: lazy_pgettext("audit action", "post"),
    AuditAction.VOID: lazy_pgettext("audit action", "void"),
    AuditAction.LOGIN: lazy_pgettext("audit action", "login"),
    AuditAction.LOGIN_FAILED: lazy_pgettext("audit action", "login_failed"),
    AuditAction.LOGOUT: lazy_pgettext("audit action", "logout"),
    AuditAction.PASSWORD_CHANGE: lazy_pgettext("audit action", "password_change"),
    AuditAction.SESSIONS_ENDED: lazy_pgettext("audit action", "sessions_ended"),
    AuditAction.SEED: lazy_pgettext("audit action", "seed"),
    AuditAction.AUDIT_KEYED: lazy_pgettext("audit action", "audit_keyed"),
}


def _label(table: dict, value: str | None) -> str:
    """A stored value's label; a value outside the vocabulary (or none) reads as it is stored."""
    label = table.get(value)
    return str(label) if label is not None else value or ""


def status_label(status: str | None) -> str:
    return _label(STATUS_LABELS, status)


def role_label(role: str | None) -> str:
    return _label(ROLE_LABELS, role)


def action_label(action: str | None) -> str:
    return _label(ACTION_LABELS, action)


def language_name(code: str | None) -> str:
    return _label(LANGUAGES, code)


def object_type_label(object_type: str | None) -> str:
    labels = {
        "product": pgettext("object type", "product"),
        "transaction": pgettext("object type", "transaction"),
        "user": pgettext("object type", "user"),
    }
    return labels.get(object_type, object_type or "")


def record_label(object_type: str, record) -> str:
    """A record named with its kind: 'product “KOPI-250G — Kopi”', 'Transaction #12'."""
    if object_type == "transaction":
        return transaction_label(record.id)
    return gettext("%(type)s “%(record)s”", type=object_type_label(object_type), record=str(record))


def record_subject(object_type: str, record) -> str:
    """The record's label to begin a sentence: 'Product “KOPI-250G — Kopi”'."""
    label = record_label(object_type, record)
    return label[:1].upper() + label[1:]


def saved_message(outcome: str, record) -> Markup:
    """What a save or delete says, naming the record (its label, or a link to it): as in
    Django's admin, 'Product “KOPI-250G — Kopi” was added.'"""
    record = escape(record)  # a link stays one; a plain label is escaped
    messages = {
        "added": lambda: gettext("%(record)s was added.", record=record),
        "changed": lambda: gettext("%(record)s was changed.", record=record),
        "deleted": lambda: gettext("%(record)s was deleted.", record=record),
    }
    return Markup(messages[outcome]())


def record_title(object_type: str, record) -> str:
    """A record's name as its pages' heading and the browser's title say it:
    'Transaction #501 — draft', 'KOPI-250G — Kopi Luwak 250 g', 'bob'."""
    if object_type == "transaction":
        return f"{transaction_label(record.id)} — {status_label(record.status)}"
    if object_type == "audit":
        return gettext("Audit entry #%(id)s", id=record.id)
    return str(record)


def transaction_label(txn_id) -> str:
    """A transaction as the interface names it (its stored name is "Transaction #N")."""
    return gettext("Transaction #%(id)s", id=txn_id)


def object_label(object_type: str | None, object_id, object_repr: str | None) -> str:
    """What an audit entry is about: a transaction by its number, in the user's language;
    anything else by the text stored with the entry (SKU and name, a username)."""
    if object_type == "transaction" and object_id is not None and object_repr == f"Transaction #{object_id}":
        return transaction_label(object_id)
    return object_repr or ""


def yes_no(value: bool) -> str:
    return gettext("Yes") if value else gettext("No")


def lazy(label_function, value) -> LazyString:
    """``label_function(value)``, computed each time it is shown."""
    return LazyString(label_function, value)


# --- field names: the column labels of the views, and the field names in audit changes ---

PRODUCT_FIELDS = {
    "id": lazy_gettext("ID"),
    "sku": lazy_gettext("SKU"),
    "name": lazy_gettext("Name"),
    "description": lazy_gettext("Description"),
    "price": lazy_gettext("Price"),
    "stock": lazy_gettext("Stock"),
    "is_active": lazy_gettext("Active"),
    "created_at": lazy_gettext("Created at"),
    "updated_at": lazy_gettext("Updated at"),
    "version": lazy_gettext("Version"),
}

TRANSACTION_FIELDS = {
    "id": lazy_gettext("ID"),
    "status": lazy_gettext("Status"),
    "note": lazy_gettext("Note"),
    "created_at": lazy_gettext("Created at"),
    "created_by": lazy_gettext("Created by"),
    "created_by_id": lazy_gettext("Created by"),
    "posted_at": lazy_gettext("Posted at"),
    "posted_by": lazy_gettext("Posted by"),
    "posted_by_id": lazy_gettext("Posted by"),
    "voided_at": lazy_gettext("Voided at"),
    "voided_by": lazy_gettext("Voided by"),
    "voided_by_id": lazy_gettext("Voided by"),
    "void_reason": lazy_gettext("Reason for voiding"),
    "line_count": lazy_gettext("Lines"),
    "lines": lazy_gettext("Lines"),
    "total": lazy_gettext("Total"),
    "version": lazy_gettext("Version"),
}

USER_FIELDS = {
    "id": lazy_gettext("ID"),
    "username": lazy_gettext("Username"),
    "role": lazy_gettext("Role"),
    "is_active": lazy_gettext("Active"),
    "created_at": lazy_gettext("Created at"),
    "last_login_at": lazy_gettext("Last sign-in"),
    "failed_login_count": lazy_gettext("Failed sign-ins"),
    "locked_until": lazy_gettext("Locked until"),
    "must_change_password": lazy_gettext("Must change password"),
    "locale": lazy_gettext("Language"),
    "password": lazy_gettext("Password"),
    "version": lazy_gettext("Version"),
    "sessions": lazy_gettext("Sessions"),
    "reason": lazy_gettext("Reason"),
}

AUDIT_FIELDS = {
    "id": lazy_gettext("ID"),
    "at": lazy_gettext("When"),
    "user_id": lazy_gettext("User ID"),
    "username": lazy_gettext("User"),
    "action": lazy_gettext("Action"),
    "object_type": lazy_gettext("Object type"),
    "object_id": lazy_gettext("Object ID"),
    "object_repr": lazy_gettext("Object"),
    "changes": lazy_gettext("Changes"),
    "remote_addr": lazy_gettext("Address"),
    "prev_hash": lazy_gettext("Previous hash"),
    "hash": lazy_gettext("Hash"),
    # keys of the "changes" of entries that are not model changes
    "reason": lazy_gettext("Reason"),
}

FIELDS_BY_OBJECT_TYPE = {"product": PRODUCT_FIELDS, "transaction": TRANSACTION_FIELDS, "user": USER_FIELDS}


def field_label(object_type: str | None, field: str) -> str:
    """A field name in an audit entry's changes, as the forms and lists call it."""
    label = FIELDS_BY_OBJECT_TYPE.get(object_type, {}).get(field) or AUDIT_FIELDS.get(field)
    return str(label) if label is not None else field


# Fields whose recorded values are amounts, and user ids (a transaction's "posted by").
MONEY_FIELDS = {"price", "total", "unit_price"}
USER_ID_FIELDS = {"created_by_id", "posted_by_id", "voided_by_id", "created_by", "posted_by", "voided_by"}


def _money(value) -> str:
    try:
        return money(Decimal(str(value)))
    except InvalidOperation:
        return str(value)


def username_of(user_id) -> str:
    """The name of the user of that id, as the audit trail shows who did something."""
    from .extensions import db  # here: the models import this module's labels
    from .models import User

    user = db.session.get(User, user_id) if isinstance(user_id, int) else None
    return user.username if user is not None else str(user_id)


def change_value(field: str, value) -> str:
    """One old or new value in an audit entry's changes, readable in the user's language."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return yes_no(value)
    if field.endswith("_at") and isinstance(value, str):  # a time, stored as ISO 8601 in UTC
        try:
            return local_time(datetime.fromisoformat(value))
        except ValueError:
            return value
    if field in MONEY_FIELDS:
        return _money(value)
    if field in USER_ID_FIELDS:
        return username_of(value)
    if field == "status":
        return status_label(value)
    if field == "role":
        return role_label(value)
    if field == "locale":
        return language_name(value)
    if field == "password" and value == "changed":
        return gettext("changed")
    if field == "reason":
        reasons = {
            "unknown user": gettext("unknown user"),
            "wrong password": gettext("wrong password"),
            "inactive": gettext("inactive account"),
            "locked": gettext("account locked"),
            "address limited": gettext("too many failures from the address"),
        }
        return reasons.get(value, value)
    return str(value)


def line_change_label(kind: str) -> str:
    labels = {"added": gettext("added"), "removed": gettext("removed"), "changed": gettext("changed")}
    return labels.get(kind, kind)
