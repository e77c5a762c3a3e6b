"""The audit boundary below the views: PostgreSQL's triggers against any SQL, the ORM's guard
against bulk statements, and post and void recording their own entries."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import delete, func, select, text, update
from sqlalchemy.exc import DBAPIError

from adminapp.domain import guards, sales
from adminapp.domain.errors import Immutable
from adminapp.extensions import db as _db
from adminapp.models import AuditEntry, LoginFailures, Product, Transaction, TransactionProduct, User, utcnow
from tests.support import save_draft, snapshot


def backend(app) -> str:
    return "postgresql" if app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql") else "sqlite"


@pytest.fixture
def pg(app):
    if backend(app) != "postgresql":
        pytest.skip("the database's triggers are PostgreSQL's")
    return app


@pytest.fixture
def txn(db, make_product):
    """A transaction of two lines in ``status``: draft, posted, or posted and voided."""

    def make(status="draft"):
        products = [make_product(stock=10), make_product(stock=10)]
        with db() as session:
            txn = save_draft(session, [(products[0], 1), (products[1], 2)])
            if status != "draft":
                sales.post(session, txn, None)
            if status == "void":
                sales.void(session, txn, None, "test")
            return txn.id

    return make


def sql(app, statement, **params):
    """Run raw SQL and commit, as a bug or a console session would."""
    with app.app_context():
        try:
            _db.session.execute(text(statement), params)
            _db.session.commit()
        finally:
            _db.session.rollback()
            _db.session.remove()


def refused(app, statement, **params) -> str:
    """The database's refusal of ``statement``, which must change nothing."""
    before = snapshot(app)
    with pytest.raises(DBAPIError) as caught:
        sql(app, statement, **params)
    assert snapshot(app) == before
    return str(caught.value.orig)


def line_of(app, txn_id) -> int:
    with app.app_context():
        line_id = _db.session.scalar(
            select(func.min(TransactionProduct.id)).where(TransactionProduct.transaction_id == txn_id)
        )
        _db.session.remove()
    return line_id


def spare_product(app, make_product) -> int:
    return make_product(sku="SPARE-1", stock=5)


# ======================================================================= PostgreSQL triggers


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_entries SET username = 'someone else'",
        "DELETE FROM audit_entries",
        "TRUNCATE audit_entries",
    ],
)
def test_the_audit_trail_refuses_any_change_but_an_append(pg, txn, statement):
    txn()  # a few entries
    assert "audit_entries is append-only" in refused(pg, statement)


@pytest.mark.parametrize("status", ["posted", "void"])
@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE transactions SET note = 'changed' WHERE id = :id",
        "UPDATE transactions SET total = 0 WHERE id = :id",
        "UPDATE transactions SET status = 'draft' WHERE id = :id",
        "UPDATE transactions SET void_reason = 'rewritten' WHERE id = :id",
        "UPDATE transactions SET version = version + 1 WHERE id = :id",
        "DELETE FROM transactions WHERE id = :id",
    ],
)
def test_a_final_transaction_refuses_raw_updates_and_deletes(pg, txn, status, statement):
    txn_id = txn(status)
    message = refused(pg, statement, id=txn_id)
    assert f"transaction {txn_id} is {status}" in message


def test_voiding_refuses_to_change_anything_else_on_the_way(pg, txn):
    txn_id = txn("posted")
    refused(
        pg,
        "UPDATE transactions SET status = 'void', void_reason = 'r', voided_at = now(), total = 0 WHERE id = :id",
        id=txn_id,
    )
    refused(
        pg,
        "UPDATE transactions SET status = 'void', void_reason = 'r', voided_at = now(), "
        "posted_at = posted_at - interval '1 day' WHERE id = :id",
        id=txn_id,
    )


def test_the_void_transition_passes_in_raw_sql(pg, txn):
    txn_id = txn("posted")
    sql(
        pg,
        "UPDATE transactions SET status = 'void', voided_at = now(), void_reason = 'by hand', "
        "version = version + 1 WHERE id = :id",
        id=txn_id,
    )
    with pg.app_context():
        assert _db.session.get(Transaction, txn_id).void_reason == "by hand"
        _db.session.remove()


