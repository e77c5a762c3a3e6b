"""adminapp: a back office for the product catalog and sales transactions."""

import copy
import os
import sys
import uuid
from contextlib import suppress
from pathlib import Path

from flask import Flask, g, has_request_context, redirect, render_template, request, url_for
from werkzeug.middleware.proxy_fix import ProxyFix

from . import database_errors
from .config import load_config, settle
from .extensions import babel, csrf, db, login_manager, migrate
from .labels import LANGUAGES
from .vocabularies import Language

ROOT = Path(__file__).resolve().parent.parent
TRANSLATIONS = Path(__file__).resolve().parent / "translations"

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        # Flask-Admin's templates use inline event handlers (onclick=...), which a nonce cannot allow.
        "script-src 'self' 'unsafe-inline'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self' data:",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


class AdminApp(Flask):
    def log_exception(self, exc_info) -> None:
        # Flask's own error log line, with the request ID the error page shows.
        self.logger.error(
            "Exception on %s [%s], request ID %s", request.path, request.method, g.get("request_id"), exc_info=exc_info
        )


def create_app(test_config: dict | None = None) -> Flask:
    """The app, configured from the environment, or only from ``test_config`` when one is given
    (then nothing is read from the environment): either way completed with the defaults and
    checked (config.settle)."""
    # A copy: the app completes its settings in place (the engine's options among them).
    given = load_config(os.environ) if test_config is None else {"DEBUG": False, **copy.deepcopy(test_config)}
    app = AdminApp(
        __name__,
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
        instance_path=str(given.get("INSTANCE_PATH") or ROOT / "instance"),
    )
    settle(given, app.instance_path)
    app.config.update(given)
    if app.config.get("PROXY_COUNT"):
        # The client's address (audit entries, the sign-in limit per address) from the
        # X-Forwarded-For the app's own proxies add, never from what a client claims.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=app.config["PROXY_COUNT"])
    # Errors first: every request gets its ID before anything else can fail.
    for register in (
        register_errors,
        register_extensions,
        register_listeners,
        register_auth,
        register_admin,
        register_security_headers,
        register_routes,
        register_cli,
    ):
        register(app)
    return app


def register_extensions(app: Flask) -> None:
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql"):
        # The JIT compiler spends 100s of ms on the plans of big tables that then run in a few:
        # a loss for every page of a back office.
        # A lock not granted within LOCK_TIMEOUT_MS fails the statement (then retried, see
        # database_errors) instead of holding the request until the worker is killed.
        options = app.config.setdefault("SQLALCHEMY_ENGINE_OPTIONS", {})
        options.setdefault("connect_args", {}).setdefault(
            "options", f"-c jit=off -c lock_timeout={app.config['LOCK_TIMEOUT_MS']}"
        )
    db.init_app(app)

    @app.teardown_appcontext
    def close_session(error):
        """Flask-SQLAlchemy's own closing, run first here, with one difference: when the connection
        died after the request's last query (the database restarted), its closing rollback fails,
        and that must not turn a page already made into an error. The connection is dropped and
        the pool opens a new one for the next request."""
        try:
            db.session.remove()
        except database_errors.DATABASE_ERRORS as exc:
            app.logger.warning("The database connection was lost at the end of a request: %s", exc)
            with suppress(*database_errors.DATABASE_ERRORS):
                db.session.remove()

    migrate.init_app(app, db, directory=str(ROOT / "migrations"), render_as_batch=True)
    csrf.init_app(app)
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", str(TRANSLATIONS))
    babel.init_app(app, locale_selector=select_locale)


def select_locale() -> str:
    """The signed-in user's chosen language, else the browser's best match, else English
    (also outside a request: command-line messages are English)."""
    from flask_login import current_user

    if not has_request_context():
        return Language.ENGLISH
    if current_user and current_user.is_authenticated and current_user.locale in LANGUAGES:
        return current_user.locale
    return request.accept_languages.best_match(list(LANGUAGES)) or Language.ENGLISH


