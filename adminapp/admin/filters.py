"""List filters with exact values: Decimal for money, int for counts (Flask-Admin's use float)."""

from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal, InvalidOperation

from flask_admin.babel import lazy_gettext
from flask_admin.contrib.sqla.filters import BaseSQLAFilter
from flask_babel import get_timezone


class _DecimalValue:
    def validate(self, value):
        try:
            return Decimal(value).is_finite()
        except (InvalidOperation, ValueError, TypeError):
            return False

    def clean(self, value):
        return Decimal(value)


class _IntValue:
    def validate(self, value):
        try:
            int(value)
        except (ValueError, TypeError):
            return False
        return abs(int(value)) < 2**63

    def clean(self, value):
        return int(value)


class AtLeast(_DecimalValue, BaseSQLAFilter):
    def apply(self, query, value, alias=None):
        return query.filter(self.get_column(alias) >= value)

    def operation(self):
        return lazy_gettext("at least")


class AtMost(_DecimalValue, BaseSQLAFilter):
    def apply(self, query, value, alias=None):
        return query.filter(self.get_column(alias) <= value)

    def operation(self):
        return lazy_gettext("at most")


class IntAtOrBelow(_IntValue, BaseSQLAFilter):
    def apply(self, query, value, alias=None):
        return query.filter(self.get_column(alias) <= value)

    def operation(self):
        return lazy_gettext("at or below")


class LocalDateFrom(BaseSQLAFilter):
    """Rows on or after a local calendar day (YYYY-MM-DD), compared in UTC."""

    def validate(self, value):
        return _parse_day(value) is not None

    def clean(self, value):
        return _local_midnight_utc(_parse_day(value))

    def apply(self, query, value, alias=None):
        return query.filter(self.get_column(alias) >= value)

    def operation(self):
        return lazy_gettext("from")


class LocalDateTo(LocalDateFrom):
    """Rows on or before a local calendar day (the whole day included)."""

    def clean(self, value):
        return _local_midnight_utc(_parse_day(value) + timedelta(days=1))

    def apply(self, query, value, alias=None):
        return query.filter(self.get_column(alias) < value)

    def operation(self):
        return lazy_gettext("to")


def _parse_day(value):
    try:
        return date.fromisoformat(value.strip())
    except (AttributeError, ValueError):
        return None


def _local_midnight_utc(day):
    local = get_timezone().localize(datetime.combine(day, time.min))  # pytz: localize, never replace
    return local.astimezone(timezone.utc)
