"""Users and sign-in. Lockout state lives in the database, so it holds across workers."""

import hashlib
import secrets
from datetime import datetime, timedelta

from pathlib import Path

from flask_babel import gettext, ngettext
from sqlalchemy import delete, func, inspect, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from werkzeug.security import generate_password_hash

from ..models import ROLES, AuditEntry, LoginFailures, Transaction, User, UserSession, utcnow
from . import audit, guards
from .catalog import format_utc
from .deletion import DeletionPreview, refusal_of
from .errors import DomainError, StaleVersion

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


def logout(session: Session, user: User, token: str | None) -> None:
    """Sign-out: the session of ``token`` ends for good, for any copy of its cookie too."""
    if token:
        session.execute(delete(UserSession).where(UserSession.token_hash == _token_hash(token)),
                        execution_options={"synchronize_session": False})
    audit.record(session, "logout", user)


def _record_failure(session, user, now, max_attempts, lockout_seconds) -> None:
    # Increment in SQL: concurrent workers must not lose a failed attempt.
    failures = session.execute(
        update(User)
        .where(User.id == user.id)
        .values(failed_login_count=User.failed_login_count + 1)
        .returning(User.failed_login_count),
        # Recorded by the caller's "login_failed" entry.
        execution_options={"synchronize_session": False, **guards.RECORDS_ITS_OWN_ENTRY},
    ).scalar_one()
    if failures >= max_attempts:
        session.execute(
            update(User)
            .where(User.id == user.id)
            .values(failed_login_count=0, locked_until=now + timedelta(seconds=lockout_seconds)),
            execution_options={"synchronize_session": False, **guards.RECORDS_ITS_OWN_ENTRY},
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
    return problems


def check_password_rule(password: str, username: str | None) -> None:
    if not password:
        raise WeakPassword(gettext("A password is required."))
    problems = password_problems(password, username)
    if problems:
        raise WeakPassword(" ".join(problems))


def save_user(session: Session, user: User, new_password: str | None, is_new: bool,
              version_seen=None, keep_token: str | None = None) -> None:
    """The admin's user form: a new user needs a password; the last active admin stays one; an
    edit is refused when the user changed since the form was opened at ``version_seen``.

    A new password, a role change or a change of activation ends the user's sessions, but
    the one of ``keep_token`` (the admin's own, when admins change themselves) unless the
    change is an activation's."""
    if new_password:
        check_password_rule(new_password, user.username)
        user.set_password(new_password)
    elif is_new:
        raise WeakPassword(gettext("A password is required for a new user."))
    if is_new:
        return
    ensure_an_admin_remains(session, user)  # first: it locks the admins' rows, in id order
    ensure_current(session, user, version_seen)
    if session.is_modified(user):
        _bump_version(user)
    state = inspect(user)
    if _committed(state, "is_active") != user.is_active:
        end_sessions(session, user, "deactivated" if not user.is_active else "activated")
    elif _committed(state, "role") != user.role:
        end_sessions(session, user, "role changed", keep_token)
    elif new_password:
        end_sessions(session, user, "password reset", keep_token)


def change_password(session: Session, user: User, current: str, new: str, keep_token: str | None = None) -> None:
    """The signed-in user's own change: the current password proves it is them. Their other
    sessions end; the one of ``keep_token`` (the one they changed it in) continues."""
    if not user.check_password(current):
        raise WrongPassword(gettext("Your current password is not correct."))
    if current == new:
        raise WeakPassword(gettext("Choose a password different from the current one."))
    check_password_rule(new, user.username)
    user.set_password(new)
    user.must_change_password = False
    _bump_version(user)
    end_sessions(session, user, "password changed", keep_token)


def _bump_version(user: User) -> None:
    # In SQL: two changes committed at once both count.
    user.version = User.version + 1


def ensure_current(session: Session, user: User, version_seen) -> None:
    """Refuse to save a user form opened at another version than the user's now, naming who
    changed the user since (as catalog.ensure_current does for products). The version is read
    under the row's lock: a save committed meanwhile is seen, not written over."""
    try:
        seen = int(version_seen)
    except (TypeError, ValueError):
        raise StaleVersion(gettext("This user form is missing its version; reopen the user and try again."))
    with session.no_autoflush:
        current = session.scalar(select(User.version).where(User.id == user.id).with_for_update(key_share=True))
    if seen == current:
        return
    change = _last_edit(session, user)
    if change is None:
        raise StaleVersion(gettext("This user was changed by someone else after you opened it. Your changes were "
                                   "not saved: reopen the user to see the current data, then apply them again."))
    raise StaleVersion(gettext("This user was changed by someone else (%(user)s, at %(at)s) after you opened it. "
                               "Your changes were not saved: reopen the user to see the current data, "
                               "then apply them again.",
                               user=change.username or gettext("unknown"), at=format_utc(change.at)))


# The audit actions that change what the users form shows (not sign-ins, sign-outs...).
FORM_CHANGES = ("create", "update", "password_change")


def _last_edit(session: Session, user: User) -> AuditEntry | None:
    with session.no_autoflush:
        return session.scalar(
            select(AuditEntry)
            .where(AuditEntry.object_type == "user", AuditEntry.object_id == str(user.id),
                   AuditEntry.action.in_(FORM_CHANGES))
            .order_by(AuditEntry.id.desc())
            .limit(1)
        )


def ensure_an_admin_remains(session: Session, user: User, deleting: bool = False, lock: bool = True) -> None:
    """Refuse the change that would leave no active admin (demote, deactivate or delete).
    ``lock=False`` only asks (for a page that shows what would happen) and locks nothing."""
    state = inspect(user)
    was_admin = _committed(state, "role") == "admin" and _committed(state, "is_active")
    stays_admin = not deleting and user.role == "admin" and user.is_active
    if not was_admin or stays_admin:
        return
    if not _other_active_admins(session, {user.id}, lock):
        raise LastAdmin(gettext("%(username)s is the last active admin and must stay one: "
                                "make another user an active admin first.", username=user.username))


def _other_active_admins(session: Session, leaving: set[int], lock: bool) -> list[int]:
    """The active admins but those ``leaving``. With ``lock``, the rows of all the active admins
    are locked, in id order, until the commit: of two changes that each leave one admin (a
    demotion, a delete, a bulk delete), the second waits for the first and sees its result;
    taken in the same order by all, the locks cannot deadlock. FOR NO KEY UPDATE: rows that
    refer to a user (an audit entry, a sign-in session) are still added meanwhile."""
    with session.no_autoflush:
        admins = select(User.id).where(User.role == "admin", User.is_active).order_by(User.id)
        admin_ids = session.scalars(admins.with_for_update(key_share=True) if lock else admins).all()
    return [admin_id for admin_id in admin_ids if admin_id not in leaving]


def delete_users(session: Session, ids: list[int]) -> int:
    """Delete all these users or none; never the last active admin (under the same locks as
    `ensure_an_admin_remains`, taken before the users are read)."""
    others = _other_active_admins(session, set(ids), lock=True)
    users = list(session.scalars(select(User).where(User.id.in_(ids)).order_by(User.id)))
    if len(users) != len(set(ids)):
        raise InvalidUser(gettext("Some of the selected users do not exist; nothing was deleted."))
    if not others and any(u.role == "admin" and u.is_active for u in users):
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
    _bump_version(user)
    end_sessions(session, user, "password reset")
    return user


# --- sign-in sessions: rows in user_sessions (the cookie's half is auth/sessions.py) ---

def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start_session(session: Session, user: User, lifetime: timedelta) -> str:
    """A new session for ``user``, just authenticated: returns its token, for the signed cookie.
    Sessions older than ``lifetime`` (anyone's: they can never be used again) are deleted."""
    now = utcnow()
    session.execute(delete(UserSession).where(UserSession.created_at <= now - lifetime),
                    execution_options={"synchronize_session": False})
    token = secrets.token_urlsafe(32)
    session.add(UserSession(user_id=user.id, token_hash=_token_hash(token), created_at=now))
    return token


def session_user(session: Session, user_id: int, token: str, lifetime: timedelta) -> User | None:
    """The active user signed in with ``token``, while that session lasts, else None. One
    statement, as loading the user alone would be: it runs on every request."""
    return session.scalar(
        select(User)
        .join(UserSession, UserSession.user_id == User.id)
        .where(User.id == user_id, User.is_active, UserSession.token_hash == _token_hash(token),
               UserSession.created_at > utcnow() - lifetime)
    )


def end_sessions(session: Session, user: User, reason: str, keep_token: str | None = None) -> int:
    """End every session of ``user`` but the one of ``keep_token``, on every worker at once
    (each checks its session's row at every request); audited when there were any."""
    sessions = delete(UserSession).where(UserSession.user_id == user.id)
    if keep_token:
        sessions = sessions.where(UserSession.token_hash != _token_hash(keep_token))
    ended = session.execute(sessions, execution_options={"synchronize_session": False}).rowcount
    if ended:
        audit.record(session, "sessions_ended", user, changes={"sessions": ended, "reason": reason})
    return ended


def sign_out_everywhere(session: Session, user: User) -> int:
    """The user's own "sign out everywhere": all their sessions end, this one too."""
    return end_sessions(session, user, "sign out everywhere")

