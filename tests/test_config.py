"""Configuration from the environment, security headers, cookies and local-only assets."""

import os
import stat
import subprocess
import sys
from datetime import timedelta
from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest
from sqlalchemy import text

from adminapp import create_app
from adminapp.config import ConfigError, load_config
from adminapp.extensions import db as _db
from tests.support import ROOT, clean_environ, is_app_variable, login, make_app


@pytest.fixture
def env(monkeypatch, tmp_path):
    """A clean environment for create_app(): none of the app's variables set, a fresh instance folder."""
    for name in list(os.environ):
        if is_app_variable(name):
            monkeypatch.delenv(name)
    instance = tmp_path / "config-instance"
    monkeypatch.setenv("ADMINAPP_INSTANCE_PATH", str(instance))
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'config.db'}")
    return instance


def dispose(app):
    with app.app_context():
        _db.engine.dispose()


# --- secret key and production -----------------------------------------------------------------


def test_production_without_secret_key_refuses_to_start(env, monkeypatch):
    monkeypatch.setenv("ADMINAPP_ENV", "production")
    with pytest.raises(ConfigError, match="SECRET_KEY is not set") as error:
        create_app()
    assert "ADMINAPP_ENV=production" in str(error.value)
    assert not (env / "secret_key").exists()  # no key quietly generated instead


@pytest.mark.parametrize("name", ["prod", "Production", "production "])
def test_an_unknown_environment_refuses_to_start(env, monkeypatch, name):
    monkeypatch.setenv("ADMINAPP_ENV", name)
    monkeypatch.setenv("SECRET_KEY", "a-long-production-secret-of-32-chars")
    with pytest.raises(ConfigError, match="ADMINAPP_ENV=.* is not known: use one of development, production"):
        create_app()


BAD_COUNTS = [
    (variable, value, 1)
    for variable in ("LOGIN_MAX_ATTEMPTS", "ADMINAPP_SESSION_IDLE_MINUTES", "ADMINAPP_SESSION_MAX_HOURS")
    for value in ("five", "-1", "2.5", "0")
] + [
    (variable, value, 0)
    for variable in ("LOGIN_LOCKOUT_SECONDS", "ADMINAPP_LOW_STOCK")
    for value in ("five", "-1", "2.5")
]


@pytest.mark.parametrize("variable, value, minimum", BAD_COUNTS)
def test_a_setting_that_is_not_a_count_refuses_to_start(env, monkeypatch, variable, value, minimum):
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError, match=f"{variable}='{value}' is not a whole number of {minimum} or more"):
        create_app()


def test_production_with_an_empty_secret_key_refuses_to_start(env, monkeypatch):
    monkeypatch.setenv("ADMINAPP_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", "")
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        create_app()


def test_production_uses_the_key_and_secure_cookies(env, monkeypatch):
    monkeypatch.setenv("ADMINAPP_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", "a-long-production-secret-of-32-chars")
    monkeypatch.setenv("AUDIT_KEY", PRODUCTION_AUDIT_KEY)
    app = create_app()
    try:
        assert app.config["ADMINAPP_ENV"] == "production"
        assert app.secret_key == "a-long-production-secret-of-32-chars"
        assert app.config["SESSION_COOKIE_SECURE"] is True
        assert app.config["REMEMBER_COOKIE_SECURE"] is True
        assert app.config["WTF_CSRF_ENABLED"] is not False
        assert not (env / "secret_key").exists()
        # The login page starts a session (its CSRF token): the cookie is Secure, HttpOnly, Lax.
        response = app.test_client().get("/login")
        cookie = session_cookie(response)
        assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    finally:
        dispose(app)


def test_development_defaults(env):
    app = create_app()
    try:
        assert app.config["ADMINAPP_ENV"] == "development"
        assert app.config["SESSION_COOKIE_SECURE"] is False
        assert app.config["LOGIN_MAX_ATTEMPTS"] == 5
        assert app.config["LOGIN_LOCKOUT_SECONDS"] == 15 * 60
        assert app.instance_path == str(env)
    finally:
        dispose(app)


def test_development_key_is_generated_once_and_reused(env):
    first = create_app()
    key_file = env / "secret_key"
    assert key_file.exists()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    key = key_file.read_text().strip()
    assert len(key) >= 32 and first.secret_key == key
    second = create_app()
    assert second.secret_key == key
    assert key_file.read_text().strip() == key
    assert sorted(p.name for p in env.iterdir() if "secret" in p.name) == ["secret_key"]  # no leftovers
    for app in (first, second):
        dispose(app)


