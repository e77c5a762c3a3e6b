"""Login and role rules for every endpoint under /admin.

The expected outcome comes from the tables below, written out by hand: they are
the specification, deliberately *not* read from ``adminapp.permissions``.  The
tests enumerate ``app.url_map``, so a view or view method added later that is
not classified here makes them fail with a message saying what to add.
"""

import re
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import url_for
from sqlalchemy import select

from adminapp.admin.products import ProductView
from adminapp.admin.transactions import TransactionView
from adminapp.models import Product, User
from adminapp.permissions import ROLE_RIGHTS
from tests.support import OFFSITE_TARGETS, login, snapshot

ROLES = ("admin", "staff", "auditor")
READ, WRITE = "read", "write"
R = frozenset({READ})
RW = frozenset({READ, WRITE})

# Every Flask-Admin view method, classified.  A method not listed here fails the tests.
METHOD_KIND = {
    "index_view": READ,
    "details_view": READ,
    "export": READ,
    "ajax_lookup": READ,
    "create_view": WRITE,
    "edit_view": WRITE,
    "ajax_update": WRITE,
    "delete_view": WRITE,
    "action_view": WRITE,
    "history_view": READ,
}

# A view's own @expose methods, classified per view.
VIEW_METHOD_KIND = {
    "product": {"adjust_view": WRITE},
    "transaction": {"void_view": WRITE, "export_lines": READ, "line_products": READ},
    "audit": {"checkpoint_view": READ},
}

# Who may read/write each admin view (by endpoint name).  A role not listed for a
# view gets nothing: 403.  A view not listed here at all fails the tests.
VIEW_ACCESS = {
    "product": {"admin": RW, "staff": RW, "auditor": R},
    "transaction": {"admin": RW, "staff": RW, "auditor": R},
    "user": {"admin": RW},
    "audit": {"admin": R, "auditor": R},
}

# Endpoints open to any signed-in, active user whatever the role.
ANY_SIGNED_IN = {"admin.index"}
# Endpoints under /admin that need no login at all.
PUBLIC = {"admin.static"}

# Values for URL arguments of admin rules.
URL_ARGUMENTS = {"export_type": "csv"}

PRODUCT_FORM = {"description": "", "price": "12.50", "stock": "7", "is_active": "y"}


def classify(endpoint: str):
    """('any', None) for the dashboard, else (view, READ|WRITE); fails on anything unknown."""
    if endpoint in ANY_SIGNED_IN:
        return "any", None
    view, _, method = endpoint.partition(".")
    if view not in VIEW_ACCESS:
        pytest.fail(
            f"Admin endpoint {endpoint!r} belongs to view {view!r}, which tests/test_permissions.py does "
            f"not know: add {view!r} to VIEW_ACCESS saying which roles may read/write it."
        )
    kind = VIEW_METHOD_KIND.get(view, {}).get(method) or METHOD_KIND.get(method)
    if kind is None:
        pytest.fail(
            f"Admin endpoint {endpoint!r} is the view method {method!r}, which tests/test_permissions.py "
            f"does not classify: add it to VIEW_METHOD_KIND[{view!r}] (or METHOD_KIND for a Flask-Admin "
            f"method) as READ or WRITE, and to ANY_SIGNED_IN or PUBLIC only if it really needs no role."
        )
    return view, kind


def expected_allowed(role: str, endpoint: str) -> bool:
    view, kind = classify(endpoint)
    if view == "any":
        return True
    return kind in VIEW_ACCESS[view].get(role, frozenset())


def admin_rules(app):
    rules = [r for r in app.url_map.iter_rules() if r.rule.startswith("/admin") and r.endpoint not in PUBLIC]
    assert rules, "no /admin rules found"
    return sorted(rules, key=lambda r: r.endpoint)


def rule_url(app, rule) -> str:
    missing = set(rule.arguments) - set(URL_ARGUMENTS)
    if missing:
        pytest.fail(
            f"Rule {rule.rule} ({rule.endpoint}) takes argument(s) {sorted(missing)}: add a value to "
            f"URL_ARGUMENTS in tests/test_permissions.py."
        )
    with app.test_request_context():
        return url_for(rule.endpoint, **{a: URL_ARGUMENTS[a] for a in rule.arguments})


def http_methods(rule):
    return sorted(rule.methods & {"GET", "POST"})


def product_row(db, product_id):
    with db() as session:
        p = session.get(Product, product_id)
        if p is None:
            return None
        return (p.sku, p.name, p.description, p.price, p.stock, p.is_active, p.version)


def count_products(db):
    with db() as session:
        return session.query(Product).count()


