"""The production server: SQLite's settings for several workers, and gunicorn run with the
shipped gunicorn.conf.py.

The server tests start gunicorn as a real process (two workers) on a free port, against an
SQLite file the test seeds, and talk plain HTTP to it: they sign in through the form with
its CSRF token, as a browser does.
"""

import csv
import http.client
import importlib.util
import io
import re
import runpy
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlencode

import pytest
from sqlalchemy import func, insert, select

from adminapp.extensions import db as _db
from adminapp.models import AuditEntry, Product, Transaction, User
from adminapp.sqlite_connections import SQLITE_BUSY_TIMEOUT_MS
from tests.support import (
    FAST_HASH,
    PASSWORD,
    clean_environ,
    fresh_schema,
    make_app,
    product_form,
    signed_in,
    statements,
)

ROOT = Path(__file__).resolve().parent.parent
EXPORT = "/admin/transaction/export/csv/"  # streamed from the database as it is sent
WORKER_TIMEOUT = 2  # seconds: short, so that outliving it takes little time


@pytest.fixture
def sqlite_app(tmp_path):
    with fresh_schema(make_app(f"sqlite:///{tmp_path / 'server.db'}", tmp_path)) as app:
        with app.app_context():
            for username, role in [("admin", "admin"), ("auditor", "auditor")]:
                _db.session.add(User(username=username, role=role, password_hash=FAST_HASH))
            _db.session.commit()
        yield app


# --- SQLite settings ---------------------------------------------------------------------------


def test_every_sqlite_connection_uses_wal_and_waits_for_a_writer(sqlite_app):
    with sqlite_app.app_context(), _db.engine.connect() as first, _db.engine.connect() as second:
        for connection in (first, second):
            settings = {
                name: connection.exec_driver_sql(f"PRAGMA {name}").scalar()
                for name in ("journal_mode", "busy_timeout", "foreign_keys")
            }
            # (synchronous: test_config.py's test_sqlite_syncs_at_checkpoints_unless_told_otherwise)
            assert settings == {"journal_mode": "wal", "busy_timeout": SQLITE_BUSY_TIMEOUT_MS, "foreign_keys": 1}


def test_only_requests_that_change_data_take_the_write_lock_up_front(sqlite_app):
    client = signed_in(sqlite_app, "admin")
    with statements(sqlite_app) as seen:
        assert client.get("/admin/product/").status_code == 200
    assert [s for s in seen if s.startswith("begin")] == ["begin"]

    with statements(sqlite_app) as seen:
        assert client.post("/admin/product/new/", data=product_form()).status_code == 302
    assert seen[0] == "begin immediate"

    with statements(sqlite_app) as seen, sqlite_app.app_context():  # a command, a script
        _db.session.scalar(select(func.count(Product.id)))
    assert seen[0] == "begin"


# --- gunicorn ----------------------------------------------------------------------------------


class Server:
    def __init__(self, process, log_path):
        self.process, self.log_path = process, log_path
        self.port = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_until_listening(self) -> None:
        deadline = time.monotonic() + 60
        while self.port is None:
            if found := re.search(r"Listening at: http://127\.0\.0\.1:(\d+)", self.log()):
                self.port = int(found[1])
            elif self.process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"gunicorn did not start:\n{self.log()}")
            else:
                time.sleep(0.1)


@pytest.fixture
def serve(sqlite_app, tmp_path):
    """`serve(*options)`: gunicorn with gunicorn.conf.py and these options on top, two workers,
    serving the app on `sqlite_app`'s database. Stopped at the end of the test."""
    if importlib.util.find_spec("gunicorn") is None:
        pytest.skip("gunicorn is not installed (it is in requirements.txt): the server tests need it")
    env = clean_environ(
        SECRET_KEY="server-test-secret",
        DATABASE_URL=sqlite_app.config["SQLALCHEMY_DATABASE_URI"],
        ADMINAPP_INSTANCE_PATH=str(tmp_path / "server-instance"),
        WEB_CONCURRENCY="2",
    )
    servers = []

    def start(*options):
        log_path = tmp_path / f"gunicorn-{len(servers)}.log"
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "gunicorn",
                    "-c",
                    "gunicorn.conf.py",
                    "--bind",
                    "127.0.0.1:0",
                    *options,
                    "adminapp:create_app()",
                ],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        servers.append(server := Server(process, log_path))
        server.wait_until_listening()
        return server

    yield start
    for server in servers:
        server.process.send_signal(signal.SIGINT)  # quick shutdown: nothing is left to finish
        try:
            server.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()


