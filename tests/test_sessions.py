"""Sign-in sessions that end: a copy of a session cookie, replayed from another browser,
stops working when that session ends (sign-out, a password change or reset, deactivation,
a role change, "sign out everywhere", the idle timeout, the absolute lifetime), on every
worker. Through the test client on real SQLite and PostgreSQL databases."""

import hashlib
import re
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from flask_login.utils import encode_cookie
from sqlalchemy import func, select, update

from adminapp.auth import sessions
from adminapp.domain import accounts
from adminapp.extensions import db as _db
from adminapp.models import AuditEntry, User, UserSession, utcnow
from tests.support import PASSWORD, as_dba, flashed, login, make_app, statements

GOOD_PASSWORD = "plum orchard lantern"
OTHER_AGENT = "Mozilla/5.0 (somebody else's machine)"


def signed_in(client) -> bool:
    """True when the client's cookie opens the dashboard; False when it is sent to sign in."""
    response = client.get("/admin/")
    if response.status_code == 200:
        return True
    assert response.status_code == 302 and urlsplit(response.headers["Location"]).path == "/login", response.status_code
    return False


def sign_in(app, username, password=PASSWORD):
    client = app.test_client()
    response = login(client, username, password)
    assert response.status_code == 302, response.text
    return client


def stolen_copy(app, client):
    """Another browser (another User-Agent) sending a copy of the client's session cookie."""
    thief = app.test_client()
    thief.environ_base["HTTP_USER_AGENT"] = OTHER_AGENT
    thief.set_cookie("session", client.get_cookie("session").value)
    return thief


def cookie_of(app, client) -> dict:
    """The session cookie's contents, as the app reads them."""
    return app.session_interface.get_signing_serializer(app).loads(client.get_cookie("session").value)


def session_rows(db, user_id) -> int:
    with db() as session:
        return session.scalar(select(func.count(UserSession.id)).where(UserSession.user_id == user_id))


def entries(db, action):
    with db() as session:
        return [
            (e.username, e.object_repr, e.changes)
            for e in session.scalars(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id))
        ]


@pytest.fixture
def bob(make_user):
    return make_user("bob", "staff")


@pytest.fixture
def admin_id(make_user):
    return make_user("root", "admin")


def user_edit(client, user_id, username, **changes):
    """Save the users admin's form for a staff user, opened now (its version is the current one)."""
    page = client.get(f"/admin/user/edit/?id={user_id}")
    version = re.search(r'name="version" type="hidden" value="(\d+)"', page.text).group(1)
    data = {
        "username": username,
        "role": "staff",
        "is_active": "y",
        "new_password": "",
        "confirm_password": "",
        "version": version,
        **changes,
    }
    response = client.post(f"/admin/user/edit/?id={user_id}", data={k: v for k, v in data.items() if v is not None})
    assert response.status_code == 302, flashed(response)


# ------------------------------------------------------------- a copy, replayed


def test_a_copy_of_the_cookie_works_while_the_session_lasts(app, bob):
    client = sign_in(app, "bob")

    assert signed_in(stolen_copy(app, client))


def test_signing_out_ends_the_session_for_every_copy_of_its_cookie(app, db, bob):
    client = sign_in(app, "bob")
    copy = stolen_copy(app, client)

    assert client.post("/logout").status_code == 302

    assert not signed_in(client)
    assert not signed_in(copy)
    assert session_rows(db, bob) == 0


def test_signing_out_ends_only_that_session(app, bob):
    laptop, phone = sign_in(app, "bob"), sign_in(app, "bob")

    laptop.post("/logout")

    assert not signed_in(laptop)
    assert signed_in(phone)


def test_a_session_ended_on_one_worker_is_ended_on_every_worker(app, database_url, tmp_path, bob):
    other_worker = make_app(database_url, tmp_path)
    try:
        client = sign_in(app, "bob")
        copy = stolen_copy(other_worker, client)
        assert signed_in(copy)

        client.post("/logout")

        assert not signed_in(copy)
    finally:
        with other_worker.app_context():
            _db.session.remove()
            _db.engine.dispose()


def test_a_remember_me_cookie_does_not_bring_an_ended_session_back(app, bob):
    """Flask-Login signs in from a "remember_token" cookie when the session has no user; the
    app never sets one, and one made with the app's key still finds no open session."""
    client = sign_in(app, "bob")
    copy = stolen_copy(app, client)
    client.post("/logout")
    with app.test_request_context():
        remember = encode_cookie(str(bob))

    copy.set_cookie("remember_token", remember)
    fresh = app.test_client()
    fresh.set_cookie("remember_token", remember)

    assert not signed_in(copy)
    assert not signed_in(fresh)