def requests_for(endpoint, http_method, url, make_product):
    """The concrete requests made against an endpoint: [(query_string, form_data)].

    For product writes they are real, valid requests that would change the
    database if allowed, so a refusal is proven by the 403 *and* by nothing changing.
    """
    view, _, method = endpoint.partition(".")
    if view == "product":
        if method in ("details_view", "edit_view") and http_method == "GET":
            return [({"id": make_product()}, None)]
        if method == "edit_view":
            pid = make_product()
            return [({"id": pid}, {**PRODUCT_FORM, "sku": f"EDITED-{pid}", "name": "Edited", "version": "1"})]
        if method == "create_view" and http_method == "POST":
            return [(None, {**PRODUCT_FORM, "sku": f"NEW-{make_product()}", "name": "Created"})]
        if method == "delete_view":
            return [(None, {"id": make_product()})]
        if method == "action_view":
            return [
                (None, {"action": action, "rowid": make_product(is_active=(action != "activate"))})
                for action in ("delete", "activate", "deactivate")
            ]
        if method == "ajax_update":
            return [(None, {"list_form_pk": make_product(), "name": "Edited inline"})]
        if method == "ajax_lookup":
            return [({"name": "product", "query": "Prod"}, None)]
    if method == "action_view":
        # A generic bulk request (an allowed role then gets "no such record", never 403).
        return [(None, {"action": "delete", "rowid": "0"})]
    return [(None, {} if http_method == "POST" else None)]


def do(client, http_method, url, query, data):
    if http_method == "GET":
        response = client.get(url, query_string=query)
    else:
        response = client.post(url, query_string=query, data=data or {})
    response.get_data()  # run streamed bodies (CSV exports) to the end, then release them
    response.close()
    return response


def is_login_redirect(response) -> bool:
    return response.status_code == 302 and urlsplit(response.headers["Location"]).path == "/login"


# --- the enumeration itself ---------------------------------------------------------------


def test_every_admin_endpoint_is_classified(app):
    """Fails, naming each one, when a view or view method appears that the tables above don't know."""
    unknown = []
    for rule in admin_rules(app):
        view, _, method = rule.endpoint.partition(".")
        if rule.endpoint in ANY_SIGNED_IN:
            continue
        if view not in VIEW_ACCESS or method not in {**METHOD_KIND, **VIEW_METHOD_KIND.get(view, {})}:
            unknown.append(f"{rule.endpoint} ({rule.rule})")
    assert not unknown, (
        "Unclassified admin endpoint(s): " + ", ".join(unknown) + ". Classify them in "
        "tests/test_permissions.py (VIEW_ACCESS for a new view, VIEW_METHOD_KIND for a view's own method)."
    )


def test_enumeration_sees_the_product_view(app):
    """Guards the enumeration itself: the endpoints it must find are there."""
    endpoints = {r.endpoint for r in admin_rules(app)}
    assert {"admin.index"} | {f"product.{m}" for m in METHOD_KIND} <= endpoints
    assert "admin.static" not in endpoints


def test_unknown_view_or_method_fails_with_a_message():
    for endpoint, hint in (("report.index_view", "VIEW_ACCESS"), ("product.publish_view", "VIEW_METHOD_KIND")):
        with pytest.raises(pytest.fail.Exception, match=hint):
            classify(endpoint)


def test_static_assets_need_no_login(app):
    with app.test_client().get("/admin/static/admin/js/helpers.js") as response:
        assert response.status_code == 200


# --- anonymous ----------------------------------------------------------------------------


def test_anonymous_is_sent_to_login_everywhere(app, make_product):
    client = app.test_client()
    checked = []
    for rule in admin_rules(app):
        classify(rule.endpoint)
        url = rule_url(app, rule)
        methods = ["GET"] if "GET" in rule.methods else ["POST"]
        if "POST" in rule.methods and "GET" in rule.methods:
            methods.append("POST")  # create/edit: the POST is guarded too
        for http_method in methods:
            for query, data in requests_for(rule.endpoint, http_method, url, make_product):
                before = snapshot(app)
                response = do(client, http_method, url, query, data)
                where = f"anonymous {http_method} {url} ({rule.endpoint})"
                assert response.status_code == 302, f"{where}: {response.status_code}"
                location = urlsplit(response.headers["Location"])
                assert location.path == "/login", f"{where}: redirected to {location}"
                next_url = parse_qs(location.query)["next"][0]
                assert urlsplit(next_url).path == url, f"{where}: next={next_url!r}"
                assert snapshot(app) == before, f"{where} changed the database"
                checked.append(rule.endpoint)
    assert "admin.index" in checked and "product.action_view" in checked


def test_anonymous_next_keeps_the_query_string(app, make_product):
    pid = make_product()
    response = app.test_client().get(f"/admin/product/details/?id={pid}")
    assert is_login_redirect(response)
    assert parse_qs(urlsplit(response.headers["Location"]).query)["next"] == [f"/admin/product/details/?id={pid}"]


