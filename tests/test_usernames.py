"""Usernames that cannot be spoofed, and sign-in failures kept safely, through the real app
on SQLite and PostgreSQL: the users admin, the command line and sign-in share one rule;
a name without an account is audited and counted only as a keyed hash, its failures are
forgotten after the lockout window, and one network address is limited across names."""

import json
from datetime import timedelta

import pytest
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from adminapp.domain import accounts
from adminapp.domain.accounts import name_hash
from adminapp.extensions import db as _db
from adminapp.models import AddressFailures, AuditEntry, LoginFailures, User, utcnow
from tests.support import another_app, as_dba, flashed, login, make_app, snapshot

NEW = "/admin/user/new/"
GOOD_PASSWORD = "plum orchard lantern"
WRONG = "not the password"
INVALID = "Invalid username or password."
CYRILLIC_A = "\u0430"
TAKEN = "already exists"
MIXED = "mixes alphabets"
SIGNS = "Use only letters, digits and . _ -"


def user_form(username, **changes):
    return {
        "username": username,
        "role": "staff",
        "is_active": "y",
        "new_password": GOOD_PASSWORD,
        "confirm_password": GOOD_PASSWORD,
        **changes,
    }


def edit_form(username, **changes):
    """The users form as opened on a user no one has changed since it was made (version 1)."""
    return user_form(username, new_password="", confirm_password="", version="1", **changes)


def usernames(db) -> list[str]:
    with db() as session:
        return sorted(session.scalars(select(User.username)))


def user_id(db, username) -> int:
    with db() as session:
        return session.scalar(select(User.id).where(User.username == username))


def run(app, *args):
    return app.test_cli_runner().invoke(args=list(args))


def audit_entries(db, action="login_failed") -> list[dict]:
    with db() as session:
        return [
            {
                "username": e.username,
                "user_id": e.user_id,
                "object_repr": e.object_repr,
                "changes": e.changes,
                "remote_addr": e.remote_addr,
            }
            for e in session.scalars(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id))
        ]


def failures_of(db, app, name):
    with db() as session:
        row = session.get(LoginFailures, name_hash(app.config["SECRET_KEY"], name))
        return None if row is None else (row.failed_count, row.locked_until)


def from_address(client, address):
    client.environ_base["REMOTE_ADDR"] = address
    return client


# ------------------------------------------------------------- the rule, in the users admin


def test_a_fullwidth_name_is_stored_normalised(admin_client, db):
    response = admin_client.post(NEW, data=user_form("\uff41\uff44\uff4d\uff49\uff4e"))  # ａｄｍｉｎ

    assert response.status_code == 302, flashed(response)
    assert "admin" in usernames(db)


@pytest.mark.parametrize(
    "name, problem",
    [
        ("ADMIN1", TAKEN),
        ("Admin1", TAKEN),
        ("\uff21\uff24\uff2d\uff29\uff2e\uff11", TAKEN),  # ＡＤＭＩＮ１
        (f"{CYRILLIC_A}dmin1", MIXED),
        ("admin\u0391", MIXED),  # a Greek capital alpha
        ("ad min", SIGNS),
        ("carol@example.com", SIGNS),
        ("carol+1", SIGNS),
        ("carol\u200bsmith", SIGNS),  # a zero-width space
        ("carol\u02bcs", SIGNS),  # a modifier letter apostrophe
    ],
)
def test_the_users_admin_refuses_a_name_against_the_rule(app, admin_client, make_user, db, name, problem):
    make_user("admin1")
    before = snapshot(app)

    response = admin_client.post(NEW, data=user_form(name))

    assert response.status_code == 200
    assert problem in flashed(response)
    assert snapshot(app) == before


@pytest.mark.parametrize(
    "name",
    [
        "\u0430\u0434\u043c\u0438\u043d",
        "J\u00f6rg.M\u00fcller",
        "\u5c71\u7530\u305f\u308d\u3046",
        "tanaka\u5c71\u7530",
        "ana_maria-2",
    ],
)
def test_names_of_one_alphabet_are_accepted(admin_client, db, name):
    response = admin_client.post(NEW, data=user_form(name))

    assert response.status_code == 302, flashed(response)
    assert name in usernames(db)


