"""How the admin's lists and detail pages show a value of a type (Flask-Admin's type formatters)."""

from markupsafe import Markup

from ..labels import yes_no


def bool_icon(view, value, name):
    """Flask-Admin's check/minus icon, titled with the column's label and Yes/No in the
    user's language (Flask-Admin's own title is the raw field name and "true"/"false")."""
    icon = "fa-check-circle" if value else "fa-minus-circle"
    return Markup('<span class="fa {}" title="{}: {}"></span>').format(icon, view.get_column_name(name), yes_no(value))


def bool_text(view, value, name):
    return yes_no(value)
