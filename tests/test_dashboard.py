"""The dashboard at /admin/, through the test client on a real database.

Its counts (products, active, low stock, drafts, posted today), the low-stock list and
its configurable threshold, the 30-day chart of posted sales (one aggregate query, in
the configured time zone), the user's recent actions and the money in the configured
currency. Transactions are made through the sales operations, as the app makes them;
past sales get their `posted_at` set directly in the database.
"""

import html
import re
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from babel.dates import format_date, format_datetime, format_skeleton
from sqlalchemy import update

from adminapp.domain import sales
from adminapp.extensions import db as _db
from adminapp.models import Product, Transaction, TransactionProduct
from tests.support import as_dba, count_statements, make_app, recent_items, save_draft, signed_in, statements

DASHBOARD = "/admin/"
COUNTS = ("product-count", "active-count", "low-stock-count", "draft-count", "posted-today")
CHART_DAYS = 30
BAR = re.compile(
    r'<rect class="sales-bar"[^>]*\bdata-day="([\d-]+)" data-amount="([^"]*)">\s*<title>(.*?)</title>', re.S
)


def count(response, element_id) -> int:
    """The figure of one dashboard card, by the id of its link."""
    match = re.search(rf'<a id="{element_id}" href="[^"]*">\s*([^<]*?)\s*</a>', response.text)
    assert match, f"no #{element_id} on the dashboard"
    return int(match.group(1).replace(",", ""))


def counts(response) -> dict[str, int]:
    assert response.status_code == 200, response.text[:500]
    return {element_id: count(response, element_id) for element_id in COUNTS}


def card_link(response, element_id) -> str:
    match = re.search(rf'<a id="{element_id}" href="([^"]*)"', response.text)
    assert match, f"no #{element_id} on the dashboard"
    return html.unescape(match.group(1))


def card_label(response, element_id) -> str:
    match = re.search(rf'<h2 [^>]*id="{element_id}-label">(.*?)</h2>', response.text, re.S)
    assert match, f"no label for #{element_id}"
    return html.unescape(match.group(1)).strip()


def card_note(response, element_id) -> str:
    """What qualifies a card's figure (the low-stock threshold), under it."""
    match = re.search(rf'<p [^>]*id="{element_id}-note">(.*?)</p>', response.text, re.S)
    assert match, f"no note under #{element_id}"
    return html.unescape(match.group(1)).strip()


def low_stock_rows(response) -> list[tuple[str, str, int]]:
    """(SKU, name, stock) of the low-stock table, in order; [] when there is no table."""
    table = re.search(r'<table[^>]*\bid="low-stock".*?</table>', response.text, re.S)
    if table is None:
        return []
    rows = []
    for row in re.findall(r"<tr>(.*?)</tr>", table.group(0).split("<tbody>", 1)[1], re.S):
        sku, name, stock = (
            html.unescape(re.sub(r"<[^>]+>", "", c)).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
        )
        rows.append((sku, name, int(stock.replace(",", ""))))
    return rows


def chart(response) -> dict[date, Decimal]:
    """The chart's bars: {day: amount}, in order."""
    return {date.fromisoformat(day): Decimal(amount) for day, amount, _ in BAR.findall(response.text)}


def bar_title(response, day: date) -> str:
    for bar_day, _, title in BAR.findall(response.text):
        if bar_day == day.isoformat():
            return html.unescape(title)
    raise AssertionError(f"no bar for {day}")


def chart_title(response) -> str:
    match = re.search(r'<title id="sales-chart-title">(.*?)</title>', response.text, re.S)
    assert match, "no chart on the dashboard"
    return html.unescape(match.group(1))


def sales_table(response) -> dict[date, str]:
    """The chart's figures as its table says them: {day: amount as shown}, in order."""
    table = re.search(r'<table[^>]*\bid="sales-table".*?</table>', response.text, re.S)
    assert table, "no table of the chart's figures"
    body = table.group(0).split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    amounts = [html.unescape(cell) for cell in re.findall(r'<td class="text-right">(.*?)</td>', body, re.S)]
    return dict(zip(chart(response), amounts, strict=True))