# ----------------------------------------------------------- password changes


def change_own_password(client, current=PASSWORD, new=GOOD_PASSWORD):
    return client.post(
        "/account/password", data={"current_password": current, "new_password": new, "confirm_password": new}
    )


def test_changing_ones_password_ends_the_other_sessions_and_keeps_this_one(app, db, bob):
    here, elsewhere = sign_in(app, "bob"), sign_in(app, "bob")
    copy_of_elsewhere = stolen_copy(app, elsewhere)

    response = change_own_password(here)

    assert urlsplit(response.headers["Location"]).path == "/admin/"
    assert signed_in(here)
    assert not signed_in(elsewhere)
    assert not signed_in(copy_of_elsewhere)
    assert session_rows(db, bob) == 1
    assert entries(db, "sessions_ended") == [("bob", "bob", {"sessions": 1, "reason": "password changed"})]


def test_a_refused_password_change_ends_nothing(app, db, bob):
    here, elsewhere = sign_in(app, "bob"), sign_in(app, "bob")

    response = change_own_password(here, current="not my password")

    assert response.status_code == 200
    assert signed_in(elsewhere)
    assert session_rows(db, bob) == 2


def test_an_admins_reset_in_the_users_admin_ends_every_session_of_the_user(app, db, bob, admin_id):
    bobs = sign_in(app, "bob")
    copy = stolen_copy(app, bobs)
    admin = sign_in(app, "root")

    user_edit(admin, bob, "bob", new_password=GOOD_PASSWORD, confirm_password=GOOD_PASSWORD)

    assert not signed_in(bobs)
    assert not signed_in(copy)
    assert signed_in(admin)
    assert entries(db, "sessions_ended") == [("root", "bob", {"sessions": 1, "reason": "password reset"})]
    bob_again = sign_in(app, "bob", GOOD_PASSWORD)
    # The admin's password is for one sign-in: bob is asked for his own before anything else.
    assert urlsplit(bob_again.get("/admin/").headers["Location"]).path == "/account/password"


def test_an_admin_resetting_their_own_password_stays_signed_in_here_only(app, db, admin_id, make_user):
    make_user("deputy", "admin")
    here, elsewhere = sign_in(app, "root"), sign_in(app, "root")

    user_edit(here, admin_id, "root", role="admin", new_password=GOOD_PASSWORD, confirm_password=GOOD_PASSWORD)

    assert signed_in(here)
    assert not signed_in(elsewhere)


def test_an_edit_that_changes_no_password_role_or_activation_ends_no_session(app, db, bob, admin_id):
    bobs = sign_in(app, "bob")
    admin = sign_in(app, "root")

    user_edit(admin, bob, "bobby", must_change_password="y")

    assert session_rows(db, bob) == 1
    assert entries(db, "sessions_ended") == []
    assert urlsplit(bobs.get("/admin/").headers["Location"]).path == "/account/password"  # still signed in


def test_set_password_on_the_command_line_ends_every_session_of_the_user(app, db, bob):
    bobs = sign_in(app, "bob")
    copy = stolen_copy(app, bobs)

    result = app.test_cli_runner().invoke(args=["set-password", "bob", "--password", GOOD_PASSWORD])

    assert result.exit_code == 0, result.output
    assert not signed_in(bobs)
    assert not signed_in(copy)
    assert entries(db, "sessions_ended") == [("cli", "bob", {"sessions": 1, "reason": "password reset"})]


def test_a_sign_in_racing_a_password_reset_gets_no_session(app, database_url, bob):
    """The sign-in reads the password under the user's row lock: one that read the old password
    while a reset was being saved would otherwise open a session the reset never ended.
    PostgreSQL only: on SQLite every sign-in takes the write lock before reading."""
    if not database_url.startswith("postgresql"):
        pytest.skip("row locks are PostgreSQL's")
    with app.app_context():
        accounts.set_password(_db.session, "bob", GOOD_PASSWORD)
        _db.session.flush()  # the reset holds bob's row until it commits
        with ThreadPoolExecutor(1) as pool:
            signing_in = pool.submit(login, app.test_client(), "bob", PASSWORD)
            time.sleep(0.5)
            _db.session.commit()
            response = signing_in.result(timeout=30)

    assert response.status_code == 200 and "Invalid username or password." in flashed(response)
    with app.app_context():
        assert _db.session.scalar(select(func.count(UserSession.id)).where(UserSession.user_id == bob)) == 0


# --------------------------------------------------- deactivation, role change


