"""The ORM's half of the audit boundary: no bulk statement changes an audited table unseen.

The audit trail records model changes from the ORM's flush (audit._record_flush). A bulk
``update()`` or ``delete()`` run through ``session.execute`` goes straight to the database:
no flush sees it, so nothing records it, and the flush's guard of posted transactions
(sales._refuse_changes_to_final_transactions) never looks at it. This guard refuses such a
statement on an audited table unless its caller marks it as recording its own entry::

    session.execute(update(Product)..., execution_options=guards.RECORDS_ITS_OWN_ENTRY)

The stock ledger (stock_movements) takes no bulk UPDATE or DELETE at all, marked or not: its
movements are final (domain/stock.py refuses the flushes that would change them).

Plain SQL (``text()``) and connection-level writes do not pass through here; on PostgreSQL
the triggers of migration 0008 (models/triggers.py) stand behind them.
"""

from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState

from ..models import AuditEntry, Product, StockMovement, Transaction, TransactionProduct, User

# The tables whose changes the audit trail records (or, for audit_entries, is).
AUDITED_TABLES = frozenset(
    model.__table__.name for model in (Product, Transaction, TransactionProduct, User, AuditEntry)
)
# Tables whose rows are never changed nor deleted, whatever the caller records.
APPEND_ONLY_TABLES = frozenset({StockMovement.__table__.name})
OPTION = "records_own_audit"
# The execution options of a bulk statement whose caller writes the audit entry for its change.
RECORDS_ITS_OWN_ENTRY = {OPTION: True}


def _target(statement):
    """The table an UPDATE or DELETE writes, for Core and ORM statements alike."""
    inner = getattr(statement, "element", None)  # select(Model).from_statement(update(...))
    return getattr(inner if inner is not None else statement, "table", None)


class UnrecordedWrite(RuntimeError):
    """A bulk statement would change an audited table without an audit entry: a bug in the code
    that issued it, never a user's mistake."""


def install(sessions) -> None:
    """Guard the sessions of ``sessions`` (a sessionmaker or scoped_session; see register_listeners)."""
    if not event.contains(sessions, "do_orm_execute", _refuse_unrecorded_bulk_writes):
        event.listen(sessions, "do_orm_execute", _refuse_unrecorded_bulk_writes)


def _refuse_unrecorded_bulk_writes(state: ORMExecuteState) -> None:
    if not (state.is_update or state.is_delete):
        return
    table = _target(state.statement)
    if getattr(table, "name", None) in APPEND_ONLY_TABLES:
        raise UnrecordedWrite(
            f"{table.name} is append-only: a bulk {'UPDATE' if state.is_update else 'DELETE'} of it is refused. "
            "A correction is a new movement."
        )
    if getattr(table, "name", None) not in AUDITED_TABLES or state.execution_options.get(OPTION):
        return
    kind = "UPDATE" if state.is_update else "DELETE"
    raise UnrecordedWrite(
        f"A bulk {kind} of {table.name} would bypass the audit trail. Change the records through the "
        f"session (the flush records them), or record the entry yourself and pass "
        f"execution_options={{'{OPTION}': True}}."
    )
