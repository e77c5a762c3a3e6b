"""Users at /admin/user/ (admin only): roles, activation and passwords, never hashes."""

from flask_admin.actions import action
from flask_babel import lazy_gettext, ngettext
from flask_login import current_user
from wtforms import PasswordField, SelectChoice, SelectField
from wtforms.validators import DataRequired, EqualTo, Length, Optional, StopValidation

from ..auth import sessions
from ..domain import accounts
from ..extensions import db
from ..formatting import local_time
from ..labels import ROLE_LABELS, USER_FIELDS, role_label
from ..permissions import DELETE
from ..vocabularies import Role
from .base import SecuredModelView
from .fields import VersionField


def username_rule(form, field):
    """The username rule (accounts.check_username) for a new name or a rename."""
    try:
        accounts.check_username(db.session, field.data, form._obj)
    except accounts.InvalidUser as exc:
        raise StopValidation(str(exc)) from None


class UserView(SecuredModelView):
    column_list = ["username", "role", "is_active", "last_login_at", "must_change_password", "locked_until"]
    column_record_link = "username"
    column_labels = USER_FIELDS
    column_default_sort = ("username", False)
    column_searchable_list = ["username"]
    column_filters = ["role", "is_active"]
    column_formatters = {
        "role": lambda v, c, m, n: role_label(m.role),
        "created_at": lambda v, c, m, n: local_time(m.created_at),
        "last_login_at": lambda v, c, m, n: local_time(m.last_login_at),
        "locked_until": lambda v, c, m, n: local_time(m.locked_until),
    }
    column_details_list = [
        "id",
        "username",
        "role",
        "is_active",
        "created_at",
        "last_login_at",
        "failed_login_count",
        "locked_until",
        "must_change_password",
        "version",
    ]
    column_formatters_detail = column_formatters
    column_export_list = ["id", "username", "role", "is_active", "created_at", "last_login_at"]
    # Exported values are the stored ones (role "staff", ISO UTC times) whatever the language.
    column_formatters_export = {
        "created_at": lambda v, c, m, n: m.created_at.isoformat() if m.created_at else "",
        "last_login_at": lambda v, c, m, n: m.last_login_at.isoformat() if m.last_login_at else "",
    }
    export_types = ["csv"]

    form_columns = [
        "username",
        "role",
        "is_active",
        "must_change_password",
        "new_password",
        "confirm_password",
        "version",
    ]
    form_extra_fields = {
        "version": VersionField(),
        "new_password": PasswordField(
            lazy_gettext("Password"),
            validators=[Optional(), Length(max=1024)],
            description=lazy_gettext(
                "At least %(min)s characters, not only digits, not the username, not a common password. "
                "Leave empty to keep the current one.",
                min=accounts.MIN_PASSWORD_LENGTH,
            ),
        ),
        "confirm_password": PasswordField(
            lazy_gettext("Password again"),
            validators=[EqualTo("new_password", message=lazy_gettext("The two passwords differ."))],
        ),
    }
    form_overrides = {"role": SelectField}
    form_args = {
        "username": {
            "filters": [lambda v: accounts.normalize_username(v) if isinstance(v, str) else v],
            "validators": [DataRequired(), username_rule],
            "description": lazy_gettext(
                "Letters, digits and . _ - only, letters of one alphabet. "
                "Letter case does not make another name: Alice is alice."
            ),
        },
        "role": {"choices": [SelectChoice(role, ROLE_LABELS[role]) for role in Role], "validators": [DataRequired()]},
        "is_active": {
            "default": True,
            "description": lazy_gettext("Inactive users cannot sign in; their history stays."),
        },
        "must_change_password": {
            "description": lazy_gettext(
                "Ask for a new password at the next sign-in. Always so after you set a password for someone else."
            )
        },
    }
    action_rights = {"delete": DELETE}

    def on_model_change(self, form, model, is_created):
        # The admin's own session continues when they change their own password or role.
        accounts.save_user(
            db.session,
            model,
            form.new_password.data,
            is_created,
            version_seen=form.version.data,
            keep_token=sessions.current_token(),
            set_by=current_user.id,
        )

    def deletion_preview(self, record):
        return accounts.deletion_preview(db.session, record)

    def on_model_delete(self, model):
        super().on_model_delete(model)
        accounts.ensure_an_admin_remains(db.session, model, deleting=True)
        accounts.ensure_no_record(db.session, model)

    @action("delete", lazy_gettext("Delete"), lazy_gettext("Delete the selected users?"))
    def action_delete(self, ids):
        self.run_action(
            accounts.delete_users, ids, lambda n: ngettext("%(num)s user deleted.", "%(num)s users deleted.", n)
        )