def listed(response, column) -> list[str]:
    """A list column's cells as text (the record's link taken off the first column)."""
    cells = re.findall(rf'<td class="col-{column}">\s*(.*?)\s*</td>', response.text, re.S)
    return [re.sub(r"</?a[^>]*>", "", cell) for cell in cells]


def zone(app) -> ZoneInfo:
    return ZoneInfo(app.config["BABEL_DEFAULT_TIMEZONE"])


def local_today(app) -> date:
    return datetime.now(zone(app)).date()


def local_time(app, day: date, hour: int, minute: int = 0) -> datetime:
    """A local wall-clock time of the app's zone, as the aware UTC datetime the database stores."""
    return datetime.combine(day, time(hour, minute), tzinfo=zone(app)).astimezone(UTC)


def set_posted_at(session, txn_ids, at):
    """Move posted_at (and created_at: a sale is posted after it was created) in the database
    directly, with the guards lifted as a DBA would (the app keeps posted transactions as they are)."""
    table = Transaction.__table__
    session.execute(
        update(table).where(table.c.id.in_(txn_ids)).values(posted_at=at, created_at=at),
        execution_options=as_dba(session),
    )


# ------------------------------------------------------------------ fixtures


@pytest.fixture
def draft(db):
    """A draft saved through the sales operations: `draft((product_id, qty), ...)`."""

    def make(*lines):
        with db() as session:
            return save_draft(session, lines).id

    return make


@pytest.fixture
def posted(db, draft):
    """A posted transaction; `at=` (an aware datetime) moves its posted_at in the database."""

    def make(*lines, at=None):
        txn_id = draft(*lines)
        with db() as session:
            sales.post(session, session.get(Transaction, txn_id), None)
        if at is not None:
            with db() as session:
                set_posted_at(session, [txn_id], at)
        return txn_id

    return make


@pytest.fixture
def voided(db, posted):
    def make(*lines, at=None):
        txn_id = posted(*lines, at=at)
        with db() as session:
            sales.void(session, session.get(Transaction, txn_id), None, "test")
        return txn_id

    return make


@pytest.fixture
def sell(db):
    """Many posted sales in one database transaction, each through save_draft and post:
    `sell((product_id, qty, posted_at), ...)`; a posted_at of None keeps the real one."""

    def make(*sold):
        with db() as session:
            for product_id, qty, at in sold:
                txn = Transaction(lines=[TransactionProduct(product=session.get(Product, product_id), product_qty=qty)])
                session.add(txn)
                sales.save_draft(session, txn, None, is_new=True)
                session.flush()
                sales.post(session, txn, None)
                session.flush()
                if at is not None:
                    set_posted_at(session, [txn.id], at)

    return make


@pytest.fixture
def other_app(app, database_url, tmp_path):
    """`other_app(**config)`: another app on the same database, with its own settings."""
    made = []

    def build(**overrides):
        made.append(make_app(database_url, tmp_path, **overrides))
        return made[-1]

    yield build
    for other in made:
        with other.app_context():
            _db.session.remove()
            _db.engine.dispose()


@pytest.fixture
def threshold(app):
    return app.config["LOW_STOCK_THRESHOLD"]


@pytest.fixture
def stockroom(make_product):
    """A product with plenty of stock to sell from (it never counts as low)."""
    return make_product(sku="ZZ-STOCK", name="Stockroom", price="10.00", stock=100_000)


# -------------------------------------------------------------------- counts


def test_empty_dashboard_shows_zeros(admin_client):
    response = admin_client.get(DASHBOARD)

    assert counts(response) == dict.fromkeys(COUNTS, 0)
    assert low_stock_rows(response) == []
    assert "No active product is low on stock." in response.text
    assert set(chart(response).values()) == {Decimal("0.00")}


def test_counts_are_the_real_figures(app, admin_client, make_product, draft, posted, voided, threshold, stockroom):
    make_product(sku="HIGH-1", stock=threshold + 1)
    make_product(sku="AT-1", stock=threshold)
    make_product(sku="ZERO-1", stock=0)
    make_product(sku="OFF-LOW", stock=0, is_active=False)  # not for sale: not "low stock"
    make_product(sku="OFF-HIGH", stock=threshold + 50, is_active=False)
    draft((stockroom, 1))
    draft((stockroom, 2))
    posted((stockroom, 1))
    posted((stockroom, 3))
    voided((stockroom, 1))  # posted today, then voided: no longer posted
    posted((stockroom, 1), at=local_time(app, local_today(app) - timedelta(days=1), 12))

    assert counts(admin_client.get(DASHBOARD)) == {
        "product-count": 6,  # the stockroom too
        "active-count": 4,
        "low-stock-count": 2,  # AT-1 and ZERO-1: active, at or below the threshold
        "draft-count": 2,
        "posted-today": 2,
    }


