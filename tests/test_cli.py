"""The command line (`manage.py`), through `app.test_cli_runner()` on real databases."""

import itertools
import logging
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import flask_migrate
import pytest
import sqlalchemy
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, func, insert, inspect, select, text, update

import manage as manage_py
from adminapp import cli
from adminapp.domain import bulk, guards, seeding
from adminapp.extensions import db as _db
from adminapp.models import Product, Transaction, TransactionProduct, User, utcnow
from adminapp.models import triggers as model_triggers
from adminapp.models.indexes import exists_on
from adminapp.vocabularies import Role, TransactionStatus
from tests.support import clean_environ, is_app_variable, login, make_app, manage

ROOT = Path(__file__).resolve().parent.parent
TABLES = {"products", "users", "transactions", "transaction_products", "audit_entries"}

PASSWORD = "cli test password"


def migration_heads():
    config = Config()
    config.set_main_option("script_location", str(ROOT / "migrations"))
    return set(ScriptDirectory.from_config(config).get_heads())


@pytest.fixture
def fresh_app(empty_database_url, tmp_path):
    """An app on an empty database: nothing created, unlike conftest's `app`."""
    app = make_app(empty_database_url, tmp_path)
    yield app
    with app.app_context():
        _db.session.remove()
        _db.engine.dispose()


def run(app, *args, **kwargs):
    return app.test_cli_runner().invoke(args=list(args), **kwargs)


def table_names(app):
    with app.app_context():
        return set(inspect(_db.engine).get_table_names())


def find_user(app, username):
    with app.app_context():
        user = _db.session.scalar(select(User).where(User.username == username))
        if user is not None:
            _db.session.expunge(user)
        return user


def signs_in(app, username, password):
    """True when the real login form accepts the password (it redirects; a refusal re-renders)."""
    return login(app.test_client(), username, password).status_code == 302


# ------------------------------------------------------------------ init-db


def test_init_db_creates_the_schema_and_is_idempotent(fresh_app):
    assert table_names(fresh_app) == set()

    first = run(fresh_app, "init-db")
    assert first.exit_code == 0, first.output
    assert "Database schema is up to date." in first.output
    assert TABLES | {"alembic_version"} <= table_names(fresh_app)

    second = run(fresh_app, "init-db")
    assert second.exit_code == 0, second.output
    assert "Database schema is up to date." in second.output
    with fresh_app.app_context():
        versions = set(_db.session.scalars(text("SELECT version_num FROM alembic_version")))
    assert versions == migration_heads()


def test_init_db_keeps_existing_data(fresh_app):
    assert run(fresh_app, "init-db").exit_code == 0
    assert run(fresh_app, "create-user", "keeper", "--role", "staff", "--password", "Kopi-tubruk-42").exit_code == 0

    assert run(fresh_app, "init-db").exit_code == 0

    assert find_user(fresh_app, "keeper") is not None


def test_migrations_produce_exactly_the_models_schema(fresh_app):
    assert run(fresh_app, "init-db").exit_code == 0

    with fresh_app.app_context(), _db.engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "include_object": exists_on(conn.dialect.name)}
        )
        diffs = compare_metadata(context, _db.metadata)

    assert diffs == []


def test_the_migrated_checks_know_every_value_of_their_vocabulary(fresh_app):
    """compare_metadata does not compare CHECK constraints: a member added to a vocabulary
    without a migration would pass every test on create_all and be refused in production."""
    assert run(fresh_app, "init-db").exit_code == 0

    with fresh_app.app_context():
        inspector = inspect(_db.engine)
        allowed = {
            check["name"]: set(re.findall(r"'(\w+)'", check["sqltext"]))
            for table in ("users", "transactions")
            for check in inspector.get_check_constraints(table)
        }

    assert allowed["ck_users_role_known"] == set(Role)
    assert allowed["ck_transactions_status_known"] == set(TransactionStatus)