@pytest.mark.parametrize("status", ["posted", "void"])
@pytest.mark.parametrize(
    "statement",
    [
        "INSERT INTO transaction_products (transaction_id, product_id, product_qty, unit_price) "
        "VALUES (:id, :spare, 1, 1)",
        "UPDATE transaction_products SET product_qty = 9 WHERE id = :line",
        "UPDATE transaction_products SET unit_price = 0 WHERE transaction_id = :id",
        "UPDATE transaction_products SET transaction_id = :draft WHERE id = :line",
        "DELETE FROM transaction_products WHERE id = :line",
        "DELETE FROM transaction_products WHERE transaction_id = :id",
    ],
)
def test_the_lines_of_a_final_transaction_refuse_any_change(pg, txn, make_product, status, statement):
    txn_id, draft_id = txn(status), txn("draft")
    message = refused(
        pg, statement, id=txn_id, line=line_of(pg, txn_id), draft=draft_id, spare=spare_product(pg, make_product)
    )
    assert f"the lines of transaction {txn_id} are {status}" in message


def test_a_line_cannot_move_into_a_final_transaction(pg, txn):
    posted_id, draft_id = txn("posted"), txn("draft")
    message = refused(
        pg,
        "UPDATE transaction_products SET transaction_id = :posted WHERE id = :line",
        posted=posted_id,
        line=line_of(pg, draft_id),
    )
    assert f"the lines of transaction {posted_id} are posted" in message


def test_drafts_and_their_lines_change_freely_in_raw_sql(pg, txn, make_product):
    draft_id = txn("draft")
    spare = spare_product(pg, make_product)
    sql(pg, "UPDATE transactions SET note = 'by hand', total = 1 WHERE id = :id", id=draft_id)
    sql(pg, "UPDATE transaction_products SET product_qty = 5 WHERE id = :line", line=line_of(pg, draft_id))
    sql(
        pg,
        "INSERT INTO transaction_products (transaction_id, product_id, product_qty) VALUES (:id, :p, 1)",
        id=draft_id,
        p=spare,
    )
    sql(pg, "DELETE FROM transaction_products WHERE id = :line", line=line_of(pg, draft_id))
    sql(pg, "DELETE FROM transactions WHERE id = :id", id=draft_id)  # its lines go with it
    with pg.app_context():
        assert _db.session.get(Transaction, draft_id) is None
        _db.session.remove()


def test_a_transaction_inserted_final_takes_its_lines_in_the_same_database_transaction(pg, make_product, make_user):
    """As the seed writes finished sales: the rows, then their lines, then the commit. Once
    committed, those lines are frozen like any other."""
    product = make_product(stock=10)
    with pg.app_context():
        now = utcnow()
        txn = Transaction(status="posted", total=Decimal("10.00"), created_at=now, posted_at=now, line_count=1)
        _db.session.add(txn)
        _db.session.flush()
        _db.session.execute(
            text(
                "INSERT INTO transaction_products (transaction_id, product_id, product_qty, "
                "unit_price) VALUES (:id, :p, 1, 10)"
            ),
            {"id": txn.id, "p": product},
        )
        _db.session.commit()
        txn_id = txn.id
        _db.session.remove()
    refused(pg, "UPDATE transaction_products SET product_qty = 2 WHERE transaction_id = :id", id=txn_id)


@pytest.mark.parametrize(
    "transition",
    [
        "UPDATE transactions SET status = 'posted', posted_at = now() WHERE id = :id",
        "UPDATE transactions SET status = 'void', posted_at = now(), voided_at = now() WHERE id = :id",
    ],
)
def test_lines_freeze_at_the_post_not_at_the_commit(pg, txn, make_product, transition):
    """Posted (or voided) by this very database transaction, the row carries its id as well: its
    lines are frozen at once all the same."""
    draft_id = txn("draft")
    spare = spare_product(pg, make_product)
    before = snapshot(pg)
    with pg.app_context(), pytest.raises(DBAPIError, match=f"the lines of transaction {draft_id}"):
        _db.session.execute(text(transition), {"id": draft_id})
        _db.session.execute(
            text("INSERT INTO transaction_products (transaction_id, product_id, product_qty) VALUES (:id, :p, 1)"),
            {"id": draft_id, "p": spare},
        )
    with pg.app_context():
        _db.session.remove()
    assert snapshot(pg) == before


