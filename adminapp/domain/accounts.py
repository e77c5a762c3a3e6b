"""Users and sign-in. Lockout state lives in the database, so it holds across workers."""

import hashlib
import hmac
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from flask_babel import gettext, ngettext
from sqlalchemy import case, delete, func, inspect, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from werkzeug.security import generate_password_hash

from ..models import AddressFailures, AuditEntry, LoginFailures, Transaction, User, UserSession, utcnow
from ..vocabularies import AuditAction, Role
from . import audit, guards
from .catalog import format_utc
from .deletion import DeletionPreview, refusal_of
from .errors import DomainError, StaleVersion
from .usernames import could_be_a_username, normalize_username, username_key, username_problems

# Checked against when the username is unknown, so both cases take as long.
_DUMMY_HASH = generate_password_hash(secrets.token_hex(8))
# Expired rows of the failure tables deleted by one failed sign-in, at most: the DELETE stays
# short, and as each failure adds one row at most, the tables cannot grow without bound.
PURGE_BATCH = 500


class LoginRefused(DomainError):
    """Wrong username or password, or an inactive account (deliberately not told apart)."""


class LoginLocked(DomainError):
    """Too many failed attempts for this username; try again later."""

    def __init__(self, until: datetime):
        self.until = until
        super().__init__(
            ngettext(
                "Too many failed sign-in attempts. Try again in %(num)s minute.",
                "Too many failed sign-in attempts. Try again in %(num)s minutes.",
                _minutes_until(until),
            )
        )


class AddressLimited(LoginLocked):
    """Too many failed sign-ins from this network address, whatever the usernames tried."""

    def __init__(self, until: datetime):
        self.until = until
        DomainError.__init__(
            self,
            ngettext(
                "Too many failed sign-in attempts from your network address. Try again in %(num)s minute.",
                "Too many failed sign-in attempts from your network address. Try again in %(num)s minutes.",
                _minutes_until(until),
            ),
        )


def _minutes_until(until: datetime) -> int:
    return max(1, round((until - utcnow()).total_seconds() / 60))


@dataclass(frozen=True)
class SignInLimits:
    """The sign-in settings (config LOGIN_*), and the secret that keys the hashes of names
    typed at sign-in."""

    max_attempts: int = 5
    lockout_seconds: int = 15 * 60
    max_failures_per_address: int = 100
    address_window_seconds: int = 15 * 60
    secret_key: str = ""

    @classmethod
    def from_config(cls, config) -> "SignInLimits":
        return cls(
            config["LOGIN_MAX_ATTEMPTS"],
            config["LOGIN_LOCKOUT_SECONDS"],
            config["LOGIN_MAX_FAILURES_PER_ADDRESS"],
            config["LOGIN_ADDRESS_WINDOW_SECONDS"],
            config["SECRET_KEY"],
        )


