"""Concurrent staff over HTTP, then every invariant the data must keep, checked in the database.

    .venv/bin/python scripts/bench_reliability.py                       # SQLite, 12 threads, 180 s
    .venv/bin/python scripts/bench_reliability.py --database-url postgresql://postgres@127.0.0.1:5432/load
    .venv/bin/python scripts/bench_reliability.py --outage 5 --database-url ...   # with a fault halfway
    .venv/bin/python scripts/bench_reliability.py --url http://127.0.0.1:8000 --database-url ...

1. The database: without --database-url, a new SQLite file in a temporary folder; with it, a
   database for benchmarks only (the schema is brought up to date, nothing is emptied). The
   script adds --products shared products with --stock units each, so that requests contend
   for the same rows and some posts run out of stock, and one staff user per thread.
2. The app under gunicorn with the repo's gunicorn.conf.py and --workers workers, in
   production mode; or, with --url, a server already running on the same database (run the
   script with that server's AUDIT_KEY and ADMINAPP_INSTANCE_PATH: it writes audit entries too).
3. For --seconds, each of --threads threads signs in as its own staff user and loops over a
   weighted mix: save a draft of 1-3 shared products in random order, post a draft, void a
   posted transaction, change a product's price through its edit form, read a list page.
   Every response is classified: ok, refused with a message the app meant (out of stock, a
   conflict, already posted or voided, database busy), "unexpected error", "database is
   locked", another 4xx, 5xx, or a connection error.
   With --outage, halfway through the database is made unavailable for that long: on
   PostgreSQL it refuses connections and the open ones are cut (the server down), on SQLite
   an outside writer holds the write lock. What happened meanwhile is shown apart, with how
   soon after the database came back a write succeeded again.
4. A lost-update probe: 8 users open the same product's form, then all save a different price
   at once: exactly one must win and the other 7 be told of the conflict.
5. The invariants, with SQL on the same database and `manage.py audit-verify`: no negative
   stock; each shared product's stock is its stock before the run less what the run's posted
   transactions hold (a void puts its stock back); each posted or void total is the sum of its
   lines; nothing half-posted or half-voided; one audit entry for each post and each void; the
   chain verifies; no 5xx, "unexpected error", "database is locked" or dropped connection
   (outside the outage and its first RECOVERY_GRACE seconds after).
A benchmark, not a test: it prints what happened and exits 1 when an invariant fails.
"""

import argparse
import contextlib
import html
import os
import random
import re
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter, defaultdict
from decimal import Decimal
from html.parser import HTMLParser
from http.client import HTTPException
from http.cookies import SimpleCookie
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PASSWORD = "load-" + secrets.token_urlsafe(16)
RUN = secrets.token_hex(3)  # names this run's users and products, so runs on one database do not collide
EDITORS = 8  # the lost-update probe's users
REQUEST_TIMEOUT = 60

# How often each operation is picked, out of the sum.
MIX = {"draft": 30, "post": 25, "void": 10, "price": 10, "list": 25}

# What a refusal the app meant says, in English (the users are created with the default language).
MEANT_REFUSALS = [
    ("database busy", re.compile(r"busy", re.I)),
    ("database away", re.compile(r"database cannot be reached")),
    ("out of stock", re.compile(r"in stock, \d+ asked")),
    ("conflict", re.compile(r"changed by someone else|changed from \d+ to \d+ after you opened it")),
    (
        "already posted/voided",
        re.compile(
            r"is already posted|only drafts can be posted|only posted transactions can be voided"
            r"|read-only|can no longer be changed"
        ),
    ),
]
SERVER_ERRORS = ("5xx", "503", "unexpected error", "database is locked", "connection error")
WRITES = ("draft", "post", "void", "price")
# Errors while the database is down, and this long after it came back, are the fault's; any
# later one counts against the app (the claim: recovery within 0.5 s).
RECOVERY_GRACE = 0.5


# ----------------------------------------------------------------------------- set-up


def manage(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        text=True,
        capture_output=True,
    )


