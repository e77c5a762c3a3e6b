"""A working day in a real browser: sign in, fix a product form, build a transaction from
the keyboard alone, see it on the dashboard chart, delete a draft after confirming, switch
to Indonesian, sign out."""

import os
from decimal import Decimal

import pytest
from sqlalchemy import select

from adminapp.models import Product, Transaction
from tests.browser.conftest import ADMIN, CHROMIUM, sign_in
from tests.support import save_draft

if not os.path.exists(CHROMIUM):
    pytest.skip(f"{CHROMIUM} does not exist: browser tests skipped", allow_module_level=True)
expect = pytest.importorskip("playwright.sync_api", reason="playwright is not installed").expect

pytestmark = pytest.mark.browser
DROP = ".select2-drop-active:visible"


def test_a_product_form_with_an_error_is_fixed_and_saved(page, live_server):
    sign_in(page, ADMIN)
    page.goto("/admin/product/new/")
    page.fill("#sku", "KBD-100")
    page.fill("#name", "Keyboard")
    page.fill("#price", "12.345")
    page.fill("#stock", "4")
    page.click("input[type=submit][value='Save']")

    price_error = page.locator("#price ~ .invalid-feedback")
    expect(price_error).to_contain_text("at most 2 decimal places")
    expect(page.locator("#name")).to_have_value("Keyboard")  # the input is kept
    page.fill("#price", "12.34")
    page.click("input[type=submit][value='Save']")

    page.wait_for_url("**/admin/product/")
    with live_server.session() as session:
        product = session.scalar(select(Product).where(Product.sku == "KBD-100"))
        assert product.price == Decimal("12.34")


def test_a_transaction_is_built_from_the_keyboard_and_shows_on_the_dashboard(page, live_server):
    sign_in(page, ADMIN)
    page.goto("/admin/transaction/new/")
    page.on("dialog", lambda dialog: dialog.accept())

    page.focus("#note")
    page.keyboard.press("Tab")  # into the empty line a new transaction starts with
    for row, search, qty in ((0, "001", "2"), (1, "002", "1"), (2, "003", "5")):
        add_line_with_keyboard(page, row, search, qty)
    # Remove the last line from the keyboard: focus its remove control, press Enter.
    remove = page.locator("#lines-2 .inline-remove-field")
    remove.focus()
    expect(remove).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("#lines-2")).to_have_count(0)
    expect(page.locator("#running-total")).to_contain_text("44.98")  # 2 x 19.99 + 1 x 5.00

    page.locator("input[type=submit][value='Save and Continue Editing']").focus()
    page.keyboard.press("Enter")
    page.wait_for_url("**/admin/transaction/edit/**")
    page.locator("#post-form button").focus()
    page.keyboard.press("Enter")
    page.wait_for_url("**/admin/transaction/details/**")

    with live_server.session() as session:
        txn = session.scalars(select(Transaction)).one()
        assert (txn.status, txn.total, len(txn.lines)) == ("posted", Decimal("44.98"), 2)

    page.goto("/admin/")
    bars = page.locator("#sales-chart rect.sales-bar")
    expect(bars).to_have_count(30)
    today = bars.nth(29)
    assert Decimal(today.get_attribute("data-amount")) == Decimal("44.98")
    assert float(today.get_attribute("height")) > 0


def add_line_with_keyboard(page, row, search, qty):
    """From the focused product of `row`: type to search, Enter to choose, Tab to the quantity
    (1 to start), type it, Enter: the next line is added, with the focus in its product."""
    expect(page.locator(f"#s2id_lines-{row}-product .select2-focusser")).to_be_focused()
    page.keyboard.type(search)
    expect(page.locator(f"{DROP} .select2-result-selectable")).to_have_count(1)
    page.keyboard.press("Enter")
    expect(page.locator(f"#s2id_lines-{row}-product .select2-chosen")).to_contain_text(search)
    page.keyboard.press("Tab")
    expect(page.locator(f"#lines-{row}-product_qty")).to_be_focused()
    expect(page.locator(f"#lines-{row}-product_qty")).to_have_value("1")
    page.keyboard.press("ControlOrMeta+a")
    page.keyboard.type(qty)
    page.keyboard.press("Enter")
    expect(page.locator(f"#s2id_lines-{row + 1}-product .select2-focusser")).to_be_focused()


def test_a_draft_is_deleted_through_the_confirmation_page(page, live_server):
    with live_server.session() as session:
        txn_id = save_draft(session, [(1, 2)]).id
        session.commit()
    sign_in(page, ADMIN)
    page.goto("/admin/transaction/")
    page.click(f"a[title='Delete Record'][href*='id={txn_id}&']")

    page.wait_for_url("**/admin/transaction/delete/**")
    expect(page.locator("#deletion-goes-with li")).to_have_text(["Line: 2 × BRW-001 — Widget"])
    page.click("text=Yes, I'm sure")

    page.wait_for_url("**/admin/transaction/?page_size=50")  # back to the list it came from
    expect(page.locator(".alert-success")).to_contain_text("was deleted")
    with live_server.session() as session:
        assert session.get(Transaction, txn_id) is None


def test_switch_to_indonesian_and_sign_out(page, live_server):
    sign_in(page, ADMIN)
    page.click("#language-form button[value='id']")
    page.goto("/admin/product/")
    expect(page.locator("html")).to_have_attribute("lang", "id")
    expect(page.locator(".nav-tabs")).to_contain_text("Buat")
    page.goto("/admin/transaction/new/")
    expect(page.locator("body")).to_contain_text("Simpan")

    page.click("form[action$='/logout'] button")
    page.wait_for_url("**/login")
    page.goto("/admin/")
    page.wait_for_url("**/login?next=**")
