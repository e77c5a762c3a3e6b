"""English and Indonesian: the catalogues are complete and compiled, every page a user sees is
translated, money and dates follow the locale, and the language a user picks sticks."""

import html
import json
import re
from datetime import UTC
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path

import flask_admin
import pytest
import wtforms
from babel.dates import format_datetime
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po
from babel.numbers import format_currency
from sqlalchemy import func, select

from adminapp.extensions import db as _db
from adminapp.models import AuditEntry, Product, Transaction, User

from .support import PASSWORD, login, make_app, signed_in

# What a page says does not depend on the database: these run on SQLite only.
BACKENDS = ["sqlite"]

ROOT = Path(__file__).resolve().parent.parent
TRANSLATIONS = ROOT / "adminapp" / "translations"
LANGUAGES = ["id"]  # every language besides English (the source language)
# As README's `pybabel extract -k ...`.
KEYWORDS = {**DEFAULT_KEYWORDS, "lazy_gettext": None, "lazy_pgettext": ((1, "c"), 2), "_l": None}


# ================================================================== catalogues


def source_messages() -> dict[tuple, tuple]:
    """{(context, msgid): (file, line)} of the app's own strings, extracted as pybabel does (babel.cfg)."""
    with open(ROOT / "babel.cfg") as cfg:
        method_map, options_map = parse_mapping_cfg(cfg)
    found = {}
    for filename, lineno, message, _comments, context in extract_from_dir(
        str(ROOT), method_map, options_map, keywords=KEYWORDS
    ):
        msgid = message[0] if isinstance(message, (tuple, list)) else message
        found.setdefault((context, msgid), (filename, lineno))
    return found


def po(language, domain):
    with open(TRANSLATIONS / language / "LC_MESSAGES" / f"{domain}.po", "rb") as f:
        return read_po(f, locale=language)


def mo(language, domain):
    with open(TRANSLATIONS / language / "LC_MESSAGES" / f"{domain}.mo", "rb") as f:
        return read_mo(f)


def key(message) -> tuple:
    msgid = message.id[0] if isinstance(message.id, (tuple, list)) else message.id
    context = message.context.decode() if isinstance(message.context, bytes) else message.context  # read_mo
    return context, msgid


def translations(catalog) -> dict[tuple, tuple]:
    """{(context, msgid): (msgstr, ...)} of the translated, non-fuzzy entries."""
    result = {}
    for message in catalog:
        if not message.id or message.fuzzy:
            continue
        strings = message.string if isinstance(message.string, (tuple, list)) else (message.string,)
        if all(strings):
            result[key(message)] = tuple(strings)
    return result


def assert_translates(catalog, wanted: dict, what: str):
    done = translations(catalog)
    fuzzy = sorted(key(m)[1] for m in catalog if m.id and m.fuzzy)
    assert not fuzzy, f"fuzzy entries in {what} (check them, then drop the fuzzy flag): {fuzzy}"
    missing = [
        f"{msgid!r} ({where})" if where else repr(msgid)
        for (context, msgid), where in sorted(wanted.items(), key=lambda kv: str(kv[0]))
        if (context, msgid) not in done
    ]
    assert not missing, f"{len(missing)} string(s) without a translation in {what}:\n  " + "\n  ".join(missing)


def assert_placeholders_kept(catalog, what: str):
    problems = [f"{message.id!r}: {'; '.join(map(str, errors))}" for message, errors in catalog.check()]
    assert not problems, f"placeholder errors in {what}:\n  " + "\n  ".join(problems)


def assert_compiled(language, domain):
    compiled = {
        key(m): tuple(m.string) if isinstance(m.string, (tuple, list)) else (m.string,)
        for m in mo(language, domain)
        if m.id
    }
    assert compiled == translations(po(language, domain)), (
        f"{domain}.mo is out of date for {language!r}: run `pybabel compile -d adminapp/translations "
        f"-D {domain}` (see README, Translations)"
    )


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_string_of_the_app_is_translated(language):
    wanted = {k: f"{Path(f).as_posix()}:{line}" for k, (f, line) in source_messages().items()}
    assert len(wanted) > 150, "extraction found too few strings: is babel.cfg right?"
    catalog = po(language, "messages")
    assert_translates(catalog, wanted, f"{language}/messages.po (run pybabel update, see README)")
    assert_placeholders_kept(catalog, f"{language}/messages.po")
    stale = sorted(k[1] for k in translations(catalog) if k not in wanted)
    assert not stale, f"{language}/messages.po has entries the source no longer uses (run pybabel update): {stale}"


