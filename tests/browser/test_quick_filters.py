"""The one-click filters beside the lists, in a real Chromium: one click filters the list, the
choice is marked, the counts read in the user's language, the sidebar sits on the right of a
wide list and below a narrow one, and axe finds nothing serious."""

import os
from decimal import Decimal

import pytest
from sqlalchemy import insert

from adminapp.models import Product, User, utcnow
from tests.browser.conftest import ADMIN, CHROMIUM, STAFF
from tests.support import save_draft

if not os.path.exists(CHROMIUM):
    pytest.skip(f"{CHROMIUM} does not exist: browser tests skipped", allow_module_level=True)
pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
from playwright.sync_api import expect  # noqa: E402

from tests.browser.test_accessibility import serious_violations  # noqa: E402

pytestmark = pytest.mark.browser


def choice(page, group, key):
    return page.locator(f'#quick-filters [data-filter="{group}"] a[data-choice="{key}"]')


def listed_skus(page) -> list[str]:
    return [text.strip() for text in page.locator("td.col-sku").all_inner_texts()]


@pytest.mark.parametrize("browser_locale", ["en-US", "id-ID"])
def test_one_click_filters_the_products_and_marks_the_choice(admin_page, browser_locale):
    page = admin_page
    page.goto("/admin/product/?sort=1&flt0_price_at_least=1")
    assert choice(page, "active", "0").locator(".quick-filter-count").inner_text() == "1"
    expect(choice(page, "active", "all")).to_have_attribute("aria-current", "true")

    choice(page, "active", "0").click()

    page.wait_for_url("**active_equals=0**")
    assert listed_skus(page) == ["BRW-009"]
    assert "sort=1" in page.url and "flt0_price_at_least=1" in page.url  # the sort and the other filter are kept
    expect(choice(page, "active", "0")).to_have_attribute("aria-current", "true")
    expect(choice(page, "active", "all")).not_to_have_attribute("aria-current", "true")
    assert serious_violations(page) == []

    choice(page, "active", "all").click()
    page.wait_for_url(lambda url: "active_equals" not in url)
    assert sorted(listed_skus(page)) == ["BRW-001", "BRW-002", "BRW-003", "BRW-009"]


@pytest.mark.parametrize("browser_locale", ["en-US", "id-ID"])
def test_created_by_me_and_status_in_two_clicks(page, live_server, browser_locale):
    with live_server.session() as session:
        staff = session.query(User).filter_by(username=STAFF).one()
        admin = session.query(User).filter_by(username=ADMIN).one()
        mine = save_draft(session, [(1, 1)], staff).id
        save_draft(session, [(2, 1)], admin)
        session.commit()
    from tests.browser.conftest import sign_in

    sign_in(page, STAFF)
    page.goto("/admin/transaction/")
    assert choice(page, "created_by", "me").locator(".quick-filter-count").inner_text() == "1"
    assert choice(page, "status", "draft").locator(".quick-filter-count").inner_text() == "2"

    choice(page, "created_by", "me").click()
    page.wait_for_url("**created_by_is=**")
    choice(page, "status", "draft").click()
    page.wait_for_url("**status_equals=draft**")

    assert "created_by_is=" in page.url  # the first choice stays
    ids = [text.strip() for text in page.locator("td.col-id").all_inner_texts()]
    assert ids == [str(mine)]
    expect(choice(page, "created_by", "me")).to_have_attribute("aria-current", "true")
    expect(choice(page, "status", "draft")).to_have_attribute("aria-current", "true")
    assert serious_violations(page) == []


@pytest.mark.parametrize(("browser_locale", "shown"), [("en-US", "1,000+"), ("id-ID", "1.000+")])
def test_a_capped_count_reads_in_the_users_language(admin_page, live_server, browser_locale, shown):
    now = utcnow()
    with live_server.session() as session:
        session.execute(
            insert(Product),
            [
                {
                    "sku": f"BULK-{n:05d}",
                    "name": f"Item {n}",
                    "price": Decimal(1),
                    "stock": 100,
                    "is_active": True,
                    "created_at": now,
                    "updated_at": now,
                    "version": 1,
                }
                for n in range(1100)
            ],
        )
        session.commit()
    admin_page.goto("/admin/product/")
    assert choice(admin_page, "active", "1").locator(".quick-filter-count").inner_text() == shown


def test_the_filters_sit_right_of_a_wide_list_and_below_a_narrow_one(admin_page):
    page = admin_page
    page.set_viewport_size({"width": 1366, "height": 900})
    page.goto("/admin/product/")
    table, sidebar = page.locator("table.model-list").bounding_box(), page.locator("#quick-filters").bounding_box()
    assert sidebar["x"] >= table["x"] + table["width"]
    assert sidebar["y"] < table["y"] + table["height"]  # beside it, not under it

    page.set_viewport_size({"width": 600, "height": 900})
    table, sidebar = page.locator("table.model-list").bounding_box(), page.locator("#quick-filters").bounding_box()
    assert sidebar["y"] >= table["y"] + table["height"]
    assert serious_violations(page) == []
