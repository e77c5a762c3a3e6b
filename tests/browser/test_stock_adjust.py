"""Receiving stock from a product's page in Chromium: the link, the form, the message, the
stock and its movement; the form passes axe."""

import os

import pytest
from sqlalchemy import select

from adminapp.models import Product, StockMovement
from tests.browser.conftest import CHROMIUM
from tests.browser.test_accessibility import serious_violations

if not os.path.exists(CHROMIUM):
    pytest.skip(f"{CHROMIUM} does not exist: browser tests skipped", allow_module_level=True)
expect = pytest.importorskip("playwright.sync_api", reason="playwright is not installed").expect

pytestmark = pytest.mark.browser


def test_staff_receive_stock_from_the_product_page(staff_page, live_server):
    page = staff_page
    page.goto("/admin/product/details/?id=1")
    page.click("#adjust-link")
    page.wait_for_url("**/admin/product/adjust/?id=1")
    assert "BRW-001 — Widget: 10 in stock." in page.inner_text("#adjust-product")
    assert serious_violations(page) == []

    page.select_option("#kind", "receipt")
    page.fill("#quantity", "0")
    page.click("#adjust-form button[type=submit]")
    expect(page.locator("#adjust-form")).to_contain_text("Enter a quantity other than zero.")
    assert serious_violations(page) == []  # the form with its error

    page.fill("#quantity", "12")
    page.fill("#reference", "DN-4471")
    page.click("#adjust-form button[type=submit]")
    page.wait_for_url("**/admin/product/details/?id=1")
    assert "Received 12 of BRW-001 — Widget: 22 in stock." in page.inner_text("div.alert")
    with live_server.session() as session:
        assert session.get(Product, 1).stock == 22
        latest = select(StockMovement).where(StockMovement.product_id == 1).order_by(StockMovement.id.desc())
        last = session.scalars(latest).first()
        assert (last.kind, last.quantity, last.stock_after, last.reference) == ("receipt", 12, 22, "DN-4471")
