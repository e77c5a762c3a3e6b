"""Records that say their name: list cells that open them, breadcrumbs, and save messages
naming and linking the record."""

import html
import re

from adminapp.domain import sales
from adminapp.models import Product
from tests.support import product_form, save_draft

PRODUCTS = "/admin/product/"


def links_in(response, css_class) -> list[tuple[str, str]]:
    """(href, text) of the links in the list cells of one column."""
    cells = re.findall(rf'<td class="{css_class}">(.*?)</td>', response.text, re.S)
    found = [re.search(r'<a href="([^"]+)"[^>]*>(.*?)</a>', cell, re.S) for cell in cells]
    return [
        (html.unescape(m[1]), html.unescape(m[2]).strip()) if m else (None, cell.strip())
        for m, cell in zip(found, cells)
    ]


def breadcrumbs(response) -> list[tuple[str | None, str]]:
    """(href or None for the current page, text) of each crumb."""
    nav = re.search(r'<nav aria-label="[^"]*" id="breadcrumbs">(.*?)</nav>', response.text, re.S)
    if nav is None:
        return []
    items = re.findall(r'<li class="breadcrumb-item[^"]*"( aria-current="page")?>(.*?)</li>', nav[1], re.S)
    crumbs = []
    for current, inner in items:
        link = re.search(r'<a href="([^"]+)">(.*?)</a>', inner, re.S)
        crumbs.append(
            (None, html.unescape(inner).strip()) if current else (html.unescape(link[1]), html.unescape(link[2]))
        )
    return crumbs


def success_alert(response) -> str:
    alert = re.search(r'<div class="alert alert-success[^"]*"[^>]*>(.*?)</div>', response.text, re.S)
    assert alert, "no success message on the page"
    return " ".join(alert[1].split("</button>")[-1].split())  # after the close button


def product_id(db, sku):
    with db() as session:
        return session.query(Product.id).filter_by(sku=sku).scalar()


# --- the list's first column opens the record ---


def test_a_product_sku_opens_its_edit_page_for_staff_and_its_details_for_auditors(
    make_product, staff_client, auditor_client
):
    pid = make_product(sku="KOPI-250G", name="Kopi")
    [(href, text)] = links_in(staff_client.get(PRODUCTS), "col-sku")
    assert text == "KOPI-250G" and href.startswith(f"/admin/product/edit/?id={pid}&url=")
    [(href, text)] = links_in(auditor_client.get(PRODUCTS), "col-sku")
    assert href.startswith(f"/admin/product/details/?id={pid}")


def test_a_transaction_number_opens_a_draft_for_editing_and_a_posted_one_for_reading(db, make_product, staff_client):
    pid = make_product(stock=10)
    with db() as session:
        draft = save_draft(session, [(pid, 1)]).id
        posted = save_draft(session, [(pid, 1)])
        sales.post(session, posted, None)
        posted = posted.id
    cells = dict((text, href) for href, text in links_in(staff_client.get("/admin/transaction/"), "col-id"))
    assert cells[str(draft)].startswith(f"/admin/transaction/edit/?id={draft}")
    assert cells[str(posted)].startswith(f"/admin/transaction/details/?id={posted}")


def test_a_username_opens_the_user_for_the_admin(admin_client, make_user):
    uid = make_user("bob")
    links = dict((text, href) for href, text in links_in(admin_client.get("/admin/user/"), "col-username"))
    assert links["bob"].startswith(f"/admin/user/edit/?id={uid}")


def test_an_audit_entry_number_opens_its_details(admin_client, make_product, auditor_client):
    make_product()  # one audit entry
    [(href, text)] = links_in(auditor_client.get("/admin/audit/"), "col-id")[:1]
    assert href.startswith(f"/admin/audit/details/?id={text}")


# --- save messages name the record and link to it ---


def test_adding_a_product_names_and_links_it_and_lands_where_the_user_came_from(db, admin_client):
    came_from = "/admin/product/?search=KOPI"
    response = admin_client.post(
        f"/admin/product/new/?url={came_from}", data=product_form(sku="KOPI-250G", name="Kopi")
    )
    assert response.status_code == 302 and response.location.endswith(came_from)  # Django keeps the list's filters too
    message = success_alert(admin_client.get(response.location))
    pid = product_id(db, "KOPI-250G")
    assert f'href="/admin/product/edit/?id={pid}"' in message
    assert re.sub("<[^>]+>", "", html.unescape(message)).endswith("Product “KOPI-250G — Kopi” was added.")
    assert "successfully" not in message