def test_a_rename_to_a_name_in_use_is_refused_and_a_change_of_case_is_not(app, admin_client, make_user, db):
    make_user("admin1")
    carol = make_user("carol")

    clash = admin_client.post(f"/admin/user/edit/?id={carol}", data=edit_form("ADMIN1"))
    assert clash.status_code == 200 and TAKEN in flashed(clash)

    recased = admin_client.post(f"/admin/user/edit/?id={carol}", data=edit_form("Carol"))
    assert recased.status_code == 302, flashed(recased)
    assert {"Carol", "admin1"} <= set(usernames(db)) and "carol" not in usernames(db)


def test_a_name_from_before_the_rule_still_signs_in_and_its_user_can_be_edited(app, admin_client, make_user, db):
    legacy = make_user("dora@example.com")

    assert login(app.test_client(), "Dora@Example.com").status_code == 302
    kept = admin_client.post(f"/admin/user/edit/?id={legacy}", data=edit_form("dora@example.com", role="auditor"))
    assert kept.status_code == 302, flashed(kept)
    renamed = admin_client.post(f"/admin/user/edit/?id={legacy}", data=edit_form("dora+1@example.com"))
    assert renamed.status_code == 200 and SIGNS in flashed(renamed)


def test_the_database_refuses_two_names_that_differ_only_in_case(app, make_user, db):
    make_user("admin1")
    with pytest.raises(IntegrityError), app.app_context():
        _db.session.add(User(username="ADMIN1", password_hash="x", role="staff"))
        _db.session.commit()


# ----------------------------------------------------------------- the same rule, in the CLI


@pytest.mark.parametrize(
    "name, problem",
    [
        ("ADMIN1", TAKEN),
        (f"{CYRILLIC_A}dmin1", MIXED),
        ("carol@example.com", SIGNS),
        ("x\x00y", SIGNS),
    ],
)
def test_create_user_refuses_a_name_against_the_rule(app, make_user, db, name, problem):
    make_user("admin1")

    result = run(app, "create-user", name, "--role", "staff", "--password", GOOD_PASSWORD)

    assert result.exit_code == 1
    assert problem in result.output and "Traceback" not in result.output
    assert usernames(db) == ["admin1"]


def test_create_user_stores_the_normalised_name(app, db):
    result = run(app, "create-user", "\uff42\uff4f\uff42", "--role", "staff", "--password", GOOD_PASSWORD)

    assert result.exit_code == 0, result.output
    assert usernames(db) == ["bob"]


def test_set_password_finds_the_user_in_any_case_and_refuses_nul(app, make_user):
    make_user("ivan")

    assert run(app, "set-password", "IVAN", "--password", GOOD_PASSWORD).exit_code == 0
    assert login(app.test_client(), "ivan", GOOD_PASSWORD).status_code == 302
    refused = run(app, "set-password", "iv\x00an", "--password", GOOD_PASSWORD)
    assert refused.exit_code == 1 and "No user" in refused.output


# -------------------------------------------------------------------------------- sign-in


@pytest.mark.parametrize("typed", ["ALICE", "Alice", " alice ", "\uff41\uff4c\uff49\uff43\uff45"])
def test_sign_in_is_case_and_width_insensitive(app, make_user, typed):
    make_user("alice")

    assert login(app.test_client(), typed).status_code == 302


@pytest.mark.parametrize("typed", ["ali\x00ce", "\x00", "alice\x07", "a" * 300, "x\x00" * 1000])
def test_a_name_with_control_characters_is_a_failed_sign_in_counted_and_audited(app, db, make_user, typed):
    """PostgreSQL refuses NUL even in a query: such a name is an unknown user, never sent."""
    make_user("alice")
    client = from_address(app.test_client(), "198.51.100.7")

    response = login(client, typed)

    assert response.status_code == 200
    assert INVALID in flashed(response)
    assert failures_of(db, app, typed) == (1, None)
    [entry] = audit_entries(db)
    assert entry == {
        "username": None,
        "user_id": None,
        "object_repr": name_hash(app.config["SECRET_KEY"], typed),
        "changes": {"reason": "unknown user"},
        "remote_addr": "198.51.100.7",
    }
    with db() as session:
        assert session.get(AddressFailures, "198.51.100.7").failed_count == 1


