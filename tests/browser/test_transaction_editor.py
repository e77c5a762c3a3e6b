"""The transaction editor in a real browser: one table row per line, the select2 product
autocomplete, the live subtotals and running total printed as the server prints money, the
keyboard flow (choose, Tab, quantity, Enter: the next line), the stock mark while drafting
and after a refused post, the page's height with its buttons in view, axe; in English and
Indonesian. Saving with CSRF on, then posting."""

import os
import re
from decimal import Decimal

import pytest
from flask_babel import force_locale
from sqlalchemy import select

from adminapp.formatting import money as server_money
from adminapp.models import Product, Transaction
from tests.support import save_draft

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


def money_as_server(live_server, amount, locale="en"):
    """What the server's money() prints for `amount` in that language."""
    with live_server.app.test_request_context(), force_locale(locale):
        return server_money(Decimal(amount))


def test_edit_save_and_post_a_transaction(staff_page, live_server, tmp_path):
    page = staff_page
    page.on("dialog", lambda dialog: dialog.accept())  # the inline rows' "remove" asks to confirm

    page.goto("/admin/transaction/new/")
    totals = page.locator("#transaction-totals")
    locale, currency = totals.get_attribute("data-locale"), totals.get_attribute("data-currency")
    assert (locale, currency) == ("en", "IDR")

    def money(amount):
        text = money_as_server(live_server, amount)
        assert digits(text) == f"{amount:.2f}", text
        return text

    running_total = page.locator("#running-total")
    expect(running_total).to_have_text(money(Decimal("0")))

    # A new transaction has one empty line ready; "Add line" adds the others.
    rows = page.locator(".inline-field-list > .inline-field")
    expect(rows).to_have_count(1)
    expect(page.locator("#lines-0-product_qty")).to_have_value("1")
    for _ in LINES[1:]:
        page.click("#lines-button")
    expect(rows).to_have_count(3)

    # The autocomplete offers the active products only, with their price and stock.
    results = open_autocomplete(page, 0, "BRW")
    expect(results.filter(has_text="BRW-")).to_have_count(3)
    expect(results.filter(has_text="BRW-009")).to_have_count(0)
    expect(results.filter(has_text="BRW-001")).to_contain_text(f"{money(PRICES['BRW-001'])}, 10 in stock")
    search_autocomplete(page, "BRW-009")
    expect(page.locator(f"{DROP} .select2-no-results")).to_have_count(1)
    expect(page.locator(f"{DROP} .select2-result-selectable")).to_have_count(0)
    page.keyboard.press("Escape")
    expect(page.locator(DROP)).to_have_count(0)

    expected_total = Decimal("0")
    for row, typed, sku, qty in LINES:
        choose_product(page, row, typed, sku)
        expect(page.locator(f"#lines-{row} .line-stock")).to_have_text("10")
        expect(page.locator(f"#lines-{row} .line-price")).to_have_text(money(PRICES[sku]))
        page.fill(f"#lines-{row}-product_qty", str(qty))
        subtotal = PRICES[sku] * qty
        expected_total += subtotal
        expect(page.locator(f"#lines-{row} .line-subtotal")).to_have_text(money(subtotal))
        expect(running_total).to_have_text(money(expected_total))
    assert expected_total == Decimal("64.98")
    # Once chosen, a product reads "SKU — name": price and stock have their own columns.
    expect(page.locator("#s2id_lines-0-product .select2-chosen")).to_have_text("BRW-001 — Widget")

    # Changing a quantity updates that line and the total.
    page.fill("#lines-2-product_qty", "5")
    expect(page.locator("#lines-2 .line-subtotal")).to_have_text(money(Decimal("12.50")))
    expect(running_total).to_have_text(money(Decimal("67.48")))
    page.fill("#lines-2-product_qty", "4")
    expect(running_total).to_have_text(money(Decimal("64.98")))

    page.screenshot(path=str(tmp_path / "transaction-editor.png"))

    # Remove the middle line: the total drops by its subtotal.
    page.click("#lines-1 .inline-remove-field")
    expect(page.locator("#lines-1")).to_have_count(0)
    expect(running_total).to_have_text(money(Decimal("49.98")))
    expect(page.locator("#lines-0 .line-subtotal")).to_have_text(money(Decimal("39.98")))
    expect(page.locator("#lines-2 .line-subtotal")).to_have_text(money(Decimal("10.00")))

    page.click("#lines-button")  # an empty line left as it came is not sent
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


def focusser(page, row):
    """Row's product autocomplete as the keyboard reaches it."""
    return page.locator(f"#s2id_lines-{row}-product .select2-focusser")