@pytest.mark.parametrize("language", LANGUAGES)
def test_messages_mo_is_compiled_from_the_po(language):
    assert_compiled(language, "messages")


def flask_admin_strings() -> dict:
    with open(Path(flask_admin.__file__).parent / "translations" / "en" / "LC_MESSAGES" / "admin.po", "rb") as f:
        return {key(m): "flask_admin" for m in read_po(f) if m.id}


def wtforms_strings() -> dict:
    with open(Path(wtforms.__file__).parent / "locale" / "wtforms.pot", "rb") as f:
        return {key(m): "wtforms" for m in read_po(f) if m.id}


def page_size_strings() -> dict:
    """The list's page-size menu: Flask-Admin asks for "{n} item"/"{n} items" of each size."""
    from adminapp.admin.base import SecuredModelView

    return {(None, f"{n} item"): "page size menu" for n in SecuredModelView.page_size_options}


@pytest.mark.parametrize("language", LANGUAGES)
def test_flask_admin_and_validator_strings_are_translated(language):
    catalog = po(language, "admin")
    assert_translates(
        catalog, {**flask_admin_strings(), **wtforms_strings(), **page_size_strings()}, f"{language}/admin.po"
    )
    assert_placeholders_kept(catalog, f"{language}/admin.po")
    assert_compiled(language, "admin")


# ============================================================== rendered pages

# Nodes that read the same in English and Indonesian, and may: names, codes, words both use.
SAME_IN_BOTH = {
    "adminapp",
    "English",
    "Bahasa",
    "Indonesia",  # the brand; each language named in its own language
    "SKU",
    "ID",
    "CSV",
    "IDR",
    "Rp",
    "UTC",
    "#",
    "admin",
    "auditor",  # roles ("staff" is "staf")
    "Status",
    "Total",
    "Subtotal",
    "Filter",  # the same words in Indonesian
}
NEUTRAL = [
    re.compile(r"\b[0-9a-f]{12,}\b"),  # hashes, request IDs
    re.compile(r"\b\d{1,2} (?:Jan|Feb|Mar|Apr|Mei|Jun|Jul|Agu|Sep|Okt|Nov|Des) \d{4}\b"),  # Indonesian dates
]
# The data the pages show: made-up tokens, so they are never mistaken for interface words.
STAFF, ADMIN, LOCAL, LOCAL_STAFF = "zqxstaff", "zqxadmin", "zqxlocal", "zqxlocalstaff"
DATA = [
    "ZQX-1",
    "ZQX-2",
    "ZQX-3",
    "Zqx Widget",
    "Zqx Gadget",
    "Zqx Spare",
    "Zqx zqxnote",
    "Zqx zqxreason",
    "Zqx zqxdesc",
    STAFF,
    ADMIN,
    LOCAL,
    LOCAL_STAFF,
    "system",
]  # the username audit entries store for changes made outside a request (the fixtures')

JSON_NODES = {"filter-groups-data", "actions-confirmation-data", "message-data"}
TEXT_ATTRIBUTES = {"title", "placeholder", "aria-label", "alt", "data-placeholder"}


