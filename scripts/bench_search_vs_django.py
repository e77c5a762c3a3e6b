"""Product search and the product list, adminapp beside Django's admin, over the same table.

Both apps run under gunicorn with 2 sync workers on this machine and read one database,
which this script makes, fills with adminapp's own `seed`, and removes at the end:

    # once: a venv of its own for Django 6.x (it needs Python 3.12 or newer)
    python3.13 -m venv ../djvenv
    ../djvenv/bin/pip install "Django>=6,<7" gunicorn "psycopg[binary]"

    # SQLite (a fresh file in a temporary folder; the URL only picks the backend)
    .venv/bin/python scripts/bench_search_vs_django.py --django-python ../djvenv/bin/python \\
        --database-url sqlite://
    # PostgreSQL (a fresh database with a random name on that server, dropped at the end)
    .venv/bin/python scripts/bench_search_vs_django.py --django-python ../djvenv/bin/python \\
        --database-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres

Run it with adminapp's Python (it uses SQLAlchemy to create and drop the PostgreSQL
database). To measure another checkout, such as a clean export of main beside a work tree
with changes (`git archive main | tar -x -C DIR`), add `--adminapp-dir DIR --adminapp-venv .venv`.

adminapp runs as shipped: ADMINAPP_ENV=production, under its gunicorn.conf.py (only the
worker count and the address are given on the command line). Its session cookie is Secure,
so this script's client sends it back over plain HTTP to 127.0.0.1, as a TLS proxy would.
Django's side is a generated project whose model maps onto adminapp's `products` table
(managed = False), with the ModelAdmin a Django user would write, its list_per_page set to
adminapp's page size (20, or --page-size). For each page: 3 warm-up requests per app, then
--requests timed requests, alternating between the apps (which goes first alternates too);
the table gives median and p95 in ms and adminapp's median over Django's. Both apps must
show the SKUs that the database itself gives for the page, or the run stops.
"""

import argparse
import contextlib
import http.cookiejar
import math
import os
import re
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

from sqlalchemy import column, create_engine, make_url, or_, select, table, text

REPO = Path(__file__).resolve().parent.parent
WORKERS = 2
ADMINAPP_PAGE_SIZE = 20  # Flask-Admin's default, which adminapp keeps
WARM_UP = 3
PASSWORD = "bench-" + secrets.token_urlsafe(16)
CASES = [  # (page, search term)
    ("list page 1", None),
    ("search common word", "Coffee"),
    ("search brand + noun", "Sari Coffee"),
    ("search SKU fragment", "001234"),  # DEMO-0001234 and DEMO-0012340..49
    ("search no match", "zzzq"),
]
SKU = re.compile(r"DEMO-\d{7}")
APPS = {  # how each app signs in and lists products
    "adminapp": {"login": "/login", "token": "csrf_token", "list": "/admin/product/", "search": "search"},
    "django": {
        "login": "/admin/login/",
        "token": "csrfmiddlewaretoken",
        "list": "/admin/shop/product/",
        "search": "q",
    },  # its page size is the ModelAdmin's list_per_page
}


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--database-url",
        default="sqlite://",
        help="sqlite:// for SQLite, or a PostgreSQL server URL (default: %(default)s)",
    )
    parser.add_argument("--django-python", required=True, help="Python of a venv with Django 6.x, gunicorn, psycopg")
    parser.add_argument("--requests", type=int, default=20, help="timed requests per page and app")
    parser.add_argument("--products", type=int, default=100_000)
    parser.add_argument(
        "--page-size",
        type=int,
        choices=(20, 50, 100),
        default=ADMINAPP_PAGE_SIZE,
        help="rows per page, one of adminapp's page sizes (default: its own, %(default)s)",
    )
    parser.add_argument("--adminapp-dir", type=Path, default=REPO, help="adminapp checkout (default: this repo)")
    parser.add_argument("--adminapp-venv", type=Path, help="its venv (default: ADMINAPP_DIR/.venv)")
    args = parser.parse_args()
    args.adminapp_dir = args.adminapp_dir.resolve()
    args.adminapp_venv = (args.adminapp_venv or args.adminapp_dir / ".venv").absolute()
    return args


# --- the database: always one of our own making ---


@contextlib.contextmanager
def fresh_database(url: str, folder: Path):
    """A URL (SQLAlchemy form) of a new, empty database; a PostgreSQL one is dropped afterwards."""
    server = make_url(url)
    if server.get_backend_name() == "sqlite":
        yield f"sqlite:///{folder / 'bench.db'}"
        return
    name = "bench_search_" + secrets.token_hex(6)
    engine = create_engine(server.set(database=server.database or "postgres"), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()


def django_database(url: str) -> dict:
    parts = make_url(url)
    if parts.get_backend_name() == "sqlite":
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": parts.database}
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": parts.database,
        "USER": parts.username or "",
        "PASSWORD": parts.password or "",
        "HOST": parts.host or "",
        "PORT": str(parts.port or ""),
    }