def test_a_password_with_control_characters_is_a_wrong_password(app, db, make_user):
    make_user("alice")

    response = login(app.test_client(), "alice", "pass\x00word")

    assert response.status_code == 200 and INVALID in flashed(response)
    with db() as session:
        assert session.scalar(select(User.failed_login_count).where(User.username == "alice")) == 1


def test_an_unknown_name_is_audited_as_a_keyed_hash_never_as_typed(app, db):
    secret_typed_as_name = "hunter2-my-password"
    for typed in (secret_typed_as_name, secret_typed_as_name.upper(), "someone-else"):
        assert login(app.test_client(), typed, WRONG).status_code == 200

    first, again, other = audit_entries(db)
    assert first["object_repr"] == again["object_repr"] != other["object_repr"]  # repeats can be told
    assert len(first["object_repr"]) == 16
    assert first["username"] is None
    with db() as session:
        stored = json.dumps(
            [
                list(map(str, row))
                for table in (AuditEntry, LoginFailures)
                for row in session.execute(select(table.__table__)).all()
            ]
        )
    assert secret_typed_as_name not in stored and secret_typed_as_name.upper() not in stored
    # Another SECRET_KEY, other hashes: without the key nobody can test guesses against them.
    assert name_hash("another key", secret_typed_as_name) != first["object_repr"]


def test_a_users_failure_names_the_user_as_stored(app, db, make_user):
    make_user("alice")

    login(app.test_client(), "ALICE", WRONG)

    [entry] = audit_entries(db)
    assert (entry["username"], entry["object_repr"]) == ("alice", "alice")


# ----------------------------------------------------------------- failures are forgotten


def test_failures_of_unknown_names_expire(app, db):
    for name in ("ghost-1", "ghost-2"):
        login(app.test_client(), name, WRONG)
    with db() as session:
        session.execute(
            update(LoginFailures)
            .where(LoginFailures.name_hash == name_hash(app.config["SECRET_KEY"], "ghost-1"))
            .values(last_failed_at=utcnow() - timedelta(minutes=16))
        )

    login(app.test_client(), "ghost-3", WRONG)  # any failed sign-in sweeps the expired rows

    assert failures_of(db, app, "ghost-1") is None
    assert failures_of(db, app, "ghost-2") == (1, None)
    assert failures_of(db, app, "ghost-3") == (1, None)


def test_a_locked_unknown_name_is_kept_until_its_lock_ends(app, db):
    for _ in range(5):
        login(app.test_client(), "ghost", WRONG)
    login(app.test_client(), "ghost-2", WRONG)

    count, locked_until = failures_of(db, app, "ghost")
    assert count == 0 and locked_until > utcnow() + timedelta(minutes=14)
    assert login(app.test_client(), "ghost").status_code == 429


def test_a_users_failures_expire_after_the_window_as_an_unknown_names_do(app, db, make_user):
    """Otherwise waiting out the window and failing once more would tell a real name (locked)
    from an unknown one (not): both forget their failures alike."""
    make_user("alice")
    for name in ("alice", "nobody"):
        for _ in range(4):
            login(app.test_client(), name, WRONG)
    with db() as session:
        long_ago = utcnow() - timedelta(minutes=16)
        session.execute(
            update(User).values(last_failed_at=long_ago),
            execution_options={"synchronize_session": False, **as_dba(session)},
        )
        session.execute(update(LoginFailures).values(last_failed_at=long_ago))

    statuses = {name: login(app.test_client(), name, WRONG).status_code for name in ("alice", "nobody")}

    assert statuses == {"alice": 200, "nobody": 200}
    with db() as session:
        assert session.scalar(select(User.failed_login_count).where(User.username == "alice")) == 1
    assert failures_of(db, app, "nobody") == (1, None)


# -------------------------------------------------------------------- the per-address limit


