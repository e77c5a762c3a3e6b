"""CSRF with protection switched on, as in production: every POST needs the session's token."""

import re
from html.parser import HTMLParser

import pytest
from sqlalchemy import func, select

from adminapp.models import Product, User
from tests.support import PASSWORD, snapshot

PRODUCT_FORM = {"description": "", "price": "12.50", "stock": "7", "is_active": "y"}


class FormParser(HTMLParser):
    """Every <form> with its action, id and hidden/inputs, in page order."""

    def __init__(self):
        super().__init__()
        self.forms = []
        self._current = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self._current = {
                "action": attrs.get("action"),
                "id": attrs.get("id"),
                "method": (attrs.get("method") or "get").lower(),
                "inputs": {},
            }
            self.forms.append(self._current)
        elif tag == "input" and self._current is not None and attrs.get("name"):
            self._current["inputs"][attrs["name"]] = attrs.get("value") or ""

    def handle_endtag(self, tag):
        if tag == "form":
            self._current = None


def forms(html):
    parser = FormParser()
    parser.feed(html)
    return parser.forms


def token_in(html, action=None, form_id=None):
    for form in forms(html):
        if (action is None or form["action"] == action) and (form_id is None or form["id"] == form_id):
            token = form["inputs"].get("csrf_token")
            assert token, f"form {form} has no csrf_token"
            return token
    raise AssertionError(f"no form action={action!r} id={form_id!r} on the page")


def sign_in(client):
    token = token_in(client.get("/login").text)
    response = client.post("/login", data={"username": "alice", "password": PASSWORD, "csrf_token": token})
    assert response.status_code == 302, response.text
    return client


@pytest.fixture
def user(make_user):
    make_user("alice", "admin")


@pytest.fixture
def client(csrf_app, user):
    return sign_in(csrf_app.test_client())


def product_count(db):
    with db() as session:
        return session.scalar(select(func.count(Product.id)))


def product(db, pid):
    with db() as session:
        p = session.get(Product, pid)
        return None if p is None else (p.sku, p.name, p.is_active, p.version)


def signed_in(client):
    return client.get("/admin/").status_code == 200


# --- without a token: 400, nothing happens ----------------------------------------------------


def test_login_without_token_is_refused(csrf_app, db, user):
    client = csrf_app.test_client()
    client.get("/login")  # a session exists, but the POST carries no token
    response = client.post("/login", data={"username": "alice", "password": PASSWORD})
    assert response.status_code == 400
    assert not signed_in(client)
    with db() as session:
        alice = session.scalar(select(User).where(User.username == "alice"))
        assert alice.last_login_at is None and alice.failed_login_count == 0


def test_login_with_a_forged_token_is_refused(csrf_app, user):
    client = csrf_app.test_client()
    client.get("/login")
    response = client.post("/login", data={"username": "alice", "password": PASSWORD, "csrf_token": "forged"})
    assert response.status_code == 400
    assert not signed_in(client)


def test_token_of_another_session_is_refused(csrf_app, user):
    other = csrf_app.test_client()
    foreign_token = token_in(other.get("/login").text)
    client = csrf_app.test_client()
    client.get("/login")
    response = client.post("/login", data={"username": "alice", "password": PASSWORD, "csrf_token": foreign_token})
    assert response.status_code == 400
    assert not signed_in(client)


def test_logout_without_token_is_refused(client):
    assert client.post("/logout").status_code == 400
    assert signed_in(client)


def post_routes(app) -> list[str]:
    """Every address of the app that accepts a POST (those with a part in the path filled in)."""
    return sorted(
        rule.rule.replace("<path:filename>", "x").replace("<int:id>", "1")
        for rule in app.url_map.iter_rules()
        if "POST" in rule.methods
    )


def test_every_post_route_refuses_a_post_without_a_token(csrf_app, client, db, make_product):
    make_product()
    before = snapshot(csrf_app)
    routes = post_routes(csrf_app)
    assert "/account/sign-out-everywhere" in routes and "/admin/transaction/void/" in routes  # the table is real

    answers = {
        route: client.post(route, data={"action": "post", "rowid": ["1"], "id": "1"}).status_code for route in routes
    }

    assert answers == {route: 400 for route in routes}
    assert snapshot(csrf_app) == before
    assert signed_in(client)


def test_create_without_token_is_refused(client, db):
    response = client.post("/admin/product/new/", data={**PRODUCT_FORM, "sku": "NEW-1", "name": "New"})
    assert response.status_code == 400
    assert product_count(db) == 0


