from datetime import datetime

from flask_login import UserMixin
from sqlalchemy import CheckConstraint, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, validates
from werkzeug.security import check_password_hash, generate_password_hash

from ..domain.usernames import username_key
from ..extensions import db
from ..vocabularies import Role, sql_values
from .types import UTCDateTime, utcnow


class User(UserMixin, db.Model):
    __tablename__ = "users"
    __table_args__ = (CheckConstraint(f"role IN ({sql_values(Role)})", name="role_known"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    # The username NFKC-normalised and case folded (domain.usernames.username_key), set with it:
    # unique, so "ADMIN1" or "ａｄｍｉｎ1" cannot exist beside "admin1"; sign-in looks users up by it.
    username_key: Mapped[str] = mapped_column(String(255), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16), default=Role.STAFF)
    is_active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    failed_login_count: Mapped[int] = mapped_column(default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The last failed sign-in: failures older than the lockout window are forgotten, as the
    # rows of login_failures for names without an account are.
    last_failed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    must_change_password: Mapped[bool] = mapped_column(default=False)
    # The interface language the user chose (a Language); None follows the browser.
    locale: Mapped[str | None] = mapped_column(String(8))
    # Optimistic locking of the users admin's form. Moved by the changes a form could
    # overwrite (the form's own saves, password changes), not by sign-in bookkeeping or the
    # language: a sign-in must not make every open form of that user stale. So it is no
    # mapper version_id_col (which moves on every UPDATE): accounts bumps it, and checks it
    # under a row lock.
    version: Mapped[int] = mapped_column(default=1, server_default="1")

    @validates("username")
    def _key_with_username(self, _, username):
        self.username_key = username_key(username) if username is not None else None
        return username

    def set_password(self, password: str) -> None:
        self.password_hash = generate_password_hash(password)

    def check_password(self, password: str) -> bool:
        return check_password_hash(self.password_hash, password)

    def __str__(self) -> str:
        return self.username


class LoginFailures(db.Model):
    """Failed sign-ins for a username that has no account, counted and locked exactly like
    a user's own (users.failed_login_count, users.locked_until): a lockout then tells nobody
    which usernames exist. A row is keyed by a keyed hash of the name typed (accounts.name_hash),
    never the text, which may be a password typed in the wrong box; rows whose last failure is
    older than the lockout window are deleted at the next failed sign-in."""

    __tablename__ = "login_failures"

    name_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    failed_count: Mapped[int] = mapped_column(default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_failed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class AddressFailures(db.Model):
    """Failed sign-ins from one network address in the current window (whatever the names
    tried), so that trying many usernames from one place is slowed down."""

    __tablename__ = "login_failures_by_address"

    address: Mapped[str] = mapped_column(String(64), primary_key=True)
    failed_count: Mapped[int] = mapped_column(default=0)
    window_started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class UserSession(db.Model):
    """One sign-in: alive while its row exists and is younger than the absolute lifetime.
    Ending a session deletes its row; every worker sees that at the user's next request.
    The signed cookie holds the token, the table only its SHA-256: someone who reads the
    table cannot sign in with what they read."""

    __tablename__ = "user_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