def register_listeners(app: Flask) -> None:
    """The app's listeners, on its own engines and on db.session's sessions only: an engine or
    a Session made elsewhere in the process (a script, a test, another library) gets none."""
    from . import sqlite_connections
    from .domain import audit, guards, sales, stock

    with app.app_context():
        for engine in db.engines.values():
            sqlite_connections.install(engine, app.config["SQLITE_SYNCHRONOUS"])
    # db.session's sessions are of one class shared by every app in the process (db is one
    # object): listened to once, by the first app.
    for module in (guards, sales, stock, audit):
        module.install(db.session)


def register_auth(app: Flask) -> None:
    from flask_babel import get_locale
    from flask_login import current_user

    from . import auth
    from .domain import audit

    login_manager.init_app(app)
    login_manager.login_view = "auth.login"

    # The user of a session still open (see auth/sessions.py).
    login_manager.user_loader(auth.sessions.load_user)

    app.register_blueprint(auth.bp)
    app.before_request(auth.views.require_password_change)

    @app.before_request
    def identify_actor():
        # Who acts in this request, for the audit entries its changes produce.
        user = current_user if current_user.is_authenticated else None
        audit.set_actor(
            db.session, audit.Actor(user.id if user else None, user.username if user else None, request.remote_addr)
        )

    @app.before_request
    def settle_locale():
        # Chosen now, while the user is loaded: chosen first for a message after the commit,
        # it would reload the user the commit expired.
        get_locale()


def register_admin(app: Flask) -> None:
    from flask_babel import get_locale

    from . import labels
    from .admin import init_admin
    from .formatting import local_date, local_time, money, money_pattern, number, number_symbols

    init_admin(app)
    app.context_processor(lambda: {"current_locale": str(get_locale() or Language.ENGLISH), "languages": LANGUAGES})
    app.jinja_env.filters["money"] = money
    app.jinja_env.filters["number"] = number
    app.jinja_env.filters["local_date"] = local_date
    app.jinja_env.filters["local_time"] = local_time
    # Stored values (English in the database) as the user reads them.
    app.jinja_env.filters["status_label"] = labels.status_label
    app.jinja_env.filters["role_label"] = labels.role_label
    app.jinja_env.filters["action_label"] = labels.action_label
    app.jinja_env.filters["object_type_label"] = labels.object_type_label
    app.jinja_env.globals.update(
        object_label=labels.object_label,
        field_label=labels.field_label,
        change_value=labels.change_value,
        record_title=labels.record_title,
        line_change_label=labels.line_change_label,
        line_quantity=labels.line_quantity,
        line_quantities=labels.line_quantities,
        stock_movement=labels.stock_movement,
        number_symbols=number_symbols,
        money_pattern=money_pattern,
    )

    @app.after_request
    def content_language(response):
        # The language of the page (Flask-Admin's <html> has no lang attribute; the
        # master template repeats it in <head>). Pages differ by Accept-Language.
        if response.mimetype == "text/html":
            response.headers.setdefault("Content-Language", str(get_locale() or Language.ENGLISH))
            response.vary.add("Accept-Language")
        return response


def register_security_headers(app: Flask) -> None:
    @app.after_request
    def security_headers(response):
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        response.headers.setdefault("Referrer-Policy", "same-origin")
        if not (request.endpoint or "").endswith("static"):
            # Pages and exports hold what the user may see: no browser or proxy keeps a copy.
            response.headers.setdefault("Cache-Control", "no-store")
        if app.config["ADMINAPP_ENV"] == "production":
            response.headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
        return response


def register_routes(app: Flask) -> None:
    @app.route("/")
    def home():
        return redirect(url_for("admin.index"))

    @app.route("/favicon.ico")
    def favicon():
        # Asked for by browsers and tools that do not read the pages' <link rel="icon">.
        return app.send_static_file("img/favicon.svg")


