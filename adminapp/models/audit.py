from datetime import datetime

from sqlalchemy import JSON, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from .indexes import sort_index, trigram_index
from .types import UTCDateTime, utcnow


class AuditEntry(db.Model):
    """One link of the tamper-evident audit chain."""

    __tablename__ = "audit_entries"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # No ON DELETE SET NULL: the id is part of the entry's hash, so a user on record cannot be deleted.
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    username: Mapped[str | None] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32))
    object_type: Mapped[str | None] = mapped_column(String(32))
    object_id: Mapped[str | None] = mapped_column(String(64))
    object_repr: Mapped[str | None] = mapped_column(String(255))
    changes: Mapped[dict | None] = mapped_column(JSON)
    remote_addr: Mapped[str | None] = mapped_column(String(64))
    prev_hash: Mapped[str | None] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)

    __table_args__ = (
        # "object_id" also serves a record's history (its type then filters a handful of rows).
        *(
            sort_index("audit_entries", column)
            for column in ("at", "username", "action", "object_type", "object_id", "user_id")
        ),
        *(trigram_index("audit_entries", column) for column in ("username", "action", "object_repr")),
    )