def test_cards_link_to_lists_of_the_same_records(app, admin_client, make_product, draft, posted, threshold, stockroom):
    for n in range(3):
        make_product(sku=f"LOW-{n}", stock=threshold - n if threshold >= n else 0)
    make_product(sku="OFF-1", stock=0, is_active=False)
    make_product(sku="HIGH-1", stock=threshold + 1)
    draft((stockroom, 1))
    draft((stockroom, 1))
    posted((stockroom, 1))
    posted((stockroom, 1), at=datetime.now(UTC) - timedelta(days=2))
    page = admin_client.get(DASHBOARD)

    assert count(page, "posted-today") == 1
    for element_id, column in (
        ("product-count", "sku"),
        ("active-count", "sku"),
        ("low-stock-count", "sku"),
        ("draft-count", "id"),
        ("posted-today", "id"),
    ):
        listing = admin_client.get(card_link(page, element_id))
        assert listing.status_code == 200, element_id
        assert len(listed(listing, column)) == count(page, element_id), element_id
    low_list = admin_client.get(card_link(page, "low-stock-count"))
    assert sorted(listed(low_list, "sku")) == ["LOW-0", "LOW-1", "LOW-2"]


# ----------------------------------------------------------------- low stock


def test_low_stock_list_names_the_active_products_at_or_below_the_threshold(admin_client, make_product, threshold):
    make_product(sku="B-LOW", name="Bolts", stock=threshold)
    make_product(sku="A-LOW", name="Anchors", stock=threshold)
    make_product(sku="C-EMPTY", name="Clamps", stock=0)
    make_product(sku="D-ENOUGH", name="Dowels", stock=threshold + 1)
    make_product(sku="E-RETIRED", name="Eyelets", stock=0, is_active=False)

    response = admin_client.get(DASHBOARD)

    # Lowest stock first, then by SKU.
    assert low_stock_rows(response) == [
        ("C-EMPTY", "Clamps", 0),
        ("A-LOW", "Anchors", threshold),
        ("B-LOW", "Bolts", threshold),
    ]
    assert card_label(response, "low-stock-count") == "Low stock"
    assert card_note(response, "low-stock-count") == f"at or below {threshold}"


def test_only_inactive_products_low_on_stock_leave_the_list_empty(admin_client, make_product):
    make_product(sku="RETIRED-1", stock=0, is_active=False)

    response = admin_client.get(DASHBOARD)

    assert count(response, "low-stock-count") == 0
    assert low_stock_rows(response) == []
    assert "No active product is low on stock." in response.text


def test_low_stock_list_shows_the_ten_lowest_and_the_count_all_of_them(admin_client, make_product, threshold):
    for n in range(12):
        make_product(sku=f"LOW-{n:02d}", stock=min(n, threshold))

    response = admin_client.get(DASHBOARD)

    assert count(response, "low-stock-count") == 12
    rows = low_stock_rows(response)
    assert len(rows) == 10
    assert [stock for _, _, stock in rows] == sorted(min(n, threshold) for n in range(12))[:10]


def test_low_stock_threshold_is_configurable(app, other_app, make_user, make_product):
    make_product(sku="LOW-3", stock=3)
    make_product(sku="MID-15", stock=15)
    make_product(sku="MID-20", stock=20)
    make_product(sku="HIGH-25", stock=25)
    make_user("boss", "admin")

    default = signed_in(other_app(LOW_STOCK_THRESHOLD=5), "boss").get(DASHBOARD)
    generous = signed_in(other_app(LOW_STOCK_THRESHOLD=20), "boss").get(DASHBOARD)

    assert count(default, "low-stock-count") == 1
    assert [sku for sku, _, _ in low_stock_rows(default)] == ["LOW-3"]
    assert count(generous, "low-stock-count") == 3
    assert [sku for sku, _, _ in low_stock_rows(generous)] == ["LOW-3", "MID-15", "MID-20"]
    assert card_note(generous, "low-stock-count") == "at or below 20"
    assert "flt0_stock_at_or_below=20" in card_link(generous, "low-stock-count")


