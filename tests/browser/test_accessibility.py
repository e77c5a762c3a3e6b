"""axe-core (from the npm registry, `npm ci`) finds no serious or critical violation on the
pages people use all day: sign-in, dashboard, lists and forms; and keyboard focus is always
visible."""

import os
from pathlib import Path

import pytest

from adminapp.domain import sales
from adminapp.models import Transaction
from tests.browser.conftest import CHROMIUM, sign_in
from tests.support import save_draft

if not os.path.exists(CHROMIUM):
    pytest.skip(f"{CHROMIUM} does not exist: browser tests skipped", allow_module_level=True)
pytest.importorskip("playwright.sync_api", reason="playwright is not installed")

AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
if not AXE.exists():
    pytest.skip(f"{AXE.name} is missing: run `npm ci` first", allow_module_level=True)

pytestmark = pytest.mark.browser

PAGES = [
    "/admin/",
    "/admin/product/",
    "/admin/product/new/",
    "/admin/product/edit/?id=1",
    "/admin/product/details/?id=1",
    "/admin/product/delete/?id=1",
    "/admin/product/adjust/?id=1",
    "/admin/transaction/",
    # filtered through the one-click filters and the Add Filter form, and searched
    "/admin/product/?search=BRW&flt0_active_equals=1&flt1_created_from=2000-01-01",
    "/admin/transaction/?flt0_status_equals=draft&flt1_created_by_is=browser-admin",
    "/admin/transaction/new/",
    "/admin/user/",
    "/admin/user/new/",
    "/admin/audit/",
    "/account/password",
]


def serious_violations(page):
    page.wait_for_load_state()  # after a click that submits: the new page, its scripts run
    page.add_script_tag(path=str(AXE))
    violations = page.evaluate("async () => (await axe.run(document)).violations")
    return [
        f"{v['id']} ({v['impact']}): {v['help']} — " + "; ".join(n["target"][0] for n in v["nodes"][:5])
        for v in violations
        if v["impact"] in ("serious", "critical")
    ]


def test_sign_in_page_has_no_serious_violations(page):
    page.goto("/login")
    assert serious_violations(page) == []


@pytest.mark.parametrize("path", PAGES)
def test_admin_pages_have_no_serious_violations(page, path):
    sign_in(page, "browser-admin")
    page.goto(path)
    assert serious_violations(page) == [], path


def test_transaction_editor_with_lines_has_no_serious_violations(page):
    sign_in(page, "browser-admin")
    page.goto("/admin/transaction/new/")
    page.click("#lines-button")
    page.click("#lines-button")
    assert serious_violations(page) == []


def test_delete_confirmation_pages_have_no_serious_violations(page, live_server):
    with live_server.session() as session:
        draft = save_draft(session, [(1, 2), (2, 1)]).id
        posted = save_draft(session, [(3, 1)]).id
        sales.post(session, session.get(Transaction, posted), None)
        session.commit()
    sign_in(page, "browser-admin")
    for path in (
        f"/admin/transaction/delete/?id={draft}",
        f"/admin/transaction/delete/?id={posted}",
        "/admin/product/delete/?id=3",
    ):  # a draft's lines; refused: posted, product in use
        page.goto(path)
        assert serious_violations(page) == [], path


def test_error_page_has_no_serious_violations(page):
    sign_in(page, "browser-admin")
    # Served as the app renders it, with status 200: Chromium logs a console error for any
    # 404 document, and console errors fail the browser tests.
    page.route("**/admin/no-such-page/", lambda route: route.fulfill(response=route.fetch(), status=200))
    page.goto("/admin/no-such-page/")
    assert page.locator("h1").inner_text() == "404 — Not found"
    assert serious_violations(page) == []


FOCUS_RING = """() => {
  const element = document.activeElement;
  const ring = element.closest('.select2-container-active') || element;
  const style = getComputedStyle(ring);
  return [element.tagName + (element.id ? '#' + element.id : ''), style.outlineStyle, parseFloat(style.outlineWidth)];
}"""


@pytest.mark.parametrize("path", ["/admin/product/new/", "/admin/transaction/new/", "/admin/product/"])
def test_keyboard_focus_is_always_visible(page, path):
    sign_in(page, "browser-admin")
    page.goto(path)
    page.locator("body").focus()
    seen = []
    for _ in range(25):
        page.keyboard.press("Tab")
        element, style, width = page.evaluate(FOCUS_RING)
        if element == "BODY":
            continue
        seen.append(element)
        assert style != "none" and width >= 2, f"{element} on {path} has no visible focus ({style} {width}px)"
    assert len(seen) >= 10, seen
