"""List filters with exact values: Decimal for money, int for counts (Flask-Admin's use float)."""

from decimal import Decimal, InvalidOperation

from flask_admin.babel import lazy_gettext
from flask_admin.contrib.sqla.filters import BaseSQLAFilter


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
