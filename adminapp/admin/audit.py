"""The audit trail at /admin/audit/: read-only for everyone. The create, edit,
delete, action and inline-update endpoints do not exist at all."""

from flask import url_for
from flask_admin import expose
from flask_admin.contrib.sqla.filters import FilterEqual
from flask_babel import lazy_gettext
from flask_login import current_user
from markupsafe import Markup

from ..domain import audit_chain
from ..extensions import db
from ..formatting import local_time
from ..labels import ACTION_LABELS, AUDIT_FIELDS, action_label, lazy, object_label, object_type_label
from ..models import AuditEntry
from ..permissions import VIEW, can
from ..vocabularies import AuditAction
from .base import SecuredModelView
from .filters import LocalDateFrom, LocalDateTo

OBJECT_TYPES = ["product", "transaction", "user"]  # also the endpoints of their views


def record_link(entry):
    """What the entry is about, linked to that record's details page for those who may open it
    (as Django's admin log does; a record deleted since then answers that it no longer exists).
    The audit trail's Object column and the dashboard's recent actions both show it: they
    speak of what happened, so the link opens the record to read, never its form (unlike a
    list's first cell, SecuredModelView.record_url, which needs the record itself)."""
    text = object_label(entry.object_type, entry.object_id, entry.object_repr)
    if entry.object_type not in OBJECT_TYPES or entry.object_id is None:
        return text
    if not can(current_user, entry.object_type, VIEW):
        return text
    return Markup('<a href="{}">{}</a>').format(url_for(f"{entry.object_type}.details_view", id=entry.object_id), text)


def object_link(view, context, entry, name):  # a Flask-Admin column formatter's arguments
    return record_link(entry)


class AuditView(SecuredModelView):
    # Removing the methods removes their routes (Flask-Admin registers what it finds).
    create_view = edit_view = delete_view = action_view = ajax_update = history_view = None
    can_create = can_edit = can_delete = has_history = False
    list_template = "admin/audit/list.html"
    details_template = "admin/audit/details.html"
    action_rights: dict = {}

    column_list = ["id", "at", "username", "action", "object_type", "object_id", "object_repr", "remote_addr"]
    column_record_link = "id"
    column_labels = AUDIT_FIELDS
    column_default_sort = ("id", True)
    column_sortable_list = ["id", "at", "username", "action", "object_type"]
    column_searchable_list = ["username", "object_repr", "action"]
    column_filters = [
        FilterEqual(AuditEntry.username, lazy_gettext("User")),
        FilterEqual(
            AuditEntry.action,
            lazy_gettext("Action"),
            options=[(action, ACTION_LABELS[action]) for action in AuditAction],
        ),
        FilterEqual(
            AuditEntry.object_type,
            lazy_gettext("Object type"),
            options=[(t, lazy(object_type_label, t)) for t in OBJECT_TYPES],
        ),
        FilterEqual(AuditEntry.object_id, lazy_gettext("Object ID")),
        LocalDateFrom(AuditEntry.at, lazy_gettext("When")),
        LocalDateTo(AuditEntry.at, lazy_gettext("When")),
    ]
    # Shown in the user's language; stored (and exported) as they are.
    column_formatters = {
        "at": lambda v, c, m, n: local_time(m.at),
        "action": lambda v, c, m, n: action_label(m.action),
        "object_type": lambda v, c, m, n: object_type_label(m.object_type),
        "object_repr": object_link,
    }
    column_formatters_detail = column_formatters
    column_details_list = [
        "id",
        "at",
        "username",
        "user_id",
        "action",
        "object_type",
        "object_id",
        "object_repr",
        "remote_addr",
        "prev_hash",
        "hash",
    ]
    column_export_list = [
        "id",
        "at",
        "username",
        "user_id",
        "action",
        "object_type",
        "object_id",
        "object_repr",
        "changes",
        "remote_addr",
        "prev_hash",
        "hash",
    ]
    column_formatters_export = {"at": lambda v, c, m, n: m.at.isoformat()}
    export_types = ["csv"]
    extra_method_rights = {"checkpoint_view": VIEW}

    def render(self, template, **kwargs):
        # The list shows the chain's head for auditors to note: one primary-key lookup a page.
        if template == self.list_template:
            kwargs["chain_head"] = audit_chain.head(db.session)
        return super().render(template, **kwargs)

    @expose("/checkpoint/")
    def checkpoint_view(self):
        """The chain's head as a checkpoint line to copy into one's own records (it counts
        every entry, so it is a page of its own, not part of the list)."""
        return self.render("admin/audit/checkpoint.html", checkpoint=audit_chain.take_checkpoint(db.session))