def test_development_keys_differ_between_instances(env, monkeypatch, tmp_path):
    first = create_app()
    monkeypatch.setenv("ADMINAPP_INSTANCE_PATH", str(tmp_path / "other-instance"))
    second = create_app()
    assert first.secret_key != second.secret_key
    for app in (first, second):
        dispose(app)


def test_secret_key_env_wins_over_the_file(env, monkeypatch):
    dispose(create_app())  # writes the file
    monkeypatch.setenv("SECRET_KEY", "from-the-environment")
    app = create_app()
    assert app.secret_key == "from-the-environment"
    dispose(app)


def test_empty_key_file_is_refused(env):
    env.mkdir(parents=True)
    (env / "secret_key").write_text("\n")
    with pytest.raises(ConfigError, match="secret_key"):
        create_app()


def test_a_generated_key_keeps_sessions_across_restarts(env, make_user, database_url):
    """Two app instances reading the same generated key accept each other's session cookie."""
    config = {
        "TESTING": True,
        "WTF_CSRF_ENABLED": False,
        "SQLALCHEMY_DATABASE_URI": database_url,
        "INSTANCE_PATH": str(env),
    }
    first, second = create_app(config), None
    try:
        client = first.test_client()
        make_user("alice", "staff")
        assert login(client, "alice").status_code == 302
        second = create_app(config)
        other = second.test_client()
        other.set_cookie("session", client.get_cookie("session").value)
        assert other.get("/admin/").status_code == 200
    finally:
        dispose(first)
        if second is not None:
            dispose(second)


def test_env_integers_are_read(env, monkeypatch):
    monkeypatch.setenv("LOGIN_MAX_ATTEMPTS", "3")
    monkeypatch.setenv("LOGIN_LOCKOUT_SECONDS", "90")
    app = create_app()
    assert (app.config["LOGIN_MAX_ATTEMPTS"], app.config["LOGIN_LOCKOUT_SECONDS"]) == (3, 90)
    dispose(app)


def test_session_limits_are_read(env, monkeypatch):
    app = create_app()
    assert (app.config["SESSION_IDLE_MINUTES"], app.config["SESSION_MAX_HOURS"]) == (120, 12)
    assert app.permanent_session_lifetime == timedelta(hours=12)  # not Flask's 31 days
    dispose(app)
    monkeypatch.setenv("ADMINAPP_SESSION_IDLE_MINUTES", "30")
    monkeypatch.setenv("ADMINAPP_SESSION_MAX_HOURS", "8")
    app = create_app()
    assert (app.config["SESSION_IDLE_MINUTES"], app.config["SESSION_MAX_HOURS"]) == (30, 8)
    assert app.permanent_session_lifetime == timedelta(hours=8)
    dispose(app)


# --- DATABASE_URL ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "given, used",
    [
        ("postgres://u:p@db.internal:5432/shop", "postgresql+psycopg://u:p@db.internal:5432/shop"),
        ("postgresql://u:p@db.internal:5432/shop", "postgresql+psycopg://u:p@db.internal:5432/shop"),
        ("postgresql+psycopg://u:p@db.internal/shop", "postgresql+psycopg://u:p@db.internal/shop"),
        ("sqlite:////var/lib/adminapp/app.db", "sqlite:////var/lib/adminapp/app.db"),
    ],
)
def test_database_url_is_honoured(env, monkeypatch, given, used):
    monkeypatch.setenv("DATABASE_URL", given)
    app = create_app()
    assert app.config["SQLALCHEMY_DATABASE_URI"] == used
    with app.app_context():
        assert _db.engine.url.render_as_string(hide_password=False) == used
    dispose(app)


def test_default_database_is_sqlite_in_the_instance_folder(env, monkeypatch):
    monkeypatch.delenv("DATABASE_URL")
    app = create_app()
    assert app.config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{env / 'adminapp.db'}"
    dispose(app)


@pytest.mark.parametrize("scheme", ["postgres", "postgresql"])
def test_a_plain_postgres_url_really_connects(env, monkeypatch, postgres_url, scheme):
    """The Heroku-style URL a host hands out works as given (psycopg 3 is the driver)."""
    plain = scheme + "://" + postgres_url.split("://", 1)[1]
    monkeypatch.setenv("DATABASE_URL", plain)
    app = create_app()
    try:
        with app.app_context():
            assert _db.engine.dialect.driver == "psycopg"
            assert _db.session.execute(text("SELECT 1")).scalar() == 1
            _db.session.remove()
    finally:
        dispose(app)


