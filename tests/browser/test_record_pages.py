"""Records you can click and that say their name, and forms sized to what they hold, in a
real Chromium."""

import os
import re

import pytest

from tests.browser.conftest import CHROMIUM

if not os.path.exists(CHROMIUM):
    pytest.skip(f"{CHROMIUM} does not exist: browser tests skipped", allow_module_level=True)
expect = pytest.importorskip("playwright.sync_api", reason="playwright is not installed").expect

pytestmark = pytest.mark.browser


def width(locator) -> float:
    return locator.evaluate("el => el.getBoundingClientRect().width")


def test_a_product_is_opened_from_its_sku_saved_and_named_in_the_message(staff_page):
    staff_page.goto("/admin/product/?search=001")
    staff_page.locator("td.col-sku a").first.click()
    expect(staff_page.locator("#record-title")).to_contain_text("001")
    expect(staff_page.locator("#breadcrumbs [aria-current=page]")).to_contain_text("001")
    staff_page.fill("#name", "Renamed product")
    staff_page.click("input[type=submit][value='Save']")

    staff_page.wait_for_url(re.compile(r"/admin/product/\?search=001(&|$)"))  # back where the user was
    message = staff_page.locator(".alert-success")
    expect(message).to_contain_text("Renamed product” was changed.")
    message.locator("a").click()
    expect(staff_page.locator("#name")).to_have_value("Renamed product")


def test_cancel_is_a_plain_link_back_to_the_list(staff_page):
    staff_page.goto("/admin/product/?search=001")
    staff_page.locator("td.col-sku a").first.click()
    cancel = staff_page.locator("#cancel-link")
    assert cancel.evaluate("el => el.tagName") == "A" and cancel.get_attribute("role") is None
    assert "btn-danger" not in cancel.get_attribute("class")
    cancel.click()
    staff_page.wait_for_url(re.compile(r"/admin/product/\?search=001(&|$)"))


def test_code_and_amount_inputs_are_sized_to_what_they_hold(staff_page):
    staff_page.goto("/admin/product/new/")
    name = width(staff_page.locator("#name"))
    for field in ("#sku", "#price", "#stock"):
        assert width(staff_page.locator(field)) < name / 2, field


@pytest.mark.parametrize("browser_locale", ["en-US", "id-ID"])
def test_a_filters_operation_is_shown_whole(staff_page, browser_locale):
    staff_page.goto("/admin/product/")
    staff_page.click("text=" + ("Add Filter" if browser_locale == "en-US" else "Tambah Filter"))
    staff_page.click(
        ".field-filters a:has-text('Stock')" if browser_locale == "en-US" else ".field-filters a:has-text('Stok')"
    )
    chosen = staff_page.locator(".filters .select2-container.filter-op .select2-chosen").first
    expect(chosen).to_be_visible()
    assert chosen.evaluate("el => el.scrollWidth <= el.clientWidth"), chosen.inner_text()
