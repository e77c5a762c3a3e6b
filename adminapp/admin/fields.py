"""The admin's form base class and its hidden fields for optimistic locking."""

from wtforms import HiddenField
from wtforms.utils import unset_value

from ..forms import Form, HelpStaysWithErrors


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


class InitialValueField(VersionField):
    """A field's value as the form showed it when opened (Django's hidden initial), set by the
    view; compared on save, to tell what the user changed from what changed meanwhile."""
