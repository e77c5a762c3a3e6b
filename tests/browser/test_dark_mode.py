"""Dark mode in a real Chromium: with the system set to dark, every page is dark (lists, forms,
Select2 boxes, alerts, the dashboard, sign-in and error pages) and axe-core still finds no
serious contrast or other violation; with the system set to light, nothing changes."""

import os

import pytest

from adminapp.domain import sales
from adminapp.models import Transaction
from tests.browser.conftest import ADMIN, CHROMIUM, sign_in
from tests.support import PASSWORD, save_draft

if not os.path.exists(CHROMIUM):
    pytest.skip(f"{CHROMIUM} does not exist: browser tests skipped", allow_module_level=True)
expect = pytest.importorskip("playwright.sync_api", reason="playwright is not installed").expect

from tests.browser.test_accessibility import AXE, serious_violations  # noqa: E402  (after the skips)

pytestmark = pytest.mark.browser

# The relative luminance (WCAG) of an element's computed background colour, from 0 (black) to 1 (white).
LUMINANCE = """(element) => {
  const [r, g, b] = getComputedStyle(element).backgroundColor.match(/[\\d.]+/g).map(Number);
  const channel = c => { c /= 255; return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4; };
  return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b);
}"""
COLOR = "(element, property) => getComputedStyle(element)[property]"


def contrast_violations(page):
    """axe-core's colour-contrast rule alone, for a state whose other rules are not this
    module's concern (an open Select2 box)."""
    page.add_script_tag(path=str(AXE))
    violations = page.evaluate("async () => (await axe.run(document, {runOnly: ['color-contrast']})).violations")
    return [f"{v['id']}: " + "; ".join(n["target"][0] for n in v["nodes"][:5]) for v in violations]


def luminance(page, selector):
    return page.locator(selector).first.evaluate(LUMINANCE)


@pytest.fixture
def dark(page):
    page.emulate_media(color_scheme="dark")
    return page


@pytest.fixture
def transactions(live_server):
    """A draft (editable, with two lines) and a posted transaction: their ids."""
    with live_server.session() as session:
        draft = save_draft(session, [(1, 2), (2, 1)]).id
        posted = save_draft(session, [(3, 1)]).id
        sales.post(session, session.get(Transaction, posted), None)
        session.commit()
    return draft, posted


def test_the_pages_say_they_can_be_light_or_dark(page):
    page.goto("/login")
    expect(page.locator("meta[name=color-scheme]")).to_have_attribute("content", "light dark")
    sign_in(page, ADMIN)
    expect(page.locator("meta[name=color-scheme]")).to_have_attribute("content", "light dark")


def test_the_sign_in_page_is_dark_and_readable(dark):
    dark.goto("/login")
    assert luminance(dark, "body") < 0.05
    assert luminance(dark, "#username") < 0.05
    dark.fill("#username", ADMIN)
    dark.fill("#password", "not the password")
    dark.click("button[type=submit]")
    expect(dark.locator("div.alert")).to_have_count(1)
    assert luminance(dark, "div.alert") < 0.05
    assert serious_violations(dark) == []


@pytest.mark.parametrize(
    "path",
    [
        "/admin/",
        "/admin/product/",
        "/admin/product/new/",
        "/admin/product/details/?id=1",
        "/admin/user/new/",
        "/admin/audit/",
    ],
)
def test_admin_pages_are_dark_and_pass_axe(dark, path):
    sign_in(dark, ADMIN)
    dark.goto(path)
    assert luminance(dark, "body") < 0.05, path
    for surface in (".card", "table", ".form-control", ".dropdown-menu"):
        if dark.locator(surface).count():
            # Cards, tables and inputs are dark too (a transparent table shows the dark page).
            element = dark.locator(surface).first
            assert element.evaluate(LUMINANCE) < 0.05 or element.evaluate(COLOR, "backgroundColor") in (
                "rgba(0, 0, 0, 0)",
            ), (path, surface)
    assert serious_violations(dark) == [], path


def test_the_list_with_a_message_and_a_search_is_dark_and_passes_axe(dark, live_server):
    sign_in(dark, ADMIN)
    dark.goto("/admin/product/edit/?id=2")
    dark.fill("#name", "Gadget renamed")
    dark.click("input[type=submit][value='Save']")
    alert = dark.locator("div.alert-success")
    expect(alert).to_have_count(1)
    dark.wait_for_load_state()  # the stylesheets too: the alert is in the DOM before they are read
    assert luminance(dark, "div.alert-success") < 0.05
    dark.goto("/admin/product/?search=BRW")
    assert serious_violations(dark) == []


def test_the_list_filters_are_dark_and_readable(dark):
    sign_in(dark, ADMIN)
    dark.goto("/admin/product/?flt0_stock_at_or_below=5")
    assert luminance(dark, ".filter-val") < 0.05
    assert dark.locator(".filters .select2-choice").first.evaluate(LUMINANCE) < 0.05
    assert contrast_violations(dark) == []  # colours only: Flask-Admin leaves the filter row's inputs unlabelled


