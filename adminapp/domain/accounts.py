"""Users and sign-in. Lockout state lives in the database, so it holds across workers."""

import secrets
import unicodedata
from datetime import datetime, timedelta

from pathlib import Path

from flask_babel import gettext, ngettext
from sqlalchemy import func, inspect, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from werkzeug.security import generate_password_hash

from ..models import ROLES, AuditEntry, LoginFailures, Transaction, User, utcnow
from . import audit
from .deletion import DeletionPreview, refusal_of
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
        super().__init__(ngettext("Too many failed sign-in attempts. Try again in %(num)s minute.",
                                  "Too many failed sign-in attempts. Try again in %(num)s minutes.", minutes))


def find_user(session: Session, username: str) -> User | None:
    return session.scalar(select(User).where(User.username == username))


def authenticate(session: Session, username: str, password: str, max_attempts: int, lockout_seconds: int) -> User:
    """Return the user for a correct sign-in, else raise; records failures (no commit)."""
    user = find_user(session, username)
    now = utcnow()
    if user is None:
        _refuse_unknown_user(session, username, password, now, max_attempts, lockout_seconds)
    if user.locked_until and user.locked_until > now:
        _audit_failure(session, user, username, "locked")
        raise LoginLocked(user.locked_until)
    if not user.check_password(password) or not user.is_active:
        _record_failure(session, user, now, max_attempts, lockout_seconds)
        _audit_failure(session, user, username, "wrong password" if user.is_active else "inactive")
        raise LoginRefused(gettext("Invalid username or password."))
    user.failed_login_count = 0
    user.locked_until = None
    user.last_login_at = now
    audit.record(session, "login", user, actor=audit.acting_as(session, user))
    return user


def _refuse_unknown_user(session, username, password, now, max_attempts, lockout_seconds) -> None:
    """A username without an account is refused as a wrong password is: the same time spent
    checking, the same message, and the same lockout after as many attempts."""
    key = username[:64]
    locked_until = session.scalar(select(LoginFailures.locked_until).where(LoginFailures.username == key))
    if locked_until and locked_until > now:
        _audit_failure(session, None, username, "locked")
        raise LoginLocked(locked_until)
    User(password_hash=_DUMMY_HASH).check_password(password)
    insert = (postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert)
    failures = session.execute(
        insert(LoginFailures).values(username=key, failed_count=1)
        .on_conflict_do_update(index_elements=[LoginFailures.username],
                               set_={"failed_count": LoginFailures.failed_count + 1})
        .returning(LoginFailures.failed_count)
    ).scalar_one()
    if failures >= max_attempts:
        session.execute(update(LoginFailures).where(LoginFailures.username == key)
                        .values(failed_count=0, locked_until=now + timedelta(seconds=lockout_seconds)))
    _audit_failure(session, None, username, "unknown user")
    raise LoginRefused(gettext("Invalid username or password."))


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


class WeakPassword(InvalidUser):
    pass


class WrongPassword(InvalidUser):
    """The current password given to change it is not the user's."""


class LastAdmin(InvalidUser):
    pass


MIN_PASSWORD_LENGTH = 10
COMMON_PASSWORDS = frozenset(
    line.strip().casefold()
    for line in (Path(__file__).resolve().parent.parent / "common_passwords.txt").read_text().splitlines()
    if line.strip() and not line.startswith("#")
)


def password_problems(password: str, username: str | None = None) -> list[str]:
    """What is wrong with a new password, in words a user can act on (empty: it is fine)."""
    problems = []
    if len(password) < MIN_PASSWORD_LENGTH:
        problems.append(gettext("Use at least %(min)s characters.", min=MIN_PASSWORD_LENGTH))
    if password.isdigit():
        problems.append(gettext("Do not use only digits."))
    if password.isspace():
        problems.append(gettext("Do not use only spaces."))
    if username and password.casefold() == username.casefold():
        problems.append(gettext("Do not use your username."))
    if password.casefold() in COMMON_PASSWORDS:
        problems.append(gettext("This password is too common."))
    if any(unicodedata.category(c) == "Cc" for c in password):
        problems.append(gettext("Do not use control characters (no keyboard can type them again)."))
    return problems


def check_password_rule(password: str, username: str | None) -> None:
    if not password:
        raise WeakPassword(gettext("A password is required."))
    problems = password_problems(password, username)
    if problems:
        raise WeakPassword(" ".join(problems))