def test_edit_without_token_is_refused(client, db, make_product):
    pid = make_product(sku="KEEP-1", name="Keep")
    before = product(db, pid)
    response = client.post(
        f"/admin/product/edit/?id={pid}", data={**PRODUCT_FORM, "sku": "KEEP-1", "name": "Changed", "version": "1"}
    )
    assert response.status_code == 400
    assert product(db, pid) == before


def test_delete_without_token_is_refused(client, db, make_product):
    pid = make_product()
    assert client.post("/admin/product/delete/", data={"id": pid}).status_code == 400
    assert product(db, pid) is not None


@pytest.mark.parametrize("action", ["delete", "activate", "deactivate"])
def test_action_without_token_is_refused(client, db, make_product, action):
    pid = make_product(is_active=(action != "activate"))
    before = product(db, pid)
    response = client.post("/admin/product/action/", data={"action": action, "rowid": pid})
    assert response.status_code == 400
    assert product(db, pid) == before


# --- with the token scraped from the page: it works -------------------------------------------


def test_login_and_logout_with_tokens(csrf_app, db, user):
    client = sign_in(csrf_app.test_client())
    assert signed_in(client)
    with db() as session:
        assert session.scalar(select(User.last_login_at).where(User.username == "alice")) is not None
    dashboard = client.get("/admin/").text
    token = token_in(dashboard, action="/logout")
    assert client.post("/logout", data={"csrf_token": token}).status_code == 302
    assert not signed_in(client)


def test_create_and_edit_with_tokens(client, db):
    page = client.get("/admin/product/new/")
    assert page.status_code == 200
    token = token_in(page.text, action="")
    response = client.post(
        "/admin/product/new/", data={**PRODUCT_FORM, "sku": "NEW-1", "name": "New", "csrf_token": token}
    )
    assert response.status_code == 302
    with db() as session:
        pid = session.scalar(select(Product.id).where(Product.sku == "NEW-1"))
    assert pid is not None

    page = client.get(f"/admin/product/edit/?id={pid}")
    fields = next(f for f in forms(page.text) if "csrf_token" in f["inputs"] and "sku" in f["inputs"])["inputs"]
    response = client.post(
        f"/admin/product/edit/?id={pid}",
        data={
            **PRODUCT_FORM,
            "sku": fields["sku"],
            "name": "Renamed",
            "version": fields["version"],
            "csrf_token": fields["csrf_token"],
        },
    )
    assert response.status_code == 302
    assert product(db, pid)[1] == "Renamed"


def test_delete_with_token_from_the_confirmation_page(client, db, make_product):
    pid = make_product()
    link = re.search(rf'href="(/admin/product/delete/\?id={pid}[^"]*)"', client.get("/admin/product/").text)
    page = client.get(link.group(1).replace("&amp;", "&"))
    delete_form = next(f for f in forms(page.text) if f["action"] == "/admin/product/delete/")
    assert delete_form["method"] == "post" and delete_form["inputs"]["id"] == str(pid)
    response = client.post("/admin/product/delete/", data=delete_form["inputs"])
    assert response.status_code == 302
    assert product(db, pid) is None


def test_actions_with_token_from_the_list_page(client, db, make_product):
    a, b = make_product(is_active=True), make_product(is_active=True)
    token = token_in(client.get("/admin/product/").text, form_id="action_form")
    response = client.post(
        "/admin/product/action/", data={"action": "deactivate", "rowid": [a, b], "csrf_token": token}
    )
    assert response.status_code == 302
    assert product(db, a)[2] is False and product(db, b)[2] is False
    response = client.post("/admin/product/action/", data={"action": "activate", "rowid": [a], "csrf_token": token})
    assert response.status_code == 302
    assert product(db, a)[2] is True
    response = client.post("/admin/product/action/", data={"action": "delete", "rowid": [a, b], "csrf_token": token})
    assert response.status_code == 302
    assert product_count(db) == 0


# --- the list page carries the tokens ---------------------------------------------------------


def test_list_page_renders_tokens_in_every_post_form(client, make_product):
    ids = [make_product() for _ in range(3)]
    html = client.get("/admin/product/").text
    post_forms = [f for f in forms(html) if f["method"] == "post"]
    # Rows link to the delete confirmation page (whose form carries a token, tested above).
    assert sorted(map(int, re.findall(r'href="/admin/product/delete/\?id=(\d+)', html))) == sorted(ids)
    assert any(f["id"] == "action_form" for f in post_forms)
    assert any(f["action"] == "/logout" for f in post_forms)
    for form in post_forms:
        assert re.fullmatch(r"[\w.-]{20,}", form["inputs"].get("csrf_token", "")), form
