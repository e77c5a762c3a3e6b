"""Prices, stock and quantities typed as people type them: in the user's language (45.000,50 in
Indonesian, 45,000.50 in English), or in the plain format tools post (45000.50) in either; a
number that is ambiguous or unreadable is refused with how it was read, never stored as another
number; a form shows the stored number in the user's language and saves it back unchanged."""

import html
import re
from decimal import Decimal

import pytest
from flask_babel import gettext
from sqlalchemy import select

from adminapp.forms import VALIDATOR_MESSAGES
from adminapp.models import Product, Transaction, TransactionProduct

from .support import product_form, signed_in
from .test_products import field_errors, field_value

NEW_PRODUCT = "/admin/product/new/"
NEW_TRANSACTION = "/admin/transaction/new/"
ENGLISH, INDONESIAN = "zqx-en", "zqx-id"


def edit_product_url(product_id):
    return f"/admin/product/edit/?id={product_id}"


def edit_transaction_url(txn_id):
    return f"/admin/transaction/edit/?id={txn_id}"


@pytest.fixture
def clients(app, make_user):
    """{"en": client, "id": client}: an English admin, and one who chose Indonesian."""
    make_user(ENGLISH, "admin")
    make_user(INDONESIAN, "admin", locale="id")
    return {"en": signed_in(app, ENGLISH), "id": signed_in(app, INDONESIAN)}


@pytest.fixture
def products(db):
    def stored():
        with db() as session:
            return [
                (p.id, p.sku, p.price, p.stock, p.version)
                for p in session.scalars(select(Product).order_by(Product.id))
            ]

    return stored


@pytest.fixture
def lines(db):
    def stored():
        with db() as session:
            return [
                (tp.id, tp.transaction_id, tp.product_id, tp.product_qty)
                for tp in session.scalars(select(TransactionProduct).order_by(TransactionProduct.id))
            ]

    return stored


# ------------------------------------------------------- the messages, in each language


def translated(app, language, msgid, **values):
    with app.test_request_context(headers={"Accept-Language": language}):
        return gettext(msgid, **values)


def not_a_number(app, language, kind="decimal"):
    """WTForms' message for a value it cannot read, from its catalogue."""
    with app.test_request_context(headers={"Accept-Language": language}):
        return VALIDATOR_MESSAGES.gettext(f"Not a valid {kind} value.")


def convention(app, language):
    decimal, group = {"en": (".", ","), "id": (",", ".")}[language]
    return translated(
        app,
        language,
        "Here “%(decimal)s” marks the decimals and “%(group)s” separates thousands.",
        decimal=decimal,
        group=group,
    )


def read_as(app, language, number):
    return f"{translated(app, language, 'Read as %(number)s.', number=number)} {convention(app, language)}"


def did_you_mean(app, language, *numbers):
    if len(numbers) == 1:
        question = translated(app, language, "Did you mean %(number)s?", number=numbers[0])
    else:
        question = translated(
            app, language, "Did you mean %(first)s or %(second)s?", first=numbers[0], second=numbers[1]
        )
    return f"{question} {convention(app, language)}"


def too_many_decimals(app, language):
    return translated(app, language, "Use at most 2 decimal places.")


# ------------------------------------------------------------------- accepted


ACCEPTED_PRICES = [
    ("id", "45.000,50", "45000.50"),
    ("id", "45000,50", "45000.50"),
    ("id", "45000.50", "45000.50"),  # the plain format, which strict Indonesian would refuse
    ("id", "45.000", "45000"),  # '.' groups thousands in Indonesian
    ("id", " 45.000,5 ", "45000.50"),
    ("id", "0,99", "0.99"),
    ("id", "12.5", "12.50"),  # plain: a '.' and one or two digits is a decimal point
    ("id", "1.50", "1.50"),
    ("id", "9.999.999.999,99", "9999999999.99"),
    ("en", "45,000.50", "45000.50"),
    ("en", "45000.50", "45000.50"),
    ("en", "45000", "45000"),
    ("en", "0.99", "0.99"),
    ("en", "9,999,999,999.99", "9999999999.99"),
]


