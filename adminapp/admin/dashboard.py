"""The dashboard at /admin/, and its figures: a few aggregate queries, whatever the data size."""

from datetime import UTC, datetime, time, timedelta
from decimal import Decimal

from flask import abort, current_app, request
from flask_admin import AdminIndexView, expose
from flask_babel import get_timezone
from flask_login import current_user
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..domain import audit
from ..extensions import db
from ..labels import action_sentence
from ..models import Product, Transaction
from ..permissions import VIEW, can
from ..vocabularies import TransactionStatus
from .audit import record_link
from .chart import sales_chart
from .helpers import login_redirect
from .listing import COUNT_CAP, ListCount, table_estimate

CHART_DAYS = 30


class DashboardView(AdminIndexView):
    """`/admin/`: any signed-in user."""

    def is_accessible(self):
        return current_user.is_authenticated and current_user.is_active

    def inaccessible_callback(self, name, **kwargs):
        if not current_user.is_authenticated:
            return login_redirect()
        abort(403)

    @expose("/")
    def index(self):
        # Everyone's recent actions are for those who may read the audit trail.
        everyone = request.args.get("recent") == "all" and can(current_user, "audit", VIEW)
        recent = audit.recent(db.session, None if everyone else current_user.id)
        dashboard_figures = figures(db.session, current_app.config["LOW_STOCK_THRESHOLD"])
        return self.render(
            "admin/index.html",
            # Each as a sentence in the user's language, its record linked for those who may open it.
            recent=[(entry, action_sentence(entry, record_link(entry))) for entry in recent],
            recent_everyone=everyone,
            can_see_everyone=can(current_user, "audit", VIEW),
            **dashboard_figures,
            chart=sales_chart(dashboard_figures["sales"]),
        )


def figures(session: Session, low_stock_threshold: int) -> dict:
    tz = get_timezone()
    today = datetime.now(tz).date()
    low = Product.is_active & (Product.stock <= low_stock_threshold)
    draft = Transaction.status == TransactionStatus.DRAFT
    posted = Transaction.status == TransactionStatus.POSTED
    return {
        **catalog_size(session),
        "low_stock_count": ListCount.exact(_count(session, Product, low)),
        "draft_count": ListCount.exact(_count(session, Transaction, draft)),
        "posted_today": ListCount.exact(
            _count(session, Transaction, posted, Transaction.posted_at >= _local_midnight(tz, today))
        ),
        "low_stock": session.scalars(select(Product).where(low).order_by(Product.stock, Product.sku).limit(10)).all(),
        "low_stock_threshold": low_stock_threshold,
        "sales": daily_sales(session, tz, today),
        "today": today,
        "statuses": TransactionStatus,  # the counts link to the transactions of their status
    }


def catalog_size(session: Session) -> dict:
    """Products, and active ones: counted, or for a big catalog, the planner's estimate less
    the inactive products (few, and counted from an index)."""
    inactive = _count(session, Product, Product.is_active.is_(False))
    estimate = table_estimate(session, Product.__tablename__)
    if estimate is not None and estimate > COUNT_CAP:
        return {"product_count": ListCount.about(estimate), "active_count": ListCount.about(estimate - inactive)}
    total = _count(session, Product)
    return {"product_count": ListCount.exact(total), "active_count": ListCount.exact(total - inactive)}


def _count(session: Session, model, *conditions) -> int:
    # count(*), not count(id): an index without the id then answers alone.
    return session.scalar(select(func.count()).select_from(model).where(*conditions))


def daily_sales(session: Session, tz, today) -> list[tuple]:
    """(day, total) of posted sales for each of the last CHART_DAYS local days, in one query."""
    first_day = today - timedelta(days=CHART_DAYS - 1)
    day = _local_day(session, tz, Transaction.posted_at)
    rows = session.execute(
        select(day, func.sum(Transaction.total))
        .where(Transaction.status == TransactionStatus.POSTED, Transaction.posted_at >= _local_midnight(tz, first_day))
        .group_by(day)
    ).all()
    totals = {str(d)[:10]: Decimal(t) for d, t in rows}
    days = [first_day + timedelta(days=i) for i in range(CHART_DAYS)]
    return [(d, totals.get(d.isoformat(), Decimal("0.00"))) for d in days]


def _local_day(session: Session, tz, column):
    if session.get_bind().dialect.name == "postgresql":
        return func.date(func.timezone(tz.zone, column))
    # SQLite has no time-zone data: shift by the zone's current offset.
    offset = int(datetime.now(tz).utcoffset().total_seconds() // 60)
    return func.date(column, f"{offset:+d} minutes")


def _local_midnight(tz, day) -> datetime:
    return tz.localize(datetime.combine(day, time.min)).astimezone(UTC)
