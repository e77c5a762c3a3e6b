"""The transaction editor in a real browser: select2 product autocomplete, the live
subtotals and running total, removing a line, saving with CSRF on, then posting."""

import os
import re
from decimal import Decimal

import pytest
from sqlalchemy import select

from adminapp.models import Product, Transaction

CHROMIUM = "/usr/bin/chromium"  # as in tests/browser/conftest.py
if not os.path.exists(CHROMIUM):
    pytest.skip(f"{CHROMIUM} does not exist: browser tests skipped", allow_module_level=True)
expect = pytest.importorskip("playwright.sync_api", reason="playwright is not installed").expect

pytestmark = pytest.mark.browser

# (row, text typed into the autocomplete, SKU picked, quantity)
LINES = [(0, "001", "BRW-001", 2), (1, "002", "BRW-002", 3), (2, "003", "BRW-003", 4)]
# The open autocomplete. select2 3.5 leaves `select2-drop-active` on a closed (hidden) drop
# while its field keeps the focus, so match the visible one only.
DROP = ".select2-drop-active:visible"
PRICES = {"BRW-001": Decimal("19.99"), "BRW-002": Decimal("5.00"), "BRW-003": Decimal("2.50")}


def digits(text):
    """`IDR 1,234.50` -> `1234.50`: the amount alone, whatever the currency sign looks like."""
    return re.sub(r"[^\d.\-]", "", text)


def open_autocomplete(page, row, text):
    """Open row's product autocomplete and search for `text`; returns the result items."""
    page.click(f"#s2id_lines-{row}-product a.select2-choice")
    return search_autocomplete(page, text)


def search_autocomplete(page, text):
    """Type `text` into the open autocomplete's search box, as a user would."""
    search = page.locator(f"{DROP} input.select2-input")
    expect(search).to_be_focused()
    search.fill("")
    page.keyboard.type(text)
    return page.locator(f"{DROP} .select2-results li")


def choose_product(page, row, text, sku):
    """Pick `sku` in row's autocomplete after typing `text` (which must match it alone)."""
    open_autocomplete(page, row, text)
    choice = page.locator(f"{DROP} .select2-result-selectable")
    expect(choice).to_have_count(1)
    expect(choice.nth(0)).to_contain_text(sku)
    choice.nth(0).click()
    expect(page.locator(DROP)).to_have_count(0)
    expect(page.locator(f"#s2id_lines-{row}-product .select2-chosen")).to_contain_text(sku)


def test_edit_save_and_post_a_transaction(staff_page, live_server, tmp_path):
    page = staff_page
    page.on("dialog", lambda dialog: dialog.accept())  # the inline rows' "remove" asks to confirm

    page.goto("/admin/transaction/new/")
    totals = page.locator("#transaction-totals")
    locale, currency = totals.get_attribute("data-locale"), totals.get_attribute("data-currency")
    assert (locale, currency) == ("en", "IDR")

    def money(amount):
        # What the page prints: the same Intl.NumberFormat the editor uses, fed a decimal string.
        text = page.evaluate(
            "([amount, locale, currency]) => new Intl.NumberFormat(locale,"
            " {style: 'currency', currency: currency, minimumFractionDigits: 2, maximumFractionDigits: 2})"
            ".format(amount)",
            [f"{amount:.2f}", locale, currency],
        )
        assert digits(text) == f"{amount:.2f}", text
        return text

    running_total = page.locator("#running-total")
    expect(running_total).to_have_text(money(Decimal("0")))

    for _ in LINES:
        page.click("#lines-button")
    expect(page.locator(".inline-field-list > .inline-field")).to_have_count(3)

    # The autocomplete offers the active products only.
    results = open_autocomplete(page, 0, "BRW")
    expect(results.filter(has_text="BRW-")).to_have_count(3)
    expect(results.filter(has_text="BRW-009")).to_have_count(0)
    search_autocomplete(page, "BRW-009")
    expect(page.locator(f"{DROP} .select2-no-results")).to_have_count(1)
    expect(page.locator(f"{DROP} .select2-result-selectable")).to_have_count(0)
    page.keyboard.press("Escape")
    expect(page.locator(DROP)).to_have_count(0)

    expected_total = Decimal("0")
    for row, typed, sku, qty in LINES:
        choose_product(page, row, typed, sku)
        page.fill(f"#lines-{row}-product_qty", str(qty))
        subtotal = PRICES[sku] * qty
        expected_total += subtotal
        expect(page.locator(f"#lines-{row} .line-subtotal")).to_have_text(money(subtotal))
        expect(running_total).to_have_text(money(expected_total))
    assert expected_total == Decimal("64.98")

    # Changing a quantity updates that line and the total.
    page.fill("#lines-2-product_qty", "5")
    expect(page.locator("#lines-2 .line-subtotal")).to_have_text(money(Decimal("12.50")))
    expect(running_total).to_have_text(money(Decimal("67.48")))
    page.fill("#lines-2-product_qty", "4")
    expect(running_total).to_have_text(money(Decimal("64.98")))

    # The viewport is tall enough for the whole editor: a full_page screenshot resizes the
    # viewport for a moment, and the page's scroll position can then jump under the next click.
    page.screenshot(path=str(tmp_path / "transaction-editor.png"))

    # Remove the middle line: the total drops by its subtotal.
    page.click("#lines-1 .inline-remove-field")
    expect(page.locator("#lines-1")).to_have_count(0)
    expect(running_total).to_have_text(money(Decimal("49.98")))
    expect(page.locator("#lines-0 .line-subtotal")).to_have_text(money(Decimal("39.98")))
    expect(page.locator("#lines-2 .line-subtotal")).to_have_text(money(Decimal("10.00")))

    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator(".alert-success")).to_contain_text("was added.")

    with live_server.session() as session:
        txn = session.scalars(select(Transaction)).one()
        assert txn.status == "draft"
        assert txn.total == Decimal("49.98")
        assert sorted((line.product.sku, line.product_qty) for line in txn.lines) == [("BRW-001", 2), ("BRW-003", 4)]
        txn_id = txn.id

    page.goto(f"/admin/transaction/edit/?id={txn_id}")
    expect(page.locator("#running-total")).to_have_text(money(Decimal("49.98")))
    page.locator("#post-form button[type=submit]").click()
    page.wait_for_url(re.compile(r"/admin/transaction/details/"))
    expect(page.locator(".alert-success")).to_contain_text(f"Transaction #{txn_id} posted.")
    expect(page.locator("table .badge")).to_have_text("posted")
    expect(page.locator("#transaction-total")).to_contain_text("49.98")

    with live_server.session() as session:
        assert session.get(Transaction, txn_id).status == "posted"
        stock = {p.sku: p.stock for p in session.scalars(select(Product))}
        assert stock == {"BRW-001": 8, "BRW-002": 10, "BRW-003": 6, "BRW-009": 10}