# --- adminapp's side ---


def adminapp_env(url: str, folder: Path) -> dict:
    env = {
        **os.environ,
        "ADMINAPP_ENV": "production",
        "SECRET_KEY": secrets.token_hex(32),
        "AUDIT_KEY": secrets.token_hex(32),
        "DATABASE_URL": url,
        "ADMINAPP_INSTANCE_PATH": str(folder / "instance"),
    }
    env.pop("FLASK_DEBUG", None)  # debug mode would reload templates on every request
    return env


def prepare_adminapp(app_dir: Path, venv: Path, env: dict, products: int) -> None:
    python = str(venv / "bin" / "python")
    for command in (
        ["init-db"],
        ["seed", "--products", str(products)],
        ["create-user", "bench", "--role", "admin", "--password", PASSWORD],
    ):
        print(f"adminapp: manage.py {command[0]}", flush=True)
        done = subprocess.run(
            [python, "manage.py", *command], cwd=app_dir, env=env, check=True, stdout=subprocess.PIPE, text=True
        )
        print("   ", done.stdout.strip().splitlines()[-1] if done.stdout.strip() else "(no output)")
    # The seed is one unit of work: it committed all its products, or the command failed.
    engine = create_engine(env["DATABASE_URL"])
    try:
        with engine.connect() as conn:
            found = conn.scalar(text("SELECT count(*) FROM products"))
    finally:
        engine.dispose()
    if found != products:
        raise SystemExit(f"the seed left {found} products, not {products}")


def adminapp_command(app_dir: Path, venv: Path, base: str) -> list[str]:
    command = [str(venv / "bin" / "gunicorn")]
    if (app_dir / "gunicorn.conf.py").exists():
        command += ["-c", "gunicorn.conf.py"]  # its settings, but the same worker count as Django's
    return command + ["-w", str(WORKERS), "-b", base.removeprefix("http://"), "adminapp:create_app()"]


# --- Django's side: a generated project over adminapp's table ---

DJANGO_SETTINGS = """\
SECRET_KEY = {secret!r}
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS = ["django.contrib.admin", "django.contrib.auth", "django.contrib.contenttypes",
                  "django.contrib.sessions", "django.contrib.messages", "shop"]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
ROOT_URLCONF = "benchsite.urls"
TEMPLATES = [{{
    "BACKEND": "django.template.backends.django.DjangoTemplates",
    "APP_DIRS": True,
    "OPTIONS": {{"context_processors": [
        "django.template.context_processors.request",
        "django.contrib.auth.context_processors.auth",
        "django.contrib.messages.context_processors.messages",
    ]}},
}}]
# Persistent connections, as adminapp's SQLAlchemy pool keeps them (pool_pre_ping ~ health checks).
DATABASES = {{"default": {{**{database!r}, "CONN_MAX_AGE": 600, "CONN_HEALTH_CHECKS": True}}}}
USE_TZ = True
STATIC_URL = "static/"
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
"""
DJANGO_FILES = {
    "benchsite/__init__.py": "",
    "benchsite/urls.py": """\
from django.contrib import admin
from django.urls import path

urlpatterns = [path("admin/", admin.site.urls)]
""",
    "benchsite/wsgi.py": """\
from django.core.wsgi import get_wsgi_application

application = get_wsgi_application()
""",
    "shop/__init__.py": "",
    "shop/models.py": """\
from django.db import models


class Product(models.Model):
    id = models.AutoField(primary_key=True)
    sku = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=200, db_index=True)
    description = models.TextField(null=True)
    price = models.DecimalField(max_digits=12, decimal_places=2)
    stock = models.IntegerField()
    is_active = models.BooleanField()
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    version = models.IntegerField()

    class Meta:
        managed = False
        db_table = "products"

    def __str__(self):
        return f"{self.sku} - {self.name}"
""",
    "shop/admin.py": """\
from django.contrib import admin

from .models import Product


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ("sku", "name", "price", "stock", "is_active")
    search_fields = ("sku", "name")
    list_filter = ("is_active",)
    ordering = ("sku",)
    list_per_page = {page_size}
""",
}


