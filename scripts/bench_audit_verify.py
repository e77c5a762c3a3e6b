"""How fast `audit-verify` walks the chain, and that its memory stays flat.

    .venv/bin/python scripts/bench_audit_verify.py --entries 1000000 [--database-url URL]

Writes a valid chain of N entries into a database of its own, then verifies it, printing
entries per second, the seconds taken (wall and this process's CPU) and the process's peak
memory before and after the walk.

The script never touches a database it did not create. By default it uses SQLite in a new
temporary folder. With --database-url it connects to that PostgreSQL server (the URL's
database is only where it connects from), creates a database named adminapp_bench_<random>,
works there and drops it at the end, also after an error, Ctrl-C or a SIGTERM. A SQLite URL
is refused: SQLite always runs in a temporary folder, so no file given can be overwritten.
"""

import argparse
import resource
import signal
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from adminapp import create_app  # noqa: E402
from adminapp.domain import audit  # noqa: E402
from adminapp.extensions import db  # noqa: E402
from adminapp.models import utcnow  # noqa: E402

BATCH = 10_000
ACTOR = audit.Actor(username="bench")


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@contextmanager
def sqlite_database():
    with tempfile.TemporaryDirectory() as folder:
        yield f"sqlite:///{Path(folder) / 'bench.db'}"


@contextmanager
def postgres_database(server_url: str):
    """A new database on the server of ``server_url``, dropped on the way out whatever happens."""
    name = f"adminapp_bench_{uuid.uuid4().hex[:12]}"
    server = create_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        with server.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        print(f"created database {name}")
        try:
            yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
        finally:
            with server.connect() as conn:  # FORCE: a connection left open must not keep it alive
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            print(f"dropped database {name}")
    finally:
        server.dispose()


def write_chain(count: int) -> None:
    """A valid chain written through the app's own bulk path, one commit per batch."""
    start = utcnow()
    for first in range(0, count, BATCH):
        entries = [
            audit.entry(
                ACTOR,
                "update",
                "product",
                n % 5000,
                f"BENCH-{n}",
                {"stock": [n, n + 1]},
                at=start + timedelta(microseconds=n),
            )
            for n in range(first, min(first + BATCH, count))
        ]
        with db.engine.begin() as connection:
            audit.append(connection, entries)


def bench(url: str, count: int) -> None:
    # Keys of its own, in no instance folder of a real installation.
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "bench", "INSTANCE_PATH": tempfile.mkdtemp()})
    with app.app_context():
        db.create_all()
        began = time.perf_counter()
        write_chain(count)
        print(f"wrote {count:,} entries in {time.perf_counter() - began:.1f} s")
        before = peak_mib()
        began, cpu_began = time.perf_counter(), time.process_time()
        verdict = audit.verify(db.session)
        seconds, cpu_seconds = time.perf_counter() - began, time.process_time() - cpu_began
        print(
            f"verified {verdict.checked:,} entries in {seconds:.1f} s "
            f"({verdict.checked / seconds:,.0f} entries/s); intact: {verdict.ok}"
        )
        # On a shared machine the wall time counts the neighbours too; this process's CPU does not.
        print(f"the walk used {cpu_seconds:.1f} s of this process's CPU (a database server's not included)")
        print(f"peak memory: {before:.0f} MiB before the walk, {peak_mib():.0f} MiB after")
        db.session.remove()
        db.engine.dispose()


def postgres_server(value: str) -> str:
    try:
        url = make_url(value)
    except ArgumentError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if url.get_backend_name() != "postgresql":
        raise argparse.ArgumentTypeError(
            "only a PostgreSQL server URL is accepted (the bench creates and drops its own database "
            "there); SQLite always runs in a temporary folder, so leave the option out"
        )
    return value


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=200_000)
    parser.add_argument(
        "--database-url", type=postgres_server, help="a PostgreSQL server to create (and drop) a bench database on"
    )
    args = parser.parse_args()
    # SIGTERM ends the run like Ctrl-C, through the clean-up of the database.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with postgres_database(args.database_url) if args.database_url else sqlite_database() as url:
        bench(url, args.entries)


if __name__ == "__main__":
    main()