# --- headers, cookies and assets on real pages -------------------------------------------------

ALLOWED_CSP_SOURCES = {"'self'", "'none'", "'unsafe-inline'", "data:"}


def session_cookie(response) -> str:
    cookies = [c for c in response.headers.getlist("Set-Cookie") if c.startswith("session=")]
    assert cookies, f"no session cookie set: {response.headers.getlist('Set-Cookie')}"
    return cookies[-1]


def assert_security_headers(response, where):
    assert response.headers.get("X-Frame-Options") == "DENY", where
    assert response.headers.get("X-Content-Type-Options") == "nosniff", where
    csp = response.headers.get("Content-Security-Policy")
    assert csp, f"{where}: no Content-Security-Policy"
    directives = {}
    for part in csp.split(";"):
        name, *sources = part.split()
        directives[name] = sources
    for name, sources in directives.items():
        outside = [s for s in sources if s not in ALLOWED_CSP_SOURCES]
        assert not outside, f"{where}: {name} allows {outside} (only the app's own origin is allowed)"
    assert directives.get("default-src") == ["'self'"], where
    assert directives.get("frame-ancestors") == ["'none'"], where
    assert directives.get("object-src") == ["'none'"], where


def test_security_headers_everywhere(app, make_user, make_product, auditor_client):
    pid = make_product()
    make_user("alice", "staff")
    anonymous = app.test_client()
    staff = app.test_client()
    assert login(staff, "alice").status_code == 302
    pages = [
        (anonymous, "/login", 200),
        (anonymous, "/admin/", 302),
        (anonymous, "/no-such-page", 404),
        (staff, "/admin/", 200),
        (staff, "/admin/product/", 200),
        (staff, "/admin/product/new/", 200),
        (staff, f"/admin/product/edit/?id={pid}", 200),
        (staff, f"/admin/product/details/?id={pid}", 200),
        (staff, "/admin/product/export/csv/", 200),
        (auditor_client, "/admin/product/new/", 403),
    ]
    for client, url, status in pages:
        response = client.get(url)
        response.get_data()
        response.close()
        assert response.status_code == status, url
        assert_security_headers(response, url)
    response = login(app.test_client(), "alice", "wrong password")
    assert_security_headers(response, "POST /login")


def test_session_cookie_is_httponly_and_lax(app, make_user):
    make_user("alice", "staff")
    response = login(app.test_client(), "alice")
    assert response.status_code == 302
    cookie = session_cookie(response)
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # development over plain http
    assert app.config["SESSION_COOKIE_HTTPONLY"] is True
    assert app.config["SESSION_COOKIE_SAMESITE"] == "Lax"


class AssetParser(HTMLParser):
    def __init__(self):
        super().__init__()
        self.urls = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for element, attribute in (("script", "src"), ("link", "href"), ("img", "src")):
            if tag == element and attrs.get(attribute):
                self.urls.append((tag, attrs[attribute]))


def test_pages_load_only_local_assets(app, make_user, make_product):
    pid = make_product()
    make_user("alice", "admin")
    anonymous = app.test_client()
    client = app.test_client()
    assert login(client, "alice").status_code == 302
    pages = [
        (anonymous, "/login"),
        (client, "/admin/"),
        (client, "/admin/product/"),
        (client, "/admin/product/new/"),
        (client, f"/admin/product/edit/?id={pid}"),
        (client, f"/admin/product/details/?id={pid}"),
    ]
    assets = set()
    for page_client, url in pages:
        response = page_client.get(url)
        assert response.status_code == 200, url
        parser = AssetParser()
        parser.feed(response.text)
        assert any(tag == "link" for tag, _ in parser.urls), f"{url}: no stylesheet found, parser broken?"
        for tag, asset in parser.urls:
            parts = urlsplit(asset)
            assert not parts.scheme and not parts.netloc and asset.startswith("/") and not asset.startswith("//"), (
                f"{url}: <{tag}> loads {asset!r}, which is not a path on this site"
            )
            assets.add(asset)
    for asset in sorted(assets):  # and each one is really served
        with anonymous.get(asset) as response:
            assert response.status_code == 200, asset


# --- files and headers ---------------------------------------------------------------------------