def prepare(env: dict, products: int, stock: int, users: int) -> tuple[list[int], list[str]]:
    """The schema brought up to date, then this run's shared products and staff users, made
    through the app's own operations (so their audit entries join the chain)."""
    done = manage(env, "init-db")
    if done.returncode:
        sys.exit(f"init-db failed:\n{done.stderr}")
    os.environ.update(env)
    from adminapp import create_app
    from adminapp.domain import accounts, audit
    from adminapp.extensions import db
    from adminapp.models import Product

    app = create_app()
    with app.app_context():
        audit.set_actor(db.session, audit.Actor(username="cli"))
        shared = [
            Product(sku=f"LOAD-{RUN}-{n}", name=f"Load test product {n}", price=Decimal("10.00"), stock=stock)
            for n in range(1, products + 1)
        ]
        db.session.add_all(shared)
        names = [f"load-{RUN}-{n}" for n in range(1, users + 1)]
        for name in names:
            accounts.create_user(db.session, name, PASSWORD, "staff")
        db.session.commit()
        product_ids = [p.id for p in shared]
        db.engine.dispose()
    return product_ids, names


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def gunicorn(env: dict, workers: int, log_path: Path):
    """The app under gunicorn; its log (tracebacks included) goes to log_path."""
    port = free_port()
    with open(log_path, "w") as log:
        server = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "gunicorn"),
                "-c",
                "gunicorn.conf.py",
                "--bind",
                f"127.0.0.1:{port}",
                "adminapp:create_app()",
            ],
            cwd=ROOT,
            env={**env, "WEB_CONCURRENCY": str(workers)},
            stdout=log,
            stderr=log,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(base)
        yield base
    finally:
        server.terminate()
        server.wait(timeout=150)


def wait_until_up(base: str) -> None:
    for _ in range(150):
        with contextlib.suppress(OSError):
            urllib.request.urlopen(base + "/login", timeout=2).read()
            return
        time.sleep(0.2)
    sys.exit(f"The server at {base} did not answer.")


# ------------------------------------------------------------------------ HTTP client


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


OPENER = urllib.request.build_opener(NoRedirect)


class Page:
    def __init__(self, status: int, text: str, redirected_from: str | None = None):
        self.status, self.text, self.redirected_from = status, text, redirected_from
        self.location = ""  # where a redirect sent the browser

    def alerts(self) -> list[tuple[str, str]]:
        """The flashed messages: (bootstrap category, text)."""
        found = re.findall(r'<div class="alert alert-(\w+)[^"]*">(.*?)</div>', self.text, re.S)
        return [
            (category, " ".join(html.unescape(re.sub(r"<[^>]+>", " ", body)).replace("×", "").split()))
            for category, body in found
        ]


class Browser:
    """One signed-in user. Cookies are kept by hand: the production cookies are Secure, which
    urllib's jar would not send to a plain-HTTP localhost. Redirects are followed by hand too,
    so the page a POST lands on (and its flashed message) is the one read."""

    def __init__(self, base: str):
        self.base, self.cookies, self.csrf = base, SimpleCookie(), None

    def request(self, path: str, data: dict | list | None = None) -> Page:
        body = urllib.parse.urlencode(data, doseq=True).encode() if data is not None else None
        request = urllib.request.Request(self.base + path, data=body)
        if self.cookies:
            request.add_header("Cookie", "; ".join(f"{k}={m.value}" for k, m in self.cookies.items()))
        try:
            response = OPENER.open(request, timeout=REQUEST_TIMEOUT)
        except urllib.error.HTTPError as error:  # 3xx (not followed by the opener), 4xx, 5xx
            response = error
        with response:
            for header in response.headers.get_all("Set-Cookie") or []:
                self.cookies.load(header)
            text = response.read().decode(errors="replace")
            status, location = response.status, response.headers.get("Location")
        if status in (301, 302, 303) and location:
            target = urllib.parse.urlsplit(location)
            page = self.request(urllib.parse.urlunsplit(("", "", target.path, target.query, "")))
            page.redirected_from, page.location = path, location
            return page
        token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', text)
        if token:
            self.csrf = html.unescape(token.group(1))
        return Page(status, text)

    def sign_in(self, username: str) -> None:
        self.request("/login")
        page = self.request("/login", {"username": username, "password": PASSWORD, "csrf_token": self.csrf})
        if page.redirected_from is None:
            sys.exit(f"{username} could not sign in: {page.status} {page.alerts()}")
        self.request("/admin/transaction/")  # a CSRF token of the signed-in session