def test_postgresql_migrations_create_the_indexes_lists_rely_on(fresh_app):
    if fresh_app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        pytest.skip("trigram indexes are PostgreSQL's")
    assert run(fresh_app, "init-db").exit_code == 0

    with fresh_app.app_context():
        indexes = {
            table: {ix["name"] for ix in inspect(_db.engine).get_indexes(table)}
            for table in ("products", "transactions", "audit_entries")
        }
        jit = _db.session.scalar(text("SHOW jit"))
        _db.session.remove()

    assert {
        "ix_products_sku_trgm",
        "ix_products_name_trgm",
        "ix_products_name_id",
        "ix_products_price_id",
        "ix_products_stock_id",
        "ix_products_is_active_id",
        "ix_products_created_at_id",  # the one-click "created" filters
    } <= indexes["products"]
    assert {
        "ix_transactions_note_trgm",
        "ix_transactions_created_at_id",
        "ix_transactions_status_id",
        "ix_transactions_status_created_at_id",  # a status with a date range, newest first
        "ix_transactions_total_id",
        "ix_transactions_line_count_id",
        "ix_transactions_created_by_created_at_id",
        "ix_transactions_drafts",
        "ix_transactions_posted_at",
    } <= indexes["transactions"]
    assert {
        "ix_audit_entries_object_repr_trgm",
        "ix_audit_entries_username_trgm",
        "ix_audit_entries_action_trgm",
        "ix_audit_entries_at_id",
        "ix_audit_entries_username_id",
        "ix_audit_entries_user_id_id",
        "ix_audit_entries_object_id_id",
        "ix_products_active_stock",
    } <= indexes["audit_entries"] | indexes["products"]
    assert jit == "off"  # the app's connections: JIT costs pages more than it saves


def search_index_schema(app) -> list[tuple]:
    """The SQL of the products' search index and its triggers (nothing on PostgreSQL)."""
    with app.app_context(), _db.engine.connect() as conn:
        if conn.dialect.name != "sqlite":
            return [] if "products_fts" not in inspect(conn).get_table_names() else ["products_fts"]
        return conn.execute(
            text(
                "SELECT type, name, sql FROM sqlite_master WHERE name LIKE 'products_fts%' "
                "AND sql IS NOT NULL AND (type = 'trigger' OR name = 'products_fts') "
                "ORDER BY name"
            )
        ).all()


def search_index_finds(app, term: str) -> list[str]:
    """The SKUs SQLite's search index finds for ``term``, after FTS5 has checked the index
    against the table."""
    with app.app_context(), _db.engine.begin() as conn:
        conn.execute(text("INSERT INTO products_fts(products_fts, rank) VALUES ('integrity-check', 1)"))
        return list(
            conn.scalars(
                text(
                    "SELECT sku FROM products WHERE id IN (SELECT rowid FROM products_fts "
                    "WHERE products_fts MATCH :term) ORDER BY sku"
                ),
                {"term": f'"{term}"'},
            )
        )


def test_migrations_create_the_search_index_on_sqlite_as_create_all_does(fresh_app, tmp_path):
    assert run(fresh_app, "init-db").exit_code == 0

    migrated = search_index_schema(fresh_app)

    if fresh_app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql"):
        assert migrated == []  # PostgreSQL searches with its trigram indexes
        return
    created = make_app(f"sqlite:///{tmp_path / 'created.db'}", tmp_path)
    with created.app_context():
        _db.create_all()
    assert [(kind, name) for kind, name, _ in migrated] == [
        ("table", "products_fts"),
        ("trigger", "products_fts_delete"),
        ("trigger", "products_fts_insert"),
        ("trigger", "products_fts_update"),
    ]
    assert migrated == search_index_schema(created)
    with created.app_context():
        _db.engine.dispose()


def test_the_search_index_migration_indexes_the_products_there_already(fresh_app):
    if not fresh_app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        pytest.skip("SQLite's search index")
    with fresh_app.app_context():
        flask_migrate.upgrade(revision="0005")
        _db.session.execute(
            insert(Product),
            [
                {
                    "sku": "KOPI-1",
                    "name": "Sari Coffee",
                    "price": 1,
                    "stock": 1,
                    "is_active": True,
                    "created_at": utcnow(),
                    "updated_at": utcnow(),
                    "version": 1,
                },
                {
                    "sku": "TEH-1",
                    "name": "Sari Tea",
                    "price": 1,
                    "stock": 1,
                    "is_active": True,
                    "created_at": utcnow(),
                    "updated_at": utcnow(),
                    "version": 1,
                },
            ],
        )
        _db.session.commit()
        flask_migrate.upgrade()

    assert search_index_finds(fresh_app, "coffee") == ["KOPI-1"]
    assert search_index_finds(fresh_app, "sari") == ["KOPI-1", "TEH-1"]

    with fresh_app.app_context():
        flask_migrate.downgrade(revision="0005")
    assert search_index_schema(fresh_app) == []


def guard_schema(app) -> list[tuple]:
    """PostgreSQL's guard triggers and their functions, as the database prints them."""
    with app.app_context(), _db.engine.connect() as conn:
        triggers = conn.execute(
            text("SELECT tgname, pg_get_triggerdef(oid) FROM pg_trigger WHERE NOT tgisinternal ORDER BY tgname")
        ).all()
        functions = conn.execute(
            text("SELECT proname, pg_get_functiondef(oid) FROM pg_proc WHERE proname = ANY(:names) ORDER BY proname"),
            {"names": model_triggers.FUNCTIONS},
        ).all()
    return triggers + functions


