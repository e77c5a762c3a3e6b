"""Settings: read from the environment (`load_config`), or given by a test, then completed with
development defaults that just work and checked (`settle`)."""

import os
import secrets
import stat
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path

from sqlalchemy.engine import make_url

from .sqlite_connections import SYNCHRONOUS_LEVELS


class ConfigError(RuntimeError):
    """The settings cannot run the app; the message says what to set."""


ENVIRONMENTS = ("development", "production")

# Whole-number settings: (environment variable, setting, default, minimum).
WHOLE_NUMBERS = [
    # A sign-in ends after this long without a request, and this long after it began
    # whatever happens (see auth/sessions.py).
    ("ADMINAPP_SESSION_IDLE_MINUTES", "SESSION_IDLE_MINUTES", 120, 1),
    ("ADMINAPP_SESSION_MAX_HOURS", "SESSION_MAX_HOURS", 12, 1),
    ("LOGIN_MAX_ATTEMPTS", "LOGIN_MAX_ATTEMPTS", 5, 1),
    ("LOGIN_LOCKOUT_SECONDS", "LOGIN_LOCKOUT_SECONDS", 15 * 60, 0),
    # Failed sign-ins one network address may make in a window, whatever the names tried.
    ("LOGIN_MAX_FAILURES_PER_ADDRESS", "LOGIN_MAX_FAILURES_PER_ADDRESS", 100, 1),
    ("LOGIN_ADDRESS_WINDOW_SECONDS", "LOGIN_ADDRESS_WINDOW_SECONDS", 15 * 60, 1),
    # The proxies in front of the app whose X-Forwarded-For is believed: production runs
    # behind one (README), and without it every client would have the proxy's address.
    ("ADMINAPP_PROXY_COUNT", "PROXY_COUNT", None, 0),
    # How long a statement waits for a row lock (PostgreSQL) before the request gives up and
    # retries: well below the worker's timeout, so a stuck lock costs a "busy" message, not a worker.
    ("ADMINAPP_LOCK_TIMEOUT_MS", "LOCK_TIMEOUT_MS", 3000, 1),
    ("ADMINAPP_MAX_TRANSACTION_LINES", "MAX_TRANSACTION_LINES", 500, 1),
    # Larger bodies are refused (413) from their declared length, before they are read.
    ("ADMINAPP_MAX_REQUEST_BYTES", "MAX_CONTENT_LENGTH", 1024 * 1024, 1024),
    ("ADMINAPP_LOW_STOCK", "LOW_STOCK_THRESHOLD", 5, 0),
]

# Text settings: (environment variable, setting).
TEXTS = [
    ("ADMINAPP_ENV", "ADMINAPP_ENV"),
    ("ADMINAPP_INSTANCE_PATH", "INSTANCE_PATH"),
    ("SECRET_KEY", "SECRET_KEY"),
    ("AUDIT_KEY", "AUDIT_KEY"),
    ("DATABASE_URL", "SQLALCHEMY_DATABASE_URI"),
    ("ADMINAPP_TIMEZONE", "BABEL_DEFAULT_TIMEZONE"),
    ("ADMINAPP_CURRENCY", "CURRENCY"),
]


def load_config(environ: Mapping[str, str]) -> dict:
    """The settings the environment variables in ``environ`` give (those set and not empty),
    as the values the app uses. Reads nothing but ``environ``; `settle` fills in the rest."""
    config = {setting: environ[name] for name, setting in TEXTS if environ.get(name)}
    for name, setting, _default, minimum in WHOLE_NUMBERS:
        if environ.get(name):
            config[setting] = _whole_number(name, environ[name], minimum)
    if environ.get("FLASK_DEBUG"):
        config["DEBUG"] = environ["FLASK_DEBUG"].lower() not in ("0", "false", "no")
    return config


def _whole_number(name: str, value: str, minimum: int) -> int:
    problem = ConfigError(f"{name}={value!r} is not a whole number of {minimum} or more.")
    try:
        number = int(value)
    except ValueError:
        raise problem from None
    if number < minimum:
        raise problem
    return number


def settle(config: dict, instance_path: str) -> None:
    """Complete ``config`` (what the environment or a test gave) with the defaults of its
    environment, then check it: a setting that cannot run the app raises ConfigError, before
    any key file or database file is made."""
    production = _checked_with_defaults(config)
    _with_keys_and_database(config, Path(instance_path), production)
    # How long the signed cookie itself is accepted (Flask's default is 31 days).
    config.setdefault("PERMANENT_SESSION_LIFETIME", timedelta(hours=config["SESSION_MAX_HOURS"]))


