"""Numbers, money and times for display, in the user's locale and time zone."""

from datetime import datetime
from decimal import Decimal

from babel.numbers import get_decimal_symbol, get_group_symbol
from flask import current_app
from flask_babel import format_currency, format_date, format_datetime, format_decimal, get_locale

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(value):
    """Text a spreadsheet would run as a formula gets a leading apostrophe (numbers are kept)."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        try:
            Decimal(value)
        except ArithmeticError:
            return "'" + value
    return value


def money(amount: Decimal | None) -> str:
    if amount is None:
        return ""
    return format_currency(amount, current_app.config["CURRENCY"])


def number(value) -> str:
    return "" if value is None else format_decimal(value)


def number_symbols(locale=None) -> dict[str, str]:
    """The decimal and group symbols of a language (the user's by default), as the number
    fields read them: "1.000" is one thousand in Indonesian, "1,000" in English."""
    locale = locale or get_locale()
    return {"decimal": get_decimal_symbol(locale), "group": get_group_symbol(locale)}


def local_date(day, style: str = "medium") -> str:
    return format_date(day, style)


def local_time(moment: datetime | None) -> str:
    """An aware UTC datetime shown in the configured local time zone."""
    if moment is None:
        return ""
    return format_datetime(moment, "medium")
