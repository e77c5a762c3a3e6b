"""Form validators shared by the admin forms."""

import re
from decimal import Decimal

from flask_babel import gettext
from wtforms import validators
from wtforms.validators import StopValidation, ValidationError

_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def plain_text(form, field):
    """Refuse NUL and other control characters (PostgreSQL cannot even store NUL)."""
    if field.data and _CONTROL_CHARS.search(field.data):
        raise StopValidation(gettext("Remove the control characters from this text."))


def finite_decimal(form, field):
    """Refuse NaN and Infinity before any range check compares them."""
    if isinstance(field.data, Decimal) and not field.data.is_finite():
        raise StopValidation(gettext("Enter a number."))


def cents(form, field):
    """At most two decimal places: money is exact, it is not rounded for you."""
    if isinstance(field.data, Decimal) and field.data.as_tuple().exponent < -2:
        raise ValidationError(gettext("Use at most 2 decimal places."))


class Regexp(validators.Regexp):
    """WTForms' Regexp, its message (a lazy translation) made text when it is raised:
    Flask-Admin's form template shows only errors that are strings."""

    def __call__(self, form, field, message=None):
        return super().__call__(form, field, str(message or self.message or "") or None)


def strip(value):
    return value.strip() if isinstance(value, str) else value


def blank_to_none(value):
    """An empty optional text is no text: stored as NULL, not as ''."""
    return value or None