# --- every role against every endpoint -----------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
def test_role_matrix(app, db, as_role, make_product, role):
    client = as_role(role)
    problems = []
    for rule in admin_rules(app):
        allowed = expected_allowed(role, rule.endpoint)  # fails on an unclassified endpoint
        url = rule_url(app, rule)
        for http_method in http_methods(rule):
            for query, data in requests_for(rule.endpoint, http_method, url, make_product):
                before = snapshot(app)
                response = do(client, http_method, url, query, data)
                status = response.status_code
                where = f"{role} {http_method} {url} {query or ''} {data or ''} ({rule.endpoint})"
                if allowed:
                    if status == 403 or is_login_redirect(response) or status >= 500:
                        problems.append(f"{where}: expected access, got {status}")
                else:
                    if status != 403:
                        problems.append(f"{where}: expected 403, got {status}")
                    if snapshot(app) != before:
                        problems.append(f"{where}: refused, yet the database changed")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("role", ROLES)
def test_dashboard_is_open_to_every_role(as_role, make_product, role):
    make_product()
    response = as_role(role).get("/admin/")
    assert response.status_code == 200
    assert re.search(r'id="product-count"[^>]*>1<', response.text)


# --- product writes in detail: refused for the auditor, with the database unchanged -------


def test_auditor_cannot_create_a_product(auditor_client, db, make_product):
    make_product()
    assert auditor_client.get("/admin/product/new/").status_code == 403
    response = auditor_client.post("/admin/product/new/", data={**PRODUCT_FORM, "sku": "NEW-1", "name": "New"})
    assert response.status_code == 403
    assert count_products(db) == 1


def test_auditor_cannot_edit_a_product(auditor_client, db, make_product):
    pid = make_product(sku="KEEP-1", name="Keep")
    before = product_row(db, pid)
    assert auditor_client.get(f"/admin/product/edit/?id={pid}").status_code == 403
    response = auditor_client.post(
        f"/admin/product/edit/?id={pid}",
        data={**PRODUCT_FORM, "sku": "CHANGED", "name": "Changed", "version": "1"},
    )
    assert response.status_code == 403
    response = auditor_client.post("/admin/product/ajax/update/", data={"list_form_pk": pid, "name": "Changed"})
    assert response.status_code == 403
    assert product_row(db, pid) == before


def test_auditor_cannot_delete_a_product(auditor_client, db, make_product):
    pid = make_product()
    before = product_row(db, pid)
    assert auditor_client.post("/admin/product/delete/", data={"id": pid}).status_code == 403
    assert product_row(db, pid) == before
    assert count_products(db) == 1


def test_auditor_cannot_open_the_delete_confirmation_page(auditor_client, db, make_product):
    pid = make_product()
    for method in ("GET", "HEAD"):
        assert auditor_client.open(f"/admin/product/delete/?id={pid}", method=method).status_code == 403
    assert count_products(db) == 1


@pytest.mark.parametrize("target", OFFSITE_TARGETS)
def test_admin_pages_never_send_the_user_off_site(app, admin_client, make_product, target):
    """Flask-Admin redirects to `url` after a save or delete: an address off this site is refused."""
    pid = make_product()
    before = snapshot(app)
    requests = [
        ("GET", "/admin/product/delete/", {"id": pid}, None),
        ("POST", "/admin/product/delete/", {}, {"id": pid}),
        ("GET", "/admin/product/edit/", {"id": pid}, None),
        ("POST", "/admin/product/edit/", {"id": pid}, {**PRODUCT_FORM, "sku": "X-1", "name": "X", "version": "1"}),
        ("GET", "/admin/product/new/", {}, None),
        ("GET", "/admin/product/details/", {"id": pid}, None),
    ]
    for method, path, args, data in requests:
        response = admin_client.open(path, method=method, data=data, query_string={**args, "url": target})
        assert response.status_code == 400, (method, path)
        assert "evil" not in response.headers.get("Location", "")
    assert snapshot(app) == before


def test_a_same_site_url_is_where_the_user_goes_back_to(admin_client, make_product):
    pid = make_product()
    back = "/admin/product/?search=SKU&page=0"
    response = admin_client.post("/admin/product/delete/", data={"id": pid, "url": back})
    assert response.status_code == 302 and response.headers["Location"] == back


@pytest.mark.parametrize("action", ["delete", "activate", "deactivate"])
def test_auditor_cannot_run_actions(auditor_client, db, make_product, action):
    active, inactive = make_product(is_active=True), make_product(is_active=False)
    before = [product_row(db, active), product_row(db, inactive)]
    response = auditor_client.post("/admin/product/action/", data={"action": action, "rowid": [active, inactive]})
    assert response.status_code == 403
    assert [product_row(db, active), product_row(db, inactive)] == before
    assert count_products(db) == 2