def test_migrations_install_the_guard_triggers_as_create_all_does(fresh_app):
    if fresh_app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        pytest.skip("the guard triggers are PostgreSQL's")
    assert run(fresh_app, "init-db").exit_code == 0
    migrated = guard_schema(fresh_app)
    assert [name for name, _ in migrated] == sorted(sum(model_triggers.TRIGGERS.values(), [])) + sorted(
        model_triggers.FUNCTIONS
    )

    with fresh_app.app_context():
        flask_migrate.downgrade(revision="0007")
    assert guard_schema(fresh_app) == []

    with fresh_app.app_context():
        _db.drop_all()
        _db.create_all()
        _db.session.remove()
    assert guard_schema(fresh_app) == migrated


def test_compare_metadata_would_notice_a_missing_migration(fresh_app):
    """The check above can fail: a column the migrations lack shows up as a diff."""
    assert run(fresh_app, "init-db").exit_code == 0
    with fresh_app.app_context(), _db.engine.begin() as conn:
        conn.execute(text("DROP INDEX ix_products_name_id"))

    with fresh_app.app_context(), _db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"include_object": exists_on(conn.dialect.name)})
        diffs = compare_metadata(context, _db.metadata)

    assert [diff[0] for diff in diffs] == ["add_index"]


def test_init_db_leaves_the_app_loggers_working(fresh_app):
    logger = logging.getLogger("adminapp.unit_of_work")  # where failed changes are logged
    assert not logger.disabled

    assert run(fresh_app, "init-db").exit_code == 0

    assert not logger.disabled
    assert not fresh_app.logger.disabled


def test_init_db_function_on_an_empty_database(fresh_app):
    with fresh_app.app_context():
        cli.init_db()
        cli.init_db()
    assert TABLES <= table_names(fresh_app)


# ---------------------------------------------------------- first admin (run)


def test_ensure_first_admin_on_an_empty_database(fresh_app):
    with fresh_app.app_context():
        cli.init_db()
        password = cli.ensure_first_admin()

    assert isinstance(password, str) and len(password) >= 12
    admin = find_user(fresh_app, "admin")
    assert (admin.role, admin.must_change_password, admin.is_active) == ("admin", True, True)
    assert password not in admin.password_hash
    assert signs_in(fresh_app, "admin", password)
    assert not signs_in(fresh_app, "admin", password + "x")

    with fresh_app.app_context():
        assert cli.ensure_first_admin() is None
        assert _db.session.scalar(select(func.count(User.id))) == 1


def test_ensure_first_admin_gives_a_new_password_each_time(tmp_path):
    passwords = set()
    for n in range(2):
        app = make_app(f"sqlite:///{tmp_path / f'first-{n}.db'}", tmp_path)
        with app.app_context():
            cli.init_db()
            passwords.add(cli.ensure_first_admin())
            _db.engine.dispose()
    assert len(passwords) == 2


def test_ensure_first_admin_does_nothing_when_users_exist(app, make_user):
    make_user("someone", role="auditor")

    with app.app_context():
        assert cli.ensure_first_admin() is None
        assert _db.session.scalars(select(User.username)).all() == ["someone"]


# -------------------------------------------------------------- create-user


def test_create_user_with_password_option(app):
    result = run(app, "create-user", "bob", "--role", "staff", "--password", "s3cret-pw-long")

    assert result.exit_code == 0, result.output
    assert "Created staff bob." in result.output
    bob = find_user(app, "bob")
    assert bob.role == "staff"
    assert bob.must_change_password is False
    assert bob.password_hash != "s3cret-pw-long" and "s3cret-pw-long" not in bob.password_hash
    assert bob.password_hash.startswith(("scrypt:", "pbkdf2:"))
    assert bob.check_password("s3cret-pw-long")
    assert signs_in(app, "bob", "s3cret-pw-long")


@pytest.mark.parametrize("command", [["create-user", "dina", "--role", "staff"], ["set-password", "dina"]])
def test_must_change_asks_for_a_new_password_at_the_next_sign_in(app, make_user, command):
    if command[0] == "set-password":
        make_user("dina", "staff")

    result = run(app, *command, "--password", "Kopi-tubruk-42", "--must-change")

    assert result.exit_code == 0, result.output
    assert find_user(app, "dina").must_change_password is True
    client = app.test_client()
    assert login(client, "dina", "Kopi-tubruk-42").status_code == 302
    assert client.get("/admin/").headers["Location"].endswith("/account/password")


def test_create_user_prompts_for_the_password(app):
    result = run(app, "create-user", "carol", "--role", "auditor", input="Kopi-tubruk-42\nKopi-tubruk-42\n")

    assert result.exit_code == 0, result.output
    assert "Password:" in result.output and "Repeat for confirmation:" in result.output
    assert "Kopi-tubruk-42" not in result.output  # hidden input is not echoed
    carol = find_user(app, "carol")
    assert carol.role == "auditor"
    assert carol.check_password("Kopi-tubruk-42")


