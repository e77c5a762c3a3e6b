"""Error pages and the Django-admin behaviour of the forms, through the test client on a
real database.

The 403, 404 and 500 pages: the right status, the admin's look, the user's language,
and for a 500 a request ID that is also in the logged error, with nothing internal on
the page. The create and edit forms: "Save", "Save and add another" and "Save and
continue editing" go where Django's admin goes; help text under the fields; a
validation error shown in its own field (on its own line of a transaction), with the
user's input kept and nothing saved.
"""

import html
import logging
import re
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select

from adminapp.extensions import db as _db
from adminapp.models import Product, Transaction, TransactionProduct, User
from tests.support import (
    FAST_HASH,
    PASSWORD,
    flashed,
    make_app,
    product_form,
    product_rows,
    save_draft,
    signed_in,
    snapshot,
)

PRODUCTS = "/admin/product/"
PRODUCT_NEW = "/admin/product/new/"
TXN_NEW = "/admin/transaction/new/"
SECRET = "zq-internal-detail: connection to 10.0.0.7 refused"
BUTTONS = {  # the name and value a browser posts for each submit button of a create/edit form
    "save": {},
    "save and add another": {"_add_another": "Save and Add Another"},
    "save and continue editing": {"_continue_editing": "Save and Continue Editing"},
}
HELP = {
    "sku": "The unique stock-keeping code, e.g. KOPI-250G.",
    "price": "Selling price per unit, with at most 2 decimals. Posted transactions keep the price they were posted at.",
    "stock": "Units on hand. Posting a transaction takes from it; voiding puts it back.",
    "is_active": "Only active products can be added to transactions.",
}
# The edit form shows the stock read-only (it changes only through movements), and says so.
EDIT_HELP = {
    **HELP,
    "stock": "Units on hand. It changes only through stock movements: posting a transaction takes from it, "
    "voiding puts it back.",
}


def product_edit_url(product_id, **args):
    query = "".join(f"&{key}={value}" for key, value in args.items())
    return f"/admin/product/edit/?id={product_id}{query}"


def txn_edit_url(txn_id):
    return f"/admin/transaction/edit/?id={txn_id}"


def txn_form(*lines, note="", version=""):
    """The transaction form as a browser posts it: lines are (product, qty) or (product, qty, line id)."""
    data = {"note": note, "version": str(version)}
    for i, (product, qty, *line_id) in enumerate(lines):
        data[f"lines-{i}-id"] = str(line_id[0]) if line_id else ""
        data[f"lines-{i}-product"] = str(product)
        data[f"lines-{i}-product_qty"] = str(qty)
    return data


def text(response) -> str:
    """The page text, whitespace folded and HTML entities decoded."""
    return html.unescape(flashed(response))


def brand(response) -> tuple[str, str]:
    """The navbar brand: where it links to (the dashboard: /admin or /admin/) and its text."""
    match = re.search(r'<a class="navbar-brand" href="([^"]*)">([^<]*)</a>', response.text)
    assert match, "no navbar brand on the page"
    return match.group(1).rstrip("/"), match.group(2)


def field_groups(page: str) -> list[str]:
    """The HTML from each form-group's start to the next one's."""
    return page.split('<div class="form-group')[1:]


def field_group(page: str, field: str) -> str:
    for group in field_groups(page):
        if re.search(rf'<(?:input|textarea|select)[^>]*\bid="{re.escape(field)}"', group):
            return group
    raise AssertionError(f"no field {field!r} on the page")


def errors_in(group: str) -> list[str]:
    """The error messages a form-group shows under its field."""
    feedback = group.split('<div class="invalid-feedback">', 1)
    if len(feedback) == 1:
        return []
    return [html.unescape(m) for m in re.findall(r"<li>(.*?)</li>", feedback[1].split("</div>", 1)[0], re.S)]


def help_in(group: str) -> str:
    """The help text a form-group shows under its field ("" when there is none); shown twice fails."""
    found = re.findall(r'<small (?:id="[^"]*" )?class="form-text text-muted[^"]*">\s*(.*?)\s*</small>', group, re.S)
    assert len(found) <= 1, f"the help text is shown {len(found)} times"
    return html.unescape(" ".join(found[0].split())) if found else ""


