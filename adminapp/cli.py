"""Commands for `manage.py` (and `flask --app adminapp`). Each one is its own unit of work."""

import functools
import secrets
import sys
from contextlib import contextmanager
from pathlib import Path

import click
from flask import current_app
from flask_migrate import upgrade
from sqlalchemy import func, select, text
from werkzeug.serving import WSGIRequestHandler, make_server

from .domain import accounts, audit, audit_chain, seeding
from .domain.errors import DomainError
from .extensions import db
from .models import AuditEntry, User
from .unit_of_work import unit_of_work
from .vocabularies import Role


def init_db() -> None:
    """Create the schema, or upgrade it to the latest migration. Safe to run again."""
    upgrade(directory=current_app.extensions["migrate"].directory)


def ensure_first_admin() -> str | None:
    """On a database without users, create `admin` with a one-time password and return it."""
    if db.session.scalar(select(func.count(User.id))):
        return None
    password = secrets.token_urlsafe(12)
    with unit_of_work():
        accounts.create_user(db.session, "admin", password, Role.ADMIN, must_change_password=True)
    return password


def seed_demo_data(products: int, transactions: int, lines: int, seed: int, progress=None) -> seeding.Seeded:
    """Add demo data in one unit of work: all of it, or nothing."""
    with command_unit_of_work():
        seeded = seeding.add_demo_data(
            db.session, audit.Actor(username="cli"), products, transactions, lines, seed, progress
        )
    vacuum_after_load(seeded.rebuilt)
    return seeded


def vacuum_after_load(tables: list) -> None:
    """After a large load has committed, on PostgreSQL: VACUUM the tables, as autovacuum would
    some time later. Until then index-only scans visit the heap, the stock moves' old rows stay,
    and the first readers pay for the load's hint bits. VACUUM runs outside any transaction."""
    if not tables or db.engine.dialect.name != "postgresql":
        return
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        for table in tables:
            connection.execute(text(f"VACUUM {table.name}"))


@contextmanager
def command_unit_of_work():
    """The command's unit of work; a rule's refusal ends the command with its message."""
    try:
        with unit_of_work():
            yield
    except DomainError as exc:  # rolled back
        raise click.ClickException(str(exc)) from None


def as_cli(command):
    """Changes made by the command are recorded in the audit trail as the user 'cli'."""

    @functools.wraps(command)
    def run_as_cli(*args, **kwargs):
        audit.set_actor(db.session, audit.Actor(username="cli"))
        return command(*args, **kwargs)

    return run_as_cli


def verify_audit_trail(progress=None, marks=()) -> audit.Verdict:
    return audit.verify(db.session, progress, marks)


def read_checkpoints(value: str) -> list[audit_chain.Checkpoint]:
    """The checkpoint line given, or every checkpoint line of the file at that path (an auditor's
    record of them, oldest first: each one must still be extended). Other lines are left alone."""
    if value.strip().startswith(audit_chain.CHECKPOINT_PREFIX):
        lines = [(None, value)]
    else:
        try:
            text = Path(value).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise click.BadParameter(f"neither a checkpoint line nor a readable file ({exc})") from None
        lines = [
            (number, line)
            for number, line in enumerate(text.splitlines(), 1)
            if line.strip().startswith(audit_chain.CHECKPOINT_PREFIX)
        ]
        if not lines:
            raise click.BadParameter(f"{value} holds no checkpoint line ({audit_chain.CHECKPOINT_VERSION} ...)")
    checkpoints = []
    for number, line in lines:
        try:
            checkpoints.append(audit_chain.parse_checkpoint(line))
        except audit_chain.CheckpointError as exc:
            raise click.BadParameter(f"line {number} of {value}: {exc}" if number else str(exc)) from None
    return checkpoints


def checkpoint_label(checkpoint: audit_chain.Checkpoint) -> str:
    return f"The checkpoint of entry #{checkpoint.last_id} taken at {checkpoint.at:%Y-%m-%dT%H:%M:%SZ}"


def checkpoint_problems(checkpoints, verdict: audit.Verdict) -> list[str]:
    problems = []
    for checkpoint in checkpoints:
        problem = (
            "its MAC is not valid (not made with this key)"
            if not audit_chain.authentic(checkpoint)
            else audit_chain.extension_problem(checkpoint, verdict)
        )
        if problem:
            problems.append(f"{checkpoint_label(checkpoint)}: {problem}.")
    return problems


# Scripts set passwords that are then used as they are; a person given one can be asked to
# choose their own at the next sign-in.
MUST_CHANGE = click.option("--must-change", is_flag=True, help="Ask for a new password at the next sign-in.")


