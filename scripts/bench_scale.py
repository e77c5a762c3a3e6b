"""Every page at a shop's size: seed it, serve it under the production settings, measure it.

    .venv/bin/python scripts/bench_scale.py --database-url postgresql://postgres@127.0.0.1:5432/scale
    .venv/bin/python scripts/bench_scale.py --products 100000 --transactions 100000   # SQLite

1. The database: without --database-url, a new SQLite file in a temporary folder. With it,
   a database for benchmarks only: the schema is brought up to date, the seed command tops
   it up to the asked size (one that already holds that much is used as it is; nothing is
   dropped or emptied), and an admin `bench` is added with a password made for the run.
2. The app under gunicorn with the repo's gunicorn.conf.py and 2 workers, in production mode.
3. A user `bench` (created or given a new password) signs in over HTTP, and every page is
   requested --requests times: median and p95 in ms, and the SQL statements the page runs
   (counted in this process through the Flask test client, the same app on the same database).
   On PostgreSQL, the statement that counts the one-click filters beside each list is run
   again under EXPLAIN (ANALYZE, BUFFERS): its time, buffers and the indexes it reads.
4. Every CSV export is downloaded whole: first byte, total time, rows, and the peak resident
   memory of the gunicorn workers (VmHWM) after it.
5. `manage.py audit-verify`, timed.
A benchmark, not a test: it prints figures and asserts nothing about time.
"""

import argparse
import contextlib
import html
import os
import re
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from datetime import UTC, datetime, timedelta
from http.cookies import SimpleCookie
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PASSWORD = "bench-" + secrets.token_urlsafe(16)
WORKERS = 2


def pages(seller: str, product_id: int, txn_id: int, draft_id: int) -> list[tuple[str, str]]:
    """(label, URL) of every list sort, filter and search a user can click, and the other pages.
    A page past the paging cap answers with the cap's last page and a message."""
    p, t, a = "/admin/product/", "/admin/transaction/", "/admin/audit/"
    month_ago = (datetime.now(UTC) - timedelta(days=30)).date()
    return [
        ("dashboard", "/admin/"),
        ("product list p1", p),
        ("product list page 5000 (past the cap)", p + "?page=4999"),
        ("product sort by name", p + "?sort=1"),
        ("product sort by price", p + "?sort=2"),
        ("product sort by price, desc", p + "?sort=2&desc=1"),
        ("product sort by stock", p + "?sort=3"),
        ("product sort by active", p + "?sort=4"),
        ("product search word", p + "?search=coffee"),
        ("product search two words", p + "?search=sari+coffee"),
        ("product search SKU fragment", p + "?search=12345"),
        ("product search rare", p + "?search=zzqx"),
        ("product filter low stock", p + "?flt0_stock_at_or_below=5"),
        ("product filter price range", p + "?flt0_price_at_least=100&flt1_price_at_most=200"),
        ("product filter inactive", p + "?flt0_active_equals=0"),
        *quick_filter_pages(seller),
        ("product edit form", f"/admin/product/edit/?id={product_id}"),
        ("product history", f"/admin/product/history/?id={product_id}"),
        ("transaction list p1", t),
        ("transaction list page 10000 (past the cap)", t + "?page=9999"),
        ("transaction sort by id", t + "?sort=0"),
        ("transaction sort by created, oldest", t + "?sort=1"),
        ("transaction sort by status", t + "?sort=3"),
        ("transaction sort by lines", t + "?sort=4&desc=1"),
        ("transaction sort by total", t + "?sort=5&desc=1"),
        ("transaction status=posted", t + "?flt0_status_equals=posted"),
        ("transaction status=draft", t + "?flt0_status_equals=draft"),
        ("transaction status=void", t + "?flt0_status_equals=void"),
        ("transaction created in the last month", t + f"?flt0_created_from={month_ago}"),
        ("transaction created by", t + "?flt0_created_by_is=" + urllib.parse.quote(seller)),
        ("transaction posted up to a year ago", t + f"?flt0_posted_to={month_ago - timedelta(days=335)}"),
        ("transaction Product contains word", t + "?flt0_product_contains=coffee"),
        ("transaction Product contains SKU", t + "?flt0_product_contains=DEMO-0012345"),
        ("transaction search by id", t + f"?search={txn_id}"),
        ("transaction search note", t + "?search=delivery"),
        ("transaction details", f"/admin/transaction/details/?id={txn_id}"),
        ("draft edit form", f"/admin/transaction/edit/?id={draft_id}"),
        ("transaction history", f"/admin/transaction/history/?id={txn_id}"),
        (
            "line editor autocomplete, common",
            "/admin/transaction/ajax/lookup/?name=transactionproduct-product&query=coffee",
        ),
        (
            "line editor autocomplete, rare",
            "/admin/transaction/ajax/lookup/?name=transactionproduct-product&query=zzqx",
        ),
        ("audit list p1", a),
        ("audit page 10000 (past the cap)", a + "?page=9999"),
        ("audit sort by time", a + "?sort=1&desc=1"),
        ("audit sort by user", a + "?sort=2"),
        ("audit sort by action", a + "?sort=3"),
        ("audit filtered by user", a + "?flt0_user_equals=" + urllib.parse.quote(seller)),
        ("audit action=void", a + "?flt0_action_equals=void"),
        ("audit object type=product", a + "?flt0_object_type_equals=product"),
        ("audit object id", a + f"?flt0_object_id_equals={txn_id}"),
        ("audit search word", a + "?search=coffee"),
        ("audit search user", a + "?search=" + urllib.parse.quote(seller)),
        ("user list", "/admin/user/"),
    ]


