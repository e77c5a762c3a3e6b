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

from .formatting import local_time, money, number
from .vocabularies import AuditAction, Language, MovementKind, Role, TransactionStatus

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

MOVEMENT_KIND_LABELS = {
    MovementKind.OPENING: lazy_pgettext("stock movement", "opening"),
    MovementKind.RECEIPT: lazy_pgettext("stock movement", "receipt"),
    MovementKind.ADJUSTMENT: lazy_pgettext("stock movement", "adjustment"),
    MovementKind.SALE: lazy_pgettext("stock movement", "sale"),
    MovementKind.RETURN: lazy_pgettext("stock movement", "return"),
}

# Words, not the stored codes ("password change", not "password_change").
ACTION_LABELS = {
    AuditAction.CREATE: lazy_pgettext("audit action", "create"),
    AuditAction.UPDATE: lazy_pgettext("audit action", "update"),
    AuditAction.DELETE: lazy_pgettext("audit action", "delete"),
    AuditAction.POST: lazy_pgettext("audit action", "post"),
    AuditAction.VOID: lazy_pgettext("audit action", "void"),
    AuditAction.LOGIN: lazy_pgettext("audit action", "sign-in"),
    AuditAction.LOGIN_FAILED: lazy_pgettext("audit action", "failed sign-in"),
    AuditAction.LOGOUT: lazy_pgettext("audit action", "sign-out"),
    AuditAction.PASSWORD_CHANGE: lazy_pgettext("audit action", "password change"),
    AuditAction.SESSIONS_ENDED: lazy_pgettext("audit action", "sessions ended"),
    AuditAction.SEED: lazy_pgettext("audit action", "sample data"),
    AuditAction.AUDIT_KEYED: lazy_pgettext("audit action", "audit trail keyed"),
}

# An audit entry told as a sentence (the dashboard's recent actions): by whom, when someone
# signed in did it; in the passive voice when the app or a command did.
# %(user)s: the actor's user name; %(object)s: the record with its kind ("product KOPI-250G —
# Kopi", "Transaction #501"); %(name)s: a user's name alone; %(reason)s: why.
ACTION_SENTENCES = {
    AuditAction.CREATE: lazy_pgettext("recent action", "%(user)s added %(object)s"),
    AuditAction.UPDATE: lazy_pgettext("recent action", "%(user)s changed %(object)s"),
    AuditAction.DELETE: lazy_pgettext("recent action", "%(user)s deleted %(object)s"),
    AuditAction.POST: lazy_pgettext("recent action", "%(user)s posted %(object)s"),
    AuditAction.VOID: lazy_pgettext("recent action", "%(user)s voided %(object)s"),
    AuditAction.LOGIN: lazy_pgettext("recent action", "%(user)s signed in"),
    AuditAction.LOGIN_FAILED: lazy_pgettext("recent action", "A sign-in as %(name)s failed: %(reason)s"),
    AuditAction.LOGOUT: lazy_pgettext("recent action", "%(user)s signed out"),
    AuditAction.PASSWORD_CHANGE: lazy_pgettext("recent action", "%(user)s changed the password of %(name)s"),
    AuditAction.SESSIONS_ENDED: lazy_pgettext("recent action", "%(user)s ended the sessions of %(name)s: %(reason)s"),
    AuditAction.SEED: lazy_pgettext("recent action", "%(user)s added sample data"),
    AuditAction.AUDIT_KEYED: lazy_pgettext("recent action", "The audit trail was keyed"),
}
PASSIVE_SENTENCES = {
    AuditAction.CREATE: lazy_pgettext("recent action", "%(object)s was added"),
    AuditAction.UPDATE: lazy_pgettext("recent action", "%(object)s was changed"),
    AuditAction.DELETE: lazy_pgettext("recent action", "%(object)s was deleted"),
    AuditAction.POST: lazy_pgettext("recent action", "%(object)s was posted"),
    AuditAction.VOID: lazy_pgettext("recent action", "%(object)s was voided"),
    AuditAction.LOGIN_FAILED: ACTION_SENTENCES[AuditAction.LOGIN_FAILED],
    AuditAction.PASSWORD_CHANGE: lazy_pgettext("recent action", "The password of %(name)s was changed"),
    AuditAction.SESSIONS_ENDED: lazy_pgettext("recent action", "The sessions of %(name)s were ended: %(reason)s"),
    AuditAction.SEED: lazy_pgettext("recent action", "Sample data was added"),
    AuditAction.AUDIT_KEYED: ACTION_SENTENCES[AuditAction.AUDIT_KEYED],
}
# A sign-in as a name no account has: the entry keeps only a keyed hash of it, which says nothing.
UNKNOWN_NAME_SIGN_IN_FAILED = lazy_pgettext("recent action", "A sign-in failed: %(reason)s")


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


def movement_kind_label(kind: str | None) -> str:
    return _label(MOVEMENT_KIND_LABELS, kind)


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


