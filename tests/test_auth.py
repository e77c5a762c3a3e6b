"""Sign-in, sign-out, the `next` redirect and the database-backed lockout."""

from datetime import timedelta
from urllib.parse import quote, urlsplit

import pytest
from sqlalchemy import select

from adminapp.domain.accounts import name_hash
from adminapp.extensions import db as _db
from adminapp.models import LoginFailures, User, utcnow
from tests.support import OFFSITE_TARGETS, PASSWORD, another_app, flashed, login, make_app

WRONG = "not the password"
INVALID = "Invalid username or password."


def user_state(db, username):
    with db() as session:
        user = session.scalar(select(User).where(User.username == username))
        return {
            "failed_login_count": user.failed_login_count,
            "locked_until": user.locked_until,
            "last_login_at": user.last_login_at,
            "is_active": user.is_active,
        }


def set_user(db, username, **fields):
    with db() as session:
        user = session.scalar(select(User).where(User.username == username))
        for name, value in fields.items():
            setattr(user, name, value)


def signed_in(client) -> bool:
    """True when the client's session opens the dashboard (not a redirect to /login)."""
    response = client.get("/admin/")
    if response.status_code == 200:
        return True
    assert response.status_code == 302 and urlsplit(response.headers["Location"]).path == "/login"
    return False


@pytest.fixture
def second_app(app, database_url, tmp_path):
    """Another app instance on the same database: a second worker process, as far as state goes."""
    with another_app(database_url, tmp_path) as other:
        yield other


# --- sign-in ----------------------------------------------------------------------------------


def test_login_page_renders(app):
    response = app.test_client().get("/login")
    assert response.status_code == 200
    assert 'name="username"' in response.text and 'name="password"' in response.text


def test_login_success_redirects_to_dashboard(app, make_user):
    make_user("alice", "staff")
    client = app.test_client()
    response = login(client, "alice")
    assert response.status_code == 302
    assert response.headers["Location"] == "/admin/"
    assert signed_in(client)


def test_login_sets_last_login_and_resets_failures(app, db, make_user):
    make_user("alice", "staff")
    client = app.test_client()
    assert user_state(db, "alice")["last_login_at"] is None
    for _ in range(3):
        assert login(client, "alice", WRONG).status_code == 200
    assert user_state(db, "alice")["failed_login_count"] == 3
    before = utcnow()
    assert login(client, "alice").status_code == 302
    after = utcnow()
    state = user_state(db, "alice")
    assert state["failed_login_count"] == 0
    assert state["locked_until"] is None
    assert before - timedelta(seconds=1) <= state["last_login_at"] <= after + timedelta(seconds=1)


SAME_SITE_TARGETS = [
    "/admin/product/",
    "/admin/product/?search=abc&page=2",
    "/admin/product/details/?id=3",
]


def login_with_next(app, username, target):
    """A new client signing in through /login?next=<target>, as the login page links it."""
    return app.test_client().post(
        f"/login?next={quote(target, safe='')}", data={"username": username, "password": PASSWORD}
    )


def test_login_follows_a_same_site_next(app, make_user):
    make_user("alice", "staff")
    for target in SAME_SITE_TARGETS:
        response = login_with_next(app, "alice", target)
        assert response.status_code == 302, target
        assert response.headers["Location"] == target


def test_login_ignores_an_offsite_next(app, make_user):
    make_user("alice", "staff")
    for target in OFFSITE_TARGETS:
        response = login_with_next(app, "alice", target)
        assert response.status_code == 302, repr(target)
        assert response.headers["Location"] == "/admin/", (
            f"next={target!r} sent the user to {response.headers['Location']!r}"
        )


def test_signed_in_user_visiting_login_is_redirected_safely(staff_client):
    assert staff_client.get("/login").headers["Location"] == "/admin/"
    assert staff_client.get("/login?next=/admin/product/").headers["Location"] == "/admin/product/"
    assert staff_client.get("/login?next=//evil.example").headers["Location"] == "/admin/"


def test_redirect_to_login_and_back(app, make_user):
    """Anonymous on a page -> login with next -> back on that page."""
    make_user("alice", "auditor")
    client = app.test_client()
    response = client.get("/admin/product/?search=x")
    login_url = response.headers["Location"]
    assert urlsplit(login_url).path == "/login"
    response = client.post(login_url, data={"username": "alice", "password": PASSWORD})
    assert response.status_code == 302
    assert response.headers["Location"] == "/admin/product/?search=x"
    assert client.get(response.headers["Location"]).status_code == 200


