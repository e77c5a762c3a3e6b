"""How fast `audit-verify` walks the chain, and that its memory stays flat.

    .venv/bin/python scripts/bench_audit_verify.py --entries 1000000 [--database-url URL]

Writes a valid chain of N entries into a fresh database (SQLite in a temporary folder
unless --database-url is given), then verifies it, printing entries per second and the
process's peak memory before and after the walk.
"""

import argparse
import resource
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from sqlalchemy import insert

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from adminapp import create_app  # noqa: E402
from adminapp.domain import audit  # noqa: E402
from adminapp.extensions import db  # noqa: E402
from adminapp.models import AuditEntry, utcnow  # noqa: E402

BATCH = 10_000


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def write_chain(count: int) -> None:
    start, prev = utcnow(), None
    for first in range(0, count, BATCH):
        rows = []
        for n in range(first, min(first + BATCH, count)):
            entry = {"at": start + timedelta(microseconds=n), "user_id": None, "username": "bench",
                     "action": "update", "object_type": "product", "object_id": str(n % 5000),
                     "object_repr": f"BENCH-{n}", "changes": {"stock": [n, n + 1]}, "remote_addr": None}
            entry["prev_hash"], entry["hash"] = prev, audit.entry_hash(prev, entry)
            prev = entry["hash"]
            rows.append(entry)
        db.session.execute(insert(AuditEntry), rows)
        db.session.commit()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=200_000)
    parser.add_argument("--database-url")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = args.database_url or f"sqlite:///{Path(folder) / 'bench.db'}"
        app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "bench"})
        with app.app_context():
            db.drop_all()
            db.create_all()
            began = time.perf_counter()
            write_chain(args.entries)
            print(f"wrote {args.entries:,} entries in {time.perf_counter() - began:.1f} s")
            db.session.remove()
            before = peak_mib()
            began = time.perf_counter()
            verdict = audit.verify(db.session)
            seconds = time.perf_counter() - began
            print(f"verified {verdict.checked:,} entries in {seconds:.1f} s "
                  f"({verdict.checked / seconds:,.0f} entries/s); intact: {verdict.ok}")
            print(f"peak memory: {before:.0f} MiB before the walk, {peak_mib():.0f} MiB after")
            if args.database_url:
                db.drop_all()


if __name__ == "__main__":
    main()