def prepare_django(python: str, folder: Path, url: str, page_size: int) -> dict:
    """Write the project, migrate Django's own tables, add a superuser; returns its environment."""
    settings = DJANGO_SETTINGS.format(secret=secrets.token_hex(32), database=django_database(url))
    admin = DJANGO_FILES["shop/admin.py"].replace("{page_size}", str(page_size))
    for name, source in {**DJANGO_FILES, "shop/admin.py": admin, "benchsite/settings.py": settings}.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source)
    env = {
        **os.environ,
        "PYTHONPATH": str(folder),
        "DJANGO_SETTINGS_MODULE": "benchsite.settings",
        "DJANGO_SUPERUSER_PASSWORD": PASSWORD,
    }
    for command in (
        ["migrate", "--verbosity", "0"],
        ["createsuperuser", "--noinput", "--username", "bench", "--email", "bench@example.com"],
    ):
        print(f"django: {command[0]}", flush=True)
        subprocess.run([python, "-m", "django", *command], cwd=folder, env=env, check=True, stdout=subprocess.DEVNULL)
    return env


# --- servers ---


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def server(command: list[str], cwd: Path, env: dict, ready_url: str, log: Path):
    """A gunicorn running until the block ends; yields the worker class it reported."""
    with open(log, "wb") as out:
        process = subprocess.Popen(command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_until_up(process, ready_url, log)
        found = re.search(r"Using worker: (\S+)", log.read_text())
        yield found.group(1) if found else "unknown"
    except OSError:  # a request failed: what each server logged (a worker killed, a traceback)
        print(f"--- the end of {log.name}:\n" + "\n".join(log.read_text().splitlines()[-20:]), file=sys.stderr)
        raise
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def start_servers(args, stack: contextlib.ExitStack, folder: Path, envs: dict) -> dict:
    """Both gunicorns on free ports until the stack closes; returns each one's base URL."""
    bases = {app: f"http://127.0.0.1:{free_port()}" for app in APPS}
    commands = {
        "adminapp": adminapp_command(args.adminapp_dir, args.adminapp_venv, bases["adminapp"]),
        "django": [
            args.django_python,
            "-m",
            "gunicorn",
            "-w",
            str(WORKERS),
            "-b",
            bases["django"].removeprefix("http://"),
            "benchsite.wsgi",
        ],
    }
    folders = {"adminapp": args.adminapp_dir, "django": folder / "django"}
    workers = {
        app: stack.enter_context(
            server(commands[app], folders[app], envs[app], bases[app] + APPS[app]["login"], folder / f"{app}.log")
        )
        for app in APPS
    }
    print(f"gunicorn, {WORKERS} workers each; worker class: adminapp {workers['adminapp']}, Django {workers['django']}")
    return bases


def wait_until_up(process, url: str, log: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{process.args[0]} exited; its log:\n{log.read_text()}")
        try:
            urllib.request.urlopen(url, timeout=5).read()
            return
        except OSError:
            time.sleep(0.5)
    raise SystemExit(f"{url} did not answer within {timeout:.0f} s; log: {log}")


# --- HTTP ---


def hidden_value(html: str, name: str) -> str:
    tag = re.search(rf'<input[^>]*name="{name}"[^>]*>', html)
    value = tag and re.search(r'value="([^"]*)"', tag.group(0))
    if not value:
        raise SystemExit(f"no {name} on the sign-in page")
    return value.group(1)


def signed_in(base: str, app: dict):
    """An opener with the session cookie of user `bench`, signed in through the login form.
    Secure cookies go back over plain HTTP too: the apps run here without TLS."""
    cookies = http.cookiejar.CookieJar(http.cookiejar.DefaultCookiePolicy(secure_protocols=("http", "https")))
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(cookies))
    login_url = f"{base}{app['login']}?next={urllib.parse.quote(app['list'])}"
    html = opener.open(login_url).read().decode()
    form = {"username": "bench", "password": PASSWORD, app["token"]: hidden_value(html, app["token"])}
    with opener.open(login_url, urllib.parse.urlencode(form).encode()) as response:
        response.read()
        if urllib.parse.urlsplit(response.url).path != app["list"]:
            raise SystemExit(f"signing in at {login_url} failed (ended at {response.url})")
    return opener


def fetch(opener, url: str) -> tuple[float, str]:
    """Seconds for the whole response, and its body."""
    began = time.perf_counter()
    with opener.open(url) as response:
        body = response.read()
    seconds = time.perf_counter() - began
    if response.url != url:
        raise SystemExit(f"{url} was redirected to {response.url}")
    return seconds, body.decode()


def skus_shown(html: str) -> list[str]:
    return list(dict.fromkeys(SKU.findall(html)))


# --- the measurement ---


def case_urls(bases: dict, term: str | None, page_size: int) -> dict:
    urls = {}
    for name, app in APPS.items():
        query = {app["search"]: term} if term else {}
        if name == "adminapp" and page_size != ADMINAPP_PAGE_SIZE:
            query["page_size"] = page_size
        urls[name] = f"{bases[name]}{app['list']}" + (f"?{urllib.parse.urlencode(query)}" if query else "")
    return urls


def expected_skus(url: str, term: str | None, page_size: int) -> list[str]:
    """Page 1 as both admins define it: each word in the SKU or the name, ordered by SKU."""
    products = table("products", column("sku"), column("name"))
    query = select(products.c.sku).order_by(products.c.sku).limit(page_size)
    for word in (term or "").split():
        query = query.where(or_(products.c.sku.ilike(f"%{word}%"), products.c.name.ilike(f"%{word}%")))
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return list(conn.scalars(query))
    finally:
        engine.dispose()


def check_rows(label: str, pages: dict, expected: list[str]) -> None:
    for app, html in pages.items():
        if skus_shown(html) != expected:
            raise SystemExit(f"{label}: {app} shows {skus_shown(html)}, expected {expected}")


def measure(openers: dict, bases: dict, database_url: str, requests: int, page_size: int) -> list[dict]:
    results = []
    for label, term in CASES:
        urls = case_urls(bases, term, page_size)
        for _ in range(WARM_UP):
            pages = {app: fetch(openers[app], url)[1] for app, url in urls.items()}
        expected = expected_skus(database_url, term, page_size)
        check_rows(label, pages, expected)
        times = {app: [] for app in urls}
        for round_ in range(requests):  # alternating, so a change in the machine's load hits both
            for app in list(urls) if round_ % 2 == 0 else reversed(list(urls)):  # and neither always first
                times[app].append(fetch(openers[app], urls[app])[0] * 1000)
        results.append({"label": label, "term": term, "rows": len(expected), "times": times})
    return results


def p95(values: list[float]) -> float:
    return sorted(values)[math.ceil(0.95 * len(values)) - 1]


def print_table(results: list[dict]) -> None:
    print(f"\n{'page':<22}{'term':<14}{'rows':>5}  {'adminapp med/p95':>18}  {'Django med/p95':>18}  {'ratio':>6}")
    for result in results:
        a, d = result["times"]["adminapp"], result["times"]["django"]
        ratio = statistics.median(a) / statistics.median(d)
        print(
            f"{result['label']:<22}{result['term'] or '-':<14}{result['rows']:>5}  "
            f"{statistics.median(a):>8.1f} /{p95(a):>7.1f}  {statistics.median(d):>8.1f} /{p95(d):>7.1f}  "
            f"{ratio:>5.2f}x"
        )
    print("(ms per request, whole body read; ratio = adminapp median / Django median)")


def machine_load(when: str) -> None:
    """The load average, and the processes that used the most CPU (ps: over their lifetime)."""
    one, five, fifteen = os.getloadavg()
    print(f"load average {when}: {one:.2f} {five:.2f} {fifteen:.2f} ({os.cpu_count()} cores); busiest processes:")
    ps = subprocess.run(["ps", "-eo", "pid,pcpu,etime,args", "--sort=-pcpu"], capture_output=True, text=True)
    lines = [line for line in ps.stdout.splitlines() if " ps -eo " not in line]
    for line in lines[:6]:
        print("   ", line[:110])


# --- the whole run ---


def versions(venv: Path, django_python: str) -> str:
    def ask(python, code):
        return subprocess.run([python, "-c", code], capture_output=True, text=True, check=True).stdout.strip()

    admin = ask(
        str(venv / "bin" / "python"),
        "import importlib.metadata as m; print('Flask-Admin', m.version('flask-admin'), "
        "'gunicorn', m.version('gunicorn'))",
    )
    django = ask(
        django_python,
        "import importlib.metadata as m; print('Django', m.version('django'), 'gunicorn', m.version('gunicorn'))",
    )
    return f"adminapp: {admin}; django: {django}"


def run(args, stack: contextlib.ExitStack) -> None:
    folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-search-")))
    url = stack.enter_context(fresh_database(args.database_url, folder))
    print(
        f"database: {make_url(url).get_backend_name()}, {args.products:,} products, "
        f"{args.page_size} a page; "
        f"{versions(args.adminapp_venv, args.django_python)}",
        flush=True,
    )
    envs = {"adminapp": adminapp_env(url, folder)}
    prepare_adminapp(args.adminapp_dir, args.adminapp_venv, envs["adminapp"], args.products)
    envs["django"] = prepare_django(args.django_python, folder / "django", url, args.page_size)
    bases = start_servers(args, stack, folder, envs)
    openers = {name: signed_in(bases[name], app) for name, app in APPS.items()}
    machine_load("before")
    results = measure(openers, bases, url, args.requests, args.page_size)
    machine_load("after")
    print_table(results)


def main():
    args = parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # clean up on kill, too
    with contextlib.ExitStack() as stack:
        run(args, stack)


if __name__ == "__main__":
    main()