def test_deactivation_ends_every_session_and_reactivation_brings_none_back(app, db, bob, admin_id):
    bobs = sign_in(app, "bob")
    copy = stolen_copy(app, bobs)
    admin = sign_in(app, "root")

    user_edit(admin, bob, "bob", is_active=None)
    assert not signed_in(copy)
    user_edit(admin, bob, "bob")  # active again

    assert not signed_in(bobs)
    assert not signed_in(copy)
    assert session_rows(db, bob) == 0
    assert entries(db, "sessions_ended") == [("root", "bob", {"sessions": 1, "reason": "deactivated"})]
    assert signed_in(sign_in(app, "bob"))  # signing in again works


def test_a_role_change_ends_every_session_of_the_user(app, db, bob, admin_id):
    bobs = sign_in(app, "bob")
    copy = stolen_copy(app, bobs)
    admin = sign_in(app, "root")

    user_edit(admin, bob, "bob", role="auditor")

    assert not signed_in(bobs)
    assert not signed_in(copy)
    assert entries(db, "sessions_ended") == [("root", "bob", {"sessions": 1, "reason": "role changed"})]


def test_a_user_deactivated_outside_the_app_and_reactivated_is_not_signed_in_again(app, db, bob, admin_id):
    """Deactivated in SQL, a user is refused at once; reactivated in the users admin, the
    sessions from before are ended rather than revived."""
    bobs = sign_in(app, "bob")
    with db() as session:
        session.execute(
            update(User).where(User.id == bob).values(is_active=False),
            execution_options={"synchronize_session": False, **as_dba(session)},
        )
    assert not signed_in(stolen_copy(app, bobs))
    admin = sign_in(app, "root")

    user_edit(admin, bob, "bob")

    assert not signed_in(bobs)
    assert session_rows(db, bob) == 0


# --------------------------------------------------------- sign out everywhere


def test_sign_out_everywhere_ends_all_of_ones_sessions(app, db, bob, make_user):
    make_user("carol", "staff")
    here, elsewhere, carols = sign_in(app, "bob"), sign_in(app, "bob"), sign_in(app, "carol")
    copy = stolen_copy(app, here)
    page = here.get("/account/password")
    assert 'action="/account/sign-out-everywhere"' in page.text

    response = here.post("/account/sign-out-everywhere")

    assert urlsplit(response.headers["Location"]).path == "/login"
    assert "You have been signed out everywhere" in flashed(here.get("/login"))
    for client in (here, elsewhere, copy):
        assert not signed_in(client)
    assert signed_in(carols)  # others' sessions are theirs
    assert entries(db, "sessions_ended") == [("bob", "bob", {"sessions": 2, "reason": "sign out everywhere"})]


def test_sign_out_everywhere_needs_a_post_and_a_signed_in_user(app, bob):
    client = sign_in(app, "bob")

    assert client.get("/account/sign-out-everywhere").status_code == 405
    assert signed_in(client)
    anonymous = app.test_client().post("/account/sign-out-everywhere")
    assert urlsplit(anonymous.headers["Location"]).path == "/login"


def test_a_user_who_must_change_the_password_can_sign_out_everywhere(app, make_user):
    make_user("bob", "staff", must_change_password=True)
    here, elsewhere = sign_in(app, "bob"), sign_in(app, "bob")

    response = here.post("/account/sign-out-everywhere")

    assert urlsplit(response.headers["Location"]).path == "/login"
    assert not signed_in(elsewhere)


# ------------------------------------------------------ idle and absolute limits


def test_a_session_idle_for_longer_than_the_timeout_is_over(app, bob):
    assert app.config["SESSION_IDLE_MINUTES"] == 120
    client = sign_in(app, "bob")
    copy = stolen_copy(app, client)
    with client.session_transaction() as cookie:
        cookie[sessions.LAST_SEEN] -= 121 * 60

    assert not signed_in(client)
    # the copy made before is older still; once the original is idle, every copy is
    with copy.session_transaction() as cookie:
        cookie[sessions.LAST_SEEN] -= 121 * 60
    assert not signed_in(copy)


def test_using_the_session_keeps_it_from_going_idle(app, bob):
    client = sign_in(app, "bob")
    with client.session_transaction() as cookie:
        cookie[sessions.LAST_SEEN] -= 119 * 60

    assert signed_in(client)  # just within the timeout: the clock moves on
    assert cookie_of(app, client)[sessions.LAST_SEEN] >= time.time() - 5
    with client.session_transaction() as cookie:
        cookie[sessions.LAST_SEEN] -= 119 * 60
    assert signed_in(client)