def test_create_user_prompt_asks_again_when_the_two_entries_differ(app):
    result = run(
        app,
        "create-user",
        "dave",
        "--role",
        "admin",
        input="one-one-one-1\ntwo-two-two-2\nthree-three-3\nthree-three-3\n",
    )

    assert result.exit_code == 0, result.output
    assert "do not match" in result.output
    assert find_user(app, "dave").check_password("three-three-3")


def test_create_user_refuses_an_unknown_role(app):
    result = run(app, "create-user", "eve", "--role", "superuser", "--password", "Kopi-tubruk-42")

    assert result.exit_code == 2
    assert "Invalid value for '--role'" in result.output
    assert "superuser" in result.output
    assert find_user(app, "eve") is None


def test_create_user_requires_a_role(app):
    result = run(app, "create-user", "eve", "--password", "Kopi-tubruk-42")

    assert result.exit_code == 2
    assert "--role" in result.output
    assert find_user(app, "eve") is None


def test_create_user_refuses_a_duplicate_username(app, make_user):
    make_user("frank", role="staff", password="original-pw")

    result = run(app, "create-user", "frank", "--role", "admin", "--password", "other-pw-long")

    assert result.exit_code == 1
    assert "Error: User 'frank' already exists." in result.stderr
    assert "Traceback" not in result.output
    frank = find_user(app, "frank")
    assert frank.role == "staff"
    assert frank.check_password("original-pw")
    with app.app_context():
        assert _db.session.scalar(select(func.count(User.id)).where(User.username == "frank")) == 1


def test_create_user_strips_the_username_and_still_finds_duplicates(app):
    assert run(app, "create-user", "  grace ", "--role", "staff", "--password", "Kopi-tubruk-42").exit_code == 0
    assert find_user(app, "grace") is not None

    result = run(app, "create-user", "grace", "--role", "staff", "--password", "Kopi-tubruk-42")
    assert result.exit_code == 1
    assert "already exists" in result.output


@pytest.mark.parametrize(
    "username, password, message",
    [
        ("", "Kopi-tubruk-42", "A username is required."),
        ("   ", "Kopi-tubruk-42", "A username is required."),
        ("u" * 65, "Kopi-tubruk-42", "Use at most 64 characters."),
        ("henry", "", "A password is required."),
    ],
)
def test_create_user_refuses_bad_values(app, username, password, message):
    result = run(app, "create-user", username, "--role", "staff", "--password", password)

    assert result.exit_code == 1
    assert message in result.output
    with app.app_context():
        assert _db.session.scalar(select(func.count(User.id))) == 0


# ------------------------------------------------------------- set-password


def test_set_password_changes_it_and_unlocks(app, make_user):
    make_user(
        "ivan",
        role="staff",
        password="old-password",
        failed_login_count=3,
        locked_until=utcnow() + timedelta(hours=1),
        must_change_password=True,
    )
    assert login(app.test_client(), "ivan", "old-password").status_code == 429  # locked

    result = run(app, "set-password", "ivan", "--password", "new-password")

    assert result.exit_code == 0, result.output
    assert "Password of ivan changed." in result.output
    ivan = find_user(app, "ivan")
    assert (ivan.failed_login_count, ivan.locked_until, ivan.must_change_password) == (0, None, False)
    assert not ivan.check_password("old-password")
    assert ivan.check_password("new-password")
    assert not signs_in(app, "ivan", "old-password")
    assert signs_in(app, "ivan", "new-password")


def test_set_password_prompts(app, make_user):
    make_user("judy", password=PASSWORD)

    result = run(app, "set-password", "judy", input="fresh-pw-2026\nfresh-pw-2026\n")

    assert result.exit_code == 0, result.output
    assert find_user(app, "judy").check_password("fresh-pw-2026")
    assert not find_user(app, "judy").check_password(PASSWORD)


def test_set_password_of_an_unknown_user_fails(app, make_user):
    make_user("kim", password=PASSWORD)

    result = run(app, "set-password", "ghost", "--password", "Kopi-tubruk-42")

    assert result.exit_code == 1
    assert "Error: No user 'ghost'." in result.output
    assert find_user(app, "ghost") is None
    assert find_user(app, "kim").check_password(PASSWORD)


def test_set_password_refuses_an_empty_password(app, make_user):
    make_user("leo", password=PASSWORD)

    result = run(app, "set-password", "leo", "--password", "")

    assert result.exit_code == 1
    assert "A password is required." in result.output
    assert find_user(app, "leo").check_password(PASSWORD)