def test_a_superuser_in_replica_mode_lifts_the_triggers_as_the_readme_says(pg, txn):
    """The documented repair path: ordinary triggers do not fire for session_replication_role =
    replica (a superuser's setting). The chain then shows the change: verify names the entry."""
    txn_id = txn("posted")
    with pg.app_context():
        _db.session.execute(text("SET LOCAL session_replication_role = replica"))
        _db.session.execute(text("UPDATE transactions SET note = 'repaired' WHERE id = :id"), {"id": txn_id})
        _db.session.execute(
            text("UPDATE transaction_products SET product_qty = 1 WHERE transaction_id = :id"), {"id": txn_id}
        )
        entry_id = _db.session.scalar(select(AuditEntry.id).order_by(AuditEntry.id).limit(1))
        _db.session.execute(text("UPDATE audit_entries SET username = 'forged' WHERE id = :id"), {"id": entry_id})
        _db.session.commit()
        assert _db.session.get(Transaction, txn_id).note == "repaired"
        _db.session.remove()
    result = pg.test_cli_runner().invoke(args=["audit-verify"])
    assert result.exit_code == 1 and f"BROKEN at entry #{entry_id}" in result.output
    # Back to the default role (the next transaction): the triggers hold again.
    refused(pg, "UPDATE transactions SET note = 'again' WHERE id = :id", id=txn_id)


def test_the_app_still_posts_voids_and_edits_drafts_with_the_triggers_in_place(pg, txn):
    """post fixes line prices while the transaction is still a draft, then writes its status."""
    txn_id = txn("draft")
    with pg.app_context():
        _db.session.execute(
            update(Product).values(price=Decimal("2.50")), execution_options=guards.RECORDS_ITS_OWN_ENTRY
        )
        _db.session.commit()
        sales.post(_db.session, _db.session.get(Transaction, txn_id), None)
        _db.session.commit()
        sales.void(_db.session, _db.session.get(Transaction, txn_id), None, "returned")
        _db.session.commit()
        txn = _db.session.get(Transaction, txn_id)
        assert txn.status == "void" and {line.unit_price for line in txn.lines} == {Decimal("2.50")}
        _db.session.remove()


# ============================================================================ the ORM's guard


def _targets(app, txn, make_user):
    """A row of each audited table, by model."""
    draft_id = txn("draft")
    user_id = make_user("guarded-user")
    with app.app_context():
        line = _db.session.scalars(
            select(TransactionProduct).where(TransactionProduct.transaction_id == draft_id)
        ).first()
        ids = {
            Product: line.product_id,
            Transaction: draft_id,
            TransactionProduct: line.id,
            User: user_id,
            AuditEntry: _db.session.scalar(select(AuditEntry.id).limit(1)),
        }
        _db.session.remove()
    return ids


CHANGES = {
    Product: {"name": "bulk"},
    Transaction: {"note": "bulk"},
    TransactionProduct: {"product_qty": 7},
    User: {"locale": "id"},
    AuditEntry: {"username": "bulk"},
}


@pytest.mark.parametrize("model", list(CHANGES), ids=lambda model: model.__name__)
@pytest.mark.parametrize("form", ["update", "delete", "core update", "core delete", "legacy query"])
def test_a_bulk_statement_on_an_audited_model_is_refused(app, txn, make_user, model, form):
    target = _targets(app, txn, make_user)[model]
    statements = {
        "update": lambda: update(model).where(model.id == target).values(CHANGES[model]),
        "delete": lambda: delete(model).where(model.id == target),
        "core update": lambda: model.__table__.update().where(model.__table__.c.id == target).values(CHANGES[model]),
        "core delete": lambda: model.__table__.delete().where(model.__table__.c.id == target),
    }
    before = snapshot(app)
    with app.app_context(), pytest.raises(guards.UnrecordedWrite, match=model.__table__.name):
        if form == "legacy query":
            _db.session.query(model).filter(model.id == target).update(CHANGES[model])
        else:
            _db.session.execute(statements[form]())
    with app.app_context():
        _db.session.remove()
    assert snapshot(app) == before