class _Texts(HTMLParser):
    """The text a user can see or hear on a page: text nodes (not scripts or styles), the
    labelling attributes, button captions, and the strings Flask-Admin's scripts show from its
    hidden JSON (filter names and operations, action confirmations)."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.texts: list[str] = []
        self._stack: list[tuple[str, dict]] = []
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for name in TEXT_ATTRIBUTES & attrs.keys():
            self._add(attrs[name])
        if tag == "a" or (tag == "input" and attrs.get("type") in ("submit", "button", "reset")):
            self._add(attrs.get("value"))  # a button's caption; Flask-Admin's confirmation on <a value=...>
        if tag in ("script", "style"):
            self._skip += 1
        if tag not in ("input", "br", "img", "meta", "link", "hr", "col", "source", "wbr"):
            self._stack.append((tag, attrs))

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if self._stack and self._stack[-1][0] == tag:
            self._stack.pop()

    def handle_endtag(self, tag):
        if tag in ("script", "style"):
            self._skip = max(0, self._skip - 1)
        for i in range(len(self._stack) - 1, -1, -1):
            if self._stack[i][0] == tag:
                del self._stack[i:]
                break

    def handle_data(self, data):
        if self._skip or not data.strip():
            return
        if self._stack and self._stack[-1][0] == "kbd":
            return  # a key as printed on the keyboard (Ctrl, Enter, n): the same in every language
        attrs = self._stack[-1][1] if self._stack else {}
        if attrs.get("id") == "active-filters-data":
            return  # the values the user typed
        if attrs.get("id") in JSON_NODES:
            self._add_json(json.loads(data))
        elif "inline-field-template" in attrs.get("class", ""):
            self.texts.extend(page_texts(data))  # the form of a new inline line, HTML-escaped
        else:
            self._add(data)

    def _add_json(self, value):
        if isinstance(value, str):
            self._add(value)
        elif isinstance(value, dict):
            for name, item in value.items():
                if name == "options":  # [[value, label], ...]: the label is shown
                    for option in item or ():
                        self._add(option[1])
                elif name not in ("arg", "type", "index"):
                    self._add_json(item)
                if isinstance(item, list) and item and isinstance(item[0], dict):
                    self._add(name)  # {filter name: [its operations]}
        elif isinstance(value, list):
            for item in value:
                self._add_json(item)

    def _add(self, text):
        if isinstance(text, str) and text.strip():
            self.texts.append(" ".join(text.split()))


def page_texts(markup: str) -> list[str]:
    parser = _Texts()
    parser.feed(markup)
    parser.close()
    return parser.texts


def residue(text: str) -> str:
    """What is left of a text once data, numbers, codes and the allowed shared words are taken out."""
    for token in sorted(DATA, key=len, reverse=True):
        text = text.replace(token, " ")
    for pattern in NEUTRAL:
        text = pattern.sub(" ", text)
    words = re.findall(r"[^\W\d_]+", text)
    return " ".join(w for w in words if w not in SAME_IN_BOTH)


def untranslated(english: str, indonesian: str) -> list[str]:
    """The texts of the Indonesian page that are word for word on the English page too."""
    english_texts = set(page_texts(english))
    return sorted({t for t in page_texts(indonesian) if t in english_texts and residue(t)})


@pytest.fixture
def shop(app, db, make_user, make_product):
    """Users, products, transactions (draft, posted, void) and audit entries, all made through
    the interface; the ids of what the pages show."""
    make_user(ADMIN, "admin")
    make_user(STAFF, "staff")
    make_user(LOCAL, "admin", locale="id")
    make_user(LOCAL_STAFF, "staff", locale="id")
    widget = make_product(sku="ZQX-1", name="Zqx Widget", price="1234.50", stock=3, description="Zqx zqxdesc")
    gadget = make_product(sku="ZQX-2", name="Zqx Gadget", price="20.00", stock=50)
    spare = make_product(sku="ZQX-3", name="Zqx Spare", price="5.00", stock=0)
    client = app.test_client()
    assert login(client, ADMIN).status_code == 302

    def new_transaction(*lines):
        data = {"note": "Zqx zqxnote", "version": ""}
        for i, (product, qty) in enumerate(lines):
            data.update({f"lines-{i}-id": "", f"lines-{i}-product": str(product), f"lines-{i}-product_qty": str(qty)})
        assert client.post("/admin/transaction/new/", data=data).status_code == 302
        with app.app_context():
            return _db.session.scalar(select(func.max(Transaction.id)))

    draft = new_transaction((widget, 1))
    posted = new_transaction((widget, 1), (gadget, 2))
    voided = new_transaction((gadget, 1))
    for txn in (posted, voided):
        assert client.post("/admin/transaction/action/", data={"action": "post", "rowid": [txn]}).status_code == 302
    assert client.post(f"/admin/transaction/void/?id={voided}", data={"reason": "Zqx zqxreason"}).status_code == 302
    edit = {
        "sku": "ZQX-2",
        "name": "Zqx Gadget",
        "description": "Zqx zqxdesc",
        "price": "25.00",
        "stock": "48",
        "is_active": "y",
        "version": "2",
    }
    with app.app_context():
        edit["version"] = str(_db.session.get(Product, gadget).version)
    assert client.post(f"/admin/product/edit/?id={gadget}", data=edit).status_code == 302
    with app.app_context():
        update = _db.session.scalar(select(func.max(AuditEntry.id)).where(AuditEntry.action == "update"))
        staff_id = _db.session.scalar(select(User.id).where(User.username == STAFF))
        created = _db.session.get(Transaction, posted).created_at
    return {
        "widget": widget,
        "gadget": gadget,
        "spare": spare,
        "draft": draft,
        "posted": posted,
        "voided": voided,
        "update": update,
        "staff": staff_id,
        "created": created,
    }


def pages(shop) -> dict[str, tuple]:
    """name -> (method, url, form data or None, role). Forms with errors are POSTs."""
    product_errors = {"sku": "", "name": "", "price": "x", "stock": "-1", "version": ""}
    return {
        "dashboard": ("GET", "/admin/", None, "admin"),
        "dashboard, everyone": ("GET", "/admin/?recent=all", None, "admin"),
        "product list": ("GET", "/admin/product/", None, "admin"),
        "product list, filtered": ("GET", "/admin/product/?flt0_price_at_least=30&flt1_active_equals=1", None, "admin"),
        "product create": ("GET", "/admin/product/new/", None, "admin"),
        "product create, errors": ("POST", "/admin/product/new/", product_errors, "admin"),
        "product edit": ("GET", f"/admin/product/edit/?id={shop['widget']}", None, "admin"),
        "product details": ("GET", f"/admin/product/details/?id={shop['widget']}", None, "admin"),
        "product history": ("GET", f"/admin/product/history/?id={shop['gadget']}", None, "admin"),
        "product delete": ("GET", f"/admin/product/delete/?id={shop['spare']}", None, "admin"),
        "product delete, refused": ("GET", f"/admin/product/delete/?id={shop['widget']}", None, "admin"),
        "transaction list": ("GET", "/admin/transaction/", None, "admin"),
        "transaction create": ("GET", "/admin/transaction/new/", None, "admin"),
        "transaction create, errors": (
            "POST",
            "/admin/transaction/new/",
            {"note": "", "version": "", "lines-0-id": "", "lines-0-product": "", "lines-0-product_qty": "x"},
            "admin",
        ),
        "transaction edit": ("GET", f"/admin/transaction/edit/?id={shop['draft']}", None, "admin"),
        "transaction details, draft": ("GET", f"/admin/transaction/details/?id={shop['draft']}", None, "admin"),
        "transaction details, posted": ("GET", f"/admin/transaction/details/?id={shop['posted']}", None, "admin"),
        "transaction details, void": ("GET", f"/admin/transaction/details/?id={shop['voided']}", None, "admin"),
        "transaction void": ("GET", f"/admin/transaction/void/?id={shop['posted']}", None, "admin"),
        "transaction void, errors": ("POST", f"/admin/transaction/void/?id={shop['posted']}", {"reason": ""}, "admin"),
        "transaction delete, draft": ("GET", f"/admin/transaction/delete/?id={shop['draft']}", None, "admin"),
        "transaction delete, refused": ("GET", f"/admin/transaction/delete/?id={shop['posted']}", None, "admin"),
        "transaction history": ("GET", f"/admin/transaction/history/?id={shop['voided']}", None, "admin"),
        "transaction read-only (flash)": ("GET", f"/admin/transaction/edit/?id={shop['posted']}", None, "admin"),
        "user list": ("GET", "/admin/user/", None, "admin"),
        "user create": ("GET", "/admin/user/new/", None, "admin"),
        "user create, errors": (
            "POST",
            "/admin/user/new/",
            {"username": "a b", "role": "", "new_password": "123", "confirm_password": "456"},
            "admin",
        ),
        "user edit": ("GET", f"/admin/user/edit/?id={shop['staff']}", None, "admin"),
        "user details": ("GET", f"/admin/user/details/?id={shop['staff']}", None, "admin"),
        "user delete, refused": ("GET", f"/admin/user/delete/?id={shop['staff']}", None, "admin"),
        "audit list": ("GET", "/admin/audit/", None, "admin"),
        "audit details": ("GET", f"/admin/audit/details/?id={shop['update']}", None, "admin"),
        "change password": ("GET", "/account/password", None, "admin"),
        "change password, errors": (
            "POST",
            "/account/password",
            {"current_password": "wrong", "new_password": "short", "confirm_password": "other"},
            "admin",
        ),
        "change password, domain error": (
            "POST",
            "/account/password",
            {
                "current_password": "wrong password!",
                "new_password": "1234567890123",
                "confirm_password": "1234567890123",
            },
            "admin",
        ),
        "403": ("GET", "/admin/user/", None, "staff"),
        "404": ("GET", "/admin/no-such-page/", None, "admin"),
        "product delete refused (flash)": (
            "POST",
            "/admin/product/action/",
            {"action": "delete", "rowid": [shop["widget"]]},
            "admin",
        ),
        "product activate (flash)": (
            "POST",
            "/admin/product/action/",
            {"action": "activate", "rowid": [shop["widget"], shop["gadget"]]},
            "admin",
        ),
    }


def render(client, method, url, data, language=None):
    """The page's HTML, after following redirects; checks the language it says it is in."""
    response = client.open(url, method=method, data=data, follow_redirects=True)
    assert response.status_code in (200, 403, 404), (url, response.status_code)
    if language:
        assert language_of(response) == language, (url, language_of(response))
    return response.get_data(as_text=True)