# --------------------------------------------------------------------- chart


def test_chart_has_a_bar_for_each_of_the_last_30_days_ending_today(app, admin_client):
    today = local_today(app)

    bars = chart(admin_client.get(DASHBOARD))

    assert list(bars) == [today - timedelta(days=n) for n in reversed(range(CHART_DAYS))]


def test_sale_posted_today_is_in_todays_bar_with_its_total(app, admin_client, make_product, posted):
    coffee = make_product(sku="COF-1", price="19.99", stock=100)
    tea = make_product(sku="TEA-1", price="0.10", stock=100)
    posted((coffee, 3))
    posted((tea, 2), (coffee, 1))
    today = local_today(app)

    response = admin_client.get(DASHBOARD)

    bars = chart(response)
    assert bars[today] == Decimal("80.16")  # 59.97 + 0.20 + 19.99, exactly
    assert all(amount == 0 for day, amount in bars.items() if day != today)
    assert count(response, "posted-today") == 2


def test_drafts_and_voided_sales_are_not_in_the_chart(app, admin_client, stockroom, draft, posted, voided):
    yesterday = local_today(app) - timedelta(days=1)
    draft((stockroom, 5))
    voided((stockroom, 7))
    voided((stockroom, 9), at=local_time(app, yesterday, 12))
    posted((stockroom, 1))

    response = admin_client.get(DASHBOARD)

    bars = chart(response)
    assert bars[local_today(app)] == Decimal("10.00")  # only the one still posted
    assert bars[yesterday] == 0
    assert sum(bars.values()) == Decimal("10.00")


def test_chart_covers_30_days_and_no_more(app, admin_client, stockroom, posted):
    first_day = local_today(app) - timedelta(days=CHART_DAYS - 1)
    posted((stockroom, 1), at=local_time(app, first_day, 0, 1))  # the first minute of the first day
    posted((stockroom, 2), at=local_time(app, first_day, 12))
    posted((stockroom, 40), at=local_time(app, first_day, 0) - timedelta(minutes=1))  # 30 days ago: out
    posted((stockroom, 80), at=local_time(app, first_day, 0) - timedelta(days=60))

    response = admin_client.get(DASHBOARD)

    bars = chart(response)
    assert min(bars) == first_day
    assert bars[first_day] == Decimal("30.00")
    assert sum(bars.values()) == Decimal("30.00")
    assert chart_title(response).endswith(": IDR\u00a030.00")


def test_days_follow_the_configured_time_zone(other_app, make_user, stockroom, posted):
    """A sale is on the local day it happened, and "today" starts at local midnight."""
    jakarta = other_app(BABEL_DEFAULT_TIMEZONE="Asia/Jakarta")  # UTC+7 all year
    make_user("boss", "admin")
    today = local_today(jakarta)
    posted((stockroom, 1), at=local_time(jakarta, today, 0, 1))  # the day before, in UTC
    posted((stockroom, 2), at=local_time(jakarta, today, 0) - timedelta(minutes=1))  # yesterday, locally
    posted((stockroom, 4), at=local_time(jakarta, today - timedelta(days=1), 7, 30))

    response = signed_in(jakarta, "boss").get(DASHBOARD)

    bars = chart(response)
    assert max(bars) == today
    assert bars[today] == Decimal("10.00")
    assert bars[today - timedelta(days=1)] == Decimal("60.00")
    assert count(response, "posted-today") == 1


def test_chart_is_one_query_whatever_the_number_of_sales_and_days(app, admin_client, stockroom, sell):
    sell((stockroom, 1, None))
    admin_client.get(DASHBOARD)  # anything loaded once per app is loaded now
    with count_statements(app) as one_sale:
        first = admin_client.get(DASHBOARD)

    today = local_today(app)
    sell(*[(stockroom, 1, local_time(app, today - timedelta(days=n % 20), 10, n)) for n in range(39)])
    with count_statements(app) as forty_sales, statements(app) as seen:
        second = admin_client.get(DASHBOARD)

    sums_of_sales = [sql for sql in seen if "sum(transactions.total)" in sql]
    assert len(sums_of_sales) == 1 and "group by" in sums_of_sales[0], sums_of_sales
    assert sum(chart(first).values()) == Decimal("10.00")
    assert sum(chart(second).values()) == Decimal("400.00")
    assert sum(1 for amount in chart(second).values() if amount) == 20
    assert forty_sales[0] == one_sale[0]


