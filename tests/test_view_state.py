"""Admin views are single objects that every thread of a worker shares: what one request keeps
on them, another request sees. Per-request state lives in flask.g or in locals."""

from concurrent.futures import ThreadPoolExecutor

from adminapp.domain import sales
from adminapp.models import Product, Transaction, TransactionProduct
from tests.support import product_form, signed_in

THREADS = 4


def view_state(app) -> dict:
    """Every attribute of every admin view, by identity: a value replaced counts as a change."""
    return {
        (view.endpoint, name): id(value)
        for view in app.extensions["admin"][0]._views
        for name, value in vars(view).items()
    }


def requests_of_a_working_day(client, product, draft):
    """The views' pages and forms, a save of each kind included (refused or not, all the same)."""
    for url in (
        "/admin/",
        "/admin/product/",
        "/admin/transaction/",
        "/admin/audit/",
        "/admin/user/",
        f"/admin/product/edit/?id={product}",
        f"/admin/transaction/edit/?id={draft}",
        f"/admin/transaction/details/?id={draft}",
        f"/admin/transaction/history/?id={draft}",
        "/admin/transaction/new/",
        f"/admin/transaction/line-products/?id={product}",
        "/admin/product/export/csv/",
    ):
        assert client.get(url).status_code < 500, url
    client.post(f"/admin/product/edit/?id={product}", data=product_form(sku="SHARED-1", stock="50", version="0"))
    client.post(
        "/admin/transaction/new/",
        data={"note": "", "version": "", "lines-0-id": "", "lines-0-product": str(product), "lines-0-product_qty": "1"},
    )
    client.post(f"/admin/transaction/edit/?id={draft}", data={"note": "", "version": "0"})


def test_requests_leave_nothing_of_theirs_on_the_shared_views(app, make_user, make_product, db):
    make_user("root", "admin")
    product = make_product(sku="SHARED-1", stock=50)
    with db() as session:
        txn = Transaction(lines=[TransactionProduct(product=session.get(Product, product), product_qty=1)])
        session.add(txn)
        sales.save_draft(session, txn, None, is_new=True)
        session.flush()
        draft = txn.id
    clients = [signed_in(app, "root") for _ in range(THREADS)]
    requests_of_a_working_day(clients[0], product, draft)  # what views cache once, cached now
    before = view_state(app)

    with ThreadPoolExecutor(THREADS) as pool:
        for done in [pool.submit(requests_of_a_working_day, client, product, draft) for client in clients]:
            done.result(timeout=120)

    changed = sorted(
        key for key in before.keys() | view_state(app).keys() if before.get(key) != view_state(app).get(key)
    )
    assert not changed, f"requests changed these attributes of shared views: {changed}"