PRODUCTION_KEY = "a-long-production-secret-of-32-chars"
PRODUCTION_AUDIT_KEY = "another-long-secret-for-the-audit-chain"


def test_production_refuses_a_short_secret_key(env, monkeypatch):
    monkeypatch.setenv("ADMINAPP_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", "x" * 31)
    with pytest.raises(ConfigError, match="SECRET_KEY is too short for production: use at least 32"):
        create_app()


@pytest.mark.parametrize("debug", ["1", "true"])
def test_production_refuses_to_start_with_the_debugger_on(env, monkeypatch, debug):
    monkeypatch.setenv("ADMINAPP_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", PRODUCTION_KEY)
    monkeypatch.setenv("FLASK_DEBUG", debug)
    with pytest.raises(ConfigError, match="FLASK_DEBUG is on"):
        create_app()


def test_the_sqlite_file_and_the_instance_folder_are_the_apps_users_alone(env, tmp_path):
    app = create_app()
    with app.app_context():
        _db.create_all()  # writes through the WAL
        _db.session.execute(text("SELECT 1"))
        files = [tmp_path / "config.db", tmp_path / "config.db-wal", tmp_path / "config.db-shm"]
        modes = {file.name: oct(file.stat().st_mode & 0o777) for file in files if file.exists()}
        _db.engine.dispose()

    assert modes["config.db"] == "0o600" and set(modes.values()) == {"0o600"}
    assert oct(env.stat().st_mode & 0o777) == "0o700"


def test_an_existing_world_readable_database_is_made_private(env, tmp_path):
    database = tmp_path / "config.db"
    database.touch(mode=0o644)
    database.chmod(0o644)

    create_app()

    assert oct(database.stat().st_mode & 0o777) == "0o600"


def test_pages_are_not_stored_but_static_files_may_be(admin_client):
    client = admin_client
    assert client.get("/admin/product/").headers["Cache-Control"] == "no-store"
    assert client.get("/admin/product/export/csv/").headers["Cache-Control"] == "no-store"
    static = client.get("/static/css/adminapp.css")
    static.close()
    assert "no-store" not in static.headers.get("Cache-Control", "")


def test_production_asks_browsers_for_https_only(env, monkeypatch):
    monkeypatch.setenv("ADMINAPP_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", PRODUCTION_KEY)
    monkeypatch.setenv("AUDIT_KEY", PRODUCTION_AUDIT_KEY)
    assert "max-age=" in create_app().test_client().get("/login").headers["Strict-Transport-Security"]
    monkeypatch.setenv("ADMINAPP_ENV", "development")
    assert "Strict-Transport-Security" not in create_app().test_client().get("/login").headers


# --- the audit chain's key (AUDIT_KEY) ---------------------------------------------------------


def test_development_audit_key_is_generated_once_owner_only_and_reused(env):
    first = create_app()
    key_file = env / "audit_key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    key = key_file.read_text().strip()
    assert len(key) >= 32 and first.config["AUDIT_KEY"] == key
    assert key != first.secret_key, "a key of its own, not the session key"
    second = create_app()
    assert second.config["AUDIT_KEY"] == key and key_file.read_text().strip() == key
    assert sorted(p.name for p in env.iterdir() if "audit" in p.name) == ["audit_key"]  # no leftovers
    for app in (first, second):
        dispose(app)


def test_audit_key_from_the_environment_wins_and_writes_no_file(env, monkeypatch):
    monkeypatch.setenv("AUDIT_KEY", "from-the-environment")
    app = create_app()
    assert app.config["AUDIT_KEY"] == "from-the-environment"
    assert not (env / "audit_key").exists()
    dispose(app)


def test_an_empty_audit_key_file_is_refused_not_replaced(env):
    env.mkdir(parents=True)
    (env / "audit_key").write_text("\n")
    with pytest.raises(ConfigError, match="audit_key is empty: put back the key the audit trail was written with"):
        create_app()
    assert (env / "audit_key").read_text() == "\n"


def production(monkeypatch, **variables):
    monkeypatch.setenv("ADMINAPP_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", PRODUCTION_KEY)
    for name, value in variables.items():
        monkeypatch.setenv(name, value)


def test_production_without_an_audit_key_refuses_to_start_and_generates_none(env, monkeypatch):
    production(monkeypatch)
    with pytest.raises(ConfigError, match="AUDIT_KEY is not set and there is no .*audit_key") as error:
        create_app()
    assert "ADMINAPP_ENV=production" in str(error.value)
    assert not (env / "audit_key").exists()