# ------------------------------------------------------------ recent actions


def recent_toggle(response) -> str:
    """The Mine/Everyone link beside the "Recent actions" heading, or "" when there is none."""
    heading = response.text.split('id="recent-actions"', 1)[1].split("</h2>", 1)[0]
    match = re.search(r'<a href="([^"]*)">', heading)
    return html.unescape(match.group(1)) if match else ""


@pytest.mark.parametrize("role, sees_everyone", [("admin", True), ("auditor", True), ("staff", False)])
def test_recent_actions_are_the_users_own_and_everyones_only_for_audit_readers(app, make_user, role, sees_everyone):
    make_user("sam")
    make_user("reader", role)
    sam = signed_in(app, "sam")
    assert (
        sam.post(
            "/admin/product/new/",
            data={
                "sku": "SAMS-1",
                "name": "Sam's",
                "price": "1.00",
                "stock": "1",
                "is_active": "y",
                "version": "",
            },
        ).status_code
        == 302
    )
    reader = signed_in(app, "reader")

    own = reader.get(DASHBOARD)
    asked_for_all = reader.get(f"{DASHBOARD}?recent=all")

    assert [item.split(" — ", 1)[1] for item in recent_items(own)] == ["reader signed in"]
    assert [item.split(" — ", 1)[1] for item in recent_items(sam.get(DASHBOARD))] == [
        "sam added product SAMS-1 — Sam's",
        "sam signed in",
    ]
    if sees_everyone:
        assert recent_toggle(own) == "/admin/?recent=all"  # "Everyone"
        assert recent_toggle(asked_for_all) == "/admin/"  # back to "Mine"
        everyone = [item.split(" — ", 1)[1] for item in recent_items(asked_for_all)]
        assert everyone[:3] == [
            "reader signed in",
            "sam added product SAMS-1 — Sam's",
            "sam signed in",
        ]
    else:
        assert recent_items(asked_for_all) == recent_items(own)
        assert recent_toggle(own) == recent_toggle(asked_for_all) == ""


RAW_CODES = re.compile(r"\b(create|update|delete|post|void|login|login_failed|logout|password_change|sessions_ended)\b")


def recent_html(response) -> list[str]:
    """The recent actions' items as markup (links kept)."""
    section = response.text.split('id="recent-actions"', 1)[1].split("</ul>", 1)[0]
    return re.findall(r"<li>(.*?)</li>", section, re.S)


@pytest.fixture
def happenings(app, db, make_user, make_product):
    """A day's work: admin changes bob's password, staff1 posts a sale and voids it, the app
    (a command, no signed-in user) changes a product, someone fails to sign in as bob and as a
    name nobody has. Returns the ids that the sentences name."""
    from adminapp.domain import audit
    from adminapp.models import User

    admin_id = make_user("admin", "admin")
    staff_id = make_user("staff1", "staff")
    bob_id = make_user("bob", "staff")
    coffee = make_product(sku="KOPI-250G", name="Kopi Luwak 250 g", price="142500.00", stock=50)
    with db() as session:
        audit.set_actor(session, audit.Actor(user_id=admin_id, username="admin"))
        session.get(User, bob_id).set_password("a brand new secret phrase")
    with db() as session:
        staff = session.get(User, staff_id)
        audit.set_actor(session, audit.Actor(user_id=staff_id, username="staff1"))
        txn = save_draft(session, [(coffee, 3)], staff)
        sales.post(session, txn, staff)
        txn_id = txn.id
    with db() as session:
        audit.set_actor(session, audit.Actor(user_id=staff_id, username="staff1"))
        sales.void(session, session.get(Transaction, txn_id), session.get(User, staff_id), "wrong customer")
    with db() as session:  # no actor: the app itself (a command)
        session.get(Product, coffee).name = "Kopi Luwak 250 gram"
    client = app.test_client()
    client.post("/login", data={"username": "bob", "password": "not his password"})
    client.post("/login", data={"username": "nobody-here", "password": "whatever it is"})
    return {"txn": txn_id, "coffee": coffee, "bob": bob_id}


