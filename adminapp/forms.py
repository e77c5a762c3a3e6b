"""The base of every form: CSRF from Flask-WTF, validator messages in the user's language."""

from flask_admin.babel import Translations
from flask_wtf import FlaskForm

# WTForms ships no Indonesian; its messages are in the "admin" catalogue beside
# Flask-Admin's own (adminapp/translations), which Flask-Admin's inline forms read too.
VALIDATOR_MESSAGES = Translations()


class Form(FlaskForm):
    class Meta:
        def get_translations(self, form):
            return VALIDATOR_MESSAGES