# --------------------------------------------------------------------- seed


def catalog(app):
    with app.app_context():
        return [
            (p.sku, p.name, p.price, p.stock, p.is_active)
            for p in _db.session.scalars(select(Product).order_by(Product.sku))
        ]


def recreate_schema(app):
    with app.app_context():
        _db.drop_all()
        _db.create_all()


def test_seed_adds_products(app):
    result = run(app, "seed", "--products", "25", "--seed", "7")

    assert result.exit_code == 0, result.output
    assert "Added 25 products." in result.output
    rows = catalog(app)
    assert [row[0] for row in rows] == [f"DEMO-{n:07d}" for n in range(1, 26)]
    for _sku, name, price, stock, _is_active in rows:
        brand, adjective, noun, size = name.split(" ", 3)  # words to search for
        assert (brand, adjective, noun, size) in itertools.product(
            seeding.BRANDS, seeding.ADJECTIVES, seeding.NOUNS, seeding.SIZES
        )
        assert isinstance(price, Decimal) and price == price.quantize(Decimal("0.01")) and price > 0
        assert 0 <= stock < 500
    with app.app_context():
        created = _db.session.scalars(select(Product.created_at).order_by(Product.sku)).all()
    assert created == sorted(created)  # the catalog grew over the last two years
    assert utcnow() - seeding.HISTORY <= created[0] and created[-1] <= utcnow()
    assert created[-1] - created[0] > seeding.HISTORY * 0.8


def test_seed_is_deterministic(app):
    assert run(app, "seed", "--products", "30", "--seed", "42").exit_code == 0
    first = catalog(app)
    recreate_schema(app)  # a fresh, empty database
    assert run(app, "seed", "--products", "30", "--seed", "42").exit_code == 0
    second = catalog(app)
    recreate_schema(app)
    assert run(app, "seed", "--products", "30", "--seed", "43").exit_code == 0
    other_seed = catalog(app)

    assert len(first) == 30
    assert first == second
    assert [row[1:] for row in other_seed] != [row[1:] for row in first]


def test_seeding_twice_adds_more_without_collisions(app):
    assert run(app, "seed", "--products", "12", "--seed", "1").exit_code == 0
    result = run(app, "seed", "--products", "8", "--seed", "1")

    assert result.exit_code == 0, result.output
    assert "Added 8 products." in result.output
    skus = [row[0] for row in catalog(app)]
    assert skus == [f"DEMO-{n:07d}" for n in range(1, 21)]


def test_seeding_in_batches(app, monkeypatch):
    monkeypatch.setattr(seeding, "BATCH", 4)  # several batches, as with a large --products

    result = run(app, "seed", "--products", "10")

    assert result.exit_code == 0, result.output
    assert len(catalog(app)) == 10


def index_names(app) -> dict[str, str]:
    """Every index of the database with its definition, as the database itself gives it."""
    query = {
        "sqlite": "SELECT name, sql FROM sqlite_master WHERE type = 'index'",
        "postgresql": "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema()",
    }
    with app.app_context():
        return dict(_db.session.execute(text(query[_db.engine.dialect.name])).all())


@pytest.mark.own_schema
def test_a_large_seed_builds_the_indexes_anew(app, monkeypatch):
    """A seed larger than the tables it fills drops their indexes and builds them again at
    the end, in batches smaller than what it adds: the same indexes, the same data."""
    monkeypatch.setattr(bulk, "REBUILD_FROM", 1)
    monkeypatch.setattr(seeding, "BATCH", 7)
    before = index_names(app)
    dropped = []
    monkeypatch.setattr(
        sqlalchemy.Index,
        "drop",
        lambda index, bind: dropped.append(index.name) or bind.execute(text(f"DROP INDEX {index.name}")),
    )

    result = run(app, "seed", "--products", "30", "--transactions", "40", "--lines", "2")

    assert result.exit_code == 0, result.output
    assert "ix_products_name_id" in dropped and "ix_audit_entries_at_id" in dropped
    assert index_names(app) == before
    with app.app_context():
        assert _db.session.scalar(select(func.count()).select_from(Transaction)) == 40
        assert _db.session.scalar(select(func.count()).select_from(TransactionProduct)) == 80
        analysed = {  # the planner knows the tables as they are now (and PostgreSQL vacuumed them)
            "sqlite": "SELECT count(*) FROM sqlite_stat1 WHERE tbl = 'transactions'",
            "postgresql": "SELECT count(*) FROM pg_stat_user_tables WHERE relname = 'transactions' "
            "AND last_analyze IS NOT NULL AND last_vacuum IS NOT NULL",
        }[_db.engine.dialect.name]
        assert _db.session.scalar(text(analysed)) >= 1


