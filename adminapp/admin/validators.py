"""Form validators shared by the admin forms."""

import re
from decimal import Decimal

from wtforms.validators import StopValidation, ValidationError

_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def plain_text(form, field):
    """Refuse NUL and other control characters (PostgreSQL cannot even store NUL)."""
    if field.data and _CONTROL_CHARS.search(field.data):
        raise StopValidation("Remove the control characters from this text.")


def finite_decimal(form, field):
    """Refuse NaN and Infinity before any range check compares them."""
    if isinstance(field.data, Decimal) and not field.data.is_finite():
        raise StopValidation("Enter a number.")


def cents(form, field):
    """At most two decimal places: money is exact, it is not rounded for you."""
    if isinstance(field.data, Decimal) and field.data.as_tuple().exponent < -2:
        raise ValidationError("Use at most 2 decimal places.")


def strip(value):
    return value.strip() if isinstance(value, str) else value


def blank_to_none(value):
    """An empty optional text is no text: stored as NULL, not as ''."""
    return value or None
