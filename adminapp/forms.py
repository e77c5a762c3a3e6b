"""The base of every form: CSRF from Flask-WTF, validator messages in the user's language,
one message for a value that could not be read, no control characters in any text, and (in
the admin) help text kept under a field that has an error, as in Django's admin."""

import re
from pathlib import Path

from flask_admin.form import BaseForm
from flask_babel import Domain, gettext
from flask_wtf import FlaskForm
from markupsafe import Markup
from wtforms import HiddenField, PasswordField, StringField, TextAreaField
from wtforms.validators import StopValidation

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


# C0 and C1 control characters and DEL; a text area keeps tabs and line breaks.
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_CONTROL_CHARACTERS_IN_TEXT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


class TextAcceptingControlCharacters:
    """Mixed into a text field whose value is checked elsewhere (the name typed at sign-in)."""


def no_control_characters(form, field):
    """Refuse NUL and other control characters before any other check of the field, so none
    reaches a query (PostgreSQL cannot even compare text with NUL) or the database."""
    pattern = _CONTROL_CHARACTERS_IN_TEXT if isinstance(field, TextAreaField) else _CONTROL_CHARACTERS
    if isinstance(field.data, str) and pattern.search(field.data):
        raise StopValidation(gettext("Remove the control characters from this text."))


def _checks_control_characters(field) -> bool:
    # A password is only ever hashed (its rule refuses control characters in a new one); a
    # hidden field holds what the page set (a version, a line's id), read by its own parser.
    return isinstance(field, StringField) and not isinstance(
        field, (PasswordField, HiddenField, TextAcceptingControlCharacters)
    )


class AdminFormBehaviour:
    """What every form here shares, whatever its base class."""

    class Meta:
        def get_translations(self, form):
            return VALIDATOR_MESSAGES

        def bind_field(self, form, unbound_field, options):
            # Every text field of every form (Flask-Admin's and the inline lines' included)
            # checks for control characters first, and nothing else runs when it finds one.
            field = super().bind_field(form, unbound_field, options)
            if _checks_control_characters(field):
                field.validators = [no_control_characters, *field.validators]
            return field

    def validate(self, extra_validators=None):
        valid = super().validate(extra_validators)
        for field in self:
            # A value that could not be read ("abc" for a price) gets that message alone,
            # not also the range checks that then ran on no value. (An empty required field
            # keeps "This field is required.": InputRequired clears the reading error.)
            unreadable = [error for error in field.process_errors if error in field.errors]
            if unreadable:
                field.errors = unreadable
        return valid


class HelpStaysWithErrors:
    """For forms drawn by Flask-Admin's templates, which drop a field's help text while the
    field has an error. Django's admin keeps it, and it is what the user needs to fix the value."""

    class Meta:
        def render_field(self, field, render_kw):
            if not (field.description and any(isinstance(error, str) for error in field.errors)):
                return super().render_field(field, render_kw)
            help_id = f"{field.id}-help"
            html = super().render_field(field, {**render_kw, "aria-describedby": help_id})
            return html + Markup('<small id="{}" class="form-text text-muted">{}</small>').format(
                help_id, field.description
            )


class Form(AdminFormBehaviour, FlaskForm):
    pass


class InlineForm(HelpStaysWithErrors, AdminFormBehaviour, BaseForm):
    """The base of Flask-Admin's inline forms (no CSRF of their own: the outer form has it)."""
