"""Keyboard shortcuts in a real Chromium: "/" goes to the search box, "n" opens the Create
page where the user may create, Ctrl+Enter (Cmd+Enter) saves the form, "?" lists the
shortcuts in an accessible dialog; none of the letters acts while the user types."""

import os
import re
from decimal import Decimal

import pytest
from flask_babel import force_locale, gettext
from sqlalchemy import select

from adminapp.models import Product, Transaction, User
from tests.browser.conftest import CHROMIUM, sign_in
from tests.support import FAST_HASH, save_draft

if not os.path.exists(CHROMIUM):
    pytest.skip(f"{CHROMIUM} does not exist: browser tests skipped", allow_module_level=True)
expect = pytest.importorskip("playwright.sync_api", reason="playwright is not installed").expect

from tests.browser.test_accessibility import serious_violations  # noqa: E402  (after the skips)

pytestmark = pytest.mark.browser

DIALOG = "#shortcuts-dialog"
AUDITOR = "browser-auditor"
PRODUCT_LIST = re.compile(r"^http://[^/]+/admin/product/(\?.*)?$")

# Records, on the window (after the page's own handlers), whether each key press was taken.
WATCH_KEYS = """() => {
  window.keysTaken = [];
  window.addEventListener('keydown', e => window.keysTaken.push([e.key, e.defaultPrevented]));
}"""


def unfocus(page):
    page.evaluate("document.activeElement && document.activeElement.blur()")


def focused(page, expression="document.activeElement.id || document.activeElement.name"):
    return page.evaluate(f"() => {expression}")


def open_dialog_with_question_mark(page):
    page.keyboard.press("?")
    expect(page.locator(DIALOG)).to_be_visible()
    # Focus moves into the dialog, so Escape and Tab stay there.
    expect(page.locator(f"{DIALOG}:focus-within")).to_have_count(1)


@pytest.fixture
def auditor_page(page, live_server):
    with live_server.session() as session:
        session.add(User(username=AUDITOR, role="auditor", password_hash=FAST_HASH))
        session.commit()
    return sign_in(page, AUDITOR)


def test_slash_goes_to_the_search_box_without_typing_a_slash(admin_page):
    page = admin_page
    page.goto("/admin/product/")
    unfocus(page)
    page.keyboard.press("/")
    search = page.locator("form[role=search] input[name=search]")
    expect(search).to_be_focused()
    expect(search).to_have_value("")
    page.keyboard.type("BRW-002")
    page.keyboard.press("Enter")
    page.wait_for_url("**search=BRW-002**")
    expect(page.locator("td.col-sku")).to_have_text(["BRW-002"])


def test_slash_goes_to_the_filter_box_of_a_details_page(admin_page):
    page = admin_page
    page.goto("/admin/product/details/?id=1")
    unfocus(page)
    page.keyboard.press("/")
    expect(page.locator("#fa_filter")).to_be_focused()


@pytest.mark.parametrize("start", ["/admin/product/", "/admin/product/edit/?id=1", "/admin/transaction/"])
def test_n_opens_the_create_page_of_the_view(admin_page, start):
    page = admin_page
    page.goto(start)
    unfocus(page)
    page.keyboard.press("n")
    view = start.split("/")[2]
    page.wait_for_url(f"**/admin/{view}/new/**")


def test_n_does_nothing_for_a_user_who_may_not_create(auditor_page):
    page = auditor_page
    page.goto("/admin/product/")
    expect(page.locator("td.col-sku").first).to_be_visible()
    expect(page.locator(".nav-tabs a[href*='/new/']")).to_have_count(0)  # the server offers no Create
    page.evaluate(WATCH_KEYS)
    unfocus(page)
    page.keyboard.press("n")
    page.wait_for_timeout(300)  # time for a navigation that must not come
    assert page.url.endswith("/admin/product/")
    assert page.evaluate("window.keysTaken") == [["n", False]]


@pytest.mark.parametrize("keys", ["Control+Enter", "Meta+Enter"])
def test_ctrl_enter_saves_the_product_form_from_inside_a_field(admin_page, live_server, keys):
    page = admin_page
    page.goto("/admin/product/new/")
    page.fill("#sku", "KEY-1")
    page.fill("#price", "12.50")
    page.fill("#stock", "3")
    page.fill("#name", "Saved from the keyboard")
    expect(page.locator("#name")).to_be_focused()
    page.keyboard.press(keys)
    # Saved as the Save button saves: back to the list, with the message as a Bootstrap alert.
    page.wait_for_url(PRODUCT_LIST)
    expect(page.locator("div.alert-success")).to_have_count(1)
    with live_server.session() as session:
        product = session.scalars(select(Product).where(Product.sku == "KEY-1")).one()
        assert (product.name, product.price, product.stock) == ("Saved from the keyboard", Decimal("12.50"), 3)