@pytest.mark.parametrize("browser_locale", ["en-US", "id-ID"])
def test_lines_are_typed_from_the_keyboard_alone(staff_page, live_server, browser_locale):
    """Choose a product, Tab to the quantity (1 already), type it, Enter: the next line is
    there with the focus in its product, and nothing was submitted. Money reads as the
    server prints it in the page's language."""
    page = staff_page
    page.goto("/admin/transaction/new/")
    locale = page.locator("#transaction-totals").get_attribute("data-locale")
    assert locale == browser_locale[:2]
    page.focus("#note")
    page.keyboard.press("Tab")

    expected_total = Decimal("0")
    for row, typed, sku, qty in LINES:
        expect(focusser(page, row)).to_be_focused()
        page.keyboard.type(typed)
        expect(page.locator(f"{DROP} .select2-result-selectable")).to_have_count(1)
        page.keyboard.press("Enter")
        expect(page.locator(f"#s2id_lines-{row}-product .select2-chosen")).to_contain_text(sku)
        page.keyboard.press("Tab")
        qty_box = page.locator(f"#lines-{row}-product_qty")
        expect(qty_box).to_be_focused()
        expect(qty_box).to_have_value("1")  # a new line starts at one
        page.keyboard.press("ControlOrMeta+a")
        page.keyboard.type(str(qty))
        subtotal = PRICES[sku] * qty
        expected_total += subtotal
        expect(page.locator(f"#lines-{row} .line-subtotal")).to_have_text(
            money_as_server(live_server, subtotal, locale)
        )
        page.keyboard.press("Enter")  # the next line, not a submit
        expect(page.locator(f"#lines-{row + 1}")).to_have_count(1)
        expect(focusser(page, row + 1)).to_be_focused()

    assert page.url.endswith("/admin/transaction/new/")
    expect(page.locator(".alert")).to_have_count(0)
    expect(page.locator("#running-total")).to_have_text(money_as_server(live_server, expected_total, locale))
    expect(page.locator("#lines-0 .line-price")).to_have_text(money_as_server(live_server, PRICES["BRW-001"], locale))
    with live_server.session() as session:
        assert session.scalars(select(Transaction)).all() == []

    # Enter in a quantity of a line that has one after it goes to that line's product.
    page.focus("#lines-0-product_qty")
    page.keyboard.press("Enter")
    expect(focusser(page, 1)).to_be_focused()
    expect(page.locator(".inline-field-list > .inline-field")).to_have_count(4)

    page.locator("input[type=submit][name=_continue_editing]").click()
    expect(page.locator(".alert-success")).to_have_count(1)
    with live_server.session() as session:
        txn = session.scalars(select(Transaction)).one()
        assert sorted((line.product.sku, line.product_qty) for line in txn.lines) == [
            (sku, qty) for _, _, sku, qty in LINES
        ]
        assert txn.total == expected_total


def test_a_line_asking_for_more_than_the_stock_is_marked_while_drafting(staff_page):
    page = staff_page
    page.goto("/admin/transaction/new/")
    choose_product(page, 0, "001", "BRW-001")  # 10 in stock
    row, qty_box, note = page.locator("#lines-0"), page.locator("#lines-0-product_qty"), page.locator("#lines-0-note")
    expect(row).not_to_have_class(re.compile("line-short"))
    expect(note).to_be_hidden()

    page.fill("#lines-0-product_qty", "11")
    expect(row).to_have_class(re.compile("line-short"))
    expect(qty_box).to_have_attribute("aria-invalid", "true")
    expect(qty_box).to_have_attribute("aria-describedby", "lines-0-note")
    expect(note).to_be_visible()
    expect(note).to_have_text("Only 10 in stock")
    expect(qty_box).to_have_accessible_description("Only 10 in stock")

    page.fill("#lines-0-product_qty", "10")
    expect(row).not_to_have_class(re.compile("line-short"))
    expect(qty_box).not_to_have_attribute("aria-invalid", "true")
    expect(note).to_be_hidden()


def test_a_post_refused_for_stock_marks_the_short_lines(staff_page, live_server):
    """Post from the editor, with one line short of stock since it was saved: the refusal
    comes back to the editor, with the message and that line marked."""
    with live_server.session() as session:
        txn_id = save_draft(session, [(1, 2), (2, 5)]).id  # BRW-001 x 2, BRW-002 x 5
        session.get(Product, 2).stock = 3  # sold elsewhere since
        session.commit()
    page = staff_page
    page.goto(f"/admin/transaction/edit/?id={txn_id}")
    page.locator("#post-form button[type=submit]").click()

    page.wait_for_url(re.compile(rf"/admin/transaction/edit/\?id={txn_id}"))
    expect(page.locator("div.alert")).to_contain_text(f"Transaction #{txn_id} was not posted")
    expect(page.locator("div.alert")).to_contain_text("BRW-002 (Gadget): 3 in stock, 5 asked")
    expect(page.locator("#lines-1")).to_have_class(re.compile("line-short"))
    expect(page.locator("#lines-1-note")).to_have_text("Only 3 in stock")
    expect(page.locator("#lines-1-product_qty")).to_have_accessible_description("Only 3 in stock")
    expect(page.locator("#lines-0")).not_to_have_class(re.compile("line-short"))
    assert serious_violations(page) == []

    # Fixing the quantity drops the mark; the post then goes through.
    page.fill("#lines-1-product_qty", "3")
    expect(page.locator("#lines-1")).not_to_have_class(re.compile("line-short"))
    page.locator("input[type=submit][name=_continue_editing]").click()
    expect(page.locator(".alert-success")).to_have_count(1)
    page.locator("#post-form button[type=submit]").click()
    page.wait_for_url(re.compile(r"/admin/transaction/details/"))
    with live_server.session() as session:
        assert session.get(Transaction, txn_id).status == "posted"