def language_of(response) -> str:
    """The page's language: Content-Language, which the HTML <head> repeats (Flask-Admin's
    <html> has no lang attribute; ours do)."""
    language = response.headers.get("Content-Language")
    assert language, "the response does not say its language"
    if response.mimetype == "text/html":
        page = response.get_data(as_text=True)
        assert (
            f'<meta http-equiv="Content-Language" content="{language}">' in page or f'<html lang="{language}">' in page
        ), "the page does not say its language"
    return language


def assert_pages_translated(app, shop, indonesian_clients, english_clients):
    failures = []
    for name, (method, url, data, role) in pages(shop).items():
        english = render(english_clients[role], method, url, data, "en")
        indonesian = render(indonesian_clients[role], method, url, data, "id")
        found = untranslated(english, indonesian)
        if found:
            failures.append(f"{name} ({url}):\n    " + "\n    ".join(map(repr, found)))
    assert not failures, "English left on Indonesian pages:\n  " + "\n  ".join(failures)


def test_pages_are_indonesian_for_a_browser_asking_for_it(app, shop):
    indonesian = {
        role: signed_in(app, user, **{"Accept-Language": "id"}) for role, user in (("admin", ADMIN), ("staff", STAFF))
    }
    english = {role: signed_in(app, user) for role, user in (("admin", ADMIN), ("staff", STAFF))}
    assert_pages_translated(app, shop, indonesian, english)