@pytest.mark.parametrize(("language", "typed", "stored"), ACCEPTED_PRICES)
def test_a_price_in_the_users_language_is_stored_exactly(clients, products, language, typed, stored):
    response = clients[language].post(NEW_PRODUCT, data=product_form(price=typed))

    assert response.status_code == 302, field_errors(response, "price")
    [(_, _, price, _, _)] = products()
    assert price == Decimal(stored)


ACCEPTED_WHOLE_NUMBERS = [
    ("id", "1.000", 1000),
    ("id", "1.000.000", 1_000_000),
    ("id", "1000", 1000),
    ("id", "3", 3),
    ("en", "1,000", 1000),
    ("en", "1000", 1000),
    ("en", "3", 3),
]


@pytest.mark.parametrize(("language", "typed", "stored"), ACCEPTED_WHOLE_NUMBERS)
def test_stock_in_the_users_language_is_stored_exactly(clients, products, language, typed, stored):
    response = clients[language].post(NEW_PRODUCT, data=product_form(stock=typed))

    assert response.status_code == 302, field_errors(response, "stock")
    [(_, _, _, stock, _)] = products()
    assert stock == stored


@pytest.mark.parametrize(("language", "typed", "stored"), ACCEPTED_WHOLE_NUMBERS)
def test_a_quantity_in_the_users_language_is_stored_exactly(clients, make_product, lines, language, typed, stored):
    product_id = make_product(stock=2_000_000)
    data = {"note": "", "version": "", "lines-0-id": "", "lines-0-product": str(product_id)}

    response = clients[language].post(NEW_TRANSACTION, data={**data, "lines-0-product_qty": typed})

    assert response.status_code == 302, field_errors(response, "lines-0-product_qty")
    [(_, _, _, qty)] = lines()
    assert qty == stored


def test_a_browser_asking_for_indonesian_types_indonesian(app, make_user, products):
    """No language chosen: the browser's Accept-Language decides how numbers read."""
    make_user("zqx-browser", "admin")
    client = signed_in(app, "zqx-browser", **{"Accept-Language": "id"})

    response = client.post(NEW_PRODUCT, data=product_form(price="45.000,50", stock="1.500"))

    assert response.status_code == 302
    assert [(price, stock) for _, _, price, stock, _ in products()] == [(Decimal("45000.50"), 1500)]


# -------------------------------------------------------------------- refused


REFUSED_PRICES = [
    # (language, typed, the price's errors: a function of the app and the language)
    ("id", "12abc,50", lambda app, lang: [not_a_number(app, lang)]),
    ("en", "12abc,50", lambda app, lang: [not_a_number(app, lang)]),
    (
        "en",
        "45000,50",
        lambda app, lang: [not_a_number(app, lang), did_you_mean(app, lang, "4,500,050.00", "45,000.50")],
    ),
    ("en", "45.000,50", lambda app, lang: [not_a_number(app, lang), did_you_mean(app, lang, "45.0005", "45,000.50")]),
    ("en", "1,50", lambda app, lang: [not_a_number(app, lang), did_you_mean(app, lang, "150.00", "1.50")]),
    # 45.000 in English is forty-five with three decimals, not forty-five thousand.
    ("en", "45.000", lambda app, lang: [too_many_decimals(app, lang), read_as(app, lang, "45.000")]),
    ("id", "45,000.50", lambda app, lang: [not_a_number(app, lang), did_you_mean(app, lang, "45,0005", "45.000,50")]),
    ("id", "0.001", lambda app, lang: [not_a_number(app, lang), did_you_mean(app, lang, "1,00", "0,001")]),
    ("id", "1,000", lambda app, lang: [too_many_decimals(app, lang), read_as(app, lang, "1,000")]),
    ("id", "45.000,505", lambda app, lang: [too_many_decimals(app, lang), read_as(app, lang, "45.000,505")]),
]


