"""What one test leaves must not reach the next: the shared app's tables are emptied between
tests (conftest.py's `app`), and nothing the app reads keeps the earlier test's rows."""

from sqlalchemy import func, insert, select, text

from adminapp.admin.listing import table_estimate
from adminapp.extensions import db as _db
from adminapp.models import Product, utcnow
from tests.support import empty_tables


def test_emptied_tables_start_again_from_nothing(app, make_product):
    with app.app_context():
        now = utcnow()
        _db.session.execute(
            insert(Product),
            [
                {"sku": f"OLD-{n}", "name": "Old", "price": 1, "stock": 1, "created_at": now, "updated_at": now}
                for n in range(2_000)
            ],
        )
        if _db.engine.dialect.name == "postgresql":
            _db.session.execute(text("ANALYZE products"))  # as autovacuum would, mid-test
        _db.session.commit()

    empty_tables(app)

    new_id = make_product(sku="NEW-1")
    with app.app_context():
        assert _db.session.scalar(select(func.count(Product.id))) == 1
        assert new_id == 1  # ids start again
        # PostgreSQL's statistics no longer count the rows of before (the lists read them).
        assert (table_estimate(_db.session, "products") or 0) < 10
        _db.session.remove()