def _checked_with_defaults(config: dict) -> bool:
    """Fill in the defaults and check every setting; True in production."""
    name = config.setdefault("ADMINAPP_ENV", "development")
    # A mistyped name must not quietly mean development (no Secure cookies, a generated key).
    if name not in ENVIRONMENTS:
        raise ConfigError(f"ADMINAPP_ENV={name!r} is not known: use one of {', '.join(ENVIRONMENTS)}.")
    production = name == "production"
    for variable, setting, default, minimum in WHOLE_NUMBERS:
        value = config.setdefault(setting, (1 if production else 0) if default is None else default)
        if type(value) is not int or value < minimum:
            raise ConfigError(f"{variable}={value!r} is not a whole number of {minimum} or more.")
    for setting, value in _defaults(production).items():
        config.setdefault(setting, value)
    if config["SQLITE_SYNCHRONOUS"] not in SYNCHRONOUS_LEVELS:
        raise ConfigError(
            f"SQLITE_SYNCHRONOUS={config['SQLITE_SYNCHRONOUS']!r} is not one of {', '.join(SYNCHRONOUS_LEVELS)}."
        )
    if production and config.get("DEBUG"):
        raise ConfigError(
            "FLASK_DEBUG is on: the debugger runs any code sent to it, so production refuses "
            "to start with it. Unset FLASK_DEBUG."
        )
    return production


def _with_keys_and_database(config: dict, instance: Path, production: bool) -> None:
    """The keys (generated into the instance folder in development) and the database URL."""
    _check_secret_key(config.get("SECRET_KEY"), production)
    _check_audit_key(config.get("AUDIT_KEY"), instance, production)
    _private_folder(instance)
    config["SECRET_KEY"] = config.get("SECRET_KEY") or _generated_key(
        instance / "secret_key", "delete it to have a new key generated, or set SECRET_KEY"
    )
    config["AUDIT_KEY"] = _audit_key(config.get("AUDIT_KEY"), instance, production)
    database_url = _database_url(config.get("SQLALCHEMY_DATABASE_URI") or f"sqlite:///{instance / 'adminapp.db'}")
    _private_sqlite_file(database_url)
    config["SQLALCHEMY_DATABASE_URI"] = database_url
    config.setdefault("SQLALCHEMY_ENGINE_OPTIONS", {"pool_pre_ping": True, **_pool(database_url)})


def _defaults(production: bool) -> dict:
    return {
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": production,
        "REMEMBER_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_SAMESITE": "Lax",
        "REMEMBER_COOKIE_SECURE": production,
        "WTF_CSRF_TIME_LIMIT": None,  # the token lives as long as the session
        "BABEL_DEFAULT_TIMEZONE": "UTC",
        "CURRENCY": "IDR",
        "SQLITE_SYNCHRONOUS": "NORMAL",  # see sqlite_connections.py
    }


def _database_url(url: str) -> str:
    if url.startswith("postgres://"):  # the form Heroku-style hosts hand out
        return "postgresql+psycopg://" + url.removeprefix("postgres://")
    if url.startswith("postgresql://"):
        return "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return url


MIN_SECRET_KEY_LENGTH = 32


def _check_secret_key(key: str | None, production: bool) -> None:
    if key and production and len(key) < MIN_SECRET_KEY_LENGTH:
        raise ConfigError(
            f"SECRET_KEY is too short for production: use at least {MIN_SECRET_KEY_LENGTH} random "
            "characters, e.g. `python -c 'import secrets; print(secrets.token_hex(32))'`."
        )
    if not key and production:
        raise ConfigError(
            "SECRET_KEY is not set. In production (ADMINAPP_ENV=production) set SECRET_KEY "
            "to a long random value, e.g. `python -c 'import secrets; print(secrets.token_hex(32))'`."
        )
    # Development without one: a key generated once into the instance folder and kept, so
    # sessions survive restarts.


AUDIT_KEY_FILE = "audit_key"


def _check_audit_key(key: str | None, instance_path: Path, production: bool) -> None:
    """The key of the audit chain's HMACs: kept apart from the database, so that whoever can
    write to the database still cannot make entries (or checkpoints) that verify.

    Unlike SECRET_KEY, production accepts a key file that is already there: losing this key
    leaves the chain unverifiable, so an instance that has one keeps using it. Production never
    generates one: a container's fresh instance folder would key new entries with a key that
    nobody kept, and every restart with another."""
    key_file = instance_path / AUDIT_KEY_FILE
    if not key and production and not key_file.exists():
        raise ConfigError(
            f"AUDIT_KEY is not set and there is no {key_file}. In production (ADMINAPP_ENV=production) set "
            "AUDIT_KEY to a long random value kept apart from the database and its backups, e.g. "
            "`python -c 'import secrets; print(secrets.token_hex(32))'`; if this database's audit trail was "
            "written with a generated key file, set AUDIT_KEY to that file's content instead."
        )
    if key:
        _check_audit_key_length(key, production)


def _check_audit_key_length(key: str, production: bool) -> None:
    if production and len(key) < MIN_SECRET_KEY_LENGTH:
        raise ConfigError(
            f"AUDIT_KEY is too short for production: use at least {MIN_SECRET_KEY_LENGTH} random "
            "characters, e.g. `python -c 'import secrets; print(secrets.token_hex(32))'`."
        )


def _audit_key(key: str | None, instance_path: Path, production: bool) -> str:
    if key:
        return key
    key = _generated_key(
        instance_path / AUDIT_KEY_FILE,
        "put back the key the audit trail was written with "
        "(deleting the file would make a new key, and the trail would no longer verify), "
        "or set AUDIT_KEY",
    )
    _check_audit_key_length(key, production)
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
