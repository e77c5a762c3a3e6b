"""Fixtures for the browser tests: the app served by a real HTTP server in a thread, and a
Chromium driven through Playwright (Debian's /usr/bin/chromium; Playwright cannot download
its own browsers here)."""

import os
import threading
from decimal import Decimal

import pytest
from werkzeug.serving import WSGIRequestHandler, make_server

from adminapp.extensions import db
from adminapp.models import Product, User
from tests.support import FAST_HASH, PASSWORD, make_app

CHROMIUM = "/usr/bin/chromium"
# No skip at this module's top: a conftest that skips while pytest starts up aborts the run.
# The test modules skip themselves (module level) when Chromium or Playwright is missing.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


STAFF = "browser-staff"
ADMIN = "browser-admin"
# sku -> (name, price, stock, is_active)
PRODUCTS = {
    "BRW-001": ("Widget", "19.99", 10, True),
    "BRW-002": ("Gadget", "5.00", 10, True),
    "BRW-003": ("Doohickey", "2.50", 10, True),
    "BRW-009": ("Retired thing", "7.00", 10, False),
}


class QuietHandler(WSGIRequestHandler):
    def log_request(self, *args, **kwargs):
        pass  # no access log on stderr for every request


class LiveServer:
    def __init__(self, app, server):
        self.app = app
        self.url = f"http://127.0.0.1:{server.server_port}"

    def session(self):
        """An app context for checking the database: `with live_server.session() as s: ...`."""
        return _SessionScope(self.app)


class _SessionScope:
    def __init__(self, app):
        self.ctx = app.app_context()

    def __enter__(self):
        self.ctx.push()
        return db.session

    def __exit__(self, *exc):
        db.session.remove()
        self.ctx.pop()


@pytest.fixture
def live_server(tmp_path):
    """The app on SQLite with CSRF on, a staff user and four products, served on a free port."""
    app = make_app(f"sqlite:///{tmp_path / 'b.db'}", tmp_path, WTF_CSRF_ENABLED=True)
    with app.app_context():
        db.create_all()
        for username, role in ((STAFF, "staff"), (ADMIN, "admin")):
            db.session.add(User(username=username, role=role, password_hash=FAST_HASH))
        for sku, (name, price, stock, active) in PRODUCTS.items():
            db.session.add(Product(sku=sku, name=name, price=Decimal(price), stock=stock, is_active=active))
        db.session.commit()
        db.session.remove()
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=QuietHandler)
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    try:
        yield LiveServer(app, server)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


def chromium_missing() -> str | None:
    """Why the browser tests cannot run here, or None."""
    if not os.path.exists(CHROMIUM):
        return f"{CHROMIUM} does not exist: browser tests skipped"
    try:
        import playwright.sync_api  # noqa: F401  (only: is it installed?)
    except ImportError:
        return "playwright is not installed: browser tests skipped"
    return None


@pytest.fixture(scope="module")
def browser():
    reason = chromium_missing()
    if reason:
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def browser_locale():
    """The browser's language (its Accept-Language); a test parametrizes it to try another."""
    return "en-US"


@pytest.fixture
def page(browser, live_server, browser_locale):
    """A fresh browser context (no cookies) with short timeouts; JS and console errors fail the test."""
    context = browser.new_context(
        base_url=live_server.url, locale=browser_locale, viewport={"width": 1280, "height": 1600}
    )
    context.set_default_timeout(5_000)
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    def console_error(message):
        # Console errors include CSP violations and any failed request (a missing favicon too).
        if message.type == "error":
            errors.append(f"console: {message.text} ({message.location.get('url')})")

    page.on("console", console_error)
    try:
        yield page
    finally:
        context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def sign_in(page, username):
    page.goto("/login")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/admin/")
    return page


@pytest.fixture
def staff_page(page):
    """`page`, signed in through the login form as the staff user."""
    return sign_in(page, STAFF)


@pytest.fixture
def admin_page(page):
    """`page`, signed in through the login form as the admin."""
    return sign_in(page, ADMIN)