def field_value(page: str, field: str) -> str:
    match = re.search(rf'<input[^>]*\bid="{field}"[^>]*\bvalue="([^"]*)"', page)
    if match:
        return html.unescape(match.group(1))
    match = re.search(rf'<textarea[^>]*\bid="{field}"[^>]*>(?:\r?\n)?(.*?)</textarea>', page, re.S)
    assert match, f"no field {field!r} on the page"
    return html.unescape(match.group(1))


def is_checked(page: str, field: str) -> bool:
    match = re.search(rf'<input[^>]*\bid="{field}"[^>]*>', page)
    assert match, f"no field {field!r} on the page"
    return re.search(r"\bchecked\b", match.group(0)) is not None


def line_row(page: str, index: int) -> str:
    """The HTML of one line (a table row) of the transaction form, up to the next line (or the
    blank template)."""
    start = page.index(f'<tr id="lines-{index}" class="inline-field')
    rest = page[start + 1 :]
    ends = [rest.find(marker) for marker in ('<tr id="lines-', 'class="inline-field-template')]
    return page[start : start + 1 + min(end for end in ends if end >= 0)]


def location(response) -> tuple[str, dict]:
    """A redirect's path and query arguments."""
    assert response.status_code == 302, text(response)[:500]
    target = urlsplit(response.headers["Location"])
    return target.path, {key: values[0] for key, values in parse_qs(target.query).items()}


# ------------------------------------------------------------------ fixtures


@pytest.fixture
def failing_app(app, database_url, tmp_path):
    """An app on the same database with two routes that fail as a bug would, exceptions
    handled as in production (PROPAGATE_EXCEPTIONS off)."""
    failing = make_app(database_url, tmp_path, PROPAGATE_EXCEPTIONS=False)

    def fails():
        raise RuntimeError(SECRET)

    def fails_after_writing():
        _db.session.add(Product(sku="HALF-1", name="Half written", stock=1))
        _db.session.flush()
        raise RuntimeError(SECRET)

    failing.add_url_rule("/test/fails", "fails", fails)
    failing.add_url_rule("/test/fails-after-writing", "fails_after_writing", fails_after_writing, methods=["POST"])
    yield failing
    with failing.app_context():
        _db.session.remove()
        _db.engine.dispose()


@pytest.fixture
def products(db):
    """Every product as a tuple of its fields, to prove what was (not) saved."""

    def take():
        return [row[1:] for row in product_rows(db)]  # without the id

    return take


@pytest.fixture
def product_id(db):
    def get(sku):
        with db() as session:
            return session.scalar(select(Product.id).where(Product.sku == sku))

    return get


@pytest.fixture
def draft(db):
    """A draft saved through the sales operations: `draft((product_id, qty), ...)`; returns
    (transaction id, [line ids])."""

    def make(*lines):
        with db() as session:
            txn = save_draft(session, lines)
            return txn.id, [line.id for line in txn.lines]

    return make


@pytest.fixture
def transactions(db):
    """Every transaction and line as plain tuples, to prove nothing changed."""

    def take():
        with db() as session:
            return (
                [(t.id, t.status, t.note, t.total, t.version) for t in session.scalars(select(Transaction))],
                [(tp.id, tp.product_id, tp.product_qty) for tp in session.scalars(select(TransactionProduct))],
            )

    return take


# ------------------------------------------------------------- 403 and 404

