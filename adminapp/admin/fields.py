"""The admin's form base class, its hidden fields for optimistic locking, and the number
fields that read and show numbers in the user's language."""

import re
from copy import copy
from decimal import Decimal

from babel import Locale
from babel.numbers import NumberFormatError, format_decimal, parse_decimal
from flask_babel import get_locale, gettext
from wtforms import DecimalField, HiddenField, IntegerField
from wtforms.utils import unset_value
from wtforms.widgets import TextInput

from ..formatting import number_symbols
from ..forms import Form, HelpStaysWithErrors
from ..vocabularies import Language


class AdminForm(HelpStaysWithErrors, Form):
    """The app's Form (CSRF, honours WTF_CSRF_ENABLED) that keeps the edited record as
    ``_obj``, like flask_admin.form.BaseForm: Flask-Admin's Unique validator needs it,
    or saving a record with its unique value unchanged fails with "Already exists."."""

    def __init__(self, *args, obj=None, **kwargs):
        self._obj = obj
        super().__init__(*args, obj=obj, **kwargs)


class VersionField(HiddenField):
    """The version the form was opened at. Compared on save, never written to the record."""

    def process(self, formdata, data=unset_value, extra_filters=None):
        # On a POST only the posted value counts: a form without one must not
        # quietly take the record's current version and skip the check.
        if formdata is not None:
            data = None
        super().process(formdata, data, extra_filters)

    def populate_obj(self, obj, name):
        pass


# The plain format other tools post and the CSV exports write: digits, and in a decimal at most
# two more after a ".". It reads the same in every language, first: Babel's strict Indonesian
# parse refuses 45000.50 ("." groups thousands there). Three digits after a "." are left to the
# language, where they may be a group: 45.000 is forty-five thousand in Indonesian.
_PLAIN_INTEGER = re.compile(r"-?[0-9]+")
_PLAIN_DECIMAL = re.compile(r"-?[0-9]+(?:\.[0-9]{1,2})?")
# WTForms' own messages for a value it cannot read, translated in its catalogue (admin.po).
_NOT_A_DECIMAL = "Not a valid decimal value."
# Longer than any price or quantity the app stores, written with every group separator.
MAX_NUMBER_LENGTH = 40
_NOT_AN_INTEGER = "Not a valid integer value."


def _user_locale() -> Locale:
    return get_locale() or Locale.parse(Language.ENGLISH)


def _fraction_digits(number: Decimal) -> int:
    exponent = number.as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


def format_number(number, locale: Locale, places: int = 0) -> str:
    """``number`` in the locale's decimal format, with at least ``places`` decimals and every
    decimal it has: 45000.5 -> 45.000,50 (Indonesian, places 2), never rounded."""
    digits = max(places, _fraction_digits(number)) if isinstance(number, Decimal) else places
    pattern = copy(locale.decimal_formats[None])
    pattern.frac_prec = (digits, digits)
    return format_decimal(number, pattern, locale=locale, decimal_quantization=False)


class _UnreadableNumber(ValueError):
    """A number the field could not read, with what it understood (or could have)."""

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.hint = hint