class Browser:
    """Plain HTTP with a cookie jar: enough to sign in through the form and use the admin."""

    def __init__(self, server):
        self.server, self.cookies = server, SimpleCookie()

    def send(self, method, path, form=None, receive_buffer=None) -> http.client.HTTPResponse:
        """The response, with its body still to read: `receive_buffer` bytes make a slow reader
        hold up the server as soon as they are full."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if receive_buffer:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        sock.settimeout(60)
        sock.connect(("127.0.0.1", self.server.port))
        connection = http.client.HTTPConnection("127.0.0.1", self.server.port)
        connection.sock = sock
        # One request a connection: the socket closes once the response has been read or closed.
        headers = {
            "Connection": "close",
            "Cookie": "; ".join(f"{name}={morsel.value}" for name, morsel in self.cookies.items()),
        }
        if form is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        connection.request(method, path, urlencode(form) if form is not None else None, headers)
        response = connection.getresponse()
        for cookie in response.headers.get_all("Set-Cookie") or []:
            self.cookies.load(cookie)
        return response

    def get(self, path) -> tuple[int, str]:
        with self.send("GET", path) as response:
            return response.status, response.read().decode()

    def submit(self, form_path, fields) -> int:
        """POST the form on `form_path` with these fields and the page's CSRF token."""
        status, page = self.get(form_path)
        assert status == 200, page
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)[1]
        with self.send("POST", form_path, {**fields, "csrf_token": token}) as response:
            response.read()
            return response.status


def sign_in(server, username) -> Browser:
    browser = Browser(server)
    assert browser.submit("/login", {"username": username, "password": PASSWORD}) == 302, server.log()
    return browser


def seed_transactions(app, count) -> list[int]:
    """`count` drafts with long notes: megabytes of CSV, far more than the sockets buffer."""
    with app.app_context():
        _db.session.execute(insert(Transaction), [{"note": f"draft {n} " + "x" * 400} for n in range(count)])
        _db.session.commit()
        return sorted(_db.session.scalars(select(Transaction.id)))


def exported_ids(body: bytes) -> list[int]:
    header, *rows = csv.reader(io.StringIO(body.decode()))
    assert header[0] == "id"
    return sorted(int(row[0]) for row in rows)


def test_a_slow_download_outlives_the_worker_timeout(sqlite_app, serve):
    ids = seed_transactions(sqlite_app, 20_000)
    server = serve("--timeout", str(WORKER_TIMEOUT))
    with sign_in(server, "admin").send("GET", EXPORT, receive_buffer=4096) as response:
        assert response.status == 200
        try:
            body = response.read(4096)
            # A client that stops reading: the server's send blocks on the full socket, and
            # the worker stays in this request for several of its timeouts.
            time.sleep(3 * WORKER_TIMEOUT)
            body += response.read()
        except (http.client.IncompleteRead, ConnectionError) as cut:
            pytest.fail(f"the download was cut off ({cut!r}):\n{server.log()}")
    assert exported_ids(body) == ids
    assert "WORKER TIMEOUT" not in server.log()


def test_writes_go_through_while_an_export_is_being_read(sqlite_app, serve):
    seed_transactions(sqlite_app, 20_000)
    server = serve()
    with sign_in(server, "auditor").send("GET", EXPORT, receive_buffer=4096) as export:
        assert export.status == 200
        body = export.read(4096)  # the export's query is open, its client not reading for now
        writer = sign_in(server, "admin")
        assert writer.submit("/admin/product/new/", product_form(sku="DURING-EXPORT")) == 302, server.log()
        body += export.read()
    assert len(exported_ids(body)) == 20_000
    with sqlite_app.app_context():
        assert _db.session.scalar(select(Product.id).where(Product.sku == "DURING-EXPORT")) is not None
    assert "database is locked" not in server.log()