ERROR_PAGES = {
    # name: (url, role, status, English title and message, Indonesian title and message)
    "403": (
        "/admin/user/",
        "staff",
        403,
        ("Forbidden", "Your role does not allow this. Nothing was changed."),
        ("Akses ditolak", "Peran Anda tidak mengizinkan tindakan ini. Tidak ada yang diubah."),
    ),
    "404": (
        "/admin/no-such-page/",
        "admin",
        404,
        ("Not found", "There is no page at this address."),
        ("Tidak ditemukan", "Tidak ada halaman di alamat ini."),
    ),
}
LANGUAGES = {
    "English": ({}, {}, "en"),
    "Indonesian browser": ({}, {"Accept-Language": "id"}, "id"),
    "Indonesian user": ({"locale": "id"}, {"Accept-Language": "en"}, "id"),  # the user's choice wins
}


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("page", ERROR_PAGES)
def test_error_page_has_its_status_the_admins_look_and_the_users_language(app, make_user, page, language):
    url, role, status, english, indonesian = ERROR_PAGES[page]
    fields, headers, locale = LANGUAGES[language]
    make_user("someone", role, **fields)
    client = signed_in(app, "someone", **headers)
    title, message = english if locale == "en" else indonesian

    response = client.get(url)

    assert response.status_code == status
    assert response.mimetype == "text/html"
    assert response.headers["Content-Language"] == locale
    assert f'<meta http-equiv="Content-Language" content="{locale}">' in response.text
    page_text = text(response)
    assert f"<title>{title} — adminapp</title>" in response.text
    assert f"{status} — {title}" in page_text and message in page_text
    # The admin's look: its stylesheets, the brand linking to the dashboard, the menu and the
    # signed-in user's controls, as on the admin's pages.
    assert brand(response) == brand(client.get("/admin/")) == ("/admin", "adminapp")
    assert 'href="/admin/product/"' in response.text and 'action="/logout"' in response.text
    assert 'class="active"' not in response.text  # no menu item is the current page
    assert "/admin/static/bootstrap/bootstrap4/css/bootstrap.min.css" in response.text
    assert "/static/css/adminapp.css" in response.text
    assert ("Back to the dashboard" if locale == "en" else "Kembali ke dasbor") in page_text
    assert 'id="request-id"' not in response.text  # only a server error needs one reported


# ---------------------------------------------------------------------- 500


def test_server_error_page_has_status_500_and_a_request_id(failing_app, make_user):
    make_user("someone", "staff")
    client = signed_in(failing_app, "someone")

    first = client.get("/test/fails")
    second = client.get("/test/fails")

    ids = []
    for response in (first, second):
        assert response.status_code == 500
        assert "500 — Server error" in text(response)
        assert "tell the administrator the request ID below" in text(response)
        match = re.search(r'<code id="request-id">([0-9a-f]{12})</code>', response.text)
        assert match, "no request ID on the page"
        assert response.headers["X-Request-ID"] == match.group(1)
        ids.append(match.group(1))
    assert ids[0] != ids[1]
    assert brand(first) == ("/admin", "adminapp")


def test_the_request_id_on_the_page_is_in_the_logged_error(failing_app, make_user, caplog):
    make_user("someone", "staff")
    client = signed_in(failing_app, "someone")

    with caplog.at_level(logging.ERROR, logger=failing_app.logger.name):
        response = client.get("/test/fails")

    request_id = re.search(r'<code id="request-id">(\w+)</code>', response.text).group(1)
    logged = [r for r in caplog.records if r.name == failing_app.logger.name and r.levelno == logging.ERROR]
    assert len(logged) == 1
    record = logged[0]
    assert record.getMessage() == f"Exception on /test/fails [GET], request ID {request_id}"
    # The log keeps what the page leaves out: the exception and its traceback.
    assert record.exc_info[0] is RuntimeError and str(record.exc_info[1]) == SECRET
    assert record.exc_info[2] is not None


def test_server_error_page_shows_nothing_internal(failing_app, make_user):
    make_user("someone", "staff")

    response = signed_in(failing_app, "someone").get("/test/fails")

    page = response.get_data(as_text=True)
    assert response.status_code == 500
    for internal in (SECRET, "zq-internal", "RuntimeError", "Traceback", "fails()", ".py", "10.0.0.7"):
        assert internal not in page, internal


@pytest.mark.parametrize(
    "fields, headers",
    [({"locale": "id"}, {}), ({}, {"Accept-Language": "id"})],
    ids=["Indonesian user", "Indonesian browser"],
)
def test_server_error_page_is_in_the_users_language(failing_app, make_user, fields, headers):
    make_user("someone", "staff", **fields)

    response = signed_in(failing_app, "someone", **headers).get("/test/fails")

    assert response.status_code == 500
    assert response.headers["Content-Language"] == "id"
    assert '<meta http-equiv="Content-Language" content="id">' in response.text
    page_text = text(response)
    assert "500 — Kesalahan server" in page_text
    assert "Terjadi kesalahan di sisi kami dan tidak ada yang disimpan." in page_text
    assert re.search(r'ID permintaan: <code id="request-id">[0-9a-f]{12}</code>', response.text)
    for english in ("Server error", "Something went wrong", "Request ID", "Back to the dashboard"):
        assert english not in page_text, english


