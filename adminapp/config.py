"""Settings from the environment, with development defaults that just work."""

import os
import secrets
import stat
from datetime import timedelta
from pathlib import Path

from flask.helpers import get_debug_flag
from sqlalchemy.engine import make_url


class ConfigError(RuntimeError):
    """The environment cannot run the app; the message says what to set."""


ENVIRONMENTS = ("development", "production")


def _env_int(name: str, default: int, minimum: int = 0) -> int:
    value = os.environ.get(name)
    if not value:
        return default
    problem = ConfigError(f"{name}={value!r} is not a whole number of {minimum} or more.")
    try:
        number = int(value)
    except ValueError:
        raise problem from None
    if number < minimum:
        raise problem
    return number


def _environment() -> str:
    # A mistyped name must not quietly mean development (no Secure cookies, a generated key).
    name = os.environ.get("ADMINAPP_ENV") or "development"
    if name not in ENVIRONMENTS:
        raise ConfigError(f"ADMINAPP_ENV={name!r} is not known: use one of {', '.join(ENVIRONMENTS)}.")
    return name


MIN_SECRET_KEY_LENGTH = 32


def _secret_key(instance_path: Path, production: bool) -> str:
    key = os.environ.get("SECRET_KEY")
    if key and production and len(key) < MIN_SECRET_KEY_LENGTH:
        raise ConfigError(f"SECRET_KEY is too short for production: use at least {MIN_SECRET_KEY_LENGTH} random "
                          "characters, e.g. `python -c 'import secrets; print(secrets.token_hex(32))'`.")
    if key:
        return key
    if production:
        raise ConfigError(
            "SECRET_KEY is not set. In production (ADMINAPP_ENV=production) set SECRET_KEY "
            "to a long random value, e.g. `python -c 'import secrets; print(secrets.token_hex(32))'`."
        )
    # Development: generate one key once and keep it, so sessions survive restarts.
    return _generated_key(instance_path / "secret_key", "delete it to have a new key generated, or set SECRET_KEY")


AUDIT_KEY_FILE = "audit_key"


def _audit_key(instance_path: Path, production: bool) -> str:
    """The key of the audit chain's HMACs: kept apart from the database, so that whoever can
    write to the database still cannot make entries (or checkpoints) that verify.

    Unlike SECRET_KEY, production accepts a key file that is already there: losing this key
    leaves the chain unverifiable, so an instance that has one keeps using it. Production never
    generates one: a container's fresh instance folder would key new entries with a key that
    nobody kept, and every restart with another."""
    key = os.environ.get("AUDIT_KEY")
    key_file = instance_path / AUDIT_KEY_FILE
    if not key and production and not key_file.exists():
        raise ConfigError(
            f"AUDIT_KEY is not set and there is no {key_file}. In production (ADMINAPP_ENV=production) set "
            "AUDIT_KEY to a long random value kept apart from the database and its backups, e.g. "
            "`python -c 'import secrets; print(secrets.token_hex(32))'`; if this database's audit trail was "
            "written with a generated key file, set AUDIT_KEY to that file's content instead.")
    if not key:
        key = _generated_key(key_file, "put back the key the audit trail was written with (deleting the file "
                                       "would make a new key, and the trail would no longer verify), or set AUDIT_KEY")
    if production and len(key) < MIN_SECRET_KEY_LENGTH:
        raise ConfigError(f"AUDIT_KEY is too short for production: use at least {MIN_SECRET_KEY_LENGTH} random "
                          "characters, e.g. `python -c 'import secrets; print(secrets.token_hex(32))'`.")
    return key


def _generated_key(key_file: Path, if_empty: str) -> str:
    """The key in ``key_file``, generated into it the first time (development)."""
    if not key_file.exists():
        # Written whole and owner-only to a private name, then linked into place: never
        # readable by others, never seen half-written, and when several workers start at
        # once the first link wins and every worker reads that one key.
        draft = key_file.with_name(f".{key_file.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
        try:
            os.link(draft, key_file)
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    key = key_file.read_text().strip()
    if not key:
        raise ConfigError(f"{key_file} is empty: {if_empty}.")
    return key


def _private_folder(folder: Path) -> None:
    """The instance folder (the SQLite file, the generated key) for the app's user alone."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    mode = folder.stat().st_mode
    if mode & 0o077 and not mode & stat.S_ISVTX:  # a shared folder such as /tmp is left alone
        folder.chmod(0o700)


def _private_sqlite_file(url: str) -> None:
    """An SQLite database file readable by the app's user alone: it holds password hashes and
    the audit trail. SQLite gives its -wal and -shm files the database file's permissions."""
    if not url.startswith("sqlite"):
        return
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    path = Path(database)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))  # an empty file is a new database to SQLite
    for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        if file.exists():
            file.chmod(0o600)