def test_an_unknown_action_is_refused_even_for_admin(admin_client, db, make_product):
    pid = make_product()
    before = product_row(db, pid)
    for data in ({"action": "explode", "rowid": pid}, {"rowid": pid}):
        assert admin_client.post("/admin/product/action/", data=data).status_code == 403
    assert product_row(db, pid) == before


def test_auditor_list_offers_no_write_controls(auditor_client, make_product):
    pid = make_product()
    page = auditor_client.get("/admin/product/")
    assert page.status_code == 200
    html = page.text
    assert "SKU-0001" in html
    assert "/admin/product/new/" not in html
    assert f"/admin/product/edit/?id={pid}" not in html
    assert "/admin/product/delete/" not in html
    assert 'id="action_form"' not in html
    assert "/admin/product/export/csv/" in html  # read: export stays
    details = auditor_client.get(f"/admin/product/details/?id={pid}")
    assert details.status_code == 200 and "SKU-0001" in details.text
    export = auditor_client.get("/admin/product/export/csv/")
    assert export.status_code == 200 and "SKU-0001" in export.text


# --- product writes in detail: allowed for staff and admin, and they take effect -----------

WRITERS = ["staff", "admin"]


@pytest.mark.parametrize("role", WRITERS)
def test_writers_see_write_controls(as_role, make_product, role):
    pid = make_product()
    html = as_role(role).get("/admin/product/").text
    assert "/admin/product/new/" in html
    assert f"/admin/product/edit/?id={pid}" in html
    assert f"/admin/product/delete/?id={pid}" in html
    assert 'id="action_form"' in html


@pytest.mark.parametrize("role", WRITERS)
def test_writers_can_create_edit_and_delete(as_role, db, role):
    client = as_role(role)
    assert client.get("/admin/product/new/").status_code == 200
    response = client.post("/admin/product/new/", data={**PRODUCT_FORM, "sku": "W-1", "name": "Widget"})
    assert response.status_code == 302
    with db() as session:
        product = session.scalar(select(Product).where(Product.sku == "W-1"))
        assert product is not None
        pid = product.id
    assert product_row(db, pid)[3:6] == (Decimal("12.50"), 7, True)

    response = client.post(
        f"/admin/product/edit/?id={pid}",
        data={**PRODUCT_FORM, "sku": "W-1", "name": "Widget 2", "price": "13.00", "version": "1"},
    )
    assert response.status_code == 302
    assert product_row(db, pid)[1] == "Widget 2"
    assert product_row(db, pid)[3] == Decimal("13.00")

    response = client.post("/admin/product/delete/", data={"id": pid})
    assert response.status_code == 302
    assert product_row(db, pid) is None


@pytest.mark.parametrize("role", WRITERS)
def test_writers_can_run_actions(as_role, db, make_product, role):
    client = as_role(role)
    a, b = make_product(is_active=True), make_product(is_active=True)
    assert client.post("/admin/product/action/", data={"action": "deactivate", "rowid": [a, b]}).status_code == 302
    assert [product_row(db, a)[5], product_row(db, b)[5]] == [False, False]
    assert client.post("/admin/product/action/", data={"action": "activate", "rowid": [a]}).status_code == 302
    assert [product_row(db, a)[5], product_row(db, b)[5]] == [True, False]
    assert client.post("/admin/product/action/", data={"action": "delete", "rowid": [a, b]}).status_code == 302
    assert count_products(db) == 0


# --- the role is read on every request -----------------------------------------------------


def test_role_change_applies_to_a_signed_in_user(app, db, make_user, make_product):
    make_user("demoted", "staff")
    client = app.test_client()
    assert login(client, "demoted").status_code == 302
    assert client.get("/admin/product/new/").status_code == 200
    with db() as session:
        session.scalar(select(User).where(User.username == "demoted")).role = "auditor"
    assert client.get("/admin/product/new/").status_code == 403
    pid = make_product()
    assert client.post("/admin/product/delete/", data={"id": pid}).status_code == 403
    assert product_row(db, pid) is not None


@pytest.mark.parametrize("role", ["admin", "staff", "auditor"])
@pytest.mark.parametrize("endpoint", ["product", "transaction"])
def test_a_list_offers_only_the_bulk_actions_the_role_may_run(as_role, make_product, role, endpoint):
    make_product()
    page = as_role(role).get(f"/admin/{endpoint}/").text
    offered = set(re.findall(r"modelActions\.execute\('(\w+)'\)", page))
    rights = {"product": ProductView.action_rights, "transaction": TransactionView.action_rights}[endpoint]
    may_run = {name for name, right in rights.items() if right in ROLE_RIGHTS[role].get(endpoint, ())}
    assert offered == may_run