def test_the_idle_timeout_comes_from_the_settings(app, database_url, tmp_path, bob):
    strict = make_app(database_url, tmp_path, SESSION_IDLE_MINUTES=5)
    try:
        client = sign_in(strict, "bob")
        with client.session_transaction() as cookie:
            cookie[sessions.LAST_SEEN] -= 6 * 60
        assert not signed_in(client)
    finally:
        with strict.app_context():
            _db.session.remove()
            _db.engine.dispose()


def test_a_session_ends_at_its_absolute_lifetime_however_busy(app, db, bob):
    assert app.config["SESSION_MAX_HOURS"] == 12
    client = sign_in(app, "bob")
    with db() as session:
        row = session.scalar(select(UserSession).where(UserSession.user_id == bob))
        row.created_at = utcnow() - timedelta(hours=11, minutes=59)
    assert signed_in(client)  # in use, and within its lifetime

    with db() as session:
        session.scalar(select(UserSession).where(UserSession.user_id == bob)).created_at = utcnow() - timedelta(
            hours=12, minutes=1
        )

    assert not signed_in(client)


def test_sessions_past_their_lifetime_are_deleted_at_the_next_sign_in(app, db, bob, make_user):
    make_user("carol", "staff")
    sign_in(app, "bob")
    sign_in(app, "carol")
    with db() as session:
        session.execute(
            update(UserSession).values(created_at=utcnow() - timedelta(hours=13)),
            execution_options={"synchronize_session": False},
        )

    sign_in(app, "bob")

    with db() as session:
        assert session.scalars(select(UserSession.user_id)).all() == [bob]


# ------------------------------------------------------------ renewed at sign-in


def csrf_token(page) -> str:
    return re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page.text).group(1)


def test_the_session_cookie_and_the_csrf_token_are_new_after_sign_in(csrf_app, bob):
    client = csrf_app.test_client()
    token_before = csrf_token(client.get("/login"))
    cookie_before = client.get_cookie("session").value

    response = client.post("/login", data={"username": "bob", "password": PASSWORD, "csrf_token": token_before})

    assert response.status_code == 302
    assert client.get_cookie("session").value != cookie_before
    raw_before = csrf_app.session_interface.get_signing_serializer(csrf_app).loads(cookie_before)["csrf_token"]
    token_after = csrf_token(client.get("/admin/"))
    assert cookie_of(csrf_app, client)["csrf_token"] != raw_before
    # a token handed out before the sign-in (one an attacker could have planted) is refused now
    assert client.post("/logout", data={"csrf_token": token_before}).status_code == 400
    assert signed_in(client)
    assert client.post("/logout", data={"csrf_token": token_after}).status_code == 302
    assert not signed_in(client)


def test_sign_out_everywhere_needs_the_csrf_token(csrf_app, db, bob):
    client = csrf_app.test_client()
    token = csrf_token(client.get("/login"))
    client.post("/login", data={"username": "bob", "password": PASSWORD, "csrf_token": token})
    page = client.get("/account/password")

    assert client.post("/account/sign-out-everywhere").status_code == 400
    assert signed_in(client)
    form = re.search(r'action="/account/sign-out-everywhere".*?name="csrf_token" value="([^"]+)"', page.text, re.S)
    assert client.post("/account/sign-out-everywhere", data={"csrf_token": form.group(1)}).status_code == 302
    assert not signed_in(client)
    assert session_rows(db, bob) == 0


def test_each_sign_in_gets_its_own_session_token_stored_only_hashed(app, db, bob):
    first, second = sign_in(app, "bob"), sign_in(app, "bob")
    tokens = [cookie_of(app, client)[sessions.TOKEN] for client in (first, second)]

    assert tokens[0] != tokens[1] and all(len(token) >= 40 for token in tokens)
    with db() as session:
        stored = set(session.scalars(select(UserSession.token_hash).where(UserSession.user_id == bob)))
    assert stored == {hashlib.sha256(token.encode()).hexdigest() for token in tokens}


# -------------------------------------------------------------- what it costs


def test_a_page_checks_its_session_in_the_statement_that_loads_the_user_and_writes_nothing(app, bob):
    client = sign_in(app, "bob")
    client.get("/admin/product/")
    with client.session_transaction() as cookie:
        cookie[sessions.LAST_SEEN] -= 5 * 60  # the idle clock moves on in this request

    with statements(app) as seen:
        assert client.get("/admin/product/").status_code == 200

    loads = [sql for sql in seen if "from users" in sql]
    assert len(loads) == 1 and "join user_sessions" in loads[0]
    assert not [sql for sql in seen if sql.startswith(("insert", "update", "delete"))]
