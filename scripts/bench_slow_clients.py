"""Clients that send their requests slowly, against the shipped server settings: how long
does an ordinary page take meanwhile?

    .venv/bin/python scripts/bench_slow_clients.py
    .venv/bin/python scripts/bench_slow_clients.py --clients 40 --duration 60
    .venv/bin/python scripts/bench_slow_clients.py --gunicorn-options "--threads 4"   # an older setting

1. The database: without --database-url, a new SQLite file in a temporary folder, seeded
   with 1,000 products and transactions. With it, a database for benchmarks only, brought
   up to date and topped up to that size as scripts/bench_scale.py does, and an admin
   `bench` with a password made for the run.
2. gunicorn with the repo's gunicorn.conf.py as it is (its workers and threads; WEB_CONCURRENCY
   and --gunicorn-options change them), the app in production mode.
3. Two phases of --duration seconds: with no slow client, then with --clients of them. Every
   half second the sign-in page and (signed in as `bench`) the product list are requested,
   each on a new connection in a thread of its own, so one slow answer does not put off the
   next request. A slow client POSTs to /login with a Content-Length and sends the body one
   byte a second, never finishing within the phase.
4. For each phase and page: requests, how many failed (no answer within --request-timeout,
   a status other than 200, a connection refused or reset; each kind counted after the
   figures), and the median, p95 and maximum time to the whole answers.
A benchmark, not a test: it prints figures and asserts nothing about time.
"""

import argparse
import contextlib
import http.client
import os
import runpy
import shlex
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_scale import Browser, free_port, prepare, production_env  # noqa: E402  (the same set-up as the page benchmark)

PROBE_INTERVAL = 0.5  # seconds between two requests for each ordinary page
PAGES = [("sign-in page", "/login", False), ("product list, signed in", "/admin/product/", True)]


# ----------------------------------------------------------------------------- the server


@contextlib.contextmanager
def gunicorn(env: dict, options: list[str]):
    port = free_port()
    server = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "gunicorn"),
            "-c",
            "gunicorn.conf.py",
            "--bind",
            f"127.0.0.1:{port}",
            *options,
            "adminapp:create_app()",
        ],
        cwd=ROOT,
        env=env,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(150):
        with contextlib.suppress(OSError):
            urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=2).read()
            break
        time.sleep(0.2)
    else:
        server.kill()
        sys.exit("gunicorn did not start")
    try:
        yield port
    finally:
        server.terminate()
        server.wait(timeout=150)


def shipped_settings(env: dict) -> str:
    """Workers and threads as gunicorn.conf.py sets them in this environment."""
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        conf = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return f"{conf['workers']} workers x {conf['threads']} threads ({conf['worker_class']})"


# ------------------------------------------------------------------------ slow clients


class SlowClients:
    """`count` connections, each POSTing a form to /login one byte a second, from one thread."""

    def __init__(self, port: int, count: int, body_bytes: int):
        self.port, self.count, self.body_bytes = port, count, body_bytes
        self.sockets: list[socket.socket] = []
        self.dropped = 0  # connections the server closed or refused
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.trickle, daemon=True)

    def __enter__(self):
        head = (
            f"POST /login HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\n"
            f"Content-Length: {self.body_bytes}\r\n\r\nusername="
        ).encode()
        for _ in range(self.count):
            sock = socket.create_connection(("127.0.0.1", self.port), timeout=10)
            sock.sendall(head)
            self.sockets.append(sock)
        self.thread.start()
        return self

    def trickle(self) -> None:
        while not self.stopping.wait(1):
            for sock in list(self.sockets):
                try:
                    sock.sendall(b"a")
                except OSError:
                    self.sockets.remove(sock)
                    self.dropped += 1

    def __exit__(self, *exc):
        self.stopping.set()
        self.thread.join()
        for sock in self.sockets:
            sock.close()


# ------------------------------------------------------------------------ ordinary pages