def quick_filter_pages(seller: str) -> list[tuple[str, str]]:
    """The lists with a one-click filter applied (the sidebar counts every choice on each)."""
    p, t = "/admin/product/", "/admin/transaction/"
    today = datetime.now(UTC).date()  # the app's default time zone is UTC
    week, month = today - timedelta(days=6), today.replace(day=1)
    by = urllib.parse.quote(seller)
    return [
        ("quick: product active=yes", p + "?flt0_active_equals=1"),
        ("quick: product active=no", p + "?flt0_active_equals=0"),
        ("quick: product low stock", p + "?flt0_stock_at_or_below=5&flt1_active_equals=1"),
        ("quick: product created today", p + f"?flt0_created_from={today}&flt1_created_to={today}"),
        ("quick: product created last 7 days", p + f"?flt0_created_from={week}&flt1_created_to={today}"),
        ("quick: product created this month", p + f"?flt0_created_from={month}&flt1_created_to={today}"),
        ("quick: product inactive + search", p + "?search=coffee&flt0_active_equals=0"),
        ("quick: transaction draft", t + "?flt0_status_equals=draft"),
        ("quick: transaction void", t + "?flt0_status_equals=void"),
        ("quick: transaction created today", t + f"?flt0_created_from={today}&flt1_created_to={today}"),
        ("quick: transaction created this month", t + f"?flt0_created_from={month}&flt1_created_to={today}"),
        ("quick: transaction by a seller, posted", t + f"?flt0_created_by_is={by}&flt1_status_equals=posted"),
        ("quick: transaction void, last 7 days", t + f"?flt0_status_equals=void&flt1_created_from={week}"),
    ]


EXPORTS = [
    ("products CSV", "/admin/product/export/csv/"),
    ("transactions CSV", "/admin/transaction/export/csv/"),
    ("lines CSV", "/admin/transaction/export-lines/"),
    ("audit CSV", "/admin/audit/export/csv/"),
]


# ----------------------------------------------------------------------------- set-up


def manage(env: dict, *args: str, capture: bool = True) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        text=True,
        check=True,
        stdout=subprocess.PIPE if capture else None,
        stderr=subprocess.PIPE if capture else None,
    )
    return done.stdout or ""


def prepare(env: dict, args) -> None:
    manage(env, "init-db")
    held = counts(env)
    wanted = {"products": args.products, "transactions": args.transactions}
    more = {name: max(0, wanted[name] - held[name]) for name in wanted}
    if any(more.values()):
        print(
            f"Seeding {more['products']:,} products and {more['transactions']:,} transactions "
            f"with {args.lines} lines each ...",
            flush=True,
        )
        started = time.perf_counter()
        manage(
            env,
            "seed",
            "--products",
            str(more["products"]),
            "--transactions",
            str(more["transactions"]),
            "--lines",
            str(args.lines),
            "--seed",
            str(args.seed),
            capture=False,
        )
        print(f"Seeded in {time.perf_counter() - started:.0f} s.", flush=True)
    else:
        print(
            f"Using the database as it is: {held['products']:,} products, {held['transactions']:,} transactions.",
            flush=True,
        )
    try:
        manage(env, "create-user", "bench", "--role", "admin", "--password", PASSWORD)
    except subprocess.CalledProcessError:  # made by an earlier run
        manage(env, "set-password", "bench", "--password", PASSWORD)


