"""The signed cookie's half of a sign-in session (the database's half: accounts.start_session).

The cookie carries the session's token and the time of its last request. The token's row in
user_sessions says the session is still open: deleting it ends the session on every worker
at the next request, for every copy of the cookie. The idle clock stays in the cookie,
rewritten at most once a minute, so a page view writes nothing to the database (on SQLite a
write in a GET would wait for, and then hold, the one write lock).
"""

import time
from datetime import timedelta

from flask import current_app, session
from flask_login import login_user, logout_user

from ..domain import accounts
from ..extensions import db

TOKEN = "_session_token"
LAST_SEEN = "_last_seen"  # seconds since the epoch
TOUCH_EVERY = 60  # seconds: how often the idle clock is moved on (and the cookie rewritten)
# What Flask-Login keeps in the session, and ours: dropped together when a session is over.
SIGN_IN_KEYS = ("_user_id", "_fresh", "_id", TOKEN, LAST_SEEN)


def lifetime() -> timedelta:
    """The absolute lifetime of a session, from its sign-in."""
    return timedelta(hours=current_app.config["SESSION_MAX_HOURS"])


def begin(user, token: str) -> None:
    """Sign ``user`` in with the session ``token`` just created. Nothing of the session from
    before the sign-in carries over: no planted value, and Flask-WTF makes a new CSRF token."""
    session.clear()
    login_user(user)
    session[TOKEN] = token
    session[LAST_SEEN] = int(time.time())


def current_token() -> str | None:
    return session.get(TOKEN)


def load_user(user_id: str):
    """Flask-Login's user loader: the user, while the session is neither ended, idle for too
    long, nor past its lifetime. Flask-Login also calls it for a "remember me" cookie (which
    the app never sets): without a live session token in the session, that signs no one in."""
    token, last_seen, now = session.get(TOKEN), session.get(LAST_SEEN), int(time.time())
    idle = current_app.config["SESSION_IDLE_MINUTES"] * 60
    user = None
    if token and isinstance(last_seen, int) and now - last_seen <= idle:
        user = accounts.session_user(db.session, int(user_id), token, lifetime())
    if user is None:
        # Over: later requests do not ask the database again.
        for key in SIGN_IN_KEYS:
            session.pop(key, None)
    elif now - last_seen >= TOUCH_EVERY:
        session[LAST_SEEN] = now
    return user


def end() -> None:
    """Forget the sign-in in this browser (its row is the caller's to delete)."""
    session.clear()
    logout_user()
