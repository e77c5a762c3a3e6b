"""Numbers typed as people type them, in a real Chromium: a price typed the Indonesian way is
stored as typed (a number box would have dropped the comma: 45000,50 became 4500050), and the
transaction editor's running total reads an Indonesian quantity as the server does."""

import os
from decimal import Decimal

import pytest
from sqlalchemy import select

from adminapp.models import Product, Transaction

CHROMIUM = "/usr/bin/chromium"  # as in tests/browser/conftest.py
if not os.path.exists(CHROMIUM):
    pytest.skip(f"{CHROMIUM} does not exist: browser tests skipped", allow_module_level=True)
expect = pytest.importorskip("playwright.sync_api", reason="playwright is not installed").expect

from .test_transaction_editor import choose_product, money_as_server  # noqa: E402  (after the skips)

pytestmark = pytest.mark.browser


@pytest.mark.parametrize(
    ("browser_locale", "price", "stock", "shown_price", "shown_stock"),
    [
        ("id-ID", "45.000,50", "1.500", "45.000,50", "1.500"),
        ("id-ID", "45000,50", "1500", "45.000,50", "1.500"),
        ("en-US", "45,000.50", "1,500", "45,000.50", "1,500"),
    ],
)
def test_a_price_typed_in_the_users_language_is_stored_as_typed(
    admin_page, live_server, price, stock, shown_price, shown_stock
):
    page = admin_page
    page.goto("/admin/product/new/")
    page.fill("#sku", "LOC-1")
    page.fill("#name", "Kopi")
    for field, typed in (("#price", price), ("#stock", stock)):
        page.fill(field, "")
        page.locator(field).press_sequentially(typed)  # key by key, as a user types
        expect(page.locator(field)).to_have_value(typed)  # a text box keeps every character
    page.locator("input[type=submit][name=_continue_editing]").click()
    expect(page.locator(".alert-success")).to_have_count(1)

    with live_server.session() as session:
        product = session.scalars(select(Product).where(Product.sku == "LOC-1")).one()
        assert (product.price, product.stock) == (Decimal("45000.50"), 1500)
    # The edit form shows the number as the user writes it.
    expect(page.locator("#price")).to_have_value(shown_price)
    expect(page.locator("#stock")).to_have_value(shown_stock)


@pytest.mark.parametrize("browser_locale", ["id-ID"])
def test_the_running_total_reads_an_indonesian_quantity(staff_page, live_server):
    page = staff_page
    page.goto("/admin/transaction/new/")
    totals = page.locator("#transaction-totals")
    locale = totals.get_attribute("data-locale")
    assert locale == "id"

    def money(amount):  # as the server prints it in Indonesian
        return money_as_server(live_server, amount, locale)

    page.click("#lines-button")
    choose_product(page, 0, "001", "BRW-001")  # 19.99
    qty = page.locator("#lines-0-product_qty")
    qty.fill("")
    qty.press_sequentially("1.000")  # one thousand, in Indonesian
    expect(page.locator("#lines-0 .line-subtotal")).to_have_text(money(Decimal("19990.00")))
    expect(page.locator("#running-total")).to_have_text(money(Decimal("19990.00")))
    assert "19.990,00" in money(Decimal("19990.00"))

    qty.fill("1,5")  # not a whole number: no subtotal, as the server refuses it
    expect(page.locator("#lines-0 .line-subtotal")).to_have_text("")
    expect(page.locator("#running-total")).to_have_text(money(Decimal("0")))
    qty.fill("1.000")

    page.locator("input[type=submit][name=_continue_editing]").click()
    expect(page.locator(".alert-success")).to_have_count(1)
    with live_server.session() as session:
        txn = session.scalars(select(Transaction)).one()
        assert [line.product_qty for line in txn.lines] == [1000]
    expect(page.locator("#lines-0-product_qty")).to_have_value("1.000")
    expect(page.locator("#running-total")).to_have_text(money(Decimal("19990.00")))