class FormFields(HTMLParser):
    """The fields of the form that has a field named `marker`, as a browser would submit them
    (without the submit buttons)."""

    def __init__(self):
        super().__init__()
        self.forms, self.current, self.textarea, self.select = [], None, None, None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self.current = []
        elif self.current is None or not a.get("name"):
            return
        elif tag == "input" and a.get("type") not in ("submit", "button", "checkbox", "radio"):
            self.current.append([a["name"], a.get("value") or ""])
        elif tag == "input" and "checked" in a:
            self.current.append([a["name"], a.get("value") or "y"])
        elif tag == "textarea":
            self.textarea = [a["name"], ""]
            self.current.append(self.textarea)
        elif tag == "select":
            self.select = a["name"]
        elif tag == "option" and self.select and "selected" in a:
            self.current.append([self.select, a.get("value", "")])

    def handle_data(self, data):
        if self.textarea is not None:
            self.textarea[1] += data

    def handle_endtag(self, tag):
        if tag == "textarea":
            if self.textarea is not None:
                self.textarea[1] = self.textarea[1].lstrip("\n")
            self.textarea = None
        elif tag == "select":
            self.select = None
        elif tag == "form" and self.current is not None:
            self.forms.append(self.current)
            self.current = None

    @classmethod
    def of(cls, page_text: str, marker: str) -> dict | None:
        parser = cls()
        parser.feed(page_text)
        for fields in parser.forms:
            if any(name == marker for name, _ in fields):
                return dict(fields)
        return None


# ------------------------------------------------------------------------ outcomes


def classify(page: Page | None, error: Exception | None, success: re.Pattern | None) -> tuple[str, str]:
    """(outcome, the message behind it) of one operation."""
    if error is not None:
        return "connection error", type(error).__name__
    if page.status == 503:  # the app's own answer: the database busy or away, try again
        said = re.search(r'class="lead">(.*?)</p>', page.text, re.S)
        return "503", html.unescape(said[1]).strip() if said else page.text[:200]
    if page.status >= 500:
        return ("database is locked" if "database is locked" in page.text else "5xx"), str(page.status)
    # "info": posting a posted transaction is news, not an error, and not a success either.
    problems = [text for category, text in page.alerts() if category in ("danger", "warning", "info")]
    for text in problems:
        lowered = text.lower()
        if "database is locked" in lowered:
            return "database is locked", text
        if "unexpected error" in lowered:
            return "unexpected error", text
        for outcome, pattern in MEANT_REFUSALS:
            if pattern.search(text):
                return outcome, text
    if problems:
        return "other refusal", problems[0]
    if page.status >= 400:
        return f"http {page.status}", ""
    if success is None or any(success.search(text) for _, text in page.alerts()):
        return "ok", ""
    return "no message", page.text[:200]


SAVED = re.compile(r"was (changed|added)\.")
POSTED = re.compile(r"Transaction #\d+ posted")
VOIDED = re.compile(r"voided; its stock was put back")


class Event(NamedTuple):
    operation: str
    outcome: str
    message: str
    started: float  # time.monotonic()
    ended: float


class Shared:
    """What the threads share: the drafts and posted transactions they made, and every
    operation's outcome."""

    def __init__(self, product_ids: list[int]):
        self.product_ids = product_ids
        self.lock = threading.Lock()
        self.drafts, self.posted = [], []
        self.events: list[Event] = []

    def tally(self, event: Event) -> None:
        with self.lock:
            self.events.append(event)

    def pick(self, pool: list) -> int | None:
        """A recent one, not taken out: two threads may pick the same, as two users might."""
        with self.lock:
            return random.choice(pool[-30:]) if pool else None

    def move(self, txn_id: int, source: list, target: list | None) -> None:
        with self.lock:
            if txn_id in source:
                source.remove(txn_id)
            if target is not None:
                target.append(txn_id)