def counts(env: dict) -> dict:
    from sqlalchemy import create_engine, text

    engine = create_engine(env["DATABASE_URL"])
    with engine.connect() as connection:
        found = {name: connection.scalar(text(f"SELECT count(*) FROM {name}")) for name in ("products", "transactions")}
    engine.dispose()
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def gunicorn(env: dict):
    port = free_port()
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
        env={**env, "WEB_CONCURRENCY": str(WORKERS)},
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    for _ in range(100):
        with contextlib.suppress(OSError):
            urllib.request.urlopen(base + "/login", timeout=2).read()
            break
        time.sleep(0.2)
    try:
        yield base, server.pid
    finally:
        server.terminate()
        server.wait(timeout=150)


def worker_peaks_mib(master_pid: int) -> list[float]:
    children = Path(f"/proc/{master_pid}/task/{master_pid}/children").read_text().split()
    peaks = []
    for pid in children:
        status = Path(f"/proc/{pid}/status").read_text()
        peaks.append(int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) / 1024)
    return peaks


# ------------------------------------------------------------------------ HTTP client


class Browser:
    """Cookies kept by hand: the production cookies are Secure, which urllib's jar would
    keep from a plain-HTTP localhost."""

    def __init__(self, base: str):
        self.base, self.cookies = base, SimpleCookie()

    def open(self, path: str, data: dict | None = None):
        body = urllib.parse.urlencode(data).encode() if data is not None else None
        request = urllib.request.Request(self.base + path, data=body)
        if self.cookies:
            request.add_header("Cookie", "; ".join(f"{k}={m.value}" for k, m in self.cookies.items()))
        response = urllib.request.build_opener(NoRedirect).open(request, timeout=600)
        for header in response.headers.get_all("Set-Cookie") or []:
            self.cookies.load(header)
        return response

    def sign_in(self, username: str) -> None:
        token = csrf_token(self.open("/login").read().decode())
        response = self.open("/login", {"username": username, "password": PASSWORD, "csrf_token": token})
        assert response.status == 302, "sign-in failed"


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None

    def http_error_302(self, req, fp, code, msg, headers):
        return fp


def csrf_token(page: str) -> str:
    return html.unescape(re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1))


# ------------------------------------------------------------------------ measuring


def statements_per_page(env: dict, urls: list[str]) -> tuple[dict[str, int], dict[str, tuple]]:
    """What each page runs, counted in this process through the test client; and the one
    statement that counts the one-click filters' choices on each list page (SQL, parameters)."""
    os.environ.update(env)
    from sqlalchemy import event

    from adminapp import create_app
    from adminapp.extensions import db

    app = create_app()
    client = app.test_client()
    token = csrf_token(client.get("/login").get_data(as_text=True))
    assert (
        client.post("/login", data={"username": "bench", "password": PASSWORD, "csrf_token": token}).status_code == 302
    )
    seen = []
    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", lambda conn, cursor, sql, params, *rest: seen.append((sql, params)))
    result, sidebar_counts = {}, {}
    for url in urls:
        seen.clear()
        assert client.get(url).status_code == 200, url
        result[url] = len(seen)
        counting = [(sql, params) for sql, params in seen if sql.count("count(*)") > 2]  # a subquery per choice
        if counting:
            sidebar_counts[url] = counting[-1]
    return result, sidebar_counts


def explain_sidebar_counts(env: dict, listed: list[tuple[str, str]], sidebar_counts: dict[str, tuple]) -> None:
    """EXPLAIN (ANALYZE, BUFFERS) of each list page's sidebar count statement (PostgreSQL):
    its time, the buffers it touched, and the indexes its plan reads (a Seq Scan is named)."""
    from sqlalchemy import create_engine

    engine = create_engine(env["DATABASE_URL"])
    if engine.dialect.name != "postgresql":
        print("\n(EXPLAIN of the one-click filters' counts: PostgreSQL only)")
        return
    print(f"\n{'one-click filter counts, EXPLAIN ANALYZE':<44} {'ms':>8} {'buffers':>8}  plan reads")
    with engine.connect() as connection:
        for label, url in listed:
            if url not in sidebar_counts:
                continue
            sql, params = sidebar_counts[url]
            plan = connection.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + sql, params).scalar()[0]
            nodes = list(_plan_nodes(plan["Plan"]))
            buffers = sum(n.get("Shared Hit Blocks", 0) + n.get("Shared Read Blocks", 0) for n in nodes[:1])
            reads = sorted(
                {n["Index Name"] for n in nodes if "Index Name" in n}
                | {f"Seq Scan on {n['Relation Name']}" for n in nodes if n["Node Type"] == "Seq Scan"}
            )
            print(f"{label:<44} {plan['Execution Time']:>8.1f} {buffers:>8}  {', '.join(reads)}", flush=True)
    engine.dispose()