class _LocaleNumberField:
    """A text input that reads and shows numbers as the user's language writes them (with
    Babel's strict parsing), the plain export format accepted in every language. A number
    that is refused says how it was read; one that could be read two ways is refused with
    both readings: never a silently different number."""

    widget = TextInput()  # a number box would drop what it cannot read (45000,50 -> 4500050)
    inputmode = "decimal"
    plain_format = _PLAIN_DECIMAL
    places = 0

    def __init__(self, *args, render_kw=None, **kwargs):
        super().__init__(*args, render_kw={"inputmode": self.inputmode, **(render_kw or {})}, **kwargs)

    def _value(self):
        if self.raw_data:
            return self.raw_data[0]  # as typed, to be corrected
        return "" if self.data is None else self.shown(self.data, _user_locale())

    def shown(self, number, locale: Locale) -> str:
        return format_number(number, locale, self.places or 0)  # DecimalField's places may be None

    def process(self, formdata, data=unset_value, extra_filters=None):
        self.reading = None  # how a number was read, shown if a rule then refuses it
        self.refusal_hint = None  # what an unreadable number could have been
        super().process(formdata, data, extra_filters)
        if self.refusal_hint:
            # The value's second error, after "Not a valid decimal value.": Field.process
            # keeps one message of a ValueError.
            self.process_errors.append(self.refusal_hint)

    def process_formdata(self, valuelist):
        text = valuelist[0].strip() if valuelist else ""
        if not text:
            self.data = None  # left to InputRequired
            return
        if len(text) > MAX_NUMBER_LENGTH:
            # Refused unread: a number of thousands of digits overflows the range checks.
            self.data = None
            raise ValueError(self.invalid_message())
        try:
            self.data = self.number_from(text)
        except _UnreadableNumber as exc:
            self.data = None
            self.refusal_hint = exc.hint
            raise ValueError(exc.args[0]) from None

    def read(self, text: str) -> Decimal:
        """The number in ``text``, the plain format first, then the user's language."""
        if self.plain_format.fullmatch(text):
            return Decimal(text)
        locale = _user_locale()
        try:
            number = parse_decimal(text, locale=locale, strict=True)
        except NumberFormatError as exc:
            raise _UnreadableNumber(self.invalid_message(), self.suggestions(exc, locale)) from None
        if number.is_finite() and any(symbol in text for symbol in number_symbols(locale).values()):
            self.reading = self.read_as(number, locale)
        return number

    def suggestions(self, error: NumberFormatError, locale: Locale) -> str | None:
        """The readings Babel offers for a badly grouped number (1,50 in English: 150 or 1.5),
        in the field's format; None when there are none (12abc,50)."""
        readings = []
        for suggestion in getattr(error, "suggestions", None) or []:
            number = parse_decimal(suggestion, locale=locale)
            if self.could_be(number) and number not in readings:
                readings.append(number)
        shown = [self.shown(number, locale) for number in readings]
        if len(shown) == 1:
            question = gettext("Did you mean %(number)s?", number=shown[0])
        elif len(shown) == 2:
            question = gettext("Did you mean %(first)s or %(second)s?", first=shown[0], second=shown[1])
        else:
            return None
        return f"{question} {_convention(locale)}"

    def read_as(self, number: Decimal, locale: Locale) -> str:
        read = gettext("Read as %(number)s.", number=self.shown(number, locale))
        return f"{read} {_convention(locale)}"

    def post_validate(self, form, validation_stopped):
        # A number refused by a rule (too many decimals, out of range) says how it was read:
        # 45.000 in English is forty-five with three decimals.
        if self.errors and self.reading and self.reading not in self.errors:
            self.errors.append(self.reading)


def _convention(locale: Locale) -> str:
    symbols = number_symbols(locale)
    return gettext("Here “%(decimal)s” marks the decimals and “%(group)s” separates thousands.", **symbols)


class LocaleDecimalField(_LocaleNumberField, DecimalField):
    """A Decimal typed as the user writes it: 45.000,50 or 45000,50 in Indonesian, 45,000.50 in
    English, 45000.50 in both. ``places``: the decimals it shows (2: 45.000,00)."""

    def number_from(self, text: str) -> Decimal:
        return self.read(text)

    def invalid_message(self) -> str:
        return self.gettext(_NOT_A_DECIMAL)

    def could_be(self, number: Decimal) -> bool:
        return True


class LocaleIntegerField(_LocaleNumberField, IntegerField):
    """A whole number typed as the user writes it: 1.000 in Indonesian and 1,000 in English are
    one thousand, 1000 is in both; a decimal point (1,5 in Indonesian, 1.0 in English) is refused."""

    inputmode = "numeric"
    plain_format = _PLAIN_INTEGER

    def number_from(self, text: str) -> int:
        number = self.read(text)
        if not self.could_be(number):  # 1,5 or 1,0 in Indonesian, 1e3
            raise _UnreadableNumber(self.invalid_message(), self.reading)
        return int(number)

    def invalid_message(self) -> str:
        return self.gettext(_NOT_AN_INTEGER)

    def could_be(self, number: Decimal) -> bool:
        return number.is_finite() and number.as_tuple().exponent == 0  # written without decimals


class ShownIntegerField(LocaleIntegerField):
    """A whole number the form shows read-only, as the record holds it: whatever a request sends
    for it is ignored, and saving the form never writes it (a product's stock, which changes
    only through the stock ledger's movements)."""

    def __init__(self, label=None, validators=None, **kwargs):
        kwargs["render_kw"] = {**(kwargs.get("render_kw") or {}), "readonly": True}
        super().__init__(label, [], **kwargs)

    def process(self, formdata, data=unset_value, extra_filters=None):
        super().process(None, data, extra_filters)  # the request's value is never read

    def populate_obj(self, obj, name):
        pass