def test_a_server_error_saves_nothing(failing_app, make_user, products):
    """The page says nothing was saved: what the failed request had written is rolled back."""
    make_user("someone", "staff")
    client = signed_in(failing_app, "someone")

    response = client.post("/test/fails-after-writing")

    assert response.status_code == 500
    assert products() == []
    assert client.get("/admin/product/").status_code == 200  # the session is usable again


# ------------------------------------------------ save, add another, continue


def test_create_and_edit_forms_offer_the_three_buttons(admin_client, make_product):
    pid = make_product()
    for url in (PRODUCT_NEW, product_edit_url(pid)):
        page = admin_client.get(url).text
        assert re.search(r'<input type="submit" class="btn btn-primary" value="Save"', page), url
        assert '<input name="_add_another" type="submit"' in page, url
        assert '<input name="_continue_editing" type="submit"' in page, url


def test_save_on_create_returns_to_the_list(admin_client, product_id):
    response = admin_client.post(PRODUCT_NEW, data=product_form(sku="SAVE-1"))

    assert location(response) == (PRODUCTS, {})
    assert product_id("SAVE-1") is not None
    assert "was added." in text(admin_client.get(PRODUCTS))


def test_save_and_add_another_on_create_opens_a_fresh_form(admin_client, product_id):
    response = admin_client.post(PRODUCT_NEW, data=product_form(sku="MORE-1", **BUTTONS["save and add another"]))

    assert location(response) == (PRODUCT_NEW, {"url": PRODUCTS})
    assert product_id("MORE-1") is not None
    fresh = admin_client.get(response.headers["Location"])
    assert fresh.status_code == 200
    assert "was added." in text(fresh)
    assert field_value(fresh.text, "sku") == "" and field_value(fresh.text, "name") == ""
    assert is_checked(fresh.text, "is_active")  # the create form's default again


def test_save_and_continue_editing_on_create_opens_the_new_record(admin_client, product_id, products):
    response = admin_client.post(
        PRODUCT_NEW,
        data=product_form(sku="CONT-1", name="Continued", price="3.25", **BUTTONS["save and continue editing"]),
    )

    pid = product_id("CONT-1")
    assert location(response) == ("/admin/product/edit/", {"id": str(pid), "url": PRODUCTS})
    editing = admin_client.get(response.headers["Location"])
    assert editing.status_code == 200
    assert "was added." in text(editing)
    assert (
        field_value(editing.text, "sku"),
        field_value(editing.text, "name"),
        field_value(editing.text, "price"),
        field_value(editing.text, "version"),
    ) == ("CONT-1", "Continued", "3.25", "1")
    # ... and the form it opened saves (it is not stale).
    again = admin_client.post(
        response.headers["Location"],
        data=product_form(
            sku="CONT-1", name="Continued twice", price="3.25", version=field_value(editing.text, "version")
        ),
    )
    assert location(again) == (PRODUCTS, {})
    assert products()[0][1] == "Continued twice"


@pytest.mark.parametrize("button", BUTTONS)
def test_buttons_on_edit_go_where_djangos_do(admin_client, make_product, products, button):
    pid = make_product(sku="EDIT-1", name="Before")
    expected = {
        "save": (PRODUCTS, {}),
        "save and add another": (PRODUCT_NEW, {"url": PRODUCTS}),
        "save and continue editing": ("/admin/product/edit/", {"id": str(pid), "url": PRODUCTS}),
    }[button]

    response = admin_client.post(
        product_edit_url(pid), data=product_form(sku="EDIT-1", name="After", version="1", **BUTTONS[button])
    )

    assert location(response) == expected
    assert products()[0][:2] == ("EDIT-1", "After")
    landing = admin_client.get(response.headers["Location"])
    assert landing.status_code == 200
    assert "was changed." in text(landing)
    if button == "save and continue editing":
        assert field_value(landing.text, "name") == "After"
        assert field_value(landing.text, "version") == "2"  # the form is current: saving it again works
        again = admin_client.post(
            response.headers["Location"], data=product_form(sku="EDIT-1", name="After again", version="2")
        )
        assert location(again) == (PRODUCTS, {})
        assert products()[0][1] == "After again"