@pytest.mark.own_schema
def test_a_failed_seed_leaves_nothing_behind(app, monkeypatch):
    """One unit of work: the products, the indexes dropped for the load, all come back."""
    monkeypatch.setattr(bulk, "REBUILD_FROM", 1)
    before = index_names(app)

    monkeypatch.setattr(seeding, "load_catalog", lambda session: seeding.Catalog())  # as if none were active
    result = run(app, "seed", "--products", "30", "--transactions", "5")

    assert result.exit_code == 1 and "seed products first" in result.output
    assert catalog(app) == []
    assert index_names(app) == before


@pytest.mark.own_schema
@pytest.mark.parametrize("rebuild_from", [bulk.REBUILD_FROM, 1])  # triggers, or the index built anew
def test_a_seed_leaves_the_search_index_complete(app, monkeypatch, rebuild_from):
    if not app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        pytest.skip("SQLite's search index")
    monkeypatch.setattr(bulk, "REBUILD_FROM", rebuild_from)
    before = search_index_schema(app)

    result = run(app, "seed", "--products", "2000", "--transactions", "100")

    assert result.exit_code == 0, result.output
    assert search_index_schema(app) == before  # the triggers are back
    assert len(search_index_finds(app, "demo-")) == 2000
    with app.app_context():
        coffee = list(
            _db.session.scalars(select(Product.sku).where(Product.name.like("%coffee%")).order_by(Product.sku))
        )
    assert search_index_finds(app, "COFFEE") == coffee and coffee


@pytest.mark.own_schema
def test_a_failed_seed_keeps_the_search_index_and_its_triggers(app, monkeypatch):
    if not app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        pytest.skip("SQLite's search index")
    monkeypatch.setattr(bulk, "REBUILD_FROM", 1)
    before = search_index_schema(app)
    monkeypatch.setattr(seeding, "load_catalog", lambda session: seeding.Catalog())

    assert run(app, "seed", "--products", "30", "--transactions", "5").exit_code == 1

    assert search_index_schema(app) == before
    assert search_index_finds(app, "demo") == []


@pytest.mark.parametrize("own_sku", ["DEMO-KIT", "DEMO-9", "DEMO-00000099"])
def test_seed_copes_with_hand_made_demo_skus(app, make_product, own_sku):
    """A SKU someone typed that starts with DEMO- is not a demo number (DEMO-9 also sorts
    after DEMO-0000012 as a string), so it neither breaks nor shifts the numbering."""
    assert run(app, "seed", "--products", "12").exit_code == 0
    make_product(sku=own_sku)

    result = run(app, "seed", "--products", "3")

    assert result.exit_code == 0, result.output
    skus = {row[0] for row in catalog(app)}
    assert skus == {f"DEMO-{n:07d}" for n in range(1, 16)} | {own_sku}


def test_seed_zero_products(app):
    result = run(app, "seed", "--products", "0")

    assert result.exit_code == 0, result.output
    assert catalog(app) == []


def test_seed_refuses_a_negative_count(app):
    result = run(app, "seed", "--products", "-1")

    assert result.exit_code == 2
    assert catalog(app) == []


def test_seed_transactions(app, make_user):
    sellers = {make_user("seller", role="staff"), make_user("boss", role="admin")}
    make_user("checker", role="auditor")

    result = run(app, "seed", "--products", "300", "--transactions", "400", "--lines", "2", "--seed", "5")

    assert result.exit_code == 0, result.output
    with app.app_context():
        txns = _db.session.scalars(select(Transaction)).all()
        line_counts = _db.session.execute(
            select(TransactionProduct.transaction_id, func.count()).group_by(TransactionProduct.transaction_id)
        ).all()
        _db.session.expunge_all()
    count = {status: sum(t.status == status for t in txns) for status in ("draft", "posted", "void")}
    assert len(txns) == 400
    assert (
        f"Added 400 transactions: {count['posted']} posted, {count['void']} void, {count['draft']} drafts."
        in result.output
    )
    assert count["posted"] > count["draft"] > 0 and count["void"] > 0  # mostly posted, some of each
    assert {n for _, n in line_counts} == {2}
    oldest = utcnow() - seeding.HISTORY
    for txn in txns:  # every step by someone who may sell, in the order it happened
        assert txn.created_by_id in sellers and oldest <= txn.created_at <= utcnow()
        assert (txn.posted_at is None) == (txn.status == "draft") == (txn.posted_by_id is None)
        assert (txn.voided_at is None) == (txn.status != "void") == (txn.void_reason is None)
        if txn.posted_at:
            assert txn.created_at < txn.posted_at <= utcnow() and txn.posted_by_id in sellers
        if txn.voided_at:
            assert txn.posted_at < txn.voided_at <= utcnow() and txn.voided_by_id in sellers


