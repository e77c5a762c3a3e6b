"""Sign-in and sign-out. Each POST is one database transaction."""

from urllib.parse import urlsplit

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required, login_user, logout_user
from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField
from wtforms.validators import InputRequired, Length

from ..domain import accounts
from ..extensions import db

bp = Blueprint("auth", __name__)


class LoginForm(FlaskForm):
    username = StringField("Username", validators=[InputRequired(), Length(max=64)])
    password = PasswordField("Password", validators=[InputRequired(), Length(max=1024)])


def safe_next(target: str | None) -> str:
    """Only same-site paths: `/admin/x`, never `//evil.example` or `https://...`."""
    default = url_for("admin.index")
    if not target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    return target


@bp.route("/login", methods=["GET", "POST"])
def login():
    if current_user.is_authenticated:
        return redirect(safe_next(request.args.get("next")))
    form = LoginForm()
    status = 200
    if form.validate_on_submit():
        try:
            user = accounts.authenticate(
                db.session,
                form.username.data.strip(),
                form.password.data,
                current_app.config["LOGIN_MAX_ATTEMPTS"],
                current_app.config["LOGIN_LOCKOUT_SECONDS"],
            )
        except accounts.LoginLocked as exc:
            db.session.commit()  # keep the audit entry of the refused attempt
            flash(str(exc), "error")
            status = 429
        except accounts.LoginRefused as exc:
            db.session.commit()  # keep the failed-attempt count and its audit entry
            flash(str(exc), "error")
        else:
            db.session.commit()
            login_user(user)
            return redirect(safe_next(request.args.get("next")))
    return render_template("auth/login.html", form=form), status


@bp.route("/logout", methods=["POST"])
@login_required
def logout():
    accounts.logout(db.session, current_user._get_current_object())
    db.session.commit()
    logout_user()
    flash("You have been signed out.", "info")
    return redirect(url_for("auth.login"))