def timed(shared: Shared, operation: str, success: re.Pattern | None, call) -> tuple[str, Page | None]:
    started = time.monotonic()
    page = error = None
    try:
        page = call()
    except (OSError, HTTPException) as exc:  # refused, reset, timed out, cut off
        error = exc
    outcome, message = classify(page, error, success)
    shared.tally(Event(operation, outcome, message, started, time.monotonic()))
    return outcome, page


# ------------------------------------------------------------------------ the mix


def save_draft(browser: Browser, shared: Shared) -> None:
    chosen = random.sample(shared.product_ids, random.randint(1, min(3, len(shared.product_ids))))
    form = {"csrf_token": browser.csrf, "note": "", "version": "", "_continue_editing": "Save and Continue Editing"}
    for i, product_id in enumerate(chosen):
        form.update(
            {
                f"lines-{i}-id": "",
                f"lines-{i}-product": str(product_id),
                f"lines-{i}-product_qty": str(random.randint(1, 5)),
            }
        )
    outcome, page = timed(shared, "draft", SAVED, lambda: browser.request("/admin/transaction/new/", form))
    if outcome == "ok":
        found = re.search(r"[?&]id=(\d+)", page.location)
        if found:
            shared.move(int(found.group(1)), [], shared.drafts)


def post_draft(browser: Browser, shared: Shared) -> None:
    txn_id = shared.pick(shared.drafts)
    if txn_id is None:
        return save_draft(browser, shared)
    form = {
        "csrf_token": browser.csrf,
        "action": "post",
        "rowid": str(txn_id),
        "url": f"/admin/transaction/details/?id={txn_id}",
    }
    outcome, _ = timed(shared, "post", POSTED, lambda: browser.request("/admin/transaction/action/", form))
    if outcome == "ok":
        shared.move(txn_id, shared.drafts, shared.posted)
    elif outcome == "already posted/voided":
        shared.move(txn_id, shared.drafts, None)


def void_posted(browser: Browser, shared: Shared) -> None:
    txn_id = shared.pick(shared.posted)
    if txn_id is None:
        return post_draft(browser, shared)
    form = {"csrf_token": browser.csrf, "reason": "Returned by the customer (load test)"}
    outcome, _ = timed(shared, "void", VOIDED, lambda: browser.request(f"/admin/transaction/void/?id={txn_id}", form))
    if outcome in ("ok", "already posted/voided"):
        shared.move(txn_id, shared.posted, None)


def edit_price(
    browser: Browser,
    shared: Shared,
    product_id: int | None = None,
    price: str | None = None,
    opened: threading.Barrier | None = None,
) -> str:
    """Open the product's form, then save it with a new price and everything else as shown
    (the stock too, which the form ignores: a sale meanwhile is not undone)."""
    product_id = product_id or random.choice(shared.product_ids)
    url = f"/admin/product/edit/?id={product_id}"
    outcome, page = timed(shared, "open form", None, lambda: browser.request(url))
    form = FormFields.of(page.text, "price") if outcome == "ok" else None
    if opened is not None:
        opened.wait()
    if form is None:
        return "form not shown"
    form["price"] = price or f"{random.randint(500, 2000) / 100:.2f}"
    outcome, _ = timed(shared, "price" if opened is None else "probe", SAVED, lambda: browser.request(url, form))
    return outcome


def read_list(browser: Browser, shared: Shared) -> None:
    some_txn = shared.pick(shared.posted) or shared.pick(shared.drafts)
    url = random.choice(
        [
            "/admin/",
            "/admin/product/",
            "/admin/transaction/",
            "/admin/transaction/?flt0_status_equals=posted",
            f"/admin/transaction/details/?id={some_txn}" if some_txn else "/admin/transaction/",
        ]
    )
    timed(shared, "list", None, lambda: browser.request(url))