def test_a_bulk_statement_marked_as_recording_its_own_entry_runs(app, txn, make_user):
    targets = _targets(app, txn, make_user)
    with app.app_context():
        for model in (Product, Transaction, TransactionProduct, User):
            result = _db.session.execute(
                update(model).where(model.id == targets[model]).values(CHANGES[model]),
                execution_options=guards.RECORDS_ITS_OWN_ENTRY,
            )
            assert result.rowcount == 1
        _db.session.execute(
            update(Product)
            .where(Product.id == targets[Product])
            .values(stock=Product.stock + 1)
            .execution_options(**guards.RECORDS_ITS_OWN_ENTRY)
        )
        _db.session.commit()
        assert _db.session.get(Product, targets[Product]).name == "bulk"
        assert _db.session.get(User, targets[User]).locale == "id"
        _db.session.remove()


def test_reads_and_unaudited_tables_pass_the_guard(app, txn):
    txn_id = txn("draft")
    with app.app_context():
        assert _db.session.scalar(select(Transaction.note).where(Transaction.id == txn_id)) is None
        _db.session.execute(text("SELECT 1"))
        _db.session.execute(delete(LoginFailures))
        _db.session.commit()
        _db.session.remove()


# ============================================================ post and void record themselves


def _entries_of(app, txn_id, after) -> list[dict]:
    with app.app_context():
        rows = _db.session.scalars(
            select(AuditEntry)
            .where(AuditEntry.id > after, AuditEntry.object_type == "transaction", AuditEntry.object_id == str(txn_id))
            .order_by(AuditEntry.id)
        ).all()
        found = [{"action": e.action, "changes": e.changes} for e in rows]
        _db.session.remove()
    return found


def _last_entry_id(app) -> int:
    with app.app_context():
        last = _db.session.scalar(select(AuditEntry.id).order_by(AuditEntry.id.desc()).limit(1)) or 0
        _db.session.remove()
    return last


FIXED_TIME = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)


def _post_and_void(app, monkeypatch, txn_id, flush_inside: bool) -> list[dict]:
    """Post and void ``txn_id``, each in its own commit; with ``flush_inside``, the session is
    flushed in the middle of each (when post or void asks for the time)."""
    mark = _last_entry_id(app)
    with app.app_context(), monkeypatch.context() as patch:
        session = _db.session

        def now():
            if flush_inside:
                session.flush()
            return FIXED_TIME

        patch.setattr(sales, "utcnow", now)
        sales.post(session, session.get(Transaction, txn_id), None)
        session.flush()
        session.commit()
        sales.void(session, session.get(Transaction, txn_id), None, "returned")
        session.commit()
        session.remove()
    return _entries_of(app, txn_id, mark)


def test_post_and_void_entries_do_not_depend_on_where_flushes_happen(app, txn, db, monkeypatch):
    plain, flushed = txn("draft"), txn("draft")
    # A price changed since the drafts were saved: the post also fixes the totals.
    with db() as session:
        session.execute(update(Product).values(price=Decimal("3.00")), execution_options=guards.RECORDS_ITS_OWN_ENTRY)

    expected = _post_and_void(app, monkeypatch, plain, flush_inside=False)
    got = _post_and_void(app, monkeypatch, flushed, flush_inside=True)

    assert [e["action"] for e in got] == ["post", "void"], "one entry each, never a second 'update'"
    assert got[0]["changes"].keys() == expected[0]["changes"].keys() == {"status", "posted_at", "total", "stock"}
    assert got[0]["changes"]["status"] == ["draft", "posted"]
    assert got[0]["changes"]["posted_at"] == [None, FIXED_TIME.isoformat()]
    assert got[0]["changes"]["total"] == ["30.00", "9.00"]
    assert got[1]["changes"].keys() == expected[1]["changes"].keys() == {"status", "voided_at", "void_reason", "stock"}
    assert got[1]["changes"]["void_reason"] == [None, "returned"]
    assert list(got[0]["changes"]["stock"].values()) == [[10, 9], [10, 8]]
    assert list(got[1]["changes"]["stock"].values()) == [[9, 10], [8, 10]]


def test_a_flush_cannot_post_or_void_a_transaction_around_post_and_void(app, txn):
    """Setting the status by hand would skip the stock and the entry: the flush refuses it."""
    draft_id, posted_id = txn("draft"), txn("posted")
    before = snapshot(app)
    for txn_id, status in ((draft_id, "posted"), (draft_id, "void"), (posted_id, "void")):
        with app.app_context(), pytest.raises(Immutable):
            _db.session.get(Transaction, txn_id).status = status
            _db.session.flush()
        with app.app_context():
            _db.session.remove()
    assert snapshot(app) == before