def test_two_workers_serve_readers_and_writers_at_once(sqlite_app, serve):
    writers, creates_each, sign_ins, readers = 3, 15, 10, 3
    with sqlite_app.app_context():
        _db.session.add_all(User(username=f"writer-{w}", role="staff", password_hash=FAST_HASH) for w in range(writers))
        _db.session.commit()
    server = serve()
    writing_done = threading.Event()

    def write(w):
        browser = sign_in(server, f"writer-{w}")
        return [
            browser.submit("/admin/product/new/", product_form(sku=f"W{w}-{n:03d}", name=f"Written {w} {n}"))
            for n in range(creates_each)
        ]

    def sign_in_again():
        return [Browser(server).submit("/login", {"username": "admin", "password": PASSWORD}) for _ in range(sign_ins)]

    def read():
        browser, statuses = sign_in(server, "auditor"), []
        while not writing_done.is_set() or not statuses:
            for path in ("/admin/product/", "/admin/transaction/", "/admin/"):
                statuses.append(browser.get(path)[0])
        return statuses

    with ThreadPoolExecutor(writers + 1 + readers) as pool:
        reading = [pool.submit(read) for _ in range(readers)]
        writing = [pool.submit(write, w) for w in range(writers)] + [pool.submit(sign_in_again)]
        try:
            write_statuses = [status for job in writing for status in job.result()]
        finally:
            writing_done.set()
        read_statuses = [status for job in reading for status in job.result()]

    log = server.log()
    assert "database is locked" not in log and "Traceback" not in log, log
    assert set(read_statuses) == {200}
    assert write_statuses == [302] * (writers * creates_each + sign_ins)  # each one saved
    with sqlite_app.app_context():
        skus = set(_db.session.scalars(select(Product.sku).where(Product.sku.like("W%"))))
        admin_sign_ins = _db.session.scalar(
            select(func.count(AuditEntry.id)).where(AuditEntry.action == "login", AuditEntry.username == "admin")
        )
    assert skus == {f"W{w}-{n:03d}" for w in range(writers) for n in range(creates_each)}
    assert admin_sign_ins == sign_ins


# --- slow clients ------------------------------------------------------------------------------


def shipped_settings() -> dict:
    return runpy.run_path(str(ROOT / "gunicorn.conf.py"))


def test_the_shipped_settings_use_threads_and_replace_workers_at_different_times():
    settings = shipped_settings()
    assert settings["worker_class"] == "gthread"
    # More threads a worker than the 20 slow clients the README's figures are measured with.
    assert settings["threads"] > 20
    # A worker whose threads are all busy leaves new connections to the others.
    assert settings["worker_connections"] == settings["threads"]
    assert 0 < settings["max_requests_jitter"] < settings["max_requests"]


def hold_request_body(server, browser, path) -> socket.socket:
    """A signed-in POST that announces a form of 1,000 bytes and sends the first few: the
    thread that reads it waits for the rest until the socket is closed."""
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=60)
    cookies = "; ".join(f"{name}={morsel.value}" for name, morsel in browser.cookies.items())
    sock.sendall(
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: {cookies}\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\n"
        "csrf_token=".encode()
    )
    return sock


def test_pages_and_saves_go_through_while_nearly_every_thread_waits_for_a_body(sqlite_app, serve):
    server = serve()  # two workers
    admin = sign_in(server, "admin")
    # Far more than one worker has threads, a few less than both have: the page and the save
    # below get a free thread only if the held requests are spread over the two workers.
    held = [
        hold_request_body(server, admin, "/admin/product/new/") for _ in range(2 * shipped_settings()["threads"] - 4)
    ]
    try:
        time.sleep(1)  # the server has read their headers: each holds a thread, waiting for its body
        status, page = admin.get("/admin/product/")
        assert status == 200, page
        # The waiting requests hold no database connection, nor SQLite's write lock: CSRF
        # protection reads the whole form before anything asks the database.
        assert admin.submit("/admin/product/new/", product_form(sku="WHILE-HELD")) == 302, server.log()
    finally:
        for sock in held:
            sock.close()
    with sqlite_app.app_context():
        assert _db.session.scalar(select(Product.id).where(Product.sku == "WHILE-HELD")) is not None
