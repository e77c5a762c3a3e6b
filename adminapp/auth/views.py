"""Sign-in and sign-out. Each POST is one database transaction."""

from flask import Blueprint, current_app, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext, lazy_gettext
from flask_login import current_user, login_required
from wtforms import PasswordField, StringField
from wtforms.validators import EqualTo, InputRequired, Length

from .. import database_errors
from ..database_errors import failure_of, retrying
from ..domain import accounts
from ..extensions import db
from ..forms import Form, TextAcceptingControlCharacters
from ..labels import LANGUAGES
from ..redirects import local_path
from . import sessions

bp = Blueprint("auth", __name__)


class SignInNameField(TextAcceptingControlCharacters, StringField):
    """Whatever is typed as a name is tried: one no user can have (control characters, too
    long, not a name at all) is an unknown user, counted and audited like any other."""


class LoginForm(Form):
    username = SignInNameField(lazy_gettext("Username"), validators=[InputRequired()])
    password = PasswordField(lazy_gettext("Password"), validators=[InputRequired(), Length(max=1024)])


def safe_next(target: str | None) -> str:
    """The page to go to after signing in: a path on this site, else the dashboard."""
    return local_path(target) or url_for("admin.index")


@bp.route("/login", methods=["GET", "POST"])
def login():
    if current_user.is_authenticated:
        return redirect(safe_next(request.args.get("next")))
    form = LoginForm()
    status = 200
    if form.validate_on_submit():
        try:
            user, token = retrying(lambda: _sign_in(form), db.session.rollback)
        except (accounts.LoginLocked, accounts.LoginRefused) as exc:
            flash(str(exc), "error")
            status = 429 if isinstance(exc, accounts.LoginLocked) else 200
        except database_errors.DATABASE_ERRORS as exc:
            if failure_of(exc) is None:
                raise
            db.session.rollback()
            flash(database_errors.message(failure_of(exc)), "error")
            status = 503
        else:
            sessions.begin(user, token)
            return redirect(safe_next(request.args.get("next")))
    retry = {"Retry-After": str(database_errors.RETRY_AFTER_SECONDS)} if status == 503 else {}
    return render_template("auth/login.html", form=form), status, retry


def _sign_in(form) -> tuple:
    """One attempt, one unit of work: the user and their new session's token, committed; or the
    refusal raised once its count and audit entry are committed."""
    try:
        user = accounts.authenticate(db.session, form.username.data, form.password.data,
                                     accounts.SignInLimits.from_config(current_app.config), request.remote_addr)
    except (accounts.LoginLocked, accounts.LoginRefused):
        db.session.commit()  # keep the failed-attempt count and its audit entry
        raise
    token = accounts.start_session(db.session, user, sessions.lifetime())
    db.session.commit()
    return user, token


class ChangePasswordForm(Form):
    current_password = PasswordField(lazy_gettext("Current password"), validators=[InputRequired(), Length(max=1024)])
    new_password = PasswordField(
        lazy_gettext("New password"), validators=[InputRequired(), Length(max=1024)],
        description=lazy_gettext("At least %(min)s characters, not only digits, not your username, "
                                 "not a common password.", min=accounts.MIN_PASSWORD_LENGTH),
    )
    confirm_password = PasswordField(
        lazy_gettext("New password again"),
        validators=[InputRequired(), EqualTo("new_password", message=lazy_gettext("The two passwords differ."))],
    )


@bp.route("/account/password", methods=["GET", "POST"])
@login_required
def change_password():
    form = ChangePasswordForm()
    if form.validate_on_submit():
        try:
            accounts.change_password(db.session, current_user._get_current_object(),
                                     form.current_password.data, form.new_password.data,
                                     keep_token=sessions.current_token())
        except accounts.InvalidUser as exc:
            db.session.rollback()
            field = form.current_password if isinstance(exc, accounts.WrongPassword) else form.new_password
            field.errors.append(str(exc))
        else:
            db.session.commit()
            flash(gettext("Your password was changed."), "success")
            return redirect(url_for("admin.index"))
    return render_template("auth/change_password.html", form=form)


@bp.route("/account/language", methods=["POST"])
@login_required
def change_language():
    """Keep the user's interface language (the browser's choice applies until then)."""
    locale = request.form.get("locale")
    if locale in LANGUAGES:
        current_user.locale = locale
        db.session.commit()
    return redirect(safe_next(request.form.get("next")))


def require_password_change():
    """Until a user with `must_change_password` picks a new password, that is the only page."""
    if (current_user.is_authenticated and current_user.must_change_password
            and request.endpoint not in ("auth.change_password", "auth.logout", "auth.sign_out_everywhere",
                                         "static", "admin.static")):
        message = gettext("Choose a new password before you continue.")
        if message not in (text for _, text in session.get("_flashes", [])):  # once, not per page tried
            flash(message, "warning")
        return redirect(url_for("auth.change_password"))
    return None


@bp.route("/logout", methods=["POST"])
@login_required
def logout():
    accounts.logout(db.session, current_user._get_current_object(), sessions.current_token())
    db.session.commit()
    sessions.end()
    flash(gettext("You have been signed out."), "info")
    return redirect(url_for("auth.login"))


@bp.route("/account/sign-out-everywhere", methods=["POST"])
@login_required
def sign_out_everywhere():
    """End all of the user's sessions: in this browser and in any other."""
    accounts.sign_out_everywhere(db.session, current_user._get_current_object())
    db.session.commit()
    sessions.end()
    flash(gettext("You have been signed out everywhere: in this browser and in any other."), "info")
    return redirect(url_for("auth.login"))