@pytest.fixture
def strict_app(app, database_url, tmp_path):
    """The app on the same database, allowing 3 failed sign-ins per address in 15 minutes."""
    with another_app(database_url, tmp_path, LOGIN_MAX_FAILURES_PER_ADDRESS=3) as strict:
        yield strict


def test_the_default_allows_a_hundred_failures_per_address_in_15_minutes(app):
    assert app.config["LOGIN_MAX_FAILURES_PER_ADDRESS"] >= 100
    assert app.config["LOGIN_ADDRESS_WINDOW_SECONDS"] == 15 * 60


def test_one_address_trying_many_names_is_slowed_down(strict_app, db, make_user):
    make_user("alice")
    sprayer = from_address(strict_app.test_client(), "203.0.113.9")
    for name in ("amy", "ben", "alice"):  # each name tried once: no name's lockout helps
        assert login(sprayer, name, WRONG).status_code == 200

    refused = login(sprayer, "alice")  # even the right password, from there

    assert refused.status_code == 429
    assert "Too many failed sign-in attempts from your network address" in flashed(refused)
    assert audit_entries(db)[-1]["changes"] == {"reason": "address limited"}
    assert login(from_address(strict_app.test_client(), "203.0.113.10"), "alice").status_code == 302
    with db() as session:  # the limit counts whole minutes from the window's start
        session.execute(update(AddressFailures).values(window_started_at=utcnow() - timedelta(minutes=16)))
    assert login(sprayer, "alice").status_code == 302


def test_rows_of_addresses_whose_window_ended_are_deleted(strict_app, db):
    login(from_address(strict_app.test_client(), "203.0.113.1"), "amy", WRONG)
    with db() as session:
        session.execute(update(AddressFailures).values(window_started_at=utcnow() - timedelta(minutes=16)))

    login(from_address(strict_app.test_client(), "203.0.113.2"), "amy", WRONG)

    with db() as session:
        assert session.scalars(select(AddressFailures.address)).all() == ["203.0.113.2"]


def test_an_address_whose_window_ended_starts_a_new_count(strict_app, db, make_user, monkeypatch):
    """Even when the purge, bounded per request, has not reached the address's old row."""
    make_user("amy")
    monkeypatch.setattr(accounts, "PURGE_BATCH", 0)
    sprayer = from_address(strict_app.test_client(), "203.0.113.9")
    for _ in range(3):
        login(sprayer, "amy", WRONG)
    with db() as session:
        session.execute(update(AddressFailures).values(window_started_at=utcnow() - timedelta(minutes=16)))

    login(sprayer, "amy", WRONG)

    with db() as session:
        row = session.scalars(select(AddressFailures)).one()
        assert row.failed_count == 1 and row.window_started_at > utcnow() - timedelta(minutes=1)
    assert login(sprayer, "amy").status_code == 302


def test_behind_a_proxy_the_forwarded_address_is_the_one_limited(database_url, tmp_path, app, db):
    proxied = make_app(database_url, tmp_path, PROXY_COUNT=1)
    try:
        client = from_address(proxied.test_client(), "127.0.0.1")
        client.post("/login", data={"username": "amy", "password": WRONG}, headers={"X-Forwarded-For": "192.0.2.44"})
        with db() as session:
            assert session.scalars(select(AddressFailures.address)).all() == ["192.0.2.44"]
        assert audit_entries(db)[-1]["remote_addr"] == "192.0.2.44"
    finally:
        with proxied.app_context():
            _db.session.remove()
            _db.engine.dispose()


def test_the_created_by_filter_finds_the_user_as_sign_in_does(app, db, make_user, make_product):
    from tests.support import save_draft

    alice = make_user("alice")
    with db() as session:
        txn_id = save_draft(session, [(make_product(), 1)], user=session.get(User, alice)).id
    client = app.test_client()
    assert login(client, "alice").status_code == 302

    for typed in ("alice", "ALICE", "\uff41\uff4c\uff49\uff43\uff45"):
        page = client.get(f"/admin/transaction/?flt0_created_by_is={typed}").text
        assert f'href="/admin/transaction/details/?id={txn_id}' in page, typed