@pytest.mark.parametrize("button", BUTTONS)
def test_every_button_keeps_the_list_the_user_came_from(admin_client, make_product, product_id, button):
    """As Django's admin keeps the list's filters: the form's ?url= survives each button."""
    filtered = "/admin/product/?search=KEEP&sort=1"
    pid = make_product(sku="KEEP-0")

    created = admin_client.post(
        f"{PRODUCT_NEW}?url=/admin/product/%3Fsearch%3DKEEP%26sort%3D1",
        data=product_form(sku="KEEP-1", **BUTTONS[button]),
    )
    edited = admin_client.post(
        product_edit_url(pid, url="/admin/product/%3Fsearch%3DKEEP%26sort%3D1"),
        data=product_form(sku="KEEP-0", version="1", **BUTTONS[button]),
    )

    for response, record in ((created, product_id("KEEP-1")), (edited, pid)):
        path, args = location(response)
        if button == "save":
            assert response.headers["Location"] == filtered
        elif button == "save and add another":
            assert (path, args) == (PRODUCT_NEW, {"url": filtered})
        else:
            assert (path, args) == ("/admin/product/edit/", {"id": str(record), "url": filtered})


# -------------------------------------------------- help text and field errors


def test_help_text_is_shown_under_its_field(admin_client, make_product):
    pid = make_product()
    for url, helps in ((PRODUCT_NEW, HELP), (product_edit_url(pid), EDIT_HELP)):
        page = admin_client.get(url).text
        for field, help_text in helps.items():
            group = field_group(page, field)
            assert help_in(group) == help_text, (url, field)
            assert group.index(f'id="{field}"') < group.index(help_text[:20]), (url, field)  # under the field
        assert help_in(field_group(page, "name")) == ""


def test_a_validation_error_is_shown_in_its_fields_group_with_the_input_kept(admin_client, products):
    data = product_form(sku="KEPT-1", name="Kept name", description="Kept\ndescription", price="4.50", stock="-3")

    response = admin_client.post(PRODUCT_NEW, data=data)

    assert response.status_code == 200
    page = response.text
    stock = field_group(page, "stock")
    assert errors_in(stock) == ["Number must be between 0 and 2147483647."]
    assert re.search(r'<input [^>]*class="form-control is-invalid" id="stock"[^>]*value="-3"', stock)
    assert [
        field for field in ("sku", "name", "description", "price", "is_active") if errors_in(field_group(page, field))
    ] == []
    assert page.count('<div class="invalid-feedback">') == 1
    assert (
        field_value(page, "sku"),
        field_value(page, "name"),
        field_value(page, "description"),
        field_value(page, "price"),
        field_value(page, "stock"),
    ) == ("KEPT-1", "Kept name", "Kept\ndescription", "4.50", "-3")
    assert is_checked(page, "is_active")
    assert help_in(field_group(page, "price")) == HELP["price"]  # the other fields keep their help
    assert "Failed to create record." in text(response)
    assert products() == []


# 9.999 in English: nine with three decimals, not nine thousand nine hundred ninety-nine.
NINE_WITH_THREE_DECIMALS = "Read as 9.999. Here “.” marks the decimals and “,” separates thousands."


def test_a_validation_error_on_edit_keeps_the_input_and_the_form_still_saves(admin_client, make_product, products):
    pid = make_product(sku="ED-1", name="Stored", price="9.00", stock=4)
    before = products()

    response = admin_client.post(
        product_edit_url(pid),
        data=product_form(sku="ED-1", name="Typed", price="9.999", stock="8", is_active=None, version="1"),
    )

    assert response.status_code == 200
    page = response.text
    assert errors_in(field_group(page, "price")) == ["Use at most 2 decimal places.", NINE_WITH_THREE_DECIMALS]
    assert (
        field_value(page, "name"),
        field_value(page, "price"),
        field_value(page, "stock"),
        field_value(page, "version"),
    ) == ("Typed", "9.999", "4", "1")  # what the user typed, not the record; the stock is read-only
    assert not is_checked(page, "is_active")
    assert "Failed to save record." in text(response)
    assert products() == before
    # Corrected and sent again, the re-rendered form (same version) saves.
    fixed = admin_client.post(
        product_edit_url(pid),
        data=product_form(
            sku="ED-1",
            name="Typed",
            price="9.99",
            stock="8",
            is_active=None,
            version=field_value(page, "version"),
        ),
    )
    assert location(fixed) == (PRODUCTS, {})
    assert products()[0][:6] == ("ED-1", "Typed", None, Decimal("9.99"), 4, False)