@pytest.mark.parametrize(("language", "typed", "errors"), REFUSED_PRICES)
def test_an_ambiguous_or_unreadable_price_is_refused_with_how_it_was_read(
    app, clients, products, make_product, language, typed, errors
):
    product_id = make_product(sku="KEEP-1", price="7.00")
    before = products()

    created = clients[language].post(NEW_PRODUCT, data=product_form(price=typed))
    edited = clients[language].post(
        edit_product_url(product_id), data=product_form(sku="KEEP-1", price=typed, version="1", stock="10")
    )

    for response in (created, edited):
        assert response.status_code == 200
        assert field_errors(response, "price") == errors(app, language)
        assert field_value(response, "price") == typed.strip()  # as typed, to be corrected
    assert products() == before


REFUSED_WHOLE_NUMBERS = [
    ("id", "1,5", lambda app, lang: [not_a_number(app, lang, "integer"), read_as(app, lang, "1,5")]),
    ("id", "1.5", lambda app, lang: [not_a_number(app, lang, "integer"), did_you_mean(app, lang, "15")]),
    ("id", "1,000", lambda app, lang: [not_a_number(app, lang, "integer"), read_as(app, lang, "1,000")]),
    ("en", "1,5", lambda app, lang: [not_a_number(app, lang, "integer"), did_you_mean(app, lang, "15")]),
    ("en", "1.000", lambda app, lang: [not_a_number(app, lang, "integer"), read_as(app, lang, "1.000")]),
    ("en", "1.5", lambda app, lang: [not_a_number(app, lang, "integer"), read_as(app, lang, "1.5")]),
    ("en", "1e2", lambda app, lang: [not_a_number(app, lang, "integer")]),
    ("en", "x", lambda app, lang: [not_a_number(app, lang, "integer")]),
    ("id", "x", lambda app, lang: [not_a_number(app, lang, "integer")]),
]


@pytest.mark.parametrize(("language", "typed", "errors"), REFUSED_WHOLE_NUMBERS)
def test_a_stock_not_whole_or_unreadable_is_refused_with_how_it_was_read(
    app, clients, products, language, typed, errors
):
    response = clients[language].post(NEW_PRODUCT, data=product_form(stock=typed))

    assert response.status_code == 200
    assert field_errors(response, "stock") == errors(app, language)
    assert products() == []


@pytest.mark.parametrize(("language", "typed", "errors"), REFUSED_WHOLE_NUMBERS)
def test_a_quantity_not_whole_or_unreadable_is_refused_with_how_it_was_read(
    app, clients, make_product, lines, language, typed, errors
):
    product_id = make_product()
    data = {"note": "", "version": "", "lines-0-id": "", "lines-0-product": str(product_id)}

    response = clients[language].post(NEW_TRANSACTION, data={**data, "lines-0-product_qty": typed})

    assert response.status_code == 200
    assert field_errors(response, "lines-0-product_qty") == errors(app, language)
    assert lines() == []


def test_a_number_read_but_out_of_range_says_how_it_was_read(app, clients, products):
    response = clients["id"].post(NEW_PRODUCT, data=product_form(price="10.000.000.000,00"))

    errors = field_errors(response, "price")
    assert len(errors) == 2 and "9999999999.99" in errors[0]  # the range rule's own message
    assert errors[1] == read_as(app, "id", "10.000.000.000,00")
    assert products() == []


# ------------------------------------------------- shown in the language, saved back


def test_inputs_are_text_boxes_that_ask_for_a_number_keyboard(clients):
    for client in clients.values():
        product = client.get(NEW_PRODUCT).text
        transaction = html.unescape(client.get(NEW_TRANSACTION).text)  # a new line's template is escaped

        for page, field, inputmode in (
            (product, "price", "decimal"),
            (product, "stock", "numeric"),
            (transaction, "product_qty", "numeric"),
        ):
            tag = re.search(rf'<input[^>]*\bid="{field}"[^>]*>', page).group(0)
            assert 'type="text"' in tag, tag
            assert f'inputmode="{inputmode}"' in tag, tag


