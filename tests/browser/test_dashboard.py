"""The dashboard as a user sees it in a real Chromium at 1366×900, in English and Indonesian:
the sales chart's first and last date labels and its y-axis inside the drawing, the cards'
labels on one line, the recent actions as sentences, and axe-core finding nothing serious."""

import os
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import update

from adminapp.domain import sales
from adminapp.models import Product, Transaction
from tests.browser.conftest import CHROMIUM, STAFF, sign_in
from tests.support import as_dba, save_draft

if not os.path.exists(CHROMIUM):
    pytest.skip(f"{CHROMIUM} does not exist: browser tests skipped", allow_module_level=True)
pytest.importorskip("playwright.sync_api", reason="playwright is not installed")

AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"

pytestmark = pytest.mark.browser

LAPTOP = {"width": 1366, "height": 900}
BOX = "el => { const r = el.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; }"


@pytest.fixture
def shop_with_sales(live_server):
    """A month of posted sales of a product that costs Rp 142.500 (amounts in the millions),
    the first on the chart's first day and the last today."""
    with live_server.session() as session:
        coffee = Product(sku="KOPI-250G", name="Kopi Luwak 250 g", price=Decimal("142500.00"), stock=10_000)
        session.add(coffee)
        session.flush()
        now = datetime.now(UTC)
        for days_ago, qty in ((29, 3), (20, 12), (9, 25), (3, 7), (0, 5)):
            txn = save_draft(session, [(coffee.id, qty)])
            sales.post(session, txn, None)
            session.flush()
            if days_ago:
                at = now - timedelta(days=days_ago)
                session.execute(
                    update(Transaction).where(Transaction.id == txn.id).values(posted_at=at, created_at=at),
                    execution_options=as_dba(session),
                )
        session.commit()
    return live_server


def open_dashboard(page, username=STAFF):
    page.set_viewport_size(LAPTOP)
    sign_in(page, username)
    page.goto("/admin/")
    return page


def box(locator):
    return locator.evaluate(BOX)


def inside(inner, outer, slack=0.5) -> bool:
    """Whether the box (left, top, right, bottom) ``inner`` lies within ``outer``."""
    left, top, right, bottom = inner
    out_left, out_top, out_right, out_bottom = outer
    horizontally = left >= out_left - slack and right <= out_right + slack
    return horizontally and top >= out_top - slack and bottom <= out_bottom + slack


@pytest.mark.parametrize("browser_locale", ["en-US", "id-ID"])
def test_the_charts_date_labels_and_y_axis_are_inside_the_chart(page, shop_with_sales, browser_locale):
    open_dashboard(page)
    chart = page.locator("#sales-chart")
    frame = box(chart)

    dates = page.locator("#sales-chart .x-tick")
    assert dates.count() >= 2
    for i in (0, dates.count() - 1):  # the first and the last: the ones that were cut off
        label = dates.nth(i)
        assert label.text_content().strip(), i
        assert inside(box(label), frame), (label.text_content(), box(label), frame)

    ticks = page.locator("#sales-chart .y-tick")
    assert ticks.count() >= 3
    labels = [ticks.nth(i).text_content() for i in range(ticks.count())]
    assert labels[0] == "0"
    # The top of the axis is above the best day (25 × 142,500 = 3,562,500), in the locale's short form.
    assert labels[-1] == {"en-US": "4M", "id-ID": "4\u00a0jt"}[browser_locale], labels
    for i in range(ticks.count()):
        assert inside(box(ticks.nth(i)), frame), labels[i]
    bars = page.locator("#sales-chart .sales-bar")
    assert bars.count() == 30
    assert box(ticks.last)[2] < box(bars.first)[0], "the y labels are left of the bars"


@pytest.mark.parametrize("browser_locale", ["id-ID", "en-US"])
def test_card_labels_stay_on_one_line(page, shop_with_sales, browser_locale):
    open_dashboard(page)
    assert (
        page.locator("#dashboard-counts .card-title").first.text_content().strip()
        == {
            "id-ID": "Produk",
            "en-US": "Products",
        }[browser_locale]
    )
    titles = page.locator("#dashboard-counts .card-title")
    assert titles.count() == 5
    for i in range(titles.count()):
        title = titles.nth(i)
        lines = title.evaluate(
            "el => Math.round(el.getBoundingClientRect().height / parseFloat(getComputedStyle(el).lineHeight))"
        )
        assert lines == 1, title.text_content()
    # The figures line up, whatever their labels.
    tops = {round(box(page.locator("#dashboard-counts .card-text").nth(i))[1]) for i in range(5)}
    assert len(tops) == 1, tops


@pytest.mark.parametrize("browser_locale", ["en-US", "id-ID"])
def test_the_figures_are_a_table_too_and_axe_finds_nothing_serious(page, shop_with_sales, browser_locale):
    if not AXE.exists():
        pytest.skip(f"{AXE.name} is missing: run `npm ci` first")
    open_dashboard(page, "browser-admin")
    page.goto("/admin/?recent=all")  # everyone's recent actions: sentences with links to the sales
    assert page.locator("#recent-actions li a[href*='/admin/transaction/details/']").count() >= 5
    page.locator("details.sales-figures summary").click()
    rows = page.locator("#sales-table tbody tr")
    assert rows.count() == 30
    today = rows.last.locator("td").nth(1).text_content()
    assert today == {"en-US": "IDR\u00a0712,500.00", "id-ID": "Rp\u00a0712.500,00"}[browser_locale]
    page.add_script_tag(path=str(AXE))
    violations = page.evaluate("async () => (await axe.run(document)).violations")
    serious = [f"{v['id']}: {v['help']}" for v in violations if v["impact"] in ("serious", "critical")]
    assert serious == []


@pytest.mark.parametrize("browser_locale", ["en-US", "id-ID"])
def test_the_servers_money_reads_as_the_browsers(page, live_server, browser_locale):
    """One money format per language: the server's (the lists, the chart, the history) is the
    one the browser's Intl writes (the transaction editor's running total)."""
    sign_in(page, STAFF)
    language = browser_locale[:2]
    with live_server.app.test_request_context(headers={"Accept-Language": language}):
        from adminapp.formatting import money

        amounts = [Decimal("0.00"), Decimal("19.99"), Decimal("142500.00"), Decimal("-1234567.50")]
        server = [money(amount) for amount in amounts]
    browser = page.evaluate(
        """([language, amounts]) => amounts.map(a => new Intl.NumberFormat(language,
             {style: "currency", currency: "IDR", minimumFractionDigits: 2, maximumFractionDigits: 2}).format(a))""",
        [language, [str(amount) for amount in amounts]],
    )
    assert server == browser
    assert server[2] == {"en": "IDR\u00a0142,500.00", "id": "Rp\u00a0142.500,00"}[language]