def test_recent_actions_are_sentences_with_names_times_and_links(app, make_user, happenings):
    response = signed_in(app, "admin").get(f"{DASHBOARD}?recent=all")
    said = [item.split(" — ", 1)[1] for item in recent_items(response)]
    txn = happenings["txn"]

    assert said[:8] == [
        "admin signed in",
        "A sign-in failed: unknown user",  # the name typed is kept only as a keyed hash
        "A sign-in as bob failed: wrong password",
        "Product KOPI-250G — Kopi Luwak 250 gram was changed",
        f"staff1 voided Transaction #{txn}",
        f"staff1 posted Transaction #{txn}",
        f"staff1 added Transaction #{txn}",
        "admin changed the password of bob",
    ], said
    assert not any(RAW_CODES.search(sentence) for sentence in said), said
    # The records are linked (an admin may open them all).
    items = recent_html(response)
    assert f'<a href="/admin/transaction/details/?id={txn}">Transaction #{txn}</a>' in items[4]
    assert f'<a href="/admin/product/details/?id={happenings["coffee"]}">KOPI-250G' in items[3]
    assert f'<a href="/admin/user/details/?id={happenings["bob"]}">bob</a>' in items[7]


def test_recent_actions_are_in_the_users_language_time_zone_and_locale(other_app, make_user, happenings):
    jakarta = other_app(BABEL_DEFAULT_TIMEZONE="Asia/Jakarta")
    make_user("ibu", "admin", locale="id")
    response = signed_in(jakarta, "ibu").get(f"{DASHBOARD}?recent=all")

    times = re.findall(r'<time class="text-muted" datetime="([^"]+)">([^<]*)</time>', response.text)
    assert len(times) == 10
    for stored, shown in times:
        at = datetime.fromisoformat(stored)
        assert html.unescape(shown) == format_datetime(at, "medium", tzinfo=ZoneInfo("Asia/Jakarta"), locale="id")
    said = [item.split(" — ", 1)[1] for item in recent_items(response)]
    assert not any(RAW_CODES.search(sentence) for sentence in said), said
    assert f"Transaksi #{happenings['txn']}" in " ".join(said)  # the record as Indonesian names it


def test_recent_actions_link_only_what_the_reader_may_open(app, make_user, as_role, happenings):
    auditor = as_role("auditor")  # reads the trail, the catalogue and the sales; not the users
    items = recent_html(auditor.get(f"{DASHBOARD}?recent=all"))
    text = " ".join(items)

    assert f'href="/admin/transaction/details/?id={happenings["txn"]}"' in text
    assert "/admin/user/details/" not in text
    assert "the password of bob" in text  # named all the same


# --------------------------------------------------------------------- chart axes


def y_ticks(response) -> list[str]:
    return [html.unescape(t) for t in re.findall(r'<text class="y-tick"[^>]*>(.*?)</text>', response.text)]


def day_labels(response) -> list[tuple[str, str]]:
    """(text-anchor, label) of the chart's date labels, left to right."""
    found = re.findall(r'<text class="x-tick" x="[^"]*" y="[^"]*" text-anchor="(\w+)">(.*?)</text>', response.text)
    return [(anchor, html.unescape(label)) for anchor, label in found]


def test_chart_has_a_y_axis_in_round_steps_of_the_users_number_format(app, make_user, stockroom, posted):
    make_user("boss", "admin")
    make_user("ibu", "admin", locale="id")
    posted((stockroom, 8))  # 80.00
    assert y_ticks(signed_in(app, "boss").get(DASHBOARD)) == ["0", "20", "40", "60", "80"]

    posted((stockroom, 99_000))  # 990,080.00 today
    english, indonesian = signed_in(app, "boss").get(DASHBOARD), signed_in(app, "ibu").get(DASHBOARD)
    assert y_ticks(english) == ["0", "200K", "400K", "600K", "800K", "1M"]
    assert y_ticks(indonesian) == ["0", "200\u00a0rb", "400\u00a0rb", "600\u00a0rb", "800\u00a0rb", "1\u00a0jt"]
    assert re.search(r'<text class="y-axis-unit"[^>]*>IDR</text>', english.text)
    assert re.search(r'<text class="y-axis-unit"[^>]*>Rp</text>', indonesian.text)