def name_hash(secret_key: str, name: str) -> str:
    """A keyed hash of a name typed at sign-in: the same name (in any case or width) gives the
    same hash, so repeats can be told, while the text (perhaps a password typed in the wrong
    box) is kept nowhere. Without the SECRET_KEY nobody can test guesses against it."""
    message = "login-name:" + username_key(name)
    return hmac.new(secret_key.encode(), message.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()[:16]


def find_user(session: Session, username: str) -> User | None:
    """The user of a name however it is typed: ``ADMIN`` or ``ａｄｍｉｎ`` finds ``admin``.
    A name no user could have (control characters, too long) is not even looked for: PostgreSQL
    refuses NUL in a query."""
    if not could_be_a_username(username):
        return None
    return session.scalar(select(User).where(User.username_key == username_key(username)))


def authenticate(
    session: Session, username: str, password: str, limits: SignInLimits, address: str | None = None
) -> User:
    """Return the user for a correct sign-in, else raise; records failures (no commit).

    Every refusal is counted against the name and the network address, and audited; a name
    that is not a user's (whatever it holds) is refused exactly as a wrong password is."""
    now = utcnow()
    _refuse_a_busy_address(session, username, now, limits, address)
    user = find_user(session, username)
    if user is None:
        _refuse_unknown_user(session, username, password, now, limits, address)
    if user.locked_until and user.locked_until > now:
        _refuse(session, user, None, "locked", now, limits, address, LoginLocked(user.locked_until))
    if not user.check_password(password) or not user.is_active or not _still_as_checked(session, user):
        _record_failure(session, user, now, limits.max_attempts, limits.lockout_seconds)
        _refuse(
            session,
            user,
            None,
            "wrong password" if user.is_active else "inactive",
            now,
            limits,
            address,
            LoginRefused(gettext("Invalid username or password.")),
        )
    user.failed_login_count = 0
    user.locked_until = None
    user.last_login_at = now
    audit.record(session, AuditAction.LOGIN, user, actor=audit.acting_as(session, user))
    return user


def _still_as_checked(session: Session, user: User) -> bool:
    """Whether the password just checked is still the user's, and the user still active, read
    again under the row lock: a password reset or a deactivation being saved is waited for, so
    no sign-in that checked the old password opens a session the reset did not end. (The slow
    hash is checked before, without the lock, so sign-ins of one user do not queue behind it.)"""
    checked = user.password_hash
    session.refresh(user, with_for_update={"key_share": True})
    return user.password_hash == checked and user.is_active


def _refuse_unknown_user(session, username, password, now, limits, address) -> None:
    """A username without an account is refused as a wrong password is: the same time spent
    checking, the same message, and the same lockout after as many attempts. Its failures are
    kept under a keyed hash of the name, and forgotten after the lockout window, as a user's are."""
    key = name_hash(limits.secret_key, username)
    _delete_expired(
        session,
        LoginFailures,
        LoginFailures.name_hash,
        LoginFailures.last_failed_at,
        now - timedelta(seconds=limits.lockout_seconds),
    )
    locked_until = session.scalar(select(LoginFailures.locked_until).where(LoginFailures.name_hash == key))
    if locked_until and locked_until > now:
        _refuse(session, None, key, "locked", now, limits, address, LoginLocked(locked_until))
    User(password_hash=_DUMMY_HASH).check_password(password)
    failures = session.execute(
        _insert(session, LoginFailures)
        .values(name_hash=key, failed_count=1, last_failed_at=now)
        .on_conflict_do_update(
            index_elements=[LoginFailures.name_hash],
            set_={"failed_count": LoginFailures.failed_count + 1, "last_failed_at": now},
        )
        .returning(LoginFailures.failed_count)
    ).scalar_one()
    if failures >= limits.max_attempts:
        session.execute(
            update(LoginFailures)
            .where(LoginFailures.name_hash == key)
            .values(failed_count=0, locked_until=now + timedelta(seconds=limits.lockout_seconds))
        )
    _refuse(
        session, None, key, "unknown user", now, limits, address, LoginRefused(gettext("Invalid username or password."))
    )


def _refuse_a_busy_address(session, username, now, limits, address) -> None:
    """Refuse every sign-in from an address that failed too often in its window: one place
    trying many usernames is slowed down, though each name is tried less than its lockout."""
    if not address:
        return
    row = session.execute(
        select(AddressFailures.failed_count, AddressFailures.window_started_at).where(
            AddressFailures.address == address[:64]
        )
    ).first()
    window = timedelta(seconds=limits.address_window_seconds)
    if row and row.window_started_at > now - window and row.failed_count >= limits.max_failures_per_address:
        _audit_failure(session, None, name_hash(limits.secret_key, username), "address limited")
        raise AddressLimited(row.window_started_at + window)


def _refuse(session, user, key, reason, now, limits, address, refusal: DomainError):
    """Count the failure against the address, audit it, and raise the refusal."""
    _count_address_failure(session, address, now, limits)
    _audit_failure(session, user, key, reason)
    raise refusal


def _count_address_failure(session, address, now, limits) -> None:
    if not address:
        return
    window_start = now - timedelta(seconds=limits.address_window_seconds)
    _delete_expired(session, AddressFailures, AddressFailures.address, AddressFailures.window_started_at, window_start)
    # The purge is bounded, so this address's ended window may still be there: it starts anew.
    ended = AddressFailures.window_started_at < window_start
    session.execute(
        _insert(session, AddressFailures)
        .values(address=address[:64], failed_count=1, window_started_at=now)
        .on_conflict_do_update(
            index_elements=[AddressFailures.address],
            set_={
                "failed_count": case((ended, 1), else_=AddressFailures.failed_count + 1),
                "window_started_at": case((ended, now), else_=AddressFailures.window_started_at),
            },
        )
    )


def _delete_expired(session, model, key_column, time_column, cutoff) -> None:
    """One bounded DELETE of the rows last touched before ``cutoff``."""
    expired = select(key_column).where(time_column < cutoff).limit(PURGE_BATCH)
    session.execute(delete(model).where(key_column.in_(expired)), execution_options={"synchronize_session": False})


def _insert(session, model):
    return (postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert)(model)


def _audit_failure(session, user, key, reason) -> None:
    """A user's failure names the user; any other names only the keyed hash of what was typed."""
    actor = audit.acting_as(session, user) if user else audit.acting_as(session, None, None)
    audit.record(
        session,
        AuditAction.LOGIN_FAILED,
        user,
        object_type="user",
        object_repr=user.username if user else key,
        changes={"reason": reason},
        actor=actor,
    )


def logout(session: Session, user: User, token: str | None) -> None:
    """Sign-out: the session of ``token`` ends for good, for any copy of its cookie too."""
    if token:
        session.execute(
            delete(UserSession).where(UserSession.token_hash == _token_hash(token)),
            execution_options={"synchronize_session": False},
        )
    audit.record(session, AuditAction.LOGOUT, user)


def _record_failure(session, user, now, max_attempts, lockout_seconds) -> None:
    # Increment in SQL: concurrent workers must not lose a failed attempt.
    # Failures older than the lockout window are forgotten, as a name without an account's are.
    stale = User.last_failed_at < now - timedelta(seconds=lockout_seconds)
    failures = session.execute(
        update(User)
        .where(User.id == user.id)
        .values(failed_login_count=case((stale, 1), else_=User.failed_login_count + 1), last_failed_at=now)
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
    if any(unicodedata.category(c) == "Cc" for c in password):
        problems.append(gettext("Do not use control characters (no keyboard can type them again)."))
    return problems


def check_password_rule(password: str, username: str | None) -> None:
    if not password:
        raise WeakPassword(gettext("A password is required."))
    problems = password_problems(password, username)
    if problems:
        raise WeakPassword(" ".join(problems))


def save_user(
    session: Session,
    user: User,
    new_password: str | None,
    is_new: bool,
    version_seen=None,
    keep_token: str | None = None,
    set_by: int | None = None,
) -> None:
    """The admin's user form: a new user needs a password; the last active admin stays one; an
    edit is refused when the user changed since the form was opened at ``version_seen``.

    A password an admin (of id ``set_by``) sets for someone else (a new user, a reset) is for one
    sign-in: that user then chooses their own, which nobody else knows.

    A new password, a role change or a change of activation ends the user's sessions, but
    the one of ``keep_token`` (the admin's own, when admins change themselves) unless the
    change is an activation's."""
    if new_password:
        check_password_rule(new_password, user.username)
        user.set_password(new_password)
        if set_by is None or set_by != user.id:
            user.must_change_password = True
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
        raise StaleVersion(gettext("This user form is missing its version; reopen the user and try again.")) from None
    with session.no_autoflush:
        current = session.scalar(select(User.version).where(User.id == user.id).with_for_update(key_share=True))
    if seen == current:
        return
    change = _last_edit(session, user)
    if change is None:
        raise StaleVersion(
            gettext(
                "This user was changed by someone else after you opened it. Your changes were "
                "not saved: reopen the user to see the current data, then apply them again."
            )
        )
    raise StaleVersion(
        gettext(
            "This user was changed by someone else (%(user)s, at %(at)s) after you opened it. "
            "Your changes were not saved: reopen the user to see the current data, "
            "then apply them again.",
            user=change.username or gettext("unknown"),
            at=format_utc(change.at),
        )
    )


# The audit actions that change what the users form shows (not sign-ins, sign-outs...).
FORM_CHANGES = (AuditAction.CREATE, AuditAction.UPDATE, AuditAction.PASSWORD_CHANGE)


def _last_edit(session: Session, user: User) -> AuditEntry | None:
    with session.no_autoflush:
        return session.scalar(
            select(AuditEntry)
            .where(
                AuditEntry.object_type == "user",
                AuditEntry.object_id == str(user.id),
                AuditEntry.action.in_(FORM_CHANGES),
            )
            .order_by(AuditEntry.id.desc())
            .limit(1)
        )


def ensure_an_admin_remains(session: Session, user: User, deleting: bool = False, lock: bool = True) -> None:
    """Refuse the change that would leave no active admin (demote, deactivate or delete).
    ``lock=False`` only asks (for a page that shows what would happen) and locks nothing."""
    state = inspect(user)
    was_admin = _committed(state, "role") == Role.ADMIN and _committed(state, "is_active")
    stays_admin = not deleting and user.role == Role.ADMIN and user.is_active
    if not was_admin or stays_admin:
        return
    if not _other_active_admins(session, {user.id}, lock):
        raise LastAdmin(
            gettext(
                "%(username)s is the last active admin and must stay one: make another user an active admin first.",
                username=user.username,
            )
        )


def _other_active_admins(session: Session, leaving: set[int], lock: bool) -> list[int]:
    """The active admins but those ``leaving``. With ``lock``, the rows of all the active admins
    are locked, in id order, until the commit: of two changes that each leave one admin (a
    demotion, a delete, a bulk delete), the second waits for the first and sees its result;
    taken in the same order by all, the locks cannot deadlock. FOR NO KEY UPDATE: rows that
    refer to a user (an audit entry, a sign-in session) are still added meanwhile."""
    with session.no_autoflush:
        admins = select(User.id).where(User.role == Role.ADMIN, User.is_active).order_by(User.id)
        admin_ids = session.scalars(admins.with_for_update(key_share=True) if lock else admins).all()
    return [admin_id for admin_id in admin_ids if admin_id not in leaving]


def delete_users(session: Session, ids: list[int]) -> int:
    """Delete all these users or none; never the last active admin (under the same locks as
    `ensure_an_admin_remains`, taken before the users are read)."""
    others = _other_active_admins(session, set(ids), lock=True)
    users = list(session.scalars(select(User).where(User.id.in_(ids)).order_by(User.id)))
    if len(users) != len(set(ids)):
        raise InvalidUser(gettext("Some of the selected users do not exist; nothing was deleted."))
    if not others and any(u.role == Role.ADMIN and u.is_active for u in users):
        raise LastAdmin(gettext("That would delete the last active admin: make another user an active admin first."))
    for user in users:
        ensure_no_record(session, user)
        session.delete(user)
    return len(users)


def deletion_preview(session: Session, user: User) -> DeletionPreview:
    """A user takes nothing with them; the last active admin and users on record are refused."""
    return DeletionPreview(
        refusal=refusal_of(
            lambda: ensure_an_admin_remains(session, user, deleting=True, lock=False),
            lambda: ensure_no_record(session, user),
        )
    )


def ensure_no_record(session: Session, user: User) -> None:
    """Users who did anything on record stay, so the record keeps naming them (and the
    audit chain, which hashes their id, stays intact): deactivate them instead."""
    involved = or_(
        Transaction.created_by_id == user.id, Transaction.posted_by_id == user.id, Transaction.voided_by_id == user.id
    )
    acted = session.scalar(select(func.count(Transaction.id)).where(involved)) or session.scalar(
        select(func.count(AuditEntry.id)).where(AuditEntry.user_id == user.id)
    )
    if acted:
        raise InvalidUser(
            gettext(
                "%(username)s has acted on record (sign-ins, changes or transactions) and "
                "cannot be deleted; deactivate the user instead.",
                username=user.username,
            )
        )


def _committed(state, key):
    history = state.attrs[key].history
    return history.deleted[0] if history.deleted else getattr(state.obj(), key)


def check_username(session: Session, name: str, user: User | None = None) -> None:
    """Refuse ``name`` (normalised) as a new user's name, or as ``user``'s new name: the username
    rule, and no other user with the same name in any case or width. A name kept as it is
    passes, so names from before the rule (with @ or +) need not change."""
    if user is not None and name == user.username:
        return
    problems = username_problems(name)
    if problems:
        raise InvalidUser(" ".join(problems))
    other = find_user(session, name)
    if other is not None and other is not user:
        raise InvalidUser(
            gettext(
                "User %(username)r already exists. Names that differ only in letter case or width are the same name.",
                username=other.username,
            )
        )


def create_user(session: Session, username: str, password: str, role: str, must_change_password=False) -> User:
    username = normalize_username(username)
    if role not in list(Role):
        raise InvalidUser(gettext("Unknown role %(role)r; choose one of %(roles)s.", role=role, roles=", ".join(Role)))
    check_username(session, username)
    check_password_rule(password, username)
    user = User(username=username, role=role, must_change_password=must_change_password)
    user.set_password(password)
    session.add(user)
    return user


def set_password(session: Session, username: str, password: str, must_change_password: bool = False) -> User:
    user = find_user(session, username)
    if user is None:
        raise InvalidUser(gettext("No user %(username)r.", username=username))
    check_password_rule(password, username)
    user.set_password(password)
    user.must_change_password = must_change_password
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
    session.execute(
        delete(UserSession).where(UserSession.created_at <= now - lifetime),
        execution_options={"synchronize_session": False},
    )
    token = secrets.token_urlsafe(32)
    session.add(UserSession(user_id=user.id, token_hash=_token_hash(token), created_at=now))
    return token


def session_user(session: Session, user_id: int, token: str, lifetime: timedelta) -> User | None:
    """The active user signed in with ``token``, while that session lasts, else None. One
    statement, as loading the user alone would be: it runs on every request."""
    return session.scalar(
        select(User)
        .join(UserSession, UserSession.user_id == User.id)
        .where(
            User.id == user_id,
            User.is_active,
            UserSession.token_hash == _token_hash(token),
            UserSession.created_at > utcnow() - lifetime,
        )
    )


def end_sessions(session: Session, user: User, reason: str, keep_token: str | None = None) -> int:
    """End every session of ``user`` but the one of ``keep_token``, on every worker at once
    (each checks its session's row at every request); audited when there were any."""
    sessions = delete(UserSession).where(UserSession.user_id == user.id)
    if keep_token:
        sessions = sessions.where(UserSession.token_hash != _token_hash(keep_token))
    ended = session.execute(sessions, execution_options={"synchronize_session": False}).rowcount
    if ended:
        audit.record(session, AuditAction.SESSIONS_ENDED, user, changes={"sessions": ended, "reason": reason})
    return ended


def sign_out_everywhere(session: Session, user: User) -> int:
    """The user's own "sign out everywhere": all their sessions end, this one too."""
    return end_sessions(session, user, "sign out everywhere")