def register(app) -> None:
    @app.cli.command("init-db")
    def init_db_command():
        """Create or upgrade the database schema."""
        init_db()
        click.echo("Database schema is up to date.")

    @app.cli.command("create-user")
    @click.argument("username")
    @click.option("--role", type=click.Choice([role.value for role in Role]), required=True)
    @click.password_option("--password", prompt=True, confirmation_prompt=True)
    @MUST_CHANGE
    @as_cli
    def create_user_command(username, role, password, must_change):
        """Create a user with a role, ready to sign in (with --must-change: asked for a new password first)."""
        with command_unit_of_work():
            accounts.create_user(db.session, username, password, role, must_change_password=must_change)
        click.echo(f"Created {role} {username}.")

    @app.cli.command("set-password")
    @click.argument("username")
    @click.password_option("--password", prompt=True, confirmation_prompt=True)
    @MUST_CHANGE
    @as_cli
    def set_password_command(username, password, must_change):
        """Set a user's password and unlock the account (with --must-change: asked for a new one first)."""
        with command_unit_of_work():
            accounts.set_password(db.session, username, password, must_change_password=must_change)
        click.echo(f"Password of {username} changed.")

    @app.cli.command("seed")
    @click.option("--products", "product_count", type=click.IntRange(min=0), default=0, show_default=True)
    @click.option(
        "--transactions",
        "transaction_count",
        type=click.IntRange(min=0),
        default=0,
        show_default=True,
        help="Demo transactions over the last two years: most posted, some drafts and voids.",
    )
    @click.option(
        "--lines", type=click.IntRange(min=1, max=100), default=3, show_default=True, help="Lines per demo transaction."
    )
    @click.option("--seed", type=int, default=1, show_default=True, help="Same seed, same data.")
    @as_cli
    def seed_command(product_count, transaction_count, lines, seed):
        """Add deterministic demo data."""
        with click.progressbar(length=product_count + transaction_count, label="Products and transactions") as bar:
            seeded = seed_demo_data(product_count, transaction_count, lines, seed, bar.update)
        if product_count:
            click.echo(f"Added {product_count} products.")
        if transaction_count:
            click.echo(
                f"Added {transaction_count} transactions: {seeded.posted} posted, {seeded.voided} void, "
                f"{seeded.drafts} drafts."
            )

    @app.cli.command("audit-verify")
    @click.option(
        "--checkpoint",
        "checkpoint_source",
        metavar="LINE_OR_FILE",
        help="A line printed by audit-checkpoint, or a file of such lines: exit 1 unless the chain "
        "still extends each of them.",
    )
    def audit_verify_command(checkpoint_source):
        """Check the audit trail's hash chain; exit 1 at the first broken entry."""
        checkpoints = read_checkpoints(checkpoint_source) if checkpoint_source else []
        total = db.session.scalar(select(func.count(AuditEntry.id)))
        with click.progressbar(length=total, label="Audit entries", file=sys.stderr) as bar:
            verdict = verify_audit_trail(bar.update, [checkpoint.last_id for checkpoint in checkpoints])
        problems = checkpoint_problems(checkpoints, verdict)
        if not verdict.ok:
            problems.insert(
                0,
                f"Audit trail BROKEN at entry #{verdict.broken_id}: {verdict.reason}. "
                f"{verdict.checked} entries before it are intact.",
            )
        for problem in problems:
            click.echo(problem, err=True)
        if problems:
            sys.exit(1)
        click.echo(f"Audit trail intact: {verdict.checked} entries verified.")
        for checkpoint in checkpoints:
            click.echo(f"{checkpoint_label(checkpoint)} ({checkpoint.count} entries): the chain extends it.")

    @app.cli.command("audit-checkpoint")
    def audit_checkpoint_command():
        """Print the chain's head as one checkpoint line, to keep in your own records; later
        `audit-verify --checkpoint LINE` checks that the chain still extends it. Verifies nothing."""
        checkpoint = audit_chain.take_checkpoint(db.session)
        click.echo(checkpoint.line)

    @app.cli.command("run")
    @click.option("--host", default="127.0.0.1", show_default=True)
    @click.option("--port", default=5000, type=int, show_default=True)
    @as_cli
    def run_command(host, port):
        """Run the development server (creates the schema and a first admin when needed)."""
        init_db()
        password = ensure_first_admin()
        serve(current_app._get_current_object(), host, port, password)


class PlainRequestHandler(WSGIRequestHandler):
    """Werkzeug's request log without its colour codes, for a log that is not a terminal."""

    def log_request(self, code="-", size="-"):
        line = "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in self.requestline)
        self.log("info", '"%s" %s %s', line, code, size)


def serve(app, host: str, port: int, first_password: str | None) -> None:
    """Werkzeug's development server (Flask ignores app.run() inside its own CLI), announced in
    plain text, with the first admin's one-time password shown last, where it is seen."""
    handler = WSGIRequestHandler if sys.stderr.isatty() else PlainRequestHandler
    server = make_server(host, port, app, threaded=True, request_handler=handler)
    click.echo(
        f"adminapp is serving on http://{host}:{server.port}/ (a development server; production runs gunicorn).\n"
        "It runs in the foreground: Ctrl+C stops it. Run the tests from a second terminal."
    )
    if first_password:
        click.echo(one_time_password_box(first_password))
    server.serve_forever()


def one_time_password_box(password: str) -> str:
    """The password in a frame, bold on a terminal (click.echo drops the style elsewhere)."""
    lines = [
        "Sign in as 'admin' with this one-time password:",
        "",
        f"    {password}",
        "",
        "It is shown only now; you will choose your own after signing in.",
    ]
    width = max(map(len, lines))
    rule = "+" + "-" * (width + 2) + "+"
    box = "\n".join([rule, *(f"| {line.ljust(width)} |" for line in lines), rule])
    return "\n" + click.style(box, bold=True)