def test_ctrl_enter_on_an_edit_page_saves_the_change(admin_page, live_server):
    page = admin_page
    page.goto("/admin/product/edit/?id=2")
    page.fill("#name", "Renamed gadget")
    unfocus(page)  # from anywhere on the page: the page has one record form
    page.keyboard.press("Control+Enter")
    page.wait_for_url(PRODUCT_LIST)
    with live_server.session() as session:
        assert session.get(Product, 2).name == "Renamed gadget"


def test_ctrl_enter_keeps_the_forms_own_checks(admin_page, live_server):
    page = admin_page
    page.goto("/admin/product/new/")
    page.fill("#sku", "KEY-2")
    page.fill("#name", "Needs a price")
    page.fill("#price", "12.345")
    page.fill("#stock", "1")
    page.keyboard.press("Control+Enter")
    expect(page.locator("#price ~ .invalid-feedback")).to_contain_text("at most 2 decimal places")
    expect(page.locator("#name")).to_have_value("Needs a price")
    with live_server.session() as session:
        assert session.scalars(select(Product).where(Product.sku == "KEY-2")).first() is None


def test_letters_are_typed_not_obeyed_in_a_field(admin_page):
    page = admin_page
    page.goto("/admin/product/")
    page.evaluate(WATCH_KEYS)
    search = page.locator("form[role=search] input[name=search]")
    search.click()
    page.keyboard.type("n/?")
    expect(search).to_have_value("n/?")
    expect(page.locator(DIALOG)).to_be_hidden()
    assert page.url.endswith("/admin/product/")
    assert page.evaluate("window.keysTaken") == [["n", False], ["/", False], ["?", False]]

    page.goto("/admin/product/new/")
    page.locator("#name").click()
    page.keyboard.type("new/name?")
    expect(page.locator("#name")).to_have_value("new/name?")
    expect(page.locator(DIALOG)).to_be_hidden()
    assert "/admin/product/new/" in page.url


def test_letters_are_typed_in_a_textarea_a_select2_search_and_editable_text(admin_page):
    page = admin_page
    page.goto("/admin/transaction/new/")
    page.locator("#note").click()
    page.keyboard.type("n?")
    expect(page.locator("#note")).to_have_value("n?")

    page.locator("#lines-button").click()
    page.locator("#s2id_lines-0-product a.select2-choice").click()
    drop_search = page.locator(".select2-drop-active:visible input.select2-input")
    expect(drop_search).to_be_focused()
    page.keyboard.type("n?")
    expect(drop_search).to_have_value("n?")
    page.keyboard.press("Escape")

    page.evaluate("document.body.insertAdjacentHTML('beforeend', '<div id=\"editable\" contenteditable>x</div>')")
    page.locator("#editable").click()
    page.keyboard.type("n?/")
    expect(page.locator(DIALOG)).to_be_hidden()
    assert "/admin/transaction/new/" in page.url
    assert "n?/" in page.locator("#editable").inner_text()


@pytest.mark.parametrize("keys", ["Control+n", "Alt+n", "Meta+n", "Control+/", "Control+?"])
def test_a_key_held_with_a_modifier_stays_the_browsers(admin_page, keys):
    page = admin_page
    page.goto("/admin/product/")
    page.evaluate(WATCH_KEYS)
    unfocus(page)
    page.keyboard.press(keys)
    page.wait_for_timeout(200)
    assert page.url.endswith("/admin/product/")
    expect(page.locator(DIALOG)).to_be_hidden()
    assert [taken for _key, taken in page.evaluate("window.keysTaken") if _key not in ("Control", "Alt", "Meta")] == [
        False
    ]


def test_question_mark_opens_an_accessible_dialog_that_escape_closes(admin_page):
    page = admin_page
    page.goto("/admin/product/")
    create = page.locator(".nav-tabs a[href*='/new/']")
    create.focus()
    open_dialog_with_question_mark(page)

    dialog = page.get_by_role("dialog", name="Keyboard shortcuts")
    expect(dialog).to_be_visible()
    expect(dialog).to_have_attribute("aria-modal", "true")
    for keys in ("/", "n", "Ctrl + Enter", "?", "Esc"):
        expect(dialog.locator("#shortcuts-list")).to_contain_text(keys)
    assert serious_violations(page) == []

    page.keyboard.press("n")  # the dialog is open: no shortcut acts behind it
    page.keyboard.press("Escape")
    expect(page.locator(DIALOG)).to_be_hidden()
    expect(create).to_be_focused()  # focus is back where it was
    assert page.url.endswith("/admin/product/")


