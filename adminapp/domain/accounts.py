"""Users and sign-in. Lockout state lives in the database, so it holds across workers."""

import secrets
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session
from werkzeug.security import generate_password_hash

from ..models import ROLES, User, utcnow
from . import audit
from .errors import DomainError

# Checked against when the username is unknown, so both cases take as long.
_DUMMY_HASH = generate_password_hash(secrets.token_hex(8))


class LoginRefused(DomainError):
    """Wrong username or password, or an inactive account (deliberately not told apart)."""


class LoginLocked(DomainError):
    """Too many failed attempts for this username; try again later."""

    def __init__(self, until: datetime):
        self.until = until
        minutes = max(1, round((until - utcnow()).total_seconds() / 60))
        super().__init__(f"Too many failed sign-in attempts. Try again in {minutes} minute(s).")


def find_user(session: Session, username: str) -> User | None:
    return session.scalar(select(User).where(User.username == username))


def authenticate(session: Session, username: str, password: str, max_attempts: int, lockout_seconds: int) -> User:
    """Return the user for a correct sign-in, else raise; records failures (no commit)."""
    user = find_user(session, username)
    now = utcnow()
    if user is None:
        User(password_hash=_DUMMY_HASH).check_password(password)
        _audit_failure(session, None, username, "unknown user")
        raise LoginRefused("Invalid username or password.")
    if user.locked_until and user.locked_until > now:
        _audit_failure(session, user, username, "locked")
        raise LoginLocked(user.locked_until)
    if not user.check_password(password) or not user.is_active:
        _record_failure(session, user, now, max_attempts, lockout_seconds)
        _audit_failure(session, user, username, "wrong password" if user.is_active else "inactive")
        raise LoginRefused("Invalid username or password.")
    user.failed_login_count = 0
    user.locked_until = None
    user.last_login_at = now
    audit.record(session, "login", user, actor=audit.acting_as(session, user))
    return user


def _audit_failure(session, user, username, reason) -> None:
    actor = audit.acting_as(session, user) if user else audit.acting_as(session, None, username[:64])
    audit.record(session, "login_failed", user, object_type="user", object_repr=username,
                 changes={"reason": reason}, actor=actor)


def logout(session: Session, user: User) -> None:
    audit.record(session, "logout", user)


def _record_failure(session, user, now, max_attempts, lockout_seconds) -> None:
    # Increment in SQL: concurrent workers must not lose a failed attempt.
    failures = session.execute(
        update(User)
        .where(User.id == user.id)
        .values(failed_login_count=User.failed_login_count + 1)
        .returning(User.failed_login_count),
        execution_options={"synchronize_session": False},
    ).scalar_one()
    if failures >= max_attempts:
        session.execute(
            update(User)
            .where(User.id == user.id)
            .values(failed_login_count=0, locked_until=now + timedelta(seconds=lockout_seconds)),
            execution_options={"synchronize_session": False},
        )
    session.expire(user)


class InvalidUser(DomainError):
    pass


def create_user(session: Session, username: str, password: str, role: str, must_change_password=False) -> User:
    username = (username or "").strip()
    if not username or len(username) > 64:
        raise InvalidUser("A username of 1 to 64 characters is required.")
    if role not in ROLES:
        raise InvalidUser(f"Unknown role {role!r}; choose one of {', '.join(ROLES)}.")
    if not password:
        raise InvalidUser("A password is required.")
    if find_user(session, username):
        raise InvalidUser(f"User {username!r} already exists.")
    user = User(username=username, role=role, must_change_password=must_change_password)
    user.set_password(password)
    session.add(user)
    return user


def set_password(session: Session, username: str, password: str) -> User:
    user = find_user(session, username)
    if user is None:
        raise InvalidUser(f"No user {username!r}.")
    if not password:
        raise InvalidUser("A password is required.")
    user.set_password(password)
    user.must_change_password = False
    user.failed_login_count = 0
    user.locked_until = None
    return user