def test_pages_are_indonesian_for_a_user_who_chose_it(app, shop):
    """users.locale = "id", and no Accept-Language header at all."""
    indonesian = {"admin": signed_in(app, LOCAL), "staff": signed_in(app, LOCAL_STAFF)}
    english = {
        role: signed_in(app, user, **{"Accept-Language": "en"}) for role, user in (("admin", ADMIN), ("staff", STAFF))
    }
    assert_pages_translated(app, shop, indonesian, english)


def test_sign_in_page_and_its_errors_are_indonesian(app, shop):
    english, indonesian = app.test_client(), app.test_client()
    indonesian.environ_base["HTTP_ACCEPT_LANGUAGE"] = "id-ID,id;q=0.9,en;q=0.5"
    for method, data in (
        ("GET", None),
        ("POST", {"username": "", "password": ""}),
        ("POST", {"username": "nobody", "password": "wrong"}),
    ):
        found = untranslated(
            render(english, method, "/login", data, "en"), render(indonesian, method, "/login", data, "id")
        )
        assert not found, f"English left on the sign-in page ({method}): {found}"
    page = render(indonesian, "POST", "/login", {"username": "nobody", "password": "wrong"})
    assert "Nama pengguna atau kata sandi salah." in page


def test_a_refused_form_says_so_in_indonesian(database_url, tmp_path, app, shop):
    """With CSRF on (as in production), a POST without its token gets the 400 page, translated."""
    protected = make_app(database_url, tmp_path, WTF_CSRF_ENABLED=True)
    english, indonesian = protected.test_client(), protected.test_client()
    indonesian.environ_base["HTTP_ACCEPT_LANGUAGE"] = "id"
    pages = {}
    for language, client in (("en", english), ("id", indonesian)):
        response = client.post("/login", data={"username": ADMIN, "password": PASSWORD})
        assert response.status_code == 400 and language_of(response) == language
        pages[language] = response.get_data(as_text=True)
    assert "Permintaan tidak valid" in pages["id"]
    assert not untranslated(pages["en"], pages["id"])


