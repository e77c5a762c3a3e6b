"""The lists as a user sees them in a real Chromium."""

import os

import pytest

CHROMIUM = "/usr/bin/chromium"  # as in tests/browser/conftest.py
if not os.path.exists(CHROMIUM):
    pytest.skip(f"{CHROMIUM} does not exist: browser tests skipped", allow_module_level=True)
pytest.importorskip("playwright.sync_api", reason="playwright is not installed")

pytestmark = pytest.mark.browser

ALIGNED = "el => getComputedStyle(el).textAlign"


def test_numbers_are_right_aligned_and_text_is_not(staff_page):
    staff_page.goto("/admin/product/")
    for column in ("price", "stock"):
        cell = staff_page.locator(f"td.col-{column}").first
        assert cell.evaluate(ALIGNED) == "right", column
        assert staff_page.locator(f"th.col-{column}").first.evaluate(ALIGNED) == "right", column
    assert staff_page.locator("td.col-name").first.evaluate(ALIGNED) in ("left", "start")