def test_changing_and_deleting_a_product_name_it(db, admin_client, make_product):
    pid = make_product(sku="TEH-1", name="Teh")
    form = product_form(sku="TEH-1", name="Teh hijau", stock="10", version="1")
    saved = admin_client.post(f"/admin/product/edit/?id={pid}", data=form, follow_redirects=True)
    assert "Product “TEH-1 — Teh hijau” was changed." in html.unescape(re.sub("<[^>]+>", "", success_alert(saved)))
    deleted = admin_client.post("/admin/product/delete/", data={"id": pid}, follow_redirects=True)
    message = html.unescape(success_alert(deleted))
    assert message == "Product “TEH-1 — Teh hijau” was deleted." and "href" not in message  # nothing left to open


def test_a_saved_message_is_in_the_users_language_and_escapes_the_name(db, admin_client):
    admin_client.post("/account/language", data={"locale": "id"})
    response = admin_client.post("/admin/product/new/", data=product_form(sku="KOPI-2", name="<b>Kopi</b>"))
    message = success_alert(admin_client.get(response.location))
    assert "&lt;b&gt;Kopi&lt;/b&gt;" in message and "<b>" not in message
    assert "ditambahkan" in message


def test_a_failed_save_shows_no_success_message(admin_client, make_product):
    make_product(sku="TAKEN")
    response = admin_client.post("/admin/product/new/", data=product_form(sku="TAKEN"))
    assert response.status_code == 200 and "alert-success" not in response.text


# --- breadcrumbs ---


def test_breadcrumbs_lead_from_home_to_the_page(db, admin_client, make_product):
    pid = make_product(sku="KOPI-250G", name="Kopi")
    home = ("/admin/", "Home")
    assert breadcrumbs(admin_client.get(PRODUCTS)) == [home, (None, "Products")]
    assert breadcrumbs(admin_client.get("/admin/product/new/")) == [home, (PRODUCTS, "Products"), (None, "Add")]
    record = [home, (PRODUCTS, "Products"), (None, "KOPI-250G — Kopi")]
    assert breadcrumbs(admin_client.get(f"/admin/product/edit/?id={pid}")) == record
    assert breadcrumbs(admin_client.get(f"/admin/product/details/?id={pid}")) == record
    assert breadcrumbs(admin_client.get(f"/admin/product/history/?id={pid}")) == [
        home,
        (PRODUCTS, "Products"),
        (f"/admin/product/edit/?id={pid}", "KOPI-250G — Kopi"),
        (None, "History"),
    ]
    assert breadcrumbs(admin_client.get(f"/admin/product/delete/?id={pid}"))[-1] == (None, "Delete")
    assert breadcrumbs(admin_client.get("/admin/")) == []  # the dashboard is home


def test_a_posted_transactions_crumb_opens_its_details(db, make_product, staff_client):
    pid = make_product(stock=10)
    with db() as session:
        txn = save_draft(session, [(pid, 1)])
        sales.post(session, txn, None)
        txn_id = txn.id
    assert breadcrumbs(staff_client.get(f"/admin/transaction/void/?id={txn_id}"))[-2:] == [
        (f"/admin/transaction/details/?id={txn_id}", f"Transaction #{txn_id} — posted"),
        (None, "Void"),
    ]


def test_breadcrumbs_in_indonesian(admin_client):
    admin_client.post("/account/language", data={"locale": "id"})
    crumbs = breadcrumbs(admin_client.get("/admin/product/new/"))
    assert [text for _, text in crumbs] == ["Beranda", "Produk", "Tambah"]


def test_history_of_a_deleted_record_has_no_record_crumb(db, admin_client, make_product):
    pid = make_product()
    admin_client.post("/admin/product/delete/", data={"id": pid})
    assert breadcrumbs(admin_client.get(f"/admin/product/history/?id={pid}"))[-1] == (None, "History")