def save_user(session: Session, user: User, new_password: str | None, is_new: bool) -> None:
    """The admin's user form: a new user needs a password; the last active admin stays one."""
    if new_password:
        check_password_rule(new_password, user.username)
        user.set_password(new_password)
    elif is_new:
        raise WeakPassword(gettext("A password is required for a new user."))
    if not is_new:
        ensure_an_admin_remains(session, user)


def change_password(session: Session, user: User, current: str, new: str) -> None:
    """The signed-in user's own change: the current password proves it is them."""
    if not user.check_password(current):
        raise WrongPassword(gettext("Your current password is not correct."))
    if current == new:
        raise WeakPassword(gettext("Choose a password different from the current one."))
    check_password_rule(new, user.username)
    user.set_password(new)
    user.must_change_password = False


def ensure_an_admin_remains(session: Session, user: User, deleting: bool = False, lock: bool = True) -> None:
    """Refuse the change that would leave no active admin (demote, deactivate or delete).
    ``lock=False`` only asks (for a page that shows what would happen) and locks nothing."""
    state = inspect(user)
    was_admin = _committed(state, "role") == "admin" and _committed(state, "is_active")
    stays_admin = not deleting and user.role == "admin" and user.is_active
    if not was_admin or stays_admin:
        return
    with session.no_autoflush:
        # Lock the other admins' rows: two admins demoting each other at once cannot both win.
        others = select(User.id).where(User.role == "admin", User.is_active, User.id != user.id)
        others = session.scalars(others.with_for_update() if lock else others).all()
    if not others:
        raise LastAdmin(gettext("%(username)s is the last active admin and must stay one: "
                                "make another user an active admin first.", username=user.username))


def delete_users(session: Session, ids: list[int]) -> int:
    """Delete all these users or none; never the last active admin."""
    users = list(session.scalars(select(User).where(User.id.in_(ids)).order_by(User.id)))
    if len(users) != len(set(ids)):
        raise InvalidUser(gettext("Some of the selected users do not exist; nothing was deleted."))
    remaining_admins = session.scalar(
        select(func.count(User.id)).where(User.role == "admin", User.is_active, User.id.not_in(ids))
    )
    if not remaining_admins and any(u.role == "admin" and u.is_active for u in users):
        raise LastAdmin(gettext("That would delete the last active admin: make another user an active admin first."))
    for user in users:
        ensure_no_record(session, user)
        session.delete(user)
    return len(users)


def deletion_preview(session: Session, user: User) -> DeletionPreview:
    """A user takes nothing with them; the last active admin and users on record are refused."""
    return DeletionPreview(refusal=refusal_of(lambda: ensure_an_admin_remains(session, user, deleting=True, lock=False),
                                              lambda: ensure_no_record(session, user)))


def ensure_no_record(session: Session, user: User) -> None:
    """Users who did anything on record stay, so the record keeps naming them (and the
    audit chain, which hashes their id, stays intact): deactivate them instead."""
    involved = or_(Transaction.created_by_id == user.id, Transaction.posted_by_id == user.id,
                   Transaction.voided_by_id == user.id)
    acted = session.scalar(select(func.count(Transaction.id)).where(involved)) or session.scalar(
        select(func.count(AuditEntry.id)).where(AuditEntry.user_id == user.id))
    if acted:
        raise InvalidUser(gettext("%(username)s has acted on record (sign-ins, changes or transactions) and "
                                  "cannot be deleted; deactivate the user instead.", username=user.username))


def _committed(state, key):
    history = state.attrs[key].history
    return history.deleted[0] if history.deleted else getattr(state.obj(), key)


def create_user(session: Session, username: str, password: str, role: str, must_change_password=False) -> User:
    username = (username or "").strip()
    if not username or len(username) > 64:
        raise InvalidUser(gettext("A username of 1 to 64 characters is required."))
    if role not in ROLES:
        raise InvalidUser(gettext("Unknown role %(role)r; choose one of %(roles)s.", role=role, roles=", ".join(ROLES)))
    check_password_rule(password, username)
    if find_user(session, username):
        raise InvalidUser(gettext("User %(username)r already exists.", username=username))
    user = User(username=username, role=role, must_change_password=must_change_password)
    user.set_password(password)
    session.add(user)
    return user


def set_password(session: Session, username: str, password: str) -> User:
    user = find_user(session, username)
    if user is None:
        raise InvalidUser(gettext("No user %(username)r.", username=username))
    check_password_rule(password, username)
    user.set_password(password)
    user.must_change_password = False
    user.failed_login_count = 0
    user.locked_until = None
    return user