@pytest.mark.parametrize("browser_locale", ["en-US", "id-ID"])
@pytest.mark.parametrize("lines", [5, 12])
def test_the_editor_is_compact_and_its_buttons_stay_in_view(browser, live_server, browser_locale, lines):
    """At 1366×900, a 5-line transaction's edit page is at most 1,000 px tall; with 5 or
    12 lines, Save and Post are in view without scrolling (the bar sticks to the bottom)."""
    with live_server.session() as session:
        for n in range(lines):
            session.add(Product(sku=f"TALL-{n:02}", name=f"Item {n}", price=Decimal("1.50"), stock=99))
        session.flush()
        ids = session.scalars(select(Product.id).where(Product.sku.like("TALL-%")).order_by(Product.sku)).all()
        txn_id = save_draft(session, [(pid, 1) for pid in ids]).id
        session.commit()
    viewport = {"width": 1366, "height": 900}
    context = browser.new_context(base_url=live_server.url, locale=browser_locale, viewport=viewport)
    try:
        page = context.new_page()
        errors = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        from tests.browser.conftest import STAFF, sign_in

        sign_in(page, STAFF)
        page.goto(f"/admin/transaction/edit/?id={txn_id}")
        expect(page.locator("#running-total")).to_have_text(
            money_as_server(live_server, Decimal("1.50") * lines, browser_locale[:2])
        )
        if lines == 5:
            height = page.evaluate("document.documentElement.scrollHeight")
            assert height <= 1000, height
        for button in (page.locator("input[type=submit][value]").first, page.locator("#post-form button")):
            expect(button).to_be_in_viewport(ratio=1)
        assert serious_violations(page) == []
        assert not errors
    finally:
        context.close()


@pytest.mark.parametrize("browser_locale", ["en-US", "id-ID"])
def test_the_autocomplete_speaks_the_pages_language(staff_page, live_server, browser_locale):
    """select2's own texts ("Loading more results…", "No matches found", ...) are the page's,
    in its language."""
    with live_server.session() as session:
        for n in range(12):
            session.add(Product(sku=f"MANY-{n:02}", name=f"Many {n}", price=Decimal("1.00"), stock=5))
        session.commit()
    page = staff_page
    page.goto("/admin/transaction/new/")
    totals = page.locator("#transaction-totals")
    open_autocomplete(page, 0, "MANY")  # more than a page of results
    expect(page.locator(f"{DROP} .select2-result-selectable")).to_have_count(10)
    expect(page.locator(f"{DROP} .select2-more-results")).to_have_text(totals.get_attribute("data-load-more"))
    page.keyboard.press("Escape")
    open_autocomplete(page, 0, "no-such-thing")
    expect(page.locator(f"{DROP} .select2-no-results")).to_have_text(totals.get_attribute("data-no-matches"))
    search_autocomplete(page, "")
    expect(page.locator(f"{DROP} .select2-no-results")).to_have_text(totals.get_attribute("data-input-too-short"))
    page.keyboard.press("Escape")
    expect(page.locator(".inline-field-template")).to_have_count(1)
    assert serious_violations(page) == []


def serious_violations(page):
    from tests.browser.test_accessibility import serious_violations as axe_violations

    return axe_violations(page)


def test_post_with_unsaved_changes_asks_first(staff_page, live_server):
    """Post posts the transaction as saved: with changes on the page, it asks before."""
    with live_server.session() as session:
        txn_id = save_draft(session, [(1, 2)]).id
        session.commit()
    page = staff_page
    page.goto(f"/admin/transaction/edit/?id={txn_id}")
    page.fill("#lines-0-product_qty", "3")
    asked = []

    def refuse(dialog):
        asked.append(dialog.message)
        dialog.dismiss()

    page.once("dialog", refuse)
    page.locator("#post-form button[type=submit]").click()
    expect(page.locator("#lines-0-product_qty")).to_have_value("3")  # still here, nothing lost
    assert asked == [page.locator("#transaction-totals").get_attribute("data-unsaved")]
    with live_server.session() as session:
        assert session.get(Transaction, txn_id).status == "draft"