@pytest.mark.parametrize(("language", "price", "stock"), [("id", "45.000,50", "1.500"), ("en", "45,000.50", "1,500")])
def test_the_product_form_shows_numbers_in_the_users_language_and_saves_them_unchanged(
    clients, make_product, products, language, price, stock
):
    product_id = make_product(sku="SHOW-1", price="45000.50", stock=1500)
    before = products()

    form = clients[language].get(edit_product_url(product_id))
    assert (field_value(form, "price"), field_value(form, "stock")) == (price, stock)
    response = clients[language].post(
        edit_product_url(product_id),
        data=product_form(sku="SHOW-1", name="Product 1", price=price, stock=stock, version="1"),
    )

    assert response.status_code == 302, field_errors(response, "price")
    assert products() == before  # the same price and stock, and no new version


@pytest.mark.parametrize(("language", "qty"), [("id", "1.000"), ("en", "1,000")])
def test_the_transaction_form_shows_quantities_in_the_users_language_and_saves_them_unchanged(
    clients, make_product, db, lines, language, qty
):
    product_id = make_product(stock=5000)
    with db() as session:
        txn = Transaction(lines=[TransactionProduct(product_id=product_id, product_qty=1000)])
        session.add(txn)
        session.flush()
        txn_id = txn.id
    before = lines()
    [(line_id, _, _, _)] = before

    form = clients[language].get(edit_transaction_url(txn_id))
    assert field_value(form, "lines-0-product_qty") == qty
    response = clients[language].post(
        edit_transaction_url(txn_id),
        data={
            "note": "",
            "version": "1",
            "lines-0-id": str(line_id),
            "lines-0-product": str(product_id),
            "lines-0-product_qty": qty,
        },
    )

    assert response.status_code == 302, field_errors(response, "lines-0-product_qty")
    assert lines() == before


@pytest.mark.parametrize("language", ["en", "id"])
def test_the_plain_format_tools_post_works_in_every_language(clients, products, lines, language):
    client = clients[language]

    response = client.post(NEW_PRODUCT, data=product_form(price="45000.50", stock="3"))
    assert response.status_code == 302, field_errors(response, "price")
    [(product_id, _, price, stock, _)] = products()
    response = client.post(
        NEW_TRANSACTION,
        data={
            "note": "",
            "version": "",
            "lines-0-id": "",
            "lines-0-product": str(product_id),
            "lines-0-product_qty": "3",
        },
    )

    assert response.status_code == 302, field_errors(response, "lines-0-product_qty")
    assert (price, stock) == (Decimal("45000.50"), 3)
    assert [qty for *_, qty in lines()] == [3]


def test_csv_export_stays_plain_in_indonesian(clients, make_product):
    make_product(sku="CSV-1", price="45000.50", stock=1500)

    exported = clients["id"].get("/admin/product/export/csv/").get_data(as_text=True)

    assert ",45000.50,1500," in exported


@pytest.mark.parametrize(("language", "qty"), [("id", "1.000"), ("en", "1,000")])
def test_the_transaction_details_show_quantities_in_the_users_language(clients, make_product, db, language, qty):
    product_id = make_product()
    with db() as session:
        txn = Transaction(lines=[TransactionProduct(product_id=product_id, product_qty=1000)])
        session.add(txn)
        session.flush()
        txn_id = txn.id

    page = clients[language].get(f"/admin/transaction/details/?id={txn_id}").text

    assert f'<td class="text-right">{qty}</td>' in page


@pytest.mark.parametrize("field", ["price", "stock"])
def test_a_number_of_thousands_of_digits_is_refused_not_an_error(clients, products, field):
    response = clients["en"].post(NEW_PRODUCT, data=product_form(**{field: "9" * 5000}))

    assert response.status_code == 200  # it overflowed the range check: a 500
    assert field_errors(response, field)
    assert products() == []