def probe(port: int, path: str, cookie: str, timeout: float) -> float | str:
    """Seconds to the whole answer, or why there was none: a status, or the error."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    started = time.perf_counter()
    try:
        connection.request("GET", path, headers={"Connection": "close", "Cookie": cookie})
        response = connection.getresponse()
        response.read()
        return time.perf_counter() - started if response.status == 200 else f"status {response.status}"
    except TimeoutError:
        return "no answer"
    except OSError as error:  # refused, reset
        return type(error).__name__
    finally:
        connection.close()


def measure(port: int, cookie: str, duration: float, timeout: float) -> dict[str, list[float | str]]:
    """Every page every half second for `duration` seconds; waits for the last answers."""
    results = {label: [] for label, _, _ in PAGES}
    with ThreadPoolExecutor(max_workers=len(PAGES) * int(timeout / PROBE_INTERVAL + 2)) as pool:
        pending = []
        start = time.monotonic()
        tick = 0
        while (due := start + tick * PROBE_INTERVAL) < start + duration:
            time.sleep(max(0.0, due - time.monotonic()))
            for label, path, signed_in in PAGES:
                pending.append((label, pool.submit(probe, port, path, cookie if signed_in else "", timeout)))
            tick += 1
        for label, future in pending:
            results[label].append(future.result())
    return results


def report(slow: int, results: dict[str, list[float | str]]) -> None:
    for label, times in results.items():
        answered = sorted(t * 1000 for t in times if isinstance(t, float))
        failures = Counter(t for t in times if isinstance(t, str))
        failed = len(times) - len(answered)
        if answered:
            p95 = answered[min(len(answered) - 1, round(0.95 * (len(answered) - 1)))]
            figures = f"{statistics.median(answered):>10.1f} {p95:>9.1f} {answered[-1]:>9.1f}"
        else:
            figures = f"{'-':>10} {'-':>9} {'-':>9}"
        why = ", ".join(f"{count} {reason}" for reason, count in failures.most_common())
        print(f"{slow:>12} {label:<26} {len(times):>8} {failed:>7} {figures}  {why}".rstrip(), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", help="default: SQLite in a temporary folder")
    parser.add_argument("--clients", type=int, default=20, help="slow clients in the second phase")
    parser.add_argument("--duration", type=float, default=30, help="seconds each phase lasts")
    parser.add_argument(
        "--request-timeout", type=float, default=60, help="seconds an ordinary page may take before it counts as failed"
    )
    parser.add_argument("--gunicorn-options", default="", help="added to the command line, after the file")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        env = production_env(args.database_url, folder)
        prepare(env, SimpleNamespace(products=1000, transactions=1000, lines=3, seed=1))
        options = shlex.split(args.gunicorn_options)

        with gunicorn(env, options) as port:
            browser = Browser(f"http://127.0.0.1:{port}")
            browser.sign_in("bench")
            cookie = "; ".join(f"{name}={morsel.value}" for name, morsel in browser.cookies.items())
            print(
                f"\ngunicorn.conf.py: {shipped_settings(env)}"
                + (f", then {args.gunicorn_options}" if options else "")
                + f"; load average before: {os.getloadavg()[0]:.2f}"
            )
            measure(port, cookie, 3, args.request_timeout)  # warm every worker: templates, catalogues
            print(
                f"\n{'slow clients':>12} {'page':<26} {'requests':>8} {'failed':>7} "
                f"{'median ms':>10} {'p95 ms':>9} {'max ms':>9}"
            )
            report(0, measure(port, cookie, args.duration, args.request_timeout))
            body_bytes = int(args.duration + args.request_timeout) + 60  # more than the phase lasts
            with SlowClients(port, args.clients, body_bytes) as slow:
                time.sleep(2)  # every slow request is in the server's hands, holding its thread
                report(args.clients, measure(port, cookie, args.duration, args.request_timeout))
                print(f"\nslow clients still sending at the end: {len(slow.sockets)} of {args.clients}")


if __name__ == "__main__":
    main()