OPERATIONS = {"draft": save_draft, "post": post_draft, "void": void_posted, "price": edit_price, "list": read_list}


def drive(browsers: list[Browser], shared: Shared, seconds: float) -> float:
    """Every browser loops over the mix until the time is up; returns the seconds it took."""
    deadline = time.monotonic() + seconds
    names, weights = list(MIX), list(MIX.values())

    def loop(browser):
        while time.monotonic() < deadline:
            OPERATIONS[random.choices(names, weights)[0]](browser, shared)

    started = time.monotonic()
    threads = [threading.Thread(target=loop, args=(b,)) for b in browsers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.monotonic() - started


def lost_update_probe(browsers: list[Browser], shared: Shared) -> tuple[Counter, str]:
    """EDITORS users open one product's form, then all save a different price at once."""
    opened = threading.Barrier(len(browsers))
    results = [None] * len(browsers)
    prices = [f"{31 + i}.{i:02d}" for i in range(len(browsers))]

    def edit(i):
        results[i] = edit_price(browsers[i], shared, shared.product_ids[0], prices[i], opened)

    threads = [threading.Thread(target=edit, args=(i,)) for i in range(len(browsers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [prices[i] for i, result in enumerate(results) if result == "ok"]
    return Counter(results), winners[0] if len(winners) == 1 else ""


# ------------------------------------------------------------------------ the fault


@contextlib.contextmanager
def database_unavailable(url: str):
    """PostgreSQL: this database refuses connections and every open one is cut, as when the
    server goes down, until the block ends (the server itself, and its other databases, stay
    up). SQLite: an outside writer (a backup, a sqlite3 shell) holds the write lock."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        import sqlite3

        outsider = sqlite3.connect(parsed.database, isolation_level=None)
        outsider.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            outsider.execute("ROLLBACK")
            outsider.close()
        return
    name = parsed.database.replace('"', '""')
    server = create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with server.connect() as db:
        db.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false'))
        try:
            db.execute(
                text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :name"),
                {"name": parsed.database},
            )
            yield
        finally:
            db.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
    server.dispose()


def inject_fault(url: str, at: float, outage: float, window: list) -> None:
    """After `at` seconds, make the database unavailable for `outage` seconds; `window` gets
    (start, end) in time.monotonic()."""
    time.sleep(at)
    with database_unavailable(url):
        start = time.monotonic()
        time.sleep(outage)
    window.extend([start, time.monotonic()])


def split_by_fault(events: list[Event], window: list) -> tuple[list[Event], list[Event]]:
    """The operations that overlapped the outage, or its first RECOVERY_GRACE seconds after,
    and the others."""
    if not window:
        return [], events
    start, end = window
    overlaps = [e.ended >= start and e.started <= end + RECOVERY_GRACE for e in events]
    return ([e for e, hit in zip(events, overlaps) if hit], [e for e, hit in zip(events, overlaps) if not hit])


def recovery(events: list[Event], window: list) -> str:
    """When, after the database came back, the last error was answered and the first write
    begun after its return succeeded (that one's own time included)."""
    end = window[1]
    failed = [e.ended for e in events if e.outcome in SERVER_ERRORS]
    done = [e.ended for e in events if e.started >= end and e.outcome == "ok" and e.operation in WRITES]
    last = f"the last error was answered {max(failed) - end:+.2f} s" if failed else "no error"
    first = (
        f"the first write begun after it succeeded at {min(done) - end:+.2f} s" if done else "no write then succeeded"
    )
    return f"After the database came back: {last}, {first}."


# ------------------------------------------------------------------------ invariants


def run_start(url: str) -> dict:
    """The highest transaction and audit ids before the run: what the run adds comes after."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.connect() as db:
        marks = {
            "txn": db.scalar(text("SELECT coalesce(max(id), 0) FROM transactions")),
            "audit": db.scalar(text("SELECT coalesce(max(id), 0) FROM audit_entries")),
        }
    engine.dispose()
    return marks


def initial_stock(url: str, product_ids: list[int]) -> dict[int, int]:
    from sqlalchemy import bindparam, create_engine, text

    engine = create_engine(url)
    with engine.connect() as db:
        rows = db.execute(
            text("SELECT id, stock FROM products WHERE id IN :ids").bindparams(bindparam("ids", expanding=True)),
            {"ids": product_ids},
        ).all()
    engine.dispose()
    return dict(rows)


def check_invariants(
    url: str, env: dict, product_ids: list[int], stock_before: dict[int, int], start: dict, probe: tuple[Counter, str]
) -> list[tuple[str, bool, str]]:
    """(invariant, held, detail) for each invariant, read with SQL after the load stopped."""
    from sqlalchemy import bindparam, create_engine, text

    engine = create_engine(url)
    results = []
    with engine.connect() as db:

        def rows(sql, **params):
            statement = text(sql)
            if "ids" in params:
                statement = statement.bindparams(bindparam("ids", expanding=True))
            return db.execute(statement, params).all()

        negative = rows("SELECT sku, stock FROM products WHERE stock < 0")
        results.append(("no negative stock", not negative, f"{len(negative)} products below 0"))

        stock_now = dict(rows("SELECT id, stock FROM products WHERE id IN :ids", ids=product_ids))
        taken = dict(
            rows(
                "SELECT l.product_id, sum(l.product_qty) FROM transaction_products l "
                "JOIN transactions t ON t.id = l.transaction_id "
                "WHERE t.id > :txn AND t.status = 'posted' AND l.product_id IN :ids GROUP BY l.product_id",
                txn=start["txn"],
                ids=product_ids,
            )
        )
        wrong = {
            pid: (stock_now[pid], stock_before[pid] - int(taken.get(pid) or 0))
            for pid in product_ids
            if stock_now[pid] != stock_before[pid] - int(taken.get(pid) or 0)
        }
        results.append(
            (
                "stock = before - posted (voids put back)",
                not wrong,
                f"{len(wrong)} wrong (now, expected): {wrong}"
                if wrong
                else f"{sum(stock_before.values()) - sum(stock_now.values())} units taken",
            )
        )

        txns = rows(
            "SELECT id, status, total, posted_at, posted_by, voided_at, voided_by, void_reason "
            "FROM transactions WHERE id > :txn",
            txn=start["txn"],
        )
        lines = defaultdict(list)
        for txn_id, qty, price in rows(
            "SELECT transaction_id, product_qty, unit_price FROM transaction_products WHERE transaction_id > :txn",
            txn=start["txn"],
        ):
            lines[txn_id].append((qty, price))
        done = [t for t in txns if t.status in ("posted", "void")]
        wrong_totals = [t.id for t in done if not total_matches(t.total, lines[t.id])]
        results.append(
            (
                "totals = sum of their lines",
                not wrong_totals,
                f"{len(wrong_totals)} wrong: {wrong_totals[:10]}" if wrong_totals else f"{len(done)} posted or void",
            )
        )

        half = [
            t.id
            for t in txns
            if (t.status in ("posted", "void") and (t.posted_at is None or t.posted_by is None))
            or (t.status == "void" and (t.voided_at is None or t.voided_by is None or not t.void_reason))
            or (t.status == "draft" and (t.posted_at is not None or t.voided_at is not None))
        ]
        results.append(
            (
                "no half-posted or half-voided transaction",
                not half,
                f"{len(half)}: {half[:10]}" if half else f"{len(txns)} transactions",
            )
        )

        entries = Counter()
        for object_id, action, count in rows(
            "SELECT object_id, action, count(*) FROM audit_entries WHERE id > :audit "
            "AND object_type = 'transaction' AND action IN ('post', 'void') GROUP BY object_id, action",
            audit=start["audit"],
        ):
            entries[(int(object_id), action)] = count
        expected = Counter()
        for t in done:
            expected[(t.id, "post")] = 1
            if t.status == "void":
                expected[(t.id, "void")] = 1
        mismatched = sorted({key for key in entries.keys() | expected.keys() if entries[key] != expected[key]})
        results.append(
            (
                "one audit entry per post and per void",
                not mismatched,
                f"{len(mismatched)} off: {mismatched[:10]}" if mismatched else f"{sum(expected.values())} entries",
            )
        )

        outcomes, winner = probe
        price = db.scalar(text("SELECT price FROM products WHERE id = :id"), {"id": product_ids[0]})
        won = (
            outcomes["ok"] == 1
            and outcomes["conflict"] == EDITORS - 1
            and bool(winner)
            and Decimal(winner) == Decimal(str(price))
        )
        results.append(
            (
                f"lost update: 1 of {EDITORS} editors wins, {EDITORS - 1} told of the conflict",
                won,
                ", ".join(f"{n} {o}" for o, n in outcomes.most_common()) + f"; price now {price}",
            )
        )
    engine.dispose()

    verified = manage(env, "audit-verify")
    said = [line for line in (verified.stdout + verified.stderr).splitlines() if line and "Audit entries" not in line]
    results.append(("audit-verify", verified.returncode == 0, "; ".join(said) or f"exit {verified.returncode}"))
    return results


def total_matches(total, lines: list[tuple]) -> bool:
    """A posted total is the sum of its lines at the prices fixed when posting (every line has one).
    Compared in cents: SQLite hands NUMERIC back as a float."""
    if any(price is None for _, price in lines):
        return False
    return cents(total) == sum((cents(price) * qty for qty, price in lines), Decimal("0.00"))


def cents(value) -> Decimal:
    return Decimal(str(value)).quantize(Decimal("0.01"))


# ------------------------------------------------------------------------ report


def print_outcomes(events: list[Event]) -> Counter:
    """One row per operation: how many, how long, and each outcome; then what each kind of
    outcome said. Returns the outcomes' totals."""
    totals = Counter(event.outcome for event in events)
    columns = [o for o, _ in totals.most_common()]
    print(f"{'operation':<10} {'count':>7} {'median ms':>10} {'p95 ms':>8}  " + "  ".join(columns))
    for operation in [*MIX, "open form", "probe"]:
        mine = [event for event in events if event.operation == operation]
        if not mine:
            continue
        counts = Counter(event.outcome for event in mine)
        times = sorted(event.ended - event.started for event in mine)
        p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
        cells = "  ".join(f"{counts[o]:>{len(o)}}" for o in columns)
        print(f"{operation:<10} {len(mine):>7} {statistics.median(times) * 1000:>10.0f} {p95 * 1000:>8.0f}  {cells}")
    said = {}
    for event in events:
        if event.outcome != "ok" and event.message:
            said.setdefault((event.operation, event.outcome), event.message)
    if said:
        print("What each outcome said (one example each):")
        for (operation, outcome), message in sorted(said.items()):
            print(f"  {operation} / {outcome}: {message[:160]}")
    return totals


def server_log_counts(log_path: Path | None) -> dict:
    if log_path is None or not log_path.exists():
        return {}
    log = log_path.read_text(errors="replace")
    return {
        phrase: log.count(phrase)
        for phrase in ("Traceback", "database is locked", "deadlock detected", "could not serialize", "WORKER TIMEOUT")
    }


def logged_errors(log_path: Path) -> Counter:
    """The last line of each traceback in the log (the exception and its message), counted."""
    errors, lines = Counter(), log_path.read_text(errors="replace").splitlines()
    for n, line in enumerate(lines):
        if line.startswith("Traceback"):
            rest = lines[n + 1 :]
            end = next((i for i, later in enumerate(rest) if not later.startswith((" ", "\t"))), None)
            if end is not None:
                errors[rest[end]] += 1
    return errors


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", help="default: SQLite in a temporary folder")
    parser.add_argument("--url", help="drive a server already running on --database-url instead of starting one")
    parser.add_argument("--threads", type=int, default=12)
    parser.add_argument("--seconds", type=float, default=180)
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers (4 threads each)")
    parser.add_argument("--products", type=int, default=5, help="shared products the requests contend for")
    parser.add_argument("--stock", type=int, default=200, help="each shared product's stock to start with")
    parser.add_argument(
        "--outage",
        type=float,
        default=0,
        metavar="SECONDS",
        help="halfway through, make the database unavailable this long (see database_unavailable)",
    )
    parser.add_argument("--log", help="keep the server's log in this file (default: thrown away with the run)")
    args = parser.parse_args()
    if args.url and not args.database_url:
        parser.error("--url needs the --database-url that server uses")

    with tempfile.TemporaryDirectory() as folder:
        url = args.database_url or f"sqlite:///{folder}/load.db"
        url = re.sub(r"^postgres(ql)?://", "postgresql+psycopg://", url)  # as the app reads it
        env = {**os.environ, "DATABASE_URL": url}
        if not args.url:
            env.update(
                {
                    "ADMINAPP_ENV": "production",
                    "SECRET_KEY": secrets.token_hex(32),
                    "AUDIT_KEY": "bench_reliability's audit key, the same in every run",
                    "ADMINAPP_INSTANCE_PATH": str(Path(folder) / "instance"),
                }
            )
        env.pop("TEST_DATABASE_URL", None)
        product_ids, usernames = prepare(env, args.products, args.stock, max(args.threads, EDITORS))
        start, stock_before = run_start(url), initial_stock(url, product_ids)
        shared = Shared(product_ids)
        log_path = None if args.url else Path(args.log or Path(folder) / "gunicorn.log")
        with contextlib.ExitStack() as stack:
            base = args.url.rstrip("/") if args.url else stack.enter_context(gunicorn(env, args.workers, log_path))
            browsers = [Browser(base) for _ in usernames]
            for browser, name in zip(browsers, usernames):
                browser.sign_in(name)
            where = "an already running server" if args.url else f"gunicorn, {args.workers} workers x 4 threads"
            print(
                f"{make_safe(url)}, {where}: {args.threads} threads for {args.seconds:.0f} s "
                f"on {args.products} products of stock {args.stock}",
                flush=True,
            )
            window = []
            if args.outage:
                fault = threading.Thread(
                    target=inject_fault, args=(url, max(0, (args.seconds - args.outage) / 2), args.outage, window)
                )
                fault.start()
            elapsed = drive(browsers[: args.threads], shared, args.seconds)
            load = len(shared.events)
            if args.outage:
                fault.join()
            probe = lost_update_probe(browsers[:EDITORS], shared)

        during, outside = split_by_fault(shared.events, window)
        print(
            f"\n{load:,} operations in {elapsed:.0f} s ({load / elapsed:.1f}/s), then the probe's "
            f"{len(shared.events) - load}; a POST and the page it redirects to count as one"
        )
        totals = print_outcomes(outside)
        if window:
            print(f"\nDuring the {args.outage:g} s outage and {RECOVERY_GRACE} s after it:")
            print_outcomes(during)
            print(recovery(shared.events, window))
        logged = server_log_counts(log_path)
        if logged:
            print("\nServer log (the whole run): " + ", ".join(f"{phrase}: {n}" for phrase, n in logged.items()))
            for error, count in logged_errors(log_path).most_common():
                print(f"  {count} x {error[:200]}")

        results = check_invariants(url, env, product_ids, stock_before, start, probe)
        errors = {kind: totals[kind] for kind in SERVER_ERRORS}
        if not window:  # the log does not say when: with an outage, its lines may be the outage's
            errors["database is locked"] += logged.get("database is locked", 0)
        results.append(
            (
                "no 5xx, unexpected error, database is locked or connection error"
                + (" outside the outage" if window else ""),
                not any(errors.values()),
                ", ".join(f"{kind}: {n}" for kind, n in errors.items()),
            )
        )
        print("\nInvariants:")
        for name, held, detail in results:
            print(f"  {'PASS' if held else 'FAIL'}  {name}  ({detail})")
        return 0 if all(held for _, held, _ in results) else 1


def make_safe(url: str) -> str:
    """The database URL without its password, to print."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


if __name__ == "__main__":
    sys.exit(main())
