"""Numbers, money and times for display, in the user's locale and time zone."""

import re
import unicodedata
from datetime import datetime
from decimal import Decimal

from babel.numbers import get_currency_precision, get_currency_symbol, get_decimal_symbol, get_group_symbol
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
    """An amount in the configured currency, as the user's language writes it: "IDR 142,500.00"
    in English, "Rp 142.500,00" in Indonesian. Every amount the server shows goes through here."""
    if amount is None:
        return ""
    currency, locale = current_app.config["CURRENCY"], get_locale()
    return currency_spaced(format_currency(amount, currency), get_currency_symbol(currency, locale))


NO_BREAK_SPACE = "\u00a0"


def currency_spaced(formatted: str, symbol: str) -> str:
    """CLDR's currency spacing, which Babel leaves out and browsers' Intl apply: a symbol that
    ends (or starts) with a letter is kept from the digits by a no-break space, so the server
    writes "IDR 1,234.50" and "Rp 1.234,50" as the transaction editor's running total does,
    while "$1,234.50" and "US$1.234,50" keep their symbols close."""
    at = formatted.find(symbol)
    if at < 0 or not symbol:
        return formatted
    before, after = formatted[:at], formatted[at + len(symbol) :]
    if after[:1].isdigit() and _letter_like(symbol[-1]):
        return f"{before}{symbol}{NO_BREAK_SPACE}{after}"
    if before[-1:].isdigit() and _letter_like(symbol[0]):
        return f"{before}{NO_BREAK_SPACE}{symbol}{after}"
    return formatted


def _letter_like(char: str) -> bool:
    # CLDR's currencyMatch [[:^S:]&[:^Z:]]: neither a symbol ($, €) nor a space.
    return unicodedata.category(char)[0] not in "SZ"


_PROBE = Decimal("1234567.89")


def money_pattern() -> dict:
    """The pieces of `money()`'s format in the user's language, for a page's script to print
    amounts exactly as the server does: read off the server's own output for a probe amount
    (so the currency sign, its spacing, the symbols and the grouping are the server's, not
    the browser's Intl, which may differ from Babel's in any of them)."""
    digits = get_currency_precision(current_app.config["CURRENCY"])
    pattern = {"digits": digits}
    for sign, amount in (("", _PROBE), ("negative_", -_PROBE)):
        text = money(amount)
        first, last = re.search(r"\d", text).start(), len(text) - re.search(r"\d", text[::-1]).start()
        pattern[sign + "prefix"], pattern[sign + "suffix"] = text[:first], text[last:]
        if not sign:
            body = text[first:last]  # the digits, as the positive amount prints them
    whole, decimal = body, ""
    if digits:
        whole, decimal, _ = re.fullmatch(rf"(.*\d)(\D+)(\d{{{digits}}})", body).groups()
    groups = re.split(r"\D+", whole)
    separators = re.findall(r"\D+", whole)
    pattern.update(
        decimal=decimal,
        group=separators[0] if separators else "",
        primary=len(groups[-1]),
        secondary=len(groups[-2]) if len(groups) > 2 else len(groups[-1]),
    )
    return pattern


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