def test_the_untranslated_check_catches_english():
    """The check itself: an English word the Indonesian page shares with the English one is reported."""
    english = "<p>Zqx Widget</p><p>1.234</p><button value='x'>Save</button><p>Status</p><p>Edit ZQX-1</p>"
    indonesian = "<p>Zqx Widget</p><p>1.234</p><button value='x'>Simpan</button><p>Status</p><p>Edit ZQX-1</p>"
    assert untranslated(english, indonesian) == ["Edit ZQX-1"]


def test_money_and_dates_follow_the_locale(app, shop):
    english = signed_in(app, ADMIN)
    indonesian = signed_in(app, ADMIN, **{"Accept-Language": "id"})
    # Babel's formats with CLDR's currency spacing (a no-break space after a symbol that ends
    # in a letter), as browsers' Intl writes them.
    for client, locale, price in ((english, "en", "IDR\u00a01,234.50"), (indonesian, "id", "Rp\u00a01.234,50")):
        listing = html.unescape(client.get("/admin/product/").get_data(as_text=True))
        assert price in listing, locale
        details = html.unescape(client.get(f"/admin/transaction/details/?id={shop['posted']}").get_data(as_text=True))
        created = format_datetime(shop["created"], "medium", tzinfo=UTC, locale=locale)
        assert created in details, (locale, created)
    listing = html.unescape(indonesian.get("/admin/product/").get_data(as_text=True))
    assert "IDR" not in listing and "1,234.50" not in listing


def test_currency_is_configurable(app, shop):
    app.config["CURRENCY"] = "EUR"
    listing = html.unescape(
        signed_in(app, ADMIN, **{"Accept-Language": "id"}).get("/admin/product/").get_data(as_text=True)
    )
    assert format_currency(Decimal("1234.50"), "EUR", locale="id") in listing


def test_filter_urls_do_not_depend_on_the_language(app, shop):
    english = signed_in(app, ADMIN)
    indonesian = signed_in(app, ADMIN, **{"Accept-Language": "id"})
    for url in ("/admin/product/", "/admin/transaction/", "/admin/audit/", "/admin/user/"):
        assert filter_args(english.get(url)) == filter_args(indonesian.get(url)), url
    args = filter_args(indonesian.get("/admin/product/"))
    assert {"price_at_least", "price_at_most", "stock_at_or_below", "active_equals"} <= args
    skus = lambda response: re.findall(r'<td class="col-sku">\s*<a[^>]*>(.*?)</a>\s*</td>', response.text)  # noqa: E731
    assert skus(indonesian.get("/admin/product/?flt0_price_at_least=30")) == ["ZQX-1"]
    assert skus(indonesian.get("/admin/product/?flt0_price_at_least=30")) == skus(
        english.get("/admin/product/?flt0_price_at_least=30")
    )


def filter_args(response) -> set[str]:
    match = re.search(r'id="filter-groups-data"[^>]*>(.*?)</div>', response.text, re.S)
    groups = json.loads(html.unescape(match.group(1)))
    return {f["arg"] for group in groups.values() for f in group}


