"""Sign-in and sign-out. Each POST is one database transaction."""

from flask import Blueprint, current_app, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext, lazy_gettext
from flask_login import current_user, login_required
from wtforms import PasswordField, StringField
from wtforms.validators import EqualTo, InputRequired, Length

from .. import database_errors
from ..domain import accounts
from ..extensions import db
from ..forms import Form, TextAcceptingControlCharacters
from ..labels import LANGUAGES
from ..redirects import local_path
from ..unit_of_work import database_failure, run_unit_of_work, unit_of_work
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
        outcome = run_unit_of_work(lambda: _sign_in(form), tell=database_failure)
        if outcome.error is not None:  # the database failed: the message is flashed
            status = 503
        elif isinstance(outcome.result, REFUSALS):
            flash(str(outcome.result), "error")
            status = 429 if isinstance(outcome.result, accounts.LoginLocked) else 200
        else:
            sessions.begin(*outcome.result)
            return redirect(safe_next(request.args.get("next")))
    retry = {"Retry-After": str(database_errors.RETRY_AFTER_SECONDS)} if status == 503 else {}
    return render_template("auth/login.html", form=form), status, retry


REFUSALS = (accounts.LoginLocked, accounts.LoginRefused)


def _sign_in(form):
    """One attempt, one unit of work: the user and their new session's token; or the refusal,
    whose failed-attempt count and audit entry are committed all the same."""
    try:
        user = accounts.authenticate(
            db.session,
            form.username.data,
            form.password.data,
            accounts.SignInLimits.from_config(current_app.config),
            request.remote_addr,
        )
    except REFUSALS as refusal:
        return refusal
    return user, accounts.start_session(db.session, user, sessions.lifetime())


class ChangePasswordForm(Form):
    current_password = PasswordField(lazy_gettext("Current password"), validators=[InputRequired(), Length(max=1024)])
    new_password = PasswordField(
        lazy_gettext("New password"),
        validators=[InputRequired(), Length(max=1024)],
        description=lazy_gettext(
            "At least %(min)s characters, not only digits, not your username, not a common password.",
            min=accounts.MIN_PASSWORD_LENGTH,
        ),
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
            with unit_of_work():
                accounts.change_password(
                    db.session,
                    current_user._get_current_object(),
                    form.current_password.data,
                    form.new_password.data,
                    keep_token=sessions.current_token(),
                )
        except accounts.InvalidUser as exc:  # rolled back
            field = form.current_password if isinstance(exc, accounts.WrongPassword) else form.new_password
            field.errors.append(str(exc))
        else:
            flash(gettext("Your password was changed."), "success")
            return redirect(url_for("admin.index"))
    return render_template("auth/change_password.html", form=form)


@bp.route("/account/language", methods=["POST"])
@login_required
def change_language():
    """Keep the user's interface language (the browser's choice applies until then)."""
    locale = request.form.get("locale")
    if locale in LANGUAGES:
        with unit_of_work():
            current_user.locale = locale
    return redirect(safe_next(request.form.get("next")))


def require_password_change():
    """Until a user with `must_change_password` picks a new password, that is the only page."""
    if (
        current_user.is_authenticated
        and current_user.must_change_password
        and request.endpoint
        not in ("auth.change_password", "auth.logout", "auth.sign_out_everywhere", "static", "admin.static")
    ):
        message = gettext("Choose a new password before you continue.")
        if message not in (text for _, text in session.get("_flashes", [])):  # once, not per page tried
            flash(message, "warning")
        return redirect(url_for("auth.change_password"))
    return None


@bp.route("/logout", methods=["POST"])
@login_required
def logout():
    with unit_of_work():
        accounts.logout(db.session, current_user._get_current_object(), sessions.current_token())
    sessions.end()
    flash(gettext("You have been signed out."), "info")
    return redirect(url_for("auth.login"))


@bp.route("/account/sign-out-everywhere", methods=["POST"])
@login_required
def sign_out_everywhere():
    """End all of the user's sessions: in this browser and in any other."""
    with unit_of_work():
        accounts.sign_out_everywhere(db.session, current_user._get_current_object())
    sessions.end()
    flash(gettext("You have been signed out everywhere: in this browser and in any other."), "info")
    return redirect(url_for("auth.login"))
