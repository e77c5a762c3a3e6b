import logging
from contextlib import contextmanager
from logging.config import fileConfig

from alembic import context
from flask import current_app

from adminapp.models.indexes import exists_on

# this is the Alembic Config object, which provides
# access to the values within the .ini file in use.
config = context.config

# Interpret the config file for Python logging.
# This line sets up loggers basically.
fileConfig(config.config_file_name, disable_existing_loggers=False)
logger = logging.getLogger("alembic.env")


def get_engine():
    return current_app.extensions["migrate"].db.engine


def get_engine_url():
    try:
        return get_engine().url.render_as_string(hide_password=False).replace("%", "%%")
    except AttributeError:
        return str(get_engine().url).replace("%", "%%")


# add your model's MetaData object here
# for 'autogenerate' support
# from myapp import mymodel
# target_metadata = mymodel.Base.metadata
config.set_main_option("sqlalchemy.url", get_engine_url())
target_db = current_app.extensions["migrate"].db

# other values from the config, defined by the needs of env.py,
# can be acquired:
# my_important_option = config.get_main_option("my_important_option")
# ... etc.


def get_metadata():
    if hasattr(target_db, "metadatas"):
        return target_db.metadatas[None]
    return target_db.metadata


def run_migrations_offline():
    """Run migrations in 'offline' mode.

    This configures the context with just a URL
    and not an Engine, though an Engine is acceptable
    here as well.  By skipping the Engine creation
    we don't even need a DBAPI to be available.

    Calls to context.execute() here emit the given string to the
    script output.

    """
    url = config.get_main_option("sqlalchemy.url")
    context.configure(url=url, target_metadata=get_metadata(), literal_binds=True)

    with context.begin_transaction():
        context.run_migrations()


def render_item(type_, obj, autogen_context):
    """Write the app's UTCDateTime as a plain timezone-aware DateTime in migrations."""
    from adminapp.models.types import UTCDateTime

    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


@contextmanager
def foreign_keys_off_on_sqlite(connection):
    """SQLite alters a table by copying it, dropping the old one and renaming the copy. The app
    turns foreign keys on for every connection, and with them on, dropping `users` would delete
    its sessions (cascade) or stop at its audit entries. So they are off while the migrations
    run (set outside a transaction: SQLite ignores the pragma inside one)."""
    if connection.dialect.name != "sqlite":
        yield
        return
    sqlite = connection.connection.dbapi_connection
    sqlite.execute("PRAGMA foreign_keys=OFF")
    try:
        yield
    finally:
        sqlite.execute("PRAGMA foreign_keys=ON")


def check_foreign_keys_on_sqlite(connection):
    """What the pragma would have refused, refused once at the end, before the commit."""
    if connection.dialect.name == "sqlite":
        broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
        if broken:
            raise RuntimeError(f"The migration left rows whose foreign keys point nowhere: {broken[:10]}")


def run_migrations_online():
    """Run migrations in 'online' mode.

    In this scenario we need to create an Engine
    and associate a connection with the context.

    """

    # this callback is used to prevent an auto-migration from being generated
    # when there are no changes to the schema
    # reference: http://alembic.zzzcomputing.com/en/latest/cookbook.html
    def process_revision_directives(context, revision, directives):
        if getattr(config.cmd_opts, "autogenerate", False):
            script = directives[0]
            if script.upgrade_ops.is_empty():
                directives[:] = []
                logger.info("No changes in schema detected.")

    conf_args = current_app.extensions["migrate"].configure_args
    if conf_args.get("process_revision_directives") is None:
        conf_args["process_revision_directives"] = process_revision_directives
    conf_args.setdefault("render_item", render_item)

    connectable = get_engine()
    conf_args.setdefault("include_object", exists_on(connectable.dialect.name))

    with connectable.connect() as connection:
        context.configure(connection=connection, target_metadata=get_metadata(), **conf_args)
        if connection.dialect.name == "postgresql":
            # The app's lock timeout is for requests: a migration waits for its locks, however long.
            connection.exec_driver_sql("SET lock_timeout = 0")
        with foreign_keys_off_on_sqlite(connection):
            with context.begin_transaction():
                context.run_migrations()
                check_foreign_keys_on_sqlite(connection)


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