def action_sentence(entry, name: str | None = None) -> Markup:
    """What an audit entry says happened, as a sentence in the user's language: "admin changed
    the password of bob", "staff1 posted Transaction #501", "Product KOPI-250G was changed".

    ``name``: the record's name as the page shows it (a link to the record, as Markup), by
    default its plain text."""
    if name is None:
        name = object_label(entry.object_type, entry.object_id, entry.object_repr)
    by_someone = entry.user_id is not None or entry.action == AuditAction.LOGIN_FAILED
    sentence = (ACTION_SENTENCES if by_someone else PASSIVE_SENTENCES).get(entry.action)
    if entry.action == AuditAction.LOGIN_FAILED and entry.object_id is None:
        sentence = UNKNOWN_NAME_SIGN_IN_FAILED
    if sentence is None:  # an action outside the vocabulary, or one only a user does
        sentence = lazy_pgettext("recent action", "%(user)s: %(action)s %(object)s")
    template = str(sentence)
    starts_with_object = template.startswith("%(object)s")
    changes = entry.changes if isinstance(entry.changes, dict) else {}
    values = {
        "user": entry.username or gettext("someone"),
        "action": action_label(entry.action),
        "object": _object_phrase(entry.object_type, name, capital=starts_with_object),
        "name": name,
        "reason": change_value("reason", changes.get("reason")) or gettext("no reason given"),
    }
    return Markup(escape(template)) % values


def _object_phrase(object_type: str | None, name, capital: bool):
    """A record with its kind, for a sentence: 'product KOPI-250G — Kopi'; a transaction's
    name already says its kind ('Transaction #501')."""
    if object_type == "transaction" or not object_type:
        return name
    kind = object_type_label(object_type)
    if capital:
        kind = kind[:1].upper() + kind[1:]
    return Markup(escape(pgettext("a record in a sentence", "%(kind)s %(name)s"))) % {"kind": kind, "name": name}


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
    # a receipt's or adjustment's entry: the kind of stock movement and its reference
    "movement": lazy_gettext("Stock movement"),
    "reference": lazy_gettext("Reference"),
    # the entry migration 0007 wrote when it keyed the chain
    "legacy_last_id": lazy_gettext("Last entry before keying"),
    "legacy_head_hash": lazy_gettext("Hash of that entry"),
    "legacy_count": lazy_gettext("Entries before keying"),
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
    if field == "movement":
        return movement_kind_label(value)
    if field == "password" and value == "changed":
        return gettext("changed")
    if field == "reason":
        return _reason(value)
    if isinstance(value, (int, Decimal)) and field != "id" and not field.endswith("_id"):
        return number(value)  # stock, counts: grouped as the language groups digits (ids are not)
    return str(value)


def _reason(value: str) -> str:
    reasons = {
        # a failed sign-in
        "unknown user": gettext("unknown user"),
        "wrong password": gettext("wrong password"),
        "inactive": gettext("inactive account"),
        "locked": gettext("account locked"),
        "address limited": gettext("too many failures from the address"),
        # sessions ended
        "deactivated": pgettext("sessions ended", "the account was deactivated"),
        "activated": pgettext("sessions ended", "the account was activated"),
        "role changed": pgettext("sessions ended", "the role was changed"),
        "password reset": pgettext("sessions ended", "the password was reset"),
        "password changed": pgettext("sessions ended", "the password was changed"),
        "sign out everywhere": pgettext("sessions ended", "signed out everywhere"),
    }
    return reasons.get(value, value)


def line_change_label(kind: str) -> str:
    labels = {
        "added": pgettext("transaction line", "Line added"),
        "removed": pgettext("transaction line", "Line removed"),
        "changed": pgettext("transaction line", "Quantity changed"),
    }
    return labels.get(kind, kind)


def line_quantity(line) -> str:
    """A transaction line of an audit entry ({"sku": ..., "qty": ...}) as people read it:
    "KOPI-250G × 3" (the quantity grouped as the language groups digits)."""
    if not isinstance(line, dict):
        return str(line)
    qty = line.get("qty")
    if isinstance(qty, (list, tuple)):  # a changed line holds [old, new]
        qty = qty[-1]
    if qty is None:
        return str(line.get("sku", ""))
    return pgettext("transaction line", "%(sku)s × %(qty)s", sku=line.get("sku", ""), qty=_quantity(qty))


def line_quantities(line) -> tuple[str, str]:
    """A changed line's old and new quantities: ("KOPI-250G × 2", "KOPI-250G × 3")."""
    qty = line.get("qty") if isinstance(line, dict) else None
    if not (isinstance(qty, (list, tuple)) and len(qty) == 2):
        return "", line_quantity(line)
    return line_quantity({**line, "qty": qty[0]}), line_quantity({**line, "qty": qty[1]})


def stock_movement(value) -> tuple[str, str]:
    """A post's or void's stock movement of one product ({sku: [old, new]}) as old and new stock."""
    if isinstance(value, (list, tuple)) and len(value) == 2:
        return _quantity(value[0]), _quantity(value[1])
    return "", _quantity(value)


def _quantity(value) -> str:
    return number(value) if isinstance(value, (int, Decimal)) and not isinstance(value, bool) else str(value)