def test_seeded_sales_do_not_happen_in_the_future(app):
    """Sales made in the last minutes are not posted yet, nor voided: no time lies ahead."""
    run(app, "seed", "--products", "5")
    with app.app_context():  # a catalog created just now: every sale is recent
        _db.session.execute(
            update(Product).values(created_at=utcnow() - timedelta(minutes=5)),
            execution_options=guards.RECORDS_ITS_OWN_ENTRY,
        )  # test data, not a change to record
        _db.session.commit()

    result = run(app, "seed", "--transactions", "200", "--lines", "1")

    assert result.exit_code == 0, result.output
    with app.app_context():
        latest = _db.session.execute(select(func.max(Transaction.posted_at), func.max(Transaction.voided_at))).one()
    assert all(moment is None or moment <= utcnow() for moment in latest)


def test_seed_transactions_without_sellers_creates_one(app, make_user):
    make_user("checker", role="auditor")

    result = run(app, "seed", "--products", "10", "--transactions", "5")

    assert result.exit_code == 0, result.output
    seller = find_user(app, "demo-staff")
    assert seller.role == "staff" and seller.is_active
    with app.app_context():
        assert set(_db.session.scalars(select(Transaction.created_by_id))) == {seller.id}


def test_seed_transactions_needs_products(app):
    result = run(app, "seed", "--transactions", "5")

    assert result.exit_code == 1
    assert "seed products first" in result.output
    with app.app_context():
        assert _db.session.scalar(select(func.count(Transaction.id))) == 0


# ---------------------------------------------------------------- manage.py


def test_manage_py_help_lists_the_commands(tmp_path):
    result = manage(tmp_path, "--help")

    assert result.returncode == 0, result.stderr
    for command in ("init-db", "create-user", "set-password", "seed", "run", "audit-verify", "audit-checkpoint"):
        assert command in result.stdout


@pytest.mark.parametrize(
    "variables, message",
    [
        ({"ADMINAPP_ENV": "prod"}, "manage.py: ADMINAPP_ENV='prod' is not known"),
        ({"ADMINAPP_ENV": "production"}, "manage.py: SECRET_KEY is not set"),
        ({"ADMINAPP_ENV": "production", "SECRET_KEY": "short"}, "manage.py: SECRET_KEY is too short"),
        ({"ADMINAPP_ENV": "production", "SECRET_KEY": "k" * 32, "FLASK_DEBUG": "1"}, "manage.py: FLASK_DEBUG is on"),
        ({"ADMINAPP_ENV": "production", "SECRET_KEY": "k" * 32}, "manage.py: AUDIT_KEY is not set"),
        (
            {"ADMINAPP_ENV": "production", "SECRET_KEY": "k" * 32, "AUDIT_KEY": "short"},
            "manage.py: AUDIT_KEY is too short",
        ),
    ],
)
def test_manage_py_says_what_is_wrong_with_the_environment(tmp_path, monkeypatch, variables, message):
    for name in [name for name in os.environ if is_app_variable(name)]:
        monkeypatch.delenv(name)
    for name, value in {
        "ADMINAPP_INSTANCE_PATH": str(tmp_path / "instance"),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'manage.db'}",
        **variables,
    }.items():
        monkeypatch.setenv(name, value)

    with pytest.raises(SystemExit) as refused:
        manage_py.configured_app()

    assert str(refused.value).startswith(message)
    assert not (tmp_path / "manage.db").exists()


def test_manage_py_says_it_in_one_line_without_a_traceback(tmp_path):
    result = manage(tmp_path, "init-db", ADMINAPP_ENV="prod")

    assert result.returncode == 1
    assert result.stderr.startswith("manage.py: ADMINAPP_ENV='prod' is not known")
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "manage.db").exists()


def test_manage_py_init_db_and_create_user(tmp_path):
    init = manage(tmp_path, "init-db")
    assert init.returncode == 0, init.stderr
    assert "Database schema is up to date." in init.stdout

    create = manage(tmp_path, "create-user", "zoe", "--role", "admin", "--password", "Kopi-tubruk-42")
    assert create.returncode == 0, create.stderr

    engine = create_engine(f"sqlite:///{tmp_path / 'manage.db'}")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT username, role FROM users")).all() == [("zoe", "admin")]
    engine.dispose()