def test_wrong_password_is_refused_with_a_message(app, db, make_user):
    make_user("alice", "staff")
    client = app.test_client()
    response = login(client, "alice", WRONG)
    assert response.status_code == 200
    assert INVALID in flashed(response)
    assert not signed_in(client)
    assert user_state(db, "alice")["failed_login_count"] == 1
    assert user_state(db, "alice")["last_login_at"] is None


def test_unknown_user_gets_the_same_message(app):
    client = app.test_client()
    response = login(client, "nobody")
    assert response.status_code == 200
    assert INVALID in flashed(response)
    assert not signed_in(client)


def test_empty_form_is_refused(app, make_user):
    make_user("alice", "staff")
    client = app.test_client()
    response = client.post("/login", data={"username": "alice", "password": ""})
    assert response.status_code == 200
    assert not signed_in(client)


def test_username_is_trimmed(app, make_user):
    make_user("alice", "staff")
    client = app.test_client()
    assert login(client, "  alice ").status_code == 302
    assert signed_in(client)


def test_inactive_user_cannot_sign_in(app, db, make_user):
    make_user("alice", "staff", is_active=False)
    client = app.test_client()
    response = login(client, "alice")
    assert response.status_code == 200
    assert INVALID in flashed(response)  # not told apart from a wrong password
    assert not signed_in(client)
    assert user_state(db, "alice")["last_login_at"] is None


def test_deactivated_user_loses_access_at_once(app, db, make_user):
    make_user("alice", "admin")
    client = app.test_client()
    assert login(client, "alice").status_code == 302
    assert client.get("/admin/product/").status_code == 200
    set_user(db, "alice", is_active=False)
    for url in ("/admin/", "/admin/product/", "/admin/product/new/"):
        response = client.get(url)
        assert response.status_code == 302, url
        assert urlsplit(response.headers["Location"]).path == "/login"


# --- sign-out -------------------------------------------------------------------------------


def test_post_logout_signs_out(staff_client):
    response = staff_client.post("/logout")
    assert response.status_code == 302
    assert urlsplit(response.headers["Location"]).path == "/login"
    assert not signed_in(staff_client)
    assert "You have been signed out." in flashed(staff_client.get("/login"))


def test_get_logout_does_not_sign_out(staff_client):
    assert staff_client.get("/logout").status_code == 405
    assert signed_in(staff_client)


def test_logout_when_anonymous_goes_to_login(app):
    response = app.test_client().post("/logout")
    assert response.status_code == 302
    assert urlsplit(response.headers["Location"]).path == "/login"


# --- lockout ----------------------------------------------------------------------------------


def test_lockout_after_max_attempts(app, db, make_user):
    make_user("alice", "staff")
    make_user("bob", "staff")
    assert app.config["LOGIN_MAX_ATTEMPTS"] == 5
    client = app.test_client()
    for attempt in range(1, 6):
        response = login(client, "alice", WRONG)
        assert response.status_code == 200, attempt
        assert INVALID in flashed(response)
    state = user_state(db, "alice")
    assert state["locked_until"] is not None and state["locked_until"] > utcnow() + timedelta(minutes=14)

    for password in (WRONG, PASSWORD):
        response = login(client, "alice", password)
        assert response.status_code == 429
        assert "Too many failed sign-in attempts" in flashed(response)
    assert not signed_in(client)
    assert user_state(db, "alice")["last_login_at"] is None
    # Attempts while locked don't extend or reset the lock.
    assert user_state(db, "alice")["locked_until"] == state["locked_until"]

    # The lock is per username.
    assert login(app.test_client(), "bob").status_code == 302


def test_an_unknown_username_is_locked_out_like_a_real_one(app, second_app, db, make_user):
    """Otherwise a 429 would tell an attacker which usernames exist."""
    make_user("alice", "staff")
    answers = {}
    for username in ("alice", "nobody"):
        workers = [app.test_client(), second_app.test_client()]
        statuses = [login(workers[attempt % 2], username, WRONG).status_code for attempt in range(7)]
        page = flashed(login(app.test_client(), username, PASSWORD)).replace(f'value="{username}"', "")
        answers[username] = (statuses, page)
    assert answers["alice"][0] == answers["nobody"][0] == [200] * 5 + [429] * 2
    assert answers["alice"][1] == answers["nobody"][1]  # the same page, the same message
    assert "Too many failed sign-in attempts" in answers["nobody"][1]
    with db() as session:
        failures = session.get(LoginFailures, name_hash(app.config["SECRET_KEY"], "nobody"))
        assert failures.failed_count == 0 and failures.locked_until > utcnow() + timedelta(minutes=14)


