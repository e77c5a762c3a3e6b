"""The production server: gunicorn run with the shipped gunicorn.conf.py.

The tests start gunicorn as a real process (two workers) on a free port, against an
SQLite file the test seeds, and talk plain HTTP to it: they sign in through the form with
its CSRF token, as a browser does.
"""

import csv
import http.client
import importlib.util
import io
import os
import re
import signal
import socket
import subprocess
import sys
import time
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlencode

import pytest
from sqlalchemy import insert, select

from adminapp.extensions import db as _db
from adminapp.models import Transaction, User

from tests.support import FAST_HASH, PASSWORD, fresh_schema, make_app

ROOT = Path(__file__).resolve().parent.parent
EXPORT = "/admin/transaction/export/csv/"  # streamed from the database as it is sent
WORKER_TIMEOUT = 2  # seconds: short, so that outliving it takes little time


@pytest.fixture
def sqlite_app(tmp_path):
    with fresh_schema(make_app(f"sqlite:///{tmp_path / 'server.db'}", tmp_path)) as app:
        with app.app_context():
            _db.session.add(User(username="admin", role="admin", password_hash=FAST_HASH))
            _db.session.commit()
        yield app


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
    env = {
        **os.environ,
        "ADMINAPP_ENV": "development",
        "SECRET_KEY": "server-test-secret",
        "DATABASE_URL": sqlite_app.config["SQLALCHEMY_DATABASE_URI"],
        "ADMINAPP_INSTANCE_PATH": str(tmp_path / "server-instance"),
        "WEB_CONCURRENCY": "2",
    }
    servers = []

    def start(*options):
        log_path = tmp_path / f"gunicorn-{len(servers)}.log"
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "--bind", "127.0.0.1:0",
                 *options, "adminapp:create_app()"],
                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
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
        headers = {"Connection": "close",
                   "Cookie": "; ".join(f"{name}={morsel.value}" for name, morsel in self.cookies.items())}
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