def register_errors(app: Flask) -> None:
    from flask_babel import gettext as _

    from .admin.error_pages import ErrorPageFrame

    pages = {
        400: (
            lambda: _("Bad request"),
            lambda: _(
                "The request could not be accepted: a form may have expired, or a form or link came from "
                "another site. Go back, reload the page and try again."
            ),
        ),
        403: (lambda: _("Forbidden"), lambda: _("Your role does not allow this. Nothing was changed.")),
        404: (lambda: _("Not found"), lambda: _("There is no page at this address.")),
        413: (
            lambda: _("Too large"),
            lambda: _(
                "What was sent is larger than the server accepts, so nothing was saved. "
                "Shorten the form's text, or send fewer lines at a time."
            ),
        ),
        500: (
            lambda: _("Server error"),
            lambda: _(
                "Something went wrong on our side and nothing was saved. "
                "If it happens again, tell the administrator the request ID below."
            ),
        ),
        503: (lambda: _("Try again in a moment"), lambda: _("The database was busy; nothing was changed. Try again.")),
    }

    @app.before_request
    def assign_request_id():
        g.request_id = uuid.uuid4().hex[:12]

    @app.after_request
    def expose_request_id(response):
        response.headers.setdefault("X-Request-ID", g.get("request_id", ""))
        return response

    def render_error(code, message=None, framed=True):
        try:
            if not framed:
                return render_error_page(code, render_template, "errors/plain.html", message)
            frame = ErrorPageFrame(app.extensions["admin"][0])
            return render_error_page(code, frame.render, "errors/error.html", message)
        except Exception:
            # The frame and the user's language need the signed-in user, so the database.
            # Without it: a plain page for an anonymous visitor, in the browser's language.
            app.logger.exception("The error page could not be framed, request ID %s", g.get("request_id"))
            rollback_quietly()
            g._login_user = login_manager.anonymous_user()  # where Flask-Login 0.6 keeps the user
            return render_error_page(code, render_template, "errors/plain.html", message)

    def render_error_page(code, render, template, message=None):
        title, default_message = pages[code]
        return render(
            template,
            code=code,
            title=title(),
            message=message or default_message(),
            request_id=g.get("request_id") if code == 500 else None,
        ), code

    for code in (403, 404, 413):
        app.register_error_handler(code, lambda error, code=code: render_error(code))
    # A refused CSRF token (Flask-WTF's reasons are English only) and any other bad request,
    # such as a link that would send the user back to another site: said in the user's language.
    app.register_error_handler(400, lambda error: render_error(400))

    @app.errorhandler(500)
    def server_error(error):
        rollback_quietly()
        return render_error(500)

    @app.errorhandler(database_errors.DBAPIError)
    @app.errorhandler(database_errors.PoolTimeout)
    def database_error(error):
        """A page or a sign-in that failed because the database was busy, away, or could not
        record the audit entry: 503, to be tried again. Any other database error is a 500."""
        failure = database_errors.failure_of(error)
        if failure is None:
            app.log_exception(sys.exc_info())
            return server_error(error)
        app.logger.warning(
            "Database %s on %s, request ID %s: %s",
            failure.value,
            request.path,
            g.get("request_id"),
            getattr(error, "orig", error),
        )
        rollback_quietly()
        no_connection = failure is database_errors.Failure.UNAVAILABLE or isinstance(error, database_errors.PoolTimeout)
        if no_connection:
            # No user can be loaded to draw the frame for (nor to choose the language by): the plain one.
            g._login_user = login_manager.anonymous_user()
        body, code = render_error(503, database_errors.message(failure), framed=not no_connection)
        return body, code, {"Retry-After": str(database_errors.RETRY_AFTER_SECONDS)}


def rollback_quietly() -> None:
    """Roll back before an error page: on a connection the database has cut, the rollback
    itself fails, and the page must still be shown."""
    with suppress(*database_errors.DATABASE_ERRORS):
        db.session.rollback()


def register_cli(app: Flask) -> None:
    from .cli import register

    register(app)