def test_help_text_stays_under_a_field_that_has_an_error(admin_client):
    response = admin_client.post(PRODUCT_NEW, data=product_form(price="9.999"))

    price = field_group(response.text, "price")
    assert errors_in(price) == ["Use at most 2 decimal places.", NINE_WITH_THREE_DECIMALS]
    assert help_in(price) == HELP["price"]
    assert 'aria-describedby="price-help"' in price and 'id="price-help"' in price  # read out with the field


def test_help_text_is_shown_once_on_the_change_password_form(admin_client):
    response = admin_client.post(
        "/account/password", data={"current_password": PASSWORD, "new_password": "short", "confirm_password": "short"}
    )

    new_password = field_group(response.text, "new_password")
    assert "Use at least 10 characters." in html.unescape(new_password)
    assert help_in(new_password).startswith("At least 10 characters")


def test_a_value_that_is_not_a_number_gets_one_message(admin_client, products):
    response = admin_client.post(PRODUCT_NEW, data=product_form(price="abc", stock="x"))

    assert response.status_code == 200
    assert errors_in(field_group(response.text, "price")) == ["Not a valid decimal value."]
    assert errors_in(field_group(response.text, "stock")) == ["Not a valid integer value."]
    assert products() == []


def test_a_too_long_value_gets_one_message(admin_client, products):
    response = admin_client.post(PRODUCT_NEW, data=product_form(sku="S" * 65, name="N" * 201))

    assert response.status_code == 200
    assert errors_in(field_group(response.text, "sku")) == ["Field cannot be longer than 64 characters."]
    assert errors_in(field_group(response.text, "name")) == ["Field cannot be longer than 200 characters."]
    assert products() == []


def test_an_empty_number_is_required_not_unreadable(admin_client, products):
    response = admin_client.post(PRODUCT_NEW, data=product_form(price="", stock=""))

    for field in ("price", "stock"):
        assert errors_in(field_group(response.text, field)) == ["This field is required."], field
    assert products() == []


# -------------------------------------------------- errors on transaction lines
# tests/test_transactions.py proves a bad line saves nothing and its message is on the
# page; here: the message is on that line's row, against its field.


LINE_ERRORS = {
    "quantity 0": ("product_qty", "0", "Number must be between 1 and 1000000."),
    "unknown product": ("product", "999999", "Not a valid choice"),
}


@pytest.mark.parametrize("case", LINE_ERRORS)
@pytest.mark.parametrize("mode", ["create", "edit"])
def test_an_error_on_a_line_is_shown_on_that_lines_row(staff_client, make_product, draft, transactions, mode, case):
    field, bad, message = LINE_ERRORS[case]
    first = make_product(sku="FIRST-1")
    second = make_product(sku="SECOND-1")
    lines = {"product": second, "product_qty": "2", field: bad}
    if mode == "create":
        url, data = TXN_NEW, txn_form((first, 1), (lines["product"], lines["product_qty"]))
    else:
        txn_id, (first_line, second_line) = draft((first, 1), (second, 2))
        url = txn_edit_url(txn_id)
        data = txn_form((first, 3, first_line), (lines["product"], lines["product_qty"], second_line), version=1)
    before = transactions()

    response = staff_client.post(url, data=data)

    assert response.status_code == 200
    page = response.text
    second_row = line_row(page, 1)
    assert errors_in(field_group(second_row, f"lines-1-{field}")) == [message]
    other = "product" if field == "product_qty" else "product_qty"
    assert errors_in(field_group(second_row, f"lines-1-{other}")) == []
    assert "invalid-feedback" not in line_row(page, 0)
    assert page.count('<div class="invalid-feedback">') == 1
    assert field_value(second_row, "lines-1-product_qty") == lines["product_qty"]  # what the user typed is kept
    assert field_value(line_row(page, 0), "lines-0-product_qty") == ("1" if mode == "create" else "3")
    assert ("Failed to create record." if mode == "create" else "Failed to save record.") in text(response)
    assert transactions() == before