def test_manage_py_run_serves_a_fresh_database_with_a_first_admin(tmp_path):
    """The README's first command: schema, one-time admin password, a server that answers."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = clean_environ(
        ADMINAPP_INSTANCE_PATH=str(tmp_path / "instance"),
        DATABASE_URL=f"sqlite:///{tmp_path / 'run.db'}",
        PYTHONUNBUFFERED="1",
    )
    server = subprocess.Popen(
        [sys.executable, "manage.py", "run", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        output = []
        while not re.match(r"\|     \S+ +\|$", output[-1] if output else "") and server.poll() is None:
            output.append(server.stdout.readline().rstrip("\n"))
        password = output[-1].strip("| ")
        assert password, "\n".join(output)
        assert "Ctrl+C stops it" in "\n".join(output)
        login_page = _get_when_up(f"http://127.0.0.1:{port}/login")
        assert "csrf_token" in login_page
    finally:
        server.terminate()
        server.wait(timeout=10)
        rest = server.stdout.read()
        server.stdout.close()
    log = "\n".join(output) + rest
    assert "\x1b[" not in log, log  # no colour codes where the output is not a terminal
    assert '"GET /login HTTP/1.1" 200' in log, log
    engine = create_engine(f"sqlite:///{tmp_path / 'run.db'}")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT username, role, must_change_password FROM users")).all() == [
            ("admin", "admin", True)
        ]
    engine.dispose()


def _get_when_up(url, seconds=20):
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return response.read().decode()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


# ------------------------------------------------------- migration 0010: usernames and their keys


def upgrade_to_before_usernames(app):
    config = Config()
    config.set_main_option("script_location", str(ROOT / "migrations"))
    before = ScriptDirectory.from_config(config).get_revision("0010").down_revision
    flask_migrate.upgrade(revision=before)


def add_users_raw(*names):
    users = sqlalchemy.table(
        "users",
        *(
            sqlalchemy.column(c)
            for c in (
                "username",
                "password_hash",
                "role",
                "is_active",
                "created_at",
                "failed_login_count",
                "must_change_password",
            )
        ),
    )
    _db.session.execute(
        insert(users),
        [
            {
                "username": name,
                "password_hash": "x",
                "role": "staff",
                "is_active": True,
                "created_at": utcnow(),
                "failed_login_count": 0,
                "must_change_password": False,
            }
            for name in names
        ],
    )
    _db.session.commit()


def test_the_usernames_migration_keys_the_users_there_already(fresh_app):
    with fresh_app.app_context():
        upgrade_to_before_usernames(fresh_app)
        add_users_raw("Carol.Smith", "dora@example.com")
        flask_migrate.upgrade()
        keys = dict(_db.session.execute(select(User.username, User.username_key)).all())

    assert keys == {"Carol.Smith": "carol.smith", "dora@example.com": "dora@example.com"}
    assert run(fresh_app, "set-password", "CAROL.SMITH", "--password", PASSWORD).exit_code == 0
    assert signs_in(fresh_app, "carol.smith", PASSWORD)


def test_the_usernames_migration_stops_at_names_that_differ_only_in_case(fresh_app, capsys):
    with fresh_app.app_context():
        upgrade_to_before_usernames(fresh_app)
        add_users_raw("Bob", "bob", "eve")

    result = run(fresh_app, "init-db")

    assert result.exit_code == 1
    said = result.output + capsys.readouterr().err  # Flask-Migrate logs the migration's error
    assert re.search(r"differ only in letter case.*'Bob', 'bob'.*Nothing was changed", said)
    with fresh_app.app_context():
        assert sorted(_db.session.scalars(text("SELECT username FROM users"))) == ["Bob", "bob", "eve"]
        assert "username_key" not in {c["name"] for c in inspect(_db.engine).get_columns("users")}
        _db.session.execute(text("UPDATE users SET username = 'bob2' WHERE username = 'bob'"))
        _db.session.commit()
    assert run(fresh_app, "init-db").exit_code == 0  # renamed, the upgrade goes through


def test_the_usernames_migration_keeps_what_points_at_users(fresh_app):
    """SQLite rebuilds `users` for the new columns: with foreign keys enforced the drop of the
    old table would delete the users' sessions (cascade) or stop at their audit entries."""
    with fresh_app.app_context():
        upgrade_to_before_usernames(fresh_app)
        add_users_raw("carol")
        _db.session.execute(
            text("INSERT INTO user_sessions (user_id, token_hash, created_at) SELECT id, 'abc', created_at FROM users")
        )
        _db.session.execute(
            text(
                "INSERT INTO audit_entries (at, user_id, username, action, object_type, object_id, "
                "object_repr, changes, prev_hash, hash) SELECT created_at, id, username, 'login', 'user', id, "
                "username, '{}', NULL, 'x' FROM users"
            )
        )
        _db.session.commit()

        flask_migrate.upgrade()

        assert _db.session.execute(text("SELECT count(*) FROM user_sessions")).scalar() == 1
        assert _db.session.execute(text("SELECT count(*) FROM audit_entries")).scalar() == 1
        if _db.engine.dialect.name == "sqlite":
            assert _db.session.execute(text("PRAGMA foreign_key_check")).all() == []