def test_the_lock_on_an_unknown_username_expires(app, db):
    for _ in range(5):
        login(app.test_client(), "nobody", WRONG)
    assert login(app.test_client(), "nobody").status_code == 429
    with db() as session:
        session.get(LoginFailures, name_hash(app.config["SECRET_KEY"], "nobody")).locked_until = utcnow() - timedelta(
            seconds=1
        )

    assert login(app.test_client(), "nobody").status_code == 200
    with db() as session:
        assert session.get(LoginFailures, name_hash(app.config["SECRET_KEY"], "nobody")).failed_count == 1


def test_lockout_holds_across_workers(app, second_app, db, make_user):
    """Failures on two app instances add up, and the lock set by one is honoured by the other."""
    make_user("alice", "staff")
    worker_a, worker_b = app.test_client(), second_app.test_client()
    for client in (worker_a, worker_b, worker_a, worker_b):
        assert login(client, "alice", WRONG).status_code == 200
    assert user_state(db, "alice")["failed_login_count"] == 4
    assert login(worker_b, "alice", WRONG).status_code == 200  # the 5th: locks
    for client in (worker_a, worker_b, second_app.test_client()):
        response = login(client, "alice")
        assert response.status_code == 429
        assert not signed_in(client)


def test_failures_below_the_limit_are_forgotten_after_a_success(app, db, make_user):
    make_user("alice", "staff")
    client = app.test_client()
    for _ in range(4):
        login(client, "alice", WRONG)
    assert login(client, "alice").status_code == 302
    client.post("/logout")
    for _ in range(4):
        assert login(client, "alice", WRONG).status_code == 200
    assert user_state(db, "alice")["locked_until"] is None
    assert login(client, "alice").status_code == 302


def test_lock_expires(app, db, make_user):
    make_user("alice", "staff")
    client = app.test_client()
    for _ in range(5):
        login(client, "alice", WRONG)
    assert login(client, "alice").status_code == 429
    set_user(db, "alice", locked_until=utcnow() - timedelta(seconds=1))
    response = login(client, "alice")
    assert response.status_code == 302
    assert signed_in(client)
    state = user_state(db, "alice")
    assert state["failed_login_count"] == 0
    assert state["locked_until"] is None
    assert state["last_login_at"] is not None


def test_after_expiry_a_wrong_password_starts_counting_again(app, db, make_user):
    make_user("alice", "staff")
    client = app.test_client()
    for _ in range(5):
        login(client, "alice", WRONG)
    set_user(db, "alice", locked_until=utcnow() - timedelta(seconds=1))
    response = login(client, "alice", WRONG)
    assert response.status_code == 200 and INVALID in flashed(response)
    assert user_state(db, "alice")["failed_login_count"] == 1
    assert login(client, "alice").status_code == 302


def test_lockout_settings_come_from_config(database_url, tmp_path, app, db, make_user):
    """A tiny LOGIN_LOCKOUT_SECONDS / LOGIN_MAX_ATTEMPTS via the app's config are honoured."""
    make_user("alice", "staff")
    strict = make_app(database_url, tmp_path, LOGIN_MAX_ATTEMPTS=2, LOGIN_LOCKOUT_SECONDS=60)
    try:
        client = strict.test_client()
        assert login(client, "alice", WRONG).status_code == 200
        assert login(client, "alice", WRONG).status_code == 200
        assert login(client, "alice").status_code == 429
        locked_until = user_state(db, "alice")["locked_until"]
        assert utcnow() + timedelta(seconds=50) < locked_until <= utcnow() + timedelta(seconds=61)
    finally:
        with strict.app_context():
            _db.session.remove()
            _db.engine.dispose()


def test_inactive_user_failures_count_too(app, db, make_user):
    """Trying the right password on a disabled account gives nothing away and counts as a failure."""
    make_user("alice", "staff", is_active=False)
    client = app.test_client()
    login(client, "alice")
    assert user_state(db, "alice")["failed_login_count"] == 1