def test_a_transaction_edit_page_with_an_open_autocomplete_is_dark_and_passes_axe(dark, transactions):
    draft, posted = transactions
    sign_in(dark, ADMIN)
    dark.goto(f"/admin/transaction/edit/?id={draft}")
    assert luminance(dark, "body") < 0.05
    assert luminance(dark, "#note") < 0.05
    assert luminance(dark, "#s2id_lines-0-product a.select2-choice") < 0.05
    assert serious_violations(dark) == []

    dark.locator("#s2id_lines-1-product a.select2-choice").click()
    drop = dark.locator(".select2-drop-active:visible")
    expect(drop).to_be_visible()
    dark.keyboard.type("BRW")
    expect(drop.locator(".select2-result-selectable").first).to_be_visible()
    assert drop.evaluate(LUMINANCE) < 0.05
    assert drop.locator("input.select2-input").evaluate(LUMINANCE) < 0.05
    highlighted = drop.locator(".select2-highlighted")
    assert highlighted.evaluate(COLOR, "color") == "rgb(255, 255, 255)"
    assert contrast_violations(dark) == []
    dark.keyboard.press("Escape")

    for path in (f"/admin/transaction/details/?id={posted}", "/admin/transaction/"):
        dark.goto(path)
        assert serious_violations(dark) == [], path


def test_a_posted_transactions_badge_is_readable_in_light_mode_too(page, transactions):
    sign_in(page, ADMIN)
    page.goto("/admin/transaction/")
    expect(page.locator(".badge-success")).to_have_count(1)
    assert serious_violations(page) == []


def test_the_filter_menu_and_the_shortcuts_dialog_are_dark(dark):
    sign_in(dark, ADMIN)
    dark.goto("/admin/product/")
    dark.locator("a.dropdown-toggle", has_text="Add Filter").click()
    menu = dark.locator(".dropdown-menu.show")
    expect(menu).to_be_visible()
    assert menu.evaluate(LUMINANCE) < 0.05
    dark.keyboard.press("Escape")
    dark.evaluate("document.activeElement.blur()")
    dark.keyboard.press("?")
    expect(dark.locator("#shortcuts-dialog .modal-content")).to_be_visible()
    assert luminance(dark, "#shortcuts-dialog .modal-content") < 0.05
    assert serious_violations(dark) == []


def test_the_error_pages_are_dark_and_pass_axe(dark):
    # Served with status 200: Chromium logs a console error for any 404 document, and
    # console errors fail the browser tests.
    dark.route("**/no-such-page/", lambda route: route.fulfill(response=route.fetch(), status=200))
    dark.goto("/no-such-page/")  # outside the admin: the plain error page
    expect(dark.locator("h1")).to_contain_text("404")
    assert luminance(dark, "body") < 0.05
    assert serious_violations(dark) == []
    sign_in(dark, ADMIN)
    dark.goto("/admin/no-such-page/")  # inside the admin's frame
    expect(dark.locator("h1")).to_contain_text("404")
    assert luminance(dark, "body") < 0.05
    assert serious_violations(dark) == []


@pytest.mark.parametrize("browser_locale", ["id-ID"])
def test_dark_in_indonesian_too(dark):
    sign_in(dark, ADMIN)
    dark.goto("/admin/transaction/new/")
    expect(dark.locator("html")).to_have_attribute("lang", "id")
    assert luminance(dark, "body") < 0.05
    assert serious_violations(dark) == []


# Light mode is unchanged: Bootstrap's own colours, as before dark mode existed.
LIGHT = [
    ("body", "backgroundColor", "rgb(255, 255, 255)"),
    ("body", "color", "rgb(33, 37, 41)"),
    (".form-control", "backgroundColor", "rgb(255, 255, 255)"),
    (".model-list", "color", "rgb(33, 37, 41)"),
    (".nav-tabs .nav-link.active", "backgroundColor", "rgb(255, 255, 255)"),
    ("a.nav-link[href*='/new/']", "color", "rgb(0, 86, 179)"),
    ("nav.navbar", "backgroundColor", "rgb(52, 58, 64)"),
]


def test_light_mode_is_unchanged(page):
    page.emulate_media(color_scheme="light")
    page.goto("/login")
    assert page.locator("body").evaluate(COLOR, "backgroundColor") == "rgb(248, 249, 250)"  # .bg-light
    sign_in(page, ADMIN)
    page.goto("/admin/product/")
    for selector, prop, value in LIGHT:
        assert page.locator(selector).first.evaluate(COLOR, prop) == value, (selector, prop)


def test_the_login_form_still_signs_in_when_dark(dark):
    dark.goto("/login")
    dark.fill("#username", ADMIN)
    dark.fill("#password", PASSWORD)
    dark.click("button[type=submit]")
    dark.wait_for_url("**/admin/")