def test_the_footer_hint_opens_the_dialog_too(admin_page):
    page = admin_page
    page.goto("/admin/")
    hint = page.locator("#shortcuts-hint")
    expect(hint).to_contain_text("Keyboard shortcuts")
    hint.click()
    expect(page.locator(DIALOG)).to_be_visible()
    page.locator(f"{DIALOG} .modal-footer button").click()
    expect(page.locator(DIALOG)).to_be_hidden()
    expect(hint).to_be_focused()


def test_the_dialog_is_on_the_edit_pages_and_keyboard_only_users_find_it(admin_page):
    page = admin_page
    page.goto("/admin/transaction/new/")
    unfocus(page)
    open_dialog_with_question_mark(page)
    assert serious_violations(page) == []
    page.keyboard.press("Escape")
    expect(page.locator(DIALOG)).to_be_hidden()


@pytest.mark.parametrize("browser_locale", ["id-ID"])
def test_shortcuts_in_indonesian(admin_page, live_server):
    page = admin_page
    page.goto("/admin/product/")
    expect(page.locator("html")).to_have_attribute("lang", "id")
    with live_server.app.test_request_context(), force_locale("id"):
        title = gettext("Keyboard shortcuts")
        save = gettext("Save the form, also while typing in it")

    unfocus(page)
    page.keyboard.press("/")
    expect(page.locator("form[role=search] input[name=search]")).to_be_focused()
    unfocus(page)
    open_dialog_with_question_mark(page)
    dialog = page.get_by_role("dialog", name=title)
    expect(dialog).to_be_visible()
    expect(dialog.locator("tr[data-shortcut=save]")).to_contain_text(save)
    assert serious_violations(page) == []
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    page.keyboard.press("n")
    page.wait_for_url("**/admin/product/new/**")
    page.fill("#sku", "KEY-ID")
    page.fill("#name", "Kopi")
    page.fill("#price", "45.000,50")
    page.fill("#stock", "2")
    page.keyboard.press("Control+Enter")
    page.wait_for_url(PRODUCT_LIST)
    with live_server.session() as session:
        product = session.scalars(select(Product).where(Product.sku == "KEY-ID")).one()
        assert product.price == Decimal("45000.50")


def test_ctrl_enter_in_a_transactions_note_saves_the_draft(admin_page, live_server):
    with live_server.session() as session:
        draft = save_draft(session, [(1, 2)]).id
        session.commit()
    page = admin_page
    page.goto(f"/admin/transaction/edit/?id={draft}")
    page.locator("#note").fill("Called the customer")
    expect(page.locator("#note")).to_be_focused()
    page.keyboard.press("Control+Enter")
    expect(page.locator("div.alert-success")).to_have_count(1)
    with live_server.session() as session:
        saved = session.get(Transaction, draft)
        assert saved.note == "Called the customer"
        assert [(line.product_id, line.product_qty) for line in saved.lines] == [(1, 2)]


def test_ctrl_enter_does_not_confirm_a_delete(admin_page, live_server):
    page = admin_page
    page.goto("/admin/product/delete/?id=4")
    expect(page.locator("form[method=post] [type=submit]").first).to_be_visible()
    page.keyboard.press("Control+Enter")
    page.locator("form[method=post] [type=submit]").first.focus()
    page.keyboard.press("Control+Enter")
    page.wait_for_timeout(300)  # time for a submission that must not come
    assert "/admin/product/delete/" in page.url
    with live_server.session() as session:
        assert session.get(Product, 4) is not None


def test_screen_readers_are_told_the_shortcuts(admin_page):
    page = admin_page
    page.goto("/admin/product/")
    expect(page.locator("form[role=search] input[name=search]")).to_have_attribute("aria-keyshortcuts", "/")
    expect(page.locator(".nav-tabs a[href*='/new/']")).to_have_attribute("aria-keyshortcuts", "N")
    expect(page.locator("#shortcuts-hint")).to_have_attribute("aria-keyshortcuts", "Shift+?")
    page.goto("/admin/product/edit/?id=1")
    save = page.locator("input[type=submit][value='Save']")
    expect(save).to_have_attribute("aria-keyshortcuts", "Control+Enter Meta+Enter")
    expect(page.locator("input[type=submit][name=_continue_editing]")).not_to_have_attribute(
        "aria-keyshortcuts", "Control+Enter Meta+Enter"
    )