def test_production_takes_audit_key_from_the_environment(env, monkeypatch):
    production(monkeypatch, AUDIT_KEY=PRODUCTION_AUDIT_KEY)
    app = create_app()
    assert app.config["AUDIT_KEY"] == PRODUCTION_AUDIT_KEY
    assert not (env / "audit_key").exists()
    dispose(app)


def test_production_keeps_using_an_audit_key_file_that_is_there(env, monkeypatch):
    """An instance that was keyed by a generated file keeps its key (losing it would leave the
    chain unverifiable); production only never makes one."""
    dispose(create_app())  # development: generates the file
    key = (env / "audit_key").read_text().strip()
    production(monkeypatch)
    app = create_app()
    assert app.config["AUDIT_KEY"] == key
    dispose(app)


@pytest.mark.parametrize("where", ["environment", "file"])
def test_production_refuses_a_short_audit_key(env, monkeypatch, where):
    if where == "file":
        env.mkdir(parents=True)
        (env / "audit_key").write_text("x" * 31)
        production(monkeypatch)
    else:
        production(monkeypatch, AUDIT_KEY="x" * 31)
    with pytest.raises(ConfigError, match="AUDIT_KEY is too short for production: use at least 32"):
        create_app()


# --- limits on sign-in and input ----------------------------------------------------------------

LIMITS = ("LOGIN_MAX_FAILURES_PER_ADDRESS", "LOGIN_ADDRESS_WINDOW_SECONDS", "PROXY_COUNT", "MAX_TRANSACTION_LINES")


@pytest.mark.parametrize("environment, proxies", [("development", 0), ("production", 1)])
def test_limit_defaults(env, monkeypatch, environment, proxies):
    """Production runs behind a proxy (README): its forwarded address is the client's."""
    monkeypatch.setenv("ADMINAPP_ENV", environment)
    monkeypatch.setenv("SECRET_KEY", PRODUCTION_KEY)
    monkeypatch.setenv("AUDIT_KEY", PRODUCTION_AUDIT_KEY)
    app = create_app()
    try:
        assert tuple(app.config[name] for name in LIMITS) == (100, 900, proxies, 500)
    finally:
        dispose(app)


def test_limits_are_read_from_the_environment(env, monkeypatch):
    for variable, value in (
        ("LOGIN_MAX_FAILURES_PER_ADDRESS", "250"),
        ("LOGIN_ADDRESS_WINDOW_SECONDS", "60"),
        ("ADMINAPP_PROXY_COUNT", "2"),
        ("ADMINAPP_MAX_TRANSACTION_LINES", "50"),
    ):
        monkeypatch.setenv(variable, value)
    app = create_app()
    try:
        assert tuple(app.config[name] for name in LIMITS) == (250, 60, 2, 50)
    finally:
        dispose(app)


@pytest.mark.parametrize(
    "variable, minimum",
    [
        ("LOGIN_MAX_FAILURES_PER_ADDRESS", 1),
        ("LOGIN_ADDRESS_WINDOW_SECONDS", 1),
        ("ADMINAPP_PROXY_COUNT", 0),
        ("ADMINAPP_MAX_TRANSACTION_LINES", 1),
    ],
)
def test_a_limit_that_is_not_a_count_refuses_to_start(env, monkeypatch, variable, minimum):
    for value in ("many", "-1", str(minimum - 1) if minimum else "1.5"):
        monkeypatch.setenv(variable, value)
        with pytest.raises(ConfigError, match=f"{variable}='{value}' is not a whole number of {minimum} or more"):
            create_app()


# --- the tests' own configuration ----------------------------------------------------------------

# Every kind of setting the shell running the tests might have, each one that would change what
# a test sees or stop the app from starting.
SHELL_SETTINGS = {
    "ADMINAPP_ENV": "production",
    "ADMINAPP_INSTANCE_PATH": "/nonexistent/instance",
    "DATABASE_URL": "postgresql://nobody@unreachable.invalid/none",
    "SECRET_KEY": "short",
    "AUDIT_KEY": "short",
    "FLASK_DEBUG": "1",
    "LOGIN_MAX_ATTEMPTS": "3",
    "LOGIN_LOCKOUT_SECONDS": "not a number",
    "LOGIN_MAX_FAILURES_PER_ADDRESS": "1",
    "LOGIN_ADDRESS_WINDOW_SECONDS": "0",
    "ADMINAPP_PROXY_COUNT": "2",
    "ADMINAPP_CURRENCY": "EUR",
    "ADMINAPP_TIMEZONE": "Asia/Jakarta",
    "ADMINAPP_LOW_STOCK": "-1",
    "ADMINAPP_SESSION_IDLE_MINUTES": "1",
    "ADMINAPP_SESSION_MAX_HOURS": "1",
    "ADMINAPP_LOCK_TIMEOUT_MS": "1",
    "ADMINAPP_MAX_TRANSACTION_LINES": "1",
    "ADMINAPP_MAX_REQUEST_BYTES": "1024",
}


