"""scripts/bench_reliability.py, run briefly: concurrent staff over HTTP against gunicorn, then
every invariant checked in the database. It asserts the invariants the script reports, not
how fast anything was."""

import re
import subprocess
import sys
from pathlib import Path

from tests.support import clean_environ

ROOT = Path(__file__).resolve().parent.parent
INVARIANTS = [
    "no negative stock",
    "stock = before - posted",
    "totals = sum of their lines",
    "no half-posted or half-voided transaction",
    "one audit entry per post and per void",
    "lost update: 1 of 8 editors wins",
    "audit-verify",
    "no 5xx, unexpected error, database is locked or connection error",
]


def test_a_short_mixed_load_keeps_every_invariant(empty_database_url, tmp_path):
    database_url = empty_database_url
    env = {key: value for key, value in clean_environ().items() if not key.startswith("TEST_")}
    # On SQLite the fault is an outside writer holding the lock for a second: writes wait for it
    # (well within the busy timeout), so the run stays free of errors.
    fault = ["--outage", "1"] if database_url.startswith("sqlite") else []
    done = subprocess.run(
        [
            sys.executable,
            "scripts/bench_reliability.py",
            "--database-url",
            database_url,
            "--threads",
            "3",
            "--seconds",
            "5",
            "--workers",
            "2",
            *fault,
        ],
        cwd=ROOT,
        env={**env, "TMPDIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    report = done.stdout + done.stderr

    verdicts = {name: verdict for verdict, name in re.findall(r"^\s+(PASS|FAIL)\s+(.+?)\s+\(", report, re.M)}
    for invariant in INVARIANTS:
        assert [verdict for name, verdict in verdicts.items() if name.startswith(invariant)] == ["PASS"], report
    assert done.returncode == 0, report
    # The load did happen: drafts were saved and posted.
    assert re.search(r"^draft\s+[1-9]", report, re.M) and re.search(r"^post\s+[1-9]", report, re.M), report