def test_csv_exports_stay_english(app, shop):
    indonesian = signed_in(app, ADMIN, **{"Accept-Language": "id"})
    english = signed_in(app, ADMIN)
    for url in (
        "/admin/product/export/csv/",
        "/admin/user/export/csv/",
        "/admin/audit/export/csv/",
        "/admin/transaction/export/csv/",
        "/admin/transaction/export-lines/",
    ):
        header = lambda client: client.get(url).get_data(as_text=True).splitlines()[0]  # noqa: E731
        assert header(indonesian) == header(english), url


# ============================================================ choosing the language


def stored_locale(app, username):
    with app.app_context():
        locale = _db.session.scalar(select(User.locale).where(User.username == username))
        _db.session.remove()
    return locale


def test_chosen_language_sticks_over_the_browser(app, shop):
    client = signed_in(app, ADMIN, **{"Accept-Language": "en"})
    assert language_of(client.get("/admin/product/")) == "en"
    response = client.post("/account/language", data={"locale": "id", "next": "/admin/product/"})
    assert response.status_code == 302 and response.headers["Location"].endswith("/admin/product/")
    assert stored_locale(app, ADMIN) == "id"
    for url in ("/admin/", "/admin/product/", f"/admin/transaction/details/?id={shop['posted']}", "/account/password"):
        response = client.get(url, headers={"Accept-Language": "en"})
        assert response.status_code == 200 and language_of(response) == "id", url
    assert ">Buat<" in " ".join(client.get("/admin/product/").text.split()).replace("> ", ">").replace(" <", "<")
    assert "Ganti kata sandi Anda" in client.get("/account/password").text

    # Signed in again, from a browser asking for English: still Indonesian.
    again = signed_in(app, ADMIN, **{"Accept-Language": "en"})
    assert language_of(again.get("/admin/")) == "id"

    # And back to English, whatever the browser asks for.
    client.post("/account/language", data={"locale": "en", "next": "/admin/"})
    assert language_of(client.get("/admin/", headers={"Accept-Language": "id"})) == "en"


def test_an_unknown_language_is_ignored(app, shop):
    client = signed_in(app, ADMIN)
    client.post("/account/language", data={"locale": "id"})
    for locale in ("fr", "", "xx_YY", "../id", "ID", "id; DROP TABLE users"):
        response = client.post("/account/language", data={"locale": locale, "next": "/admin/"})
        assert response.status_code == 302
        assert stored_locale(app, ADMIN) == "id", locale
    assert language_of(client.get("/admin/", headers={"Accept-Language": "en"})) == "id"
    client.post("/account/language", data={"next": "/admin/"})  # no locale at all
    assert stored_locale(app, ADMIN) == "id"


def test_without_a_choice_the_browser_decides(app, shop):
    client = signed_in(app, ADMIN)
    assert stored_locale(app, ADMIN) is None
    assert language_of(client.get("/admin/")) == "en"
    assert language_of(client.get("/admin/", headers={"Accept-Language": "id-ID,id;q=0.9"})) == "id"
    assert language_of(client.get("/admin/", headers={"Accept-Language": "fr, de;q=0.5"})) == "en"
    assert language_of(app.test_client().get("/login", headers={"Accept-Language": "id"})) == "id"


def test_the_line_editor_and_the_void_status_speak_plainly(app, shop):
    """No "Please select model" ("Silakan pilih model"); a void transaction is not "Batal",
    the word of the Cancel button."""
    english = signed_in(app, STAFF)
    indonesian = signed_in(app, STAFF, Accept_Language="id")

    # (The new line's template is in the page as it is, in a <script type="text/html">.)
    assert 'data-placeholder="Choose a product"' in english.get("/admin/transaction/new/").text
    new_page = indonesian.get("/admin/transaction/new/").text
    assert 'data-placeholder="Pilih produk"' in new_page and "pilih model" not in new_page.lower()
    void_page = indonesian.get(f"/admin/transaction/details/?id={shop['voided']}").text
    assert "dibatalkan" in void_page