def test_a_rule_about_lines_is_shown_on_the_lines_it_concerns(staff_client, make_product, transactions):
    tea = make_product(sku="TEA-1")
    coffee = make_product(sku="COFFEE-1")
    retired = make_product(sku="OLD-1", is_active=False)
    before = transactions()

    repeated = staff_client.post(TXN_NEW, data=txn_form((tea, 1), (coffee, 1), (tea, 2)))
    inactive = staff_client.post(TXN_NEW, data=txn_form((tea, 1), (retired, 1)))

    assert "TEA-1 is on several lines" in text(repeated)  # the summary at the top stays
    assert [errors_in(field_group(line_row(repeated.text, row), f"lines-{row}-product")) for row in range(3)] == [
        ["This product is on another line too."],
        [],
        ["This product is on another line too."],
    ]
    assert "Inactive products cannot be sold: OLD-1." in text(inactive)
    assert [errors_in(field_group(line_row(inactive.text, row), f"lines-{row}-product")) for row in range(2)] == [
        [],
        ["This product is inactive and cannot be sold."],
    ]
    assert transactions() == before


def test_without_its_database_the_app_still_serves_a_plain_error_page(tmp_path, caplog):
    """The admin's frame needs the signed-in user, so the database; a page is served anyway."""
    database = tmp_path / "gone.db"
    app = make_app(f"sqlite:///{database}", tmp_path, PROPAGATE_EXCEPTIONS=False)
    with app.app_context():
        _db.create_all()
        _db.session.add(User(username="sam", role="staff", password_hash=FAST_HASH))
        _db.session.commit()
        _db.session.remove()
    client = signed_in(app, "sam")
    with app.app_context():
        _db.engine.dispose()
    database.unlink()  # the next connection finds an empty file: no tables at all

    with caplog.at_level(logging.ERROR):
        response = client.get("/admin/product/")

    assert response.status_code == 500
    request_id = re.search(r'<code id="request-id">([0-9a-f]{12})</code>', response.text).group(1)
    assert "500 — Server error" in text(response) and "no such table" not in response.text
    assert 'action="/logout"' not in response.text  # the plain page, without the admin's frame
    assert any(request_id in record.getMessage() for record in caplog.records)
    with app.app_context():
        _db.engine.dispose()


# ------------------------------------------------------------- limits on input


def test_a_body_over_the_limit_is_refused_from_its_declared_length(app, make_user):
    """A 2 MB sign-in is answered 413 in the app's frame before it is read: nothing counted,
    nothing recorded, the worker free at once."""
    before = snapshot(app)

    response = app.test_client().post("/login", data={"username": "x" * (2 * 1024 * 1024), "password": "y"})

    assert response.status_code == 413
    assert "413 — Too large" in text(response) and "nothing was saved" in text(response)
    assert snapshot(app) == before


def test_a_form_over_the_limit_saves_nothing_and_says_so_in_the_users_language(app, make_user):
    make_user("clerk", "staff", locale="id")
    client = signed_in(app, "clerk")
    before = snapshot(app)

    response = client.post("/admin/product/new/", data=product_form(sku="BIG-1", description="x" * 1_100_000))

    assert response.status_code == 413
    assert "Terlalu besar" in text(response)
    assert snapshot(app) == before


@pytest.mark.parametrize(
    "args, status",
    [
        ({"limit": "-1"}, 400),
        ({"limit": "0"}, 400),
        ({"limit": "abc"}, 400),
        ({"limit": "1e3"}, 400),
        ({"offset": "-1"}, 400),
        ({"offset": str(10**30)}, 400),
        ({"offset": "10001"}, 400),
        ({"offset": "x"}, 400),
        ({"limit": str(10**30)}, 400),
        ({"limit": "1000"}, 200),
        ({}, 200),
    ],
)
def test_the_lookup_checks_its_paging(admin_client, make_product, args, status):
    for n in range(60):
        make_product(sku=f"LOOK-{n:02d}", name="Lookup item")

    response = admin_client.get(
        "/admin/transaction/ajax/lookup/", query_string={"name": "transactionproduct-product", "query": "LOOK", **args}
    )

    assert response.status_code == status
    if status == 200:
        assert len(response.json) == (50 if "limit" in args else 10)  # clamped, or the default