def test_load_config_reads_only_the_mapping_it_is_given(monkeypatch, tmp_path):
    for name, value in SHELL_SETTINGS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)

    assert load_config({}) == {}
    assert load_config({"LOGIN_MAX_ATTEMPTS": "3", "ADMINAPP_CURRENCY": "EUR", "UNRELATED": "x"}) == {
        "LOGIN_MAX_ATTEMPTS": 3,
        "CURRENCY": "EUR",
    }
    assert list(tmp_path.iterdir()) == []  # nothing written either


def test_an_app_given_its_config_reads_nothing_from_the_environment(monkeypatch, tmp_path):
    url = f"sqlite:///{tmp_path / 'isolated.db'}"
    made_in_a_clean_shell = make_app(url, tmp_path).config
    for name, value in SHELL_SETTINGS.items():
        monkeypatch.setenv(name, value)

    assert make_app(url, tmp_path).config == made_in_a_clean_shell


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"ADMINAPP_ENV": "prod"}, "ADMINAPP_ENV='prod' is not known"),
        ({"ADMINAPP_ENV": "production", "SECRET_KEY": "short"}, "SECRET_KEY is too short"),
        ({"ADMINAPP_ENV": "production", "SECRET_KEY": "k" * 32, "DEBUG": True}, "FLASK_DEBUG is on"),
        ({"LOGIN_MAX_ATTEMPTS": 0}, "LOGIN_MAX_ATTEMPTS=0 is not a whole number of 1 or more"),
        ({"LOGIN_LOCKOUT_SECONDS": "900"}, "LOGIN_LOCKOUT_SECONDS='900' is not a whole number of 0 or more"),
        ({"SQLITE_SYNCHRONOUS": "SOMETIMES"}, "SQLITE_SYNCHRONOUS='SOMETIMES' is not one of OFF, NORMAL, FULL, EXTRA"),
    ],
)
def test_a_given_config_is_checked_as_the_environment_is(tmp_path, settings, message):
    with pytest.raises(ConfigError, match=message):
        create_app({"INSTANCE_PATH": str(tmp_path / "instance"), **settings})
    assert not (tmp_path / "instance").exists()  # refused before any key file is made


def test_the_tests_pass_whatever_the_shell_sets(tmp_path):
    """The tests most sensitive to settings (sign-in and its lockout, the keys), run with every
    kind of setting set in their shell."""
    env = clean_environ(**SHELL_SETTINGS, PYTHONDONTWRITEBYTECODE="1")
    env.pop("TEST_DATABASE_URL", None)
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-n",
            "0",
            "-k",
            "lock or key or login",
            "tests/test_auth.py",
            "tests/test_config.py",
            "tests/test_smoke.py",
            f"--basetemp={tmp_path / 'run'}",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert " passed" in run.stdout


@pytest.mark.parametrize("settings, level", [({}, 1), ({"SQLITE_SYNCHRONOUS": "OFF"}, 0)])
def test_sqlite_syncs_at_checkpoints_unless_told_otherwise(tmp_path, settings, level):
    """NORMAL in WAL mode: durable but for the last commits at a power cut; the tests turn it off."""
    app = create_app(
        {"INSTANCE_PATH": str(tmp_path), "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 's.db'}", **settings}
    )
    with app.app_context():
        assert _db.session.execute(text("PRAGMA synchronous")).scalar() == level
        _db.session.remove()
    dispose(app)


def test_every_page_has_an_icon_and_favicon_ico_answers(app, admin_client):
    anonymous = app.test_client()
    for client, url in [(anonymous, "/login"), (admin_client, "/admin/"), (admin_client, "/admin/nowhere/")]:
        assert 'rel="icon" href="/static/img/favicon.svg"' in client.get(url).text, url
    icon = anonymous.get("/favicon.ico")
    assert (icon.status_code, icon.mimetype) == (200, "image/svg+xml")
    icon.close()
