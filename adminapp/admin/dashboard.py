"""Figures for the dashboard at /admin/."""

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from ..models import Product, Transaction


def figures(session: Session) -> dict:
    product_counts = session.execute(
        select(func.count(Product.id), func.coalesce(func.sum(case((Product.is_active, 1), else_=0)), 0))
    ).one()
    drafts = session.scalar(select(func.count(Transaction.id)).where(Transaction.status == "draft"))
    return {"product_count": product_counts[0], "active_count": product_counts[1], "draft_count": drafts}
