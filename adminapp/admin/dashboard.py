"""Figures for the dashboard at /admin/: a few aggregate queries, whatever the data size."""

from datetime import datetime, time, timedelta, timezone
from decimal import Decimal

from flask_babel import get_timezone
from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from ..models import Product, Transaction

CHART_DAYS = 30


def figures(session: Session, low_stock_threshold: int) -> dict:
    tz = get_timezone()
    today = datetime.now(tz).date()
    products, active, low = session.execute(
        select(
            func.count(Product.id),
            func.coalesce(func.sum(case((Product.is_active, 1), else_=0)), 0),
            func.coalesce(func.sum(case(((Product.is_active) & (Product.stock <= low_stock_threshold), 1), else_=0)), 0),
        )
    ).one()
    drafts, posted_today = session.execute(
        select(
            func.coalesce(func.sum(case((Transaction.status == "draft", 1), else_=0)), 0),
            func.coalesce(func.sum(case(((Transaction.status == "posted")
                                         & (Transaction.posted_at >= _local_midnight(tz, today)), 1), else_=0)), 0),
        )
    ).one()
    low_stock = session.scalars(
        select(Product).where(Product.is_active, Product.stock <= low_stock_threshold)
        .order_by(Product.stock, Product.sku).limit(10)
    ).all()
    return {
        "product_count": products, "active_count": active, "low_stock_count": low,
        "draft_count": drafts, "posted_today": posted_today, "low_stock": low_stock,
        "low_stock_threshold": low_stock_threshold, "sales": daily_sales(session, tz, today), "today": today,
    }


def daily_sales(session: Session, tz, today) -> list[tuple]:
    """(day, total) of posted sales for each of the last CHART_DAYS local days, in one query."""
    first_day = today - timedelta(days=CHART_DAYS - 1)
    day = _local_day(session, tz, Transaction.posted_at)
    rows = session.execute(
        select(day, func.sum(Transaction.total))
        .where(Transaction.status == "posted", Transaction.posted_at >= _local_midnight(tz, first_day))
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
    return tz.localize(datetime.combine(day, time.min)).astimezone(timezone.utc)