def _plan_nodes(node: dict):
    yield node
    for child in node.get("Plans", ()):
        yield from _plan_nodes(child)


def sample_ids(env: dict) -> tuple[str, int, int, int]:
    """A seller's name, a product, a transaction and a draft to open: from the middle of the data."""
    from sqlalchemy import create_engine, text

    engine = create_engine(env["DATABASE_URL"])
    with engine.connect() as connection:
        seller = connection.scalar(
            text("SELECT username FROM users WHERE id = (SELECT created_by FROM transactions ORDER BY id DESC LIMIT 1)")
        )
        product = connection.scalar(text("SELECT max(id) / 2 FROM products"))
        txn = connection.scalar(
            text(
                "SELECT id FROM transactions WHERE line_count > 0 AND id >= "
                "(SELECT max(id) / 2 FROM transactions) ORDER BY id LIMIT 1"
            )
        )
        draft = connection.scalar(
            text(
                "SELECT id FROM transactions WHERE status = 'draft' AND id >= "
                "(SELECT max(id) / 2 FROM transactions) ORDER BY id LIMIT 1"
            )
        )
    engine.dispose()
    return seller, product, txn, draft


def time_page(browser: Browser, url: str, requests: int) -> tuple[float, float]:
    for _ in range(2):  # warm: the first request of a worker loads templates and catalogs
        browser.open(url).read()
    times = []
    for _ in range(requests):
        started = time.perf_counter()
        response = browser.open(url)
        response.read()
        times.append((time.perf_counter() - started) * 1000)
        assert response.status == 200, (url, response.status)
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]


def time_export(browser: Browser, url: str) -> tuple[float, float, int]:
    started = time.perf_counter()
    response = browser.open(url)
    assert response.status == 200, (url, response.status)
    first = response.read(1)
    first_byte = time.perf_counter() - started
    rows = first.count(b"\n")
    while chunk := response.read(1 << 16):
        rows += chunk.count(b"\n")
    return first_byte, time.perf_counter() - started, rows - 1  # less the header


def production_env(database_url: str | None, folder: str) -> dict:
    """The environment of a benchmark's server and commands: production mode on ``database_url``
    (default: SQLite in ``folder``). One audit key for every run: a database seeded by an earlier
    run is topped up and verified again."""
    url = database_url or f"sqlite:///{folder}/bench.db"
    url = re.sub(r"^postgres(ql)?://", "postgresql+psycopg://", url)  # as the app reads it
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "ADMINAPP_ENV": "production",
        "SECRET_KEY": secrets.token_hex(32),
        "AUDIT_KEY": "bench_scale's audit key, the same in every run",
        "ADMINAPP_INSTANCE_PATH": str(Path(folder) / "instance"),
    }
    env.pop("TEST_DATABASE_URL", None)
    return env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", help="default: SQLite in a temporary folder")
    parser.add_argument("--products", type=int, default=1_000_000)
    parser.add_argument("--transactions", type=int, default=1_000_000)
    parser.add_argument("--lines", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--requests", type=int, default=20, help="timed requests per page")
    parser.add_argument("--skip-pages", action="store_true")
    parser.add_argument("--skip-exports", action="store_true")
    parser.add_argument("--skip-verify", action="store_true")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        env = production_env(args.database_url, folder)
        prepare(env, args)
        listed = [] if args.skip_pages else pages(*sample_ids(env))
        statements, sidebar_counts = statements_per_page(env, [page_url for _, page_url in listed])
        explain_sidebar_counts(env, listed, sidebar_counts)

        with gunicorn(env) as (base, master):
            browser = Browser(base)
            browser.sign_in("bench")
            print(f"\n{'page':<44} {'median ms':>10} {'p95 ms':>8} {'statements':>11}")
            for label, page_url in listed:
                median, p95 = time_page(browser, page_url, args.requests)
                print(f"{label:<44} {median:>10.1f} {p95:>8.1f} {statements[page_url]:>11}", flush=True)
            if not args.skip_exports:
                print(f"\n{'export':<20} {'first byte s':>13} {'total s':>8} {'rows':>10} {'worker peak MiB':>16}")
                for label, export_url in EXPORTS:
                    first_byte, total, rows = time_export(browser, export_url)
                    peak = max(worker_peaks_mib(master))
                    print(f"{label:<20} {first_byte:>13.2f} {total:>8.1f} {rows:>10,} {peak:>16.0f}", flush=True)

        if not args.skip_verify:
            started = time.perf_counter()
            print("\n" + manage(env, "audit-verify").strip())
            print(f"audit-verify: {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