def test_one_axis_speaks_one_style(app, admin_client, stockroom, posted):
    posted((stockroom, 900))  # 9,000.00: steps of 2,000 up to 10,000, all short
    assert y_ticks(admin_client.get(DASHBOARD)) == ["0", "2K", "4K", "6K", "8K", "10K"]


def test_an_empty_chart_still_has_its_axis(admin_client):
    assert y_ticks(admin_client.get(DASHBOARD)) == ["0", "1"]


def test_the_first_and_last_date_labels_are_anchored_inside_the_chart(app, make_user):
    make_user("boss", "admin")
    make_user("ibu", "admin", locale="id")
    today = local_today(app)
    first = today - timedelta(days=CHART_DAYS - 1)
    for username, locale in (("boss", "en"), ("ibu", "id")):
        labels = day_labels(signed_in(app, username).get(DASHBOARD))
        # The first starts at the chart's left edge, the last ends at its right edge.
        assert labels[0] == ("start", format_skeleton("MMMd", first, locale=locale)), labels
        assert labels[-1] == ("end", format_skeleton("MMMd", today, locale=locale)), labels
        assert {anchor for anchor, _ in labels[1:-1]} == {"middle"}
        assert len(labels) == 5  # a label a week, none crowding the last


def test_the_chart_has_a_text_alternative_and_its_figures_as_a_table(app, admin_client, stockroom, posted):
    posted((stockroom, 3))
    response = admin_client.get(DASHBOARD)
    today = local_today(app)

    assert re.search(
        r'<svg id="sales-chart"[^>]*role="img"[^>]*aria-labelledby="sales-chart-title sales-chart-desc"',
        response.text,
        re.S,
    )
    desc = html.unescape(re.search(r'<desc id="sales-chart-desc">(.*?)</desc>', response.text).group(1))
    assert desc == f"Best day: {format_date(today, 'medium', locale='en')}: IDR\u00a030.00."
    figures = sales_table(response)
    assert len(figures) == CHART_DAYS
    assert figures[today] == "IDR\u00a030.00"
    assert set(list(figures.values())[:-1]) == {"IDR\u00a00.00"}


# --------------------------------------------------------------------- money


def test_money_is_in_the_configured_currency(app, make_user, stockroom, posted):
    make_user("boss", "admin")
    make_user("ibu", "admin", locale="id")
    posted((stockroom, 123))  # 1,230.00
    today = local_today(app)
    assert app.config["CURRENCY"] == "IDR"  # the default

    # Babel's format with CLDR's currency spacing, as browsers write it: "IDR 1,230.00", "Rp 1.230,00".
    for username, locale, money in (("boss", "en", "IDR\u00a01,230.00"), ("ibu", "id", "Rp\u00a01.230,00")):
        response = signed_in(app, username).get(DASHBOARD)
        assert chart_title(response).endswith(f": {money}"), chart_title(response)
        assert bar_title(response, today) == f"{format_date(today, 'medium', locale=locale)}: {money}"
        assert sales_table(response)[today] == money

    app.config["CURRENCY"] = "EUR"
    response = signed_in(app, "boss").get(DASHBOARD)
    assert chart_title(response).endswith(": €1,230.00")
    assert "IDR" not in bar_title(response, today)


@pytest.mark.parametrize(
    "formatted, symbol, spaced",
    [
        ("IDR142,500.00", "IDR", "IDR\u00a0142,500.00"),
        ("-Rp1.234,50", "Rp", "-Rp\u00a01.234,50"),
        ("€1,230.00", "€", "€1,230.00"),  # a currency sign keeps close
        ("US$1.234,50", "US$", "US$1.234,50"),  # the side next to the digits is a sign
        ("1.234,50\u00a0€", "€", "1.234,50\u00a0€"),  # already spaced by the pattern
        ("12,00CHF", "CHF", "12,00\u00a0CHF"),  # a code after the number
    ],
)
def test_currency_spacing_is_cldrs(formatted, symbol, spaced):
    from adminapp.formatting import currency_spaced

    assert currency_spaced(formatted, symbol) == spaced
