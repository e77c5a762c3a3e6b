"""The base of every form: CSRF from Flask-WTF, validator messages in the user's language."""

from pathlib import Path

from flask_admin.form import BaseForm
from flask_babel import Domain
from flask_wtf import FlaskForm

# WTForms ships no Indonesian: its messages ("This field is required.", ...) are in the
# "admin" catalogue beside Flask-Admin's own (adminapp/translations/<lang>/LC_MESSAGES/admin.po).
# (flask_admin.babel.Translations would read WTForms' own catalogues, which have no "id".)
_VALIDATOR_DOMAIN = Domain(str(Path(__file__).resolve().parent / "translations"), domain="admin")


class ValidatorMessages:
    """The translations object WTForms asks for its built-in validator messages."""

    def gettext(self, string: str) -> str:
        return _VALIDATOR_DOMAIN.get_translations().ugettext(string)

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        return _VALIDATOR_DOMAIN.get_translations().ungettext(singular, plural, n)


VALIDATOR_MESSAGES = ValidatorMessages()


class Form(FlaskForm):
    class Meta:
        def get_translations(self, form):
            return VALIDATOR_MESSAGES


class InlineForm(BaseForm):
    """The base of Flask-Admin's inline forms (no CSRF of their own: the outer form has it)."""

    class Meta:
        def get_translations(self, form):
            return VALIDATOR_MESSAGES