# Connections a worker process may hold: 5 kept open and 5 more under load (SQLAlchemy's
# default is 10 more). Every server thread that runs a view holds one, and gunicorn.conf.py
# runs up to 8 processes of 32 threads: 8 x 10 stays under PostgreSQL's 100 connections,
# with room left for migrations, psql and backups. A thread that finds them all in use
# waits for one up to 10 seconds, then answers that the database was busy (503). A SQLite
# file has no server to spare: a connection per thread (gunicorn.conf.py's 32), the same wait.
POSTGRESQL_POOL = {"pool_size": 5, "max_overflow": 5, "pool_timeout": 10}
SQLITE_FILE_POOL = {"pool_size": 32, "max_overflow": 0, "pool_timeout": 10}


def _pool(database_url: str) -> dict:
    if database_url.startswith("postgresql"):
        return POSTGRESQL_POOL
    if database_url.startswith("sqlite") and ":memory:" not in database_url and database_url != "sqlite://":
        return SQLITE_FILE_POOL
    return {}


def load_config(instance_path: str) -> dict:
    production = _environment() == "production"
    if production and get_debug_flag():
        raise ConfigError("FLASK_DEBUG is on: the debugger runs any code sent to it, so production refuses "
                          "to start with it. Unset FLASK_DEBUG.")
    instance = Path(instance_path)
    _private_folder(instance)
    secret_key = _secret_key(instance, production)  # refused before any file is made
    audit_key = _audit_key(instance, production)
    database_url = os.environ.get("DATABASE_URL") or f"sqlite:///{instance / 'adminapp.db'}"
    _private_sqlite_file(database_url)
    if database_url.startswith("postgres://"):  # the form Heroku-style hosts hand out
        database_url = "postgresql+psycopg://" + database_url.removeprefix("postgres://")
    elif database_url.startswith("postgresql://"):
        database_url = "postgresql+psycopg://" + database_url.removeprefix("postgresql://")
    session_max_hours = _env_int("ADMINAPP_SESSION_MAX_HOURS", 12, minimum=1)
    return {
        "ADMINAPP_ENV": "production" if production else "development",
        "SECRET_KEY": secret_key,
        "AUDIT_KEY": audit_key,
        "SQLALCHEMY_DATABASE_URI": database_url,
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True, **_pool(database_url)},
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": production,
        "REMEMBER_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_SAMESITE": "Lax",
        "REMEMBER_COOKIE_SECURE": production,
        # A sign-in ends after this long without a request, and this long after it began
        # whatever happens (see auth/sessions.py).
        "SESSION_IDLE_MINUTES": _env_int("ADMINAPP_SESSION_IDLE_MINUTES", 120, minimum=1),
        "SESSION_MAX_HOURS": session_max_hours,
        # How long the signed cookie itself is accepted (Flask's default is 31 days).
        "PERMANENT_SESSION_LIFETIME": timedelta(hours=session_max_hours),
        "LOGIN_MAX_ATTEMPTS": _env_int("LOGIN_MAX_ATTEMPTS", 5, minimum=1),
        "LOGIN_LOCKOUT_SECONDS": _env_int("LOGIN_LOCKOUT_SECONDS", 15 * 60),
        # Failed sign-ins one network address may make in a window, whatever the names tried.
        "LOGIN_MAX_FAILURES_PER_ADDRESS": _env_int("LOGIN_MAX_FAILURES_PER_ADDRESS", 100, minimum=1),
        "LOGIN_ADDRESS_WINDOW_SECONDS": _env_int("LOGIN_ADDRESS_WINDOW_SECONDS", 15 * 60, minimum=1),
        # The proxies in front of the app whose X-Forwarded-For is believed: production runs
        # behind one (README), and without it every client would have the proxy's address.
        "PROXY_COUNT": _env_int("ADMINAPP_PROXY_COUNT", 1 if production else 0),
        # How long a statement waits for a row lock (PostgreSQL) before the request gives up and
        # retries: well below the worker's timeout, so a stuck lock costs a "busy" message, not a worker.
        "LOCK_TIMEOUT_MS": _env_int("ADMINAPP_LOCK_TIMEOUT_MS", 3000, minimum=1),
        "MAX_TRANSACTION_LINES": _env_int("ADMINAPP_MAX_TRANSACTION_LINES", 500, minimum=1),
        # Larger bodies are refused (413) from their declared length, before they are read.
        "MAX_CONTENT_LENGTH": _env_int("ADMINAPP_MAX_REQUEST_BYTES", 1024 * 1024, minimum=1024),
        "WTF_CSRF_TIME_LIMIT": None,  # the token lives as long as the session
        "BABEL_DEFAULT_TIMEZONE": os.environ.get("ADMINAPP_TIMEZONE", "UTC"),
        "CURRENCY": os.environ.get("ADMINAPP_CURRENCY", "IDR"),
        "LOW_STOCK_THRESHOLD": _env_int("ADMINAPP_LOW_STOCK", 5),
    }
