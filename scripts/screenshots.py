"""Regenerate the README's screenshots into docs/: `.venv/bin/python scripts/screenshots.py`.

Builds a demo database in a temporary folder (seeded through the same functions as
`manage.py seed`), serves the app on a free local port and photographs it with
Debian's Chromium through Playwright.
"""

import sys
import tempfile
import threading
from pathlib import Path

from playwright.sync_api import sync_playwright
from werkzeug.serving import WSGIRequestHandler, make_server

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from adminapp import create_app  # noqa: E402
from adminapp.cli import init_db, seed_demo_data  # noqa: E402
from adminapp.domain import accounts, audit  # noqa: E402
from adminapp.extensions import db  # noqa: E402

DOCS = ROOT / "docs"
PASSWORD = "screenshot-password"
CHROMIUM = "/usr/bin/chromium"


class QuietHandler(WSGIRequestHandler):
    def log_request(self, *args, **kwargs):
        pass


def demo_app(folder: Path):
    database = f"sqlite:///{folder / 'demo.db'}"
    app = create_app({"SQLALCHEMY_DATABASE_URI": database, "SECRET_KEY": "demo", "INSTANCE_PATH": str(folder)})
    with app.app_context():
        init_db()
        audit.set_actor(db.session, audit.Actor(username="demo"))
        accounts.create_user(db.session, "ayu", PASSWORD, "admin")
        db.session.commit()
        audit.set_actor(db.session, audit.Actor(username="demo"))
        seed_demo_data(products=300, transactions=400, lines=3, seed=7)
    return app


def main():
    with tempfile.TemporaryDirectory() as folder:
        app = demo_app(Path(folder))
        server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=QuietHandler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        base = f"http://127.0.0.1:{server.server_port}"
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
                page = browser.new_page(viewport={"width": 1366, "height": 900}, locale="en-US")
                page.goto(base + "/login")
                page.fill("#username", "ayu")
                page.fill("#password", PASSWORD)
                page.click("button[type=submit]")
                page.wait_for_url("**/admin/")
                shoot(page, base + "/admin/", "dashboard.png")
                shoot(page, base + "/admin/product/?page_size=20", "product-list.png")
                page.emulate_media(color_scheme="dark")  # as a system set to dark shows it
                shoot(page, base + "/admin/product/?page_size=20", "product-list-dark.png")
                page.emulate_media(color_scheme="light")
                page.goto(base + "/admin/transaction/new/")
                page.fill("#note", "Counter sale")
                for row, search in enumerate(["DEMO-00000", "DEMO-00001", "DEMO-00002"]):
                    if row:  # a new transaction starts with one empty line
                        page.click("#lines-button")
                    page.click(f"#s2id_lines-{row}-product a.select2-choice")
                    page.keyboard.type(search)
                    page.locator(".select2-drop-active:visible .select2-result-selectable").first.click()
                    page.fill(f"#lines-{row}-product_qty", str(row + 1))
                page.wait_for_function("!document.getElementById('running-total').textContent.includes('…')")
                shoot(page, None, "transaction-editor.png", full_page=True)
                browser.close()
        finally:
            server.shutdown()


def shoot(page, url, name, full_page=False):
    if url:
        page.goto(url)
    DOCS.mkdir(exist_ok=True)
    page.screenshot(path=str(DOCS / name), full_page=full_page)
    print(f"wrote docs/{name}")


if __name__ == "__main__":
    main()
