"""Who may do what: the one table every view and action reads.

Rights follow Django's admin: ``view`` (lists, details, export, lookups),
``add``, ``change`` and ``delete``.  A resource is a view's endpoint name.
"""

from .vocabularies import Role

VIEW, ADD, CHANGE, DELETE = "view", "add", "change", "delete"
ALL = frozenset({VIEW, ADD, CHANGE, DELETE})
READ_ONLY = frozenset({VIEW})

ROLE_RIGHTS: dict[Role, dict[str, frozenset[str]]] = {
    Role.ADMIN: {"product": ALL, "transaction": ALL, "user": ALL, "audit": READ_ONLY},
    Role.STAFF: {"product": ALL, "transaction": ALL},
    Role.AUDITOR: {"product": READ_ONLY, "transaction": READ_ONLY, "audit": READ_ONLY},
}

# The right each Flask-Admin view method needs. ``action_view`` is checked per
# action (see ``SecuredModelView.action_rights``).
METHOD_RIGHTS = {
    "index_view": VIEW,
    "details_view": VIEW,
    "export": VIEW,
    "ajax_lookup": VIEW,
    "create_view": ADD,
    "edit_view": CHANGE,
    "ajax_update": CHANGE,
    "delete_view": DELETE,
    "history_view": VIEW,
}


def can(user, resource: str, right: str) -> bool:
    """True when ``user`` (a signed-in, active user) holds ``right`` on ``resource``."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return False
    return right in ROLE_RIGHTS.get(user.role, {}).get(resource, frozenset())
