"""The users admin at /admin/user/ and the account pages (/account/password), through the
test client on a real database: who may manage users, passwords and their rule, and the
last active admin."""

import html
import re
import time
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select
from werkzeug.security import check_password_hash

from adminapp.domain import accounts
from adminapp.extensions import db as _db
from adminapp.models import Transaction, User
from tests.support import FAST_HASH, PASSWORD, detached, field_errors, flashed, login, snapshot, statements

LIST = "/admin/user/"
NEW = "/admin/user/new/"
DELETE = "/admin/user/delete/"
ACTION = "/admin/user/action/"
EXPORT = "/admin/user/export/csv/"
CHANGE_PASSWORD = "/account/password"

GOOD_PASSWORD = "plum orchard lantern"
OTHER_PASSWORD = "quiet harbour engine"
LAST_ADMIN = "is the last active admin and must stay one: make another user an active admin first."
ON_RECORD = (
    "has acted on record (sign-ins, changes or transactions) and cannot be deleted; deactivate the user instead."
)

# Passwords the rule refuses for a user named "carol.smith", and the words that say why.
WEAK_PASSWORDS = [
    pytest.param("short1x", "Use at least 10 characters.", id="too-short"),
    pytest.param("12345678901234", "Do not use only digits.", id="only-digits"),
    pytest.param("carol.smith", "Do not use your username.", id="the-username"),
    pytest.param("Carol.SMITH", "Do not use your username.", id="the-username-in-other-case"),
    pytest.param("qwertyuiop", "This password is too common.", id="common"),
    pytest.param("PassWord123", "This password is too common.", id="common-in-other-case"),
    pytest.param(" " * 12, "Do not use only spaces.", id="only-spaces"),
]


def edit_url(user_id):
    return f"/admin/user/edit/?id={user_id}"


def details_url(user_id):
    return f"/admin/user/details/?id={user_id}"


def confirm_url(user_id, back=LIST):
    return f"{DELETE}?id={user_id}&url={back}"


def user_form(**changes):
    """A valid create form; a value of None leaves the field out of the POST (an unticked box)."""
    data = {
        "username": "carol.smith",
        "role": "staff",
        "is_active": "y",
        "must_change_password": None,
        "new_password": GOOD_PASSWORD,
        "confirm_password": GOOD_PASSWORD,
    }
    data.update(changes)
    return {key: value for key, value in data.items() if value is not None}


def edit_form(username, role="staff", **changes):
    """The edit form as the page posts it for an active user, password left empty, opened at
    version 1 (a user as made)."""
    return user_form(
        **{"username": username, "role": role, "new_password": "", "confirm_password": "", "version": "1", **changes}
    )


def auth_field_errors(response, field):
    """The error messages under one field of the account pages (templates/auth/_field.html)."""
    match = re.search(
        rf'<input[^>]*\bid="{field}"[^>]*>(.*?)</div>\s*(?:<div class="form-group|<button)', response.text, re.S
    )
    assert match, f"no field {field!r} on the page"
    return [html.unescape(m) for m in re.findall(r'<div class="invalid-feedback">(.*?)</div>', match.group(1), re.S)]


def redirected_to(response):
    assert response.status_code == 302, response.status_code
    return urlsplit(response.headers["Location"]).path


def post_action(client, action, *ids):
    return client.post(ACTION, data={"action": action, "rowid": [str(i) for i in ids]}, follow_redirects=True)


@pytest.fixture
def client_of(app):
    """`client_of("bob")`: a test client signed in as that user."""

    def sign_in(username, password=PASSWORD):
        client = app.test_client()
        response = login(client, username, password)
        assert response.status_code == 302, response.text
        return client

    return sign_in


@pytest.fixture
def admin_id(make_user):
    return make_user("root", "admin")


@pytest.fixture
def admin_client(admin_id, client_of):
    """A client signed in as "root", the one active admin (overrides conftest's, for speed)."""
    return client_of("root")


@pytest.fixture
def load(db):
    return partial(detached, db, User)


@pytest.fixture
def find(db):
    def get(username):
        with db() as session:
            user = session.scalar(select(User).where(User.username == username))
            if user is not None:
                session.expunge(user)
            return user

    return get


def can_sign_in(app, username, password):
    return login(app.test_client(), username, password).status_code == 302


# ------------------------------------------------------------------- access


def every_request(user_id):
    """One request to each page and form of the users admin, about one user."""
    return [
        ("get", LIST, None),
        ("get", NEW, None),
        ("post", NEW, user_form()),
        ("get", edit_url(user_id), None),
        ("post", edit_url(user_id), edit_form("target", role="admin")),
        ("get", details_url(user_id), None),
        ("get", confirm_url(user_id), None),
        ("post", DELETE, {"id": user_id, "url": LIST}),
        ("post", ACTION, {"action": "delete", "rowid": [str(user_id)]}),
        ("get", EXPORT, None),
    ]


@pytest.mark.parametrize("role", ["staff", "auditor"])
def test_users_admin_is_for_admins_only(app, as_role, make_user, role):
    target = make_user("target", "staff")
    client = as_role(role)
    before = snapshot(app)

    for method, url, data in every_request(target):
        response = getattr(client, method)(url, data=data)
        assert response.status_code == 403, (method, url)
    assert snapshot(app) == before


def test_anonymous_is_sent_to_sign_in(app, make_user):
    target = make_user("target", "staff")
    client = app.test_client()
    before = snapshot(app)

    for method, url, data in every_request(target):
        response = getattr(client, method)(url, data=data)
        assert redirected_to(response) == "/login", (method, url)
    assert snapshot(app) == before


def test_admin_sees_the_users(admin_client, make_user):
    make_user("bob", "auditor")

    response = admin_client.get(LIST)

    assert response.status_code == 200
    cells = re.findall(r'<td class="col-username">\s*<a[^>]*>(.*?)</a>\s*</td>', response.text, re.S)
    assert cells == ["bob", "root"]


# ------------------------------------------------------------------- create


def test_create_user_stores_a_hash_and_the_user_can_sign_in(app, admin_client, find):
    response = admin_client.post(NEW, data=user_form(role="auditor"))

    assert redirected_to(response) == LIST
    carol = find("carol.smith")
    # The admin's password is for one sign-in: she then chooses her own.
    assert (carol.role, carol.is_active, carol.must_change_password) == ("auditor", True, True)
    assert GOOD_PASSWORD not in carol.password_hash
    assert carol.password_hash.startswith(("scrypt:", "pbkdf2:"))
    assert check_password_hash(carol.password_hash, GOOD_PASSWORD)
    assert carol.check_password(GOOD_PASSWORD) and not carol.check_password(OTHER_PASSWORD)
    assert can_sign_in(app, "carol.smith", GOOD_PASSWORD)


def test_create_inactive_user_without_the_checkbox(app, admin_client, find):
    response = admin_client.post(NEW, data=user_form(is_active=None))

    assert redirected_to(response) == LIST
    assert find("carol.smith").is_active is False
    assert not can_sign_in(app, "carol.smith", GOOD_PASSWORD)


def test_must_change_password_set_on_create_applies_at_sign_in(app, admin_client, find):
    admin_client.post(NEW, data=user_form(must_change_password="y"))

    assert find("carol.smith").must_change_password is True
    client = app.test_client()
    assert login(client, "carol.smith", GOOD_PASSWORD).status_code == 302
    assert redirected_to(client.get("/admin/")) == CHANGE_PASSWORD


def test_unknown_role_is_a_field_error(app, admin_client):
    before = snapshot(app)

    response = admin_client.post(NEW, data=user_form(role="superuser"))

    assert response.status_code == 200
    assert field_errors(response, "role") == ["Not a valid choice."]
    assert snapshot(app) == before


def test_a_too_long_username_gets_one_message(app, admin_client):
    before = snapshot(app)

    response = admin_client.post(NEW, data=user_form(username="u" * 65))

    assert response.status_code == 200
    assert field_errors(response, "username") == ["Use at most 64 characters."]
    assert snapshot(app) == before


def test_differing_passwords_are_a_field_error(app, admin_client):
    before = snapshot(app)

    response = admin_client.post(NEW, data=user_form(confirm_password=OTHER_PASSWORD))

    assert response.status_code == 200
    assert field_errors(response, "confirm_password") == ["The two passwords differ."]
    assert snapshot(app) == before


def test_create_without_a_password_is_refused(app, admin_client):
    before = snapshot(app)

    response = admin_client.post(NEW, data=user_form(new_password="", confirm_password=""))

    assert response.status_code == 200
    assert "A password is required for a new user." in flashed(response)
    assert "was added" not in flashed(response)
    assert snapshot(app) == before


@pytest.mark.parametrize("password, problem", WEAK_PASSWORDS)
def test_password_rule_on_create(app, admin_client, password, problem):
    before = snapshot(app)

    response = admin_client.post(NEW, data=user_form(new_password=password, confirm_password=password))

    assert response.status_code == 200
    page = flashed(response)
    assert problem in page
    assert "was added" not in page
    assert snapshot(app) == before


def test_password_just_meeting_the_rule_is_accepted(app, admin_client, find):
    response = admin_client.post(NEW, data=user_form(new_password="carol2024!", confirm_password="carol2024!"))

    assert redirected_to(response) == LIST
    assert find("carol.smith").check_password("carol2024!")


# --------------------------------------------------------------------- edit


def test_change_role(admin_client, make_user, load):
    bob = make_user("bob", "staff")

    response = admin_client.post(edit_url(bob), data=edit_form("bob", role="auditor"))

    assert redirected_to(response) == LIST
    assert load(bob).role == "auditor"


def test_deactivated_user_cannot_sign_in_and_loses_access_at_once(app, admin_client, make_user, client_of, load):
    bob = make_user("bob", "staff")
    bobs_client = client_of("bob")
    assert bobs_client.get("/admin/product/").status_code == 200

    response = admin_client.post(edit_url(bob), data=edit_form("bob", is_active=None))

    assert redirected_to(response) == LIST
    assert load(bob).is_active is False
    assert redirected_to(bobs_client.get("/admin/product/")) == "/login"
    assert not can_sign_in(app, "bob", PASSWORD)


def test_empty_password_on_edit_keeps_the_current_one(app, admin_client, make_user, load):
    bob = make_user("bob", "staff")

    response = admin_client.post(edit_url(bob), data=edit_form("bob", role="auditor"))

    assert redirected_to(response) == LIST
    assert load(bob).password_hash == FAST_HASH
    assert can_sign_in(app, "bob", PASSWORD)


def test_new_password_on_edit_replaces_the_old_one(app, admin_client, make_user, load):
    bob = make_user("bob", "staff")

    response = admin_client.post(
        edit_url(bob), data=edit_form("bob", new_password=GOOD_PASSWORD, confirm_password=GOOD_PASSWORD)
    )

    assert redirected_to(response) == LIST
    assert load(bob).check_password(GOOD_PASSWORD)
    assert load(bob).must_change_password  # the admin's password is for one sign-in
    assert not can_sign_in(app, "bob", PASSWORD)
    assert can_sign_in(app, "bob", GOOD_PASSWORD)


def test_an_admin_setting_their_own_password_is_not_asked_for_another(app, admin_client, admin_id, load):
    form = edit_form("root", role="admin", new_password=GOOD_PASSWORD, confirm_password=GOOD_PASSWORD)

    assert redirected_to(admin_client.post(edit_url(admin_id), data=form)) == LIST
    assert load(admin_id).check_password(GOOD_PASSWORD)
    assert not load(admin_id).must_change_password


def test_weak_password_on_edit_is_refused(app, admin_client, make_user):
    bob = make_user("bob", "staff")
    before = snapshot(app)

    response = admin_client.post(
        edit_url(bob), data=edit_form("bob", role="auditor", new_password="BobBob", confirm_password="BobBob")
    )

    assert response.status_code == 200
    assert "Use at least 10 characters." in flashed(response)
    assert snapshot(app) == before


def test_differing_passwords_on_edit_are_a_field_error(app, admin_client, make_user):
    bob = make_user("bob", "staff")
    before = snapshot(app)

    response = admin_client.post(
        edit_url(bob), data=edit_form("bob", new_password=GOOD_PASSWORD, confirm_password=OTHER_PASSWORD)
    )

    assert response.status_code == 200
    assert field_errors(response, "confirm_password") == ["The two passwords differ."]
    assert snapshot(app) == before


def test_password_hash_is_never_shown(admin_client, make_user, load):
    bob = make_user("bob", "staff")
    stored_hash = load(bob).password_hash
    secrets = [stored_hash, stored_hash.split("$")[-1], "pbkdf2:", "scrypt:", "password_hash"]

    edit_page = admin_client.get(edit_url(bob))
    details_page = admin_client.get(details_url(bob))
    export = admin_client.get(EXPORT)

    assert edit_page.status_code == details_page.status_code == export.status_code == 200
    for field in ("new_password", "confirm_password"):  # password fields open empty
        assert re.search(rf'<input[^>]*name="{field}"[^>]*>', edit_page.text).group(0).endswith('value="">')
    assert "bob" in details_page.text and "bob" in export.text
    for page in (edit_page.text, details_page.text, export.get_data(as_text=True)):
        for secret in secrets:
            assert secret not in page


# -------------------------------------------------------- the last active admin


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"role": "staff"}, id="demote"),
        pytest.param({"is_active": None}, id="deactivate"),
    ],
)
def test_last_active_admin_cannot_be_demoted_or_deactivated(app, admin_client, admin_id, make_user, changes):
    make_user("retired", "admin", is_active=False)  # an inactive admin does not count
    before = snapshot(app)

    response = admin_client.post(edit_url(admin_id), data=edit_form("root", **{"role": "admin", **changes}))

    assert response.status_code == 200
    assert f"root {LAST_ADMIN}" in flashed(response)
    assert snapshot(app) == before


def test_last_active_admin_cannot_be_deleted(app, admin_client, admin_id):
    before = snapshot(app)

    response = admin_client.post(DELETE, data={"id": admin_id, "url": LIST}, follow_redirects=True)

    assert response.status_code == 200
    page = flashed(response)
    assert f"root {LAST_ADMIN}" in page
    assert "was deleted" not in page
    assert snapshot(app) == before


def test_last_active_admin_cannot_be_deleted_in_bulk(app, admin_client, admin_id, make_user):
    bob = make_user("bob", "staff")  # deletable on its own: the delete is all or nothing
    before = snapshot(app)

    response = post_action(admin_client, "delete", bob, admin_id)

    assert response.status_code == 200
    page = flashed(response)
    assert "That would delete the last active admin: make another user an active admin first." in page
    assert "users deleted." not in page
    assert snapshot(app) == before


def test_with_a_second_active_admin_the_first_can_be_demoted(admin_client, admin_id, make_user, load):
    make_user("deputy", "admin")

    response = admin_client.post(edit_url(admin_id), data=edit_form("root", role="staff"))

    assert redirected_to(response) == LIST
    assert load(admin_id).role == "staff"
    assert admin_client.get(LIST).status_code == 403  # the change applies at once


# ------------------------------------------------------------------- delete


def test_user_who_never_acted_can_be_deleted(admin_client, make_user, find, load):
    kept = make_user("kept", "staff")
    admin_client.post(NEW, data=user_form())  # being created is the admin's act, not the user's
    carol = find("carol.smith").id

    response = admin_client.post(DELETE, data={"id": carol, "url": LIST}, follow_redirects=True)

    assert response.status_code == 200
    assert "was deleted" in flashed(response)
    assert load(carol) is None
    assert load(kept) is not None


def test_users_who_never_acted_can_be_deleted_in_bulk(admin_client, make_user, load):
    bob, carol, kept = make_user("bob"), make_user("carol", "auditor"), make_user("kept")

    response = post_action(admin_client, "delete", bob, carol)

    assert "2 users deleted." in flashed(response)
    assert load(bob) is None and load(carol) is None
    assert load(kept) is not None


def test_bulk_delete_is_all_or_nothing(app, admin_client, make_user, client_of):
    free = make_user("free", "staff")
    bob = make_user("bob", "staff")
    client_of("bob")
    before = snapshot(app)

    response = post_action(admin_client, "delete", free, bob)

    assert response.status_code == 200
    page = flashed(response)
    assert f"bob {ON_RECORD}" in page
    assert "deleted." not in page
    assert snapshot(app) == before


def test_user_who_signed_in_cannot_be_deleted(app, admin_client, make_user, client_of):
    bob = make_user("bob", "staff")
    client_of("bob")  # the sign-in is audited
    before = snapshot(app)

    response = admin_client.post(DELETE, data={"id": bob, "url": LIST}, follow_redirects=True)

    assert response.status_code == 200
    page = flashed(response)
    assert f"bob {ON_RECORD}" in page
    assert "was deleted" not in page
    assert snapshot(app) == before


def test_user_who_created_a_transaction_cannot_be_deleted(app, admin_client, make_user, db):
    bob = make_user("bob", "staff")
    with db() as session:
        session.add(Transaction(status="draft", created_by_id=bob))
    before = snapshot(app)

    single = admin_client.post(DELETE, data={"id": bob, "url": LIST}, follow_redirects=True)
    bulk = post_action(admin_client, "delete", bob)

    for response in (single, bulk):
        assert response.status_code == 200
        assert f"bob {ON_RECORD}" in flashed(response)
    assert snapshot(app) == before


# ------------------------------------------------ delete confirmation page


def test_confirmation_page_asks_before_deleting_a_user(app, admin_client, make_user):
    bob = make_user("bob", "staff")
    before = snapshot(app)

    response = admin_client.get(confirm_url(bob))

    assert response.status_code == 200
    page = flashed(response)
    assert "Are you sure you want to delete user “bob”?" in page
    assert "Nothing else is deleted with it." in page
    assert 'action="/admin/user/delete/"' in response.text and 'method="post"' in response.text
    assert f'<input id="id" name="id" type="hidden" value="{bob}">' in response.text
    assert snapshot(app) == before  # looking is not deleting


def test_confirmation_page_locks_nothing(app, admin_client, admin_id, make_user):
    """Looking is not deleting: no other admin's row is locked (the delete itself locks them).
    Only PostgreSQL can fail this: SQLite has no FOR UPDATE."""
    other_admin = make_user("eve", "admin")
    with statements(app) as seen:
        response = admin_client.get(confirm_url(other_admin))

    assert "Are you sure you want to delete user “eve”?" in flashed(response)
    assert seen and not [statement for statement in seen if "for update" in statement]


@pytest.mark.parametrize("who", ["last-admin", "on-record"])
def test_confirmation_page_says_why_a_user_cannot_be_deleted(app, admin_client, admin_id, make_user, db, who):
    if who == "last-admin":
        user_id, name, reason = admin_id, "root", f"root {LAST_ADMIN}"
    else:
        user_id, name, reason = make_user("bob", "staff"), "bob", f"bob {ON_RECORD}"
        with db() as session:
            session.add(Transaction(status="draft", created_by_id=user_id))
    before = snapshot(app)

    response = admin_client.get(confirm_url(user_id))

    assert response.status_code == 200
    page = flashed(response)
    assert f"Cannot delete user “{name}”" in page
    assert reason in page
    assert "Are you sure" not in page
    assert 'action="/admin/user/delete/"' not in response.text
    assert snapshot(app) == before


@pytest.mark.parametrize("user_id", ["999999", "abc", ""])
def test_confirmation_page_of_a_missing_user_goes_back_to_the_list(admin_client, user_id):
    response = admin_client.get(confirm_url(user_id), follow_redirects=True)

    assert response.status_code == 200
    assert response.request.path == LIST
    assert "Record does not exist." in flashed(response)


# ---------------------------------------------------- changing one's password


def change_password(client, current=PASSWORD, new=GOOD_PASSWORD, confirm=None):
    return client.post(
        CHANGE_PASSWORD,
        data={
            "current_password": current,
            "new_password": new,
            "confirm_password": new if confirm is None else confirm,
        },
    )


def test_change_password_page_renders(make_user, client_of):
    make_user("bob", "staff")

    response = client_of("bob").get(CHANGE_PASSWORD)

    assert response.status_code == 200
    for field in ("current_password", "new_password", "confirm_password"):
        assert f'name="{field}"' in response.text


def test_change_password_needs_a_signed_in_user(app):
    assert redirected_to(app.test_client().get(CHANGE_PASSWORD)) == "/login"


def test_change_password(app, make_user, client_of, load):
    bob = make_user("bob", "staff")
    client = client_of("bob")

    response = change_password(client)

    assert redirected_to(response) == "/admin/"
    assert "Your password was changed." in flashed(client.get("/admin/"))
    assert load(bob).check_password(GOOD_PASSWORD)
    assert not can_sign_in(app, "bob", PASSWORD)
    assert can_sign_in(app, "bob", GOOD_PASSWORD)


@pytest.mark.parametrize(
    "form, field, error",
    [
        pytest.param(
            {"current": "not my password"},
            "current_password",
            "Your current password is not correct.",
            id="wrong current password",
        ),
        pytest.param(
            {"confirm": OTHER_PASSWORD}, "confirm_password", "The two passwords differ.", id="differing new passwords"
        ),
        pytest.param(
            {"new": PASSWORD},
            "new_password",
            "Choose a password different from the current one.",
            id="keeping the same password",
        ),
    ],
)
def test_a_refused_password_change_says_why_and_changes_nothing(app, make_user, client_of, form, field, error):
    make_user("bob", "staff")
    client = client_of("bob")
    before = snapshot(app)

    response = change_password(client, **form)

    assert response.status_code == 200
    assert auth_field_errors(response, field) == [error]  # under the box that is wrong
    typed = {PASSWORD, GOOD_PASSWORD, OTHER_PASSWORD, *form.values()}
    assert not [secret for secret in typed if secret in response.text]  # no box is filled again
    assert snapshot(app) == before


@pytest.mark.parametrize("password, problem", WEAK_PASSWORDS)
def test_password_rule_on_change(app, make_user, client_of, password, problem):
    make_user("carol.smith", "staff")
    client = client_of("carol.smith")
    before = snapshot(app)

    response = change_password(client, new=password)

    assert response.status_code == 200
    assert problem in " ".join(auth_field_errors(response, "new_password"))
    assert snapshot(app) == before


# ------------------------------------------------- a password change is required


def test_user_who_must_change_the_password_is_sent_to_change_it(make_user, client_of):
    make_user("bob", "staff", must_change_password=True)
    client = client_of("bob")  # signing in itself is allowed

    for url in ("/admin/", "/admin/product/", "/admin/transaction/", "/"):
        response = client.get(url)
        assert redirected_to(response) == CHANGE_PASSWORD, url
    page = client.get(CHANGE_PASSWORD)
    assert page.status_code == 200
    assert flashed(page).count("Choose a new password before you continue.") == 1  # not once per page tried


def test_signing_in_leads_to_the_change_password_page(app, make_user):
    make_user("bob", "staff", must_change_password=True)
    client = app.test_client()

    response = login(client, "bob", PASSWORD)

    assert response.status_code == 302
    assert redirected_to(client.get(response.headers["Location"])) == CHANGE_PASSWORD


def test_user_who_must_change_the_password_can_sign_out(make_user, client_of):
    make_user("bob", "staff", must_change_password=True)
    client = client_of("bob")

    response = client.post("/logout")

    assert redirected_to(response) == "/login"
    assert redirected_to(client.get("/admin/")) == "/login"


def test_after_the_change_pages_open_normally(make_user, client_of, load):
    bob = make_user("bob", "staff", must_change_password=True)
    client = client_of("bob")

    response = change_password(client)

    assert redirected_to(response) == "/admin/"
    assert load(bob).must_change_password is False
    for url in ("/admin/", "/admin/product/"):
        assert client.get(url).status_code == 200, url


# ------------------------------------------------------- optimistic locking


def opened_version(response) -> str:
    match = re.search(r'<input[^>]*name="version"[^>]*value="([^"]*)"', response.text)
    assert match, "no version field on the form"
    return match.group(1)


def test_the_second_of_two_admins_editing_a_user_is_refused_with_who_changed_it(
    app, admin_client, make_user, client_of, load
):
    bob = make_user("bob", "staff")
    make_user("deputy", "admin")
    deputy = client_of("deputy")
    mine, theirs = admin_client.get(edit_url(bob)), deputy.get(edit_url(bob))
    assert opened_version(mine) == opened_version(theirs) == "1"

    first = deputy.post(edit_url(bob), data=edit_form("bob", role="auditor", version=opened_version(theirs)))
    assert redirected_to(first) == LIST
    before = snapshot(app)
    second = admin_client.post(
        edit_url(bob), data=edit_form("bob", must_change_password="y", version=opened_version(mine))
    )

    assert second.status_code == 200
    page = html.unescape(flashed(second))
    assert re.search(
        r"This user was changed by someone else \(deputy, at \d{4}-\d\d-\d\d \d\d:\d\d UTC\) "
        r"after you opened it\. Your changes were not saved",
        page,
    ), page
    assert snapshot(app) == before
    assert (load(bob).role, load(bob).must_change_password, load(bob).version) == ("auditor", False, 2)

    reopened = admin_client.get(edit_url(bob))
    assert opened_version(reopened) == "2"
    again = admin_client.post(
        edit_url(bob), data=edit_form("bob", role="auditor", must_change_password="y", version="2")
    )
    assert redirected_to(again) == LIST
    assert (load(bob).must_change_password, load(bob).version) == (True, 3)


@pytest.mark.parametrize("version", [None, "", "abc", "1\x00"])
def test_a_user_form_without_its_version_is_refused(app, admin_client, make_user, version):
    bob = make_user("bob", "staff")
    before = snapshot(app)

    response = admin_client.post(edit_url(bob), data=edit_form("bob", role="auditor", version=version))

    assert response.status_code == 200
    assert "This user form is missing its version; reopen the user and try again." in flashed(response)
    assert snapshot(app) == before


def test_a_sign_in_or_a_language_choice_leaves_an_open_user_form_current(app, admin_client, make_user, client_of, load):
    bob = make_user("bob", "staff")
    form = admin_client.get(edit_url(bob))
    bobs = client_of("bob")  # sign-in bookkeeping: last sign-in, failures
    bobs.post("/account/language", data={"locale": "id"})

    response = admin_client.post(edit_url(bob), data=edit_form("bob", role="auditor", version=opened_version(form)))

    assert redirected_to(response) == LIST
    assert (load(bob).role, load(bob).locale, load(bob).version) == ("auditor", "id", 2)


def test_a_password_changed_by_its_user_makes_an_open_form_stale(app, admin_client, make_user, client_of, load):
    """Saved, the form would set "must change password" back, over the change just made."""
    bob = make_user("bob", "staff", must_change_password=True)
    form = admin_client.get(edit_url(bob))
    assert redirected_to(change_password(client_of("bob"))) == "/admin/"

    response = admin_client.post(
        edit_url(bob), data=edit_form("bob", must_change_password="y", version=opened_version(form))
    )

    assert "This user was changed by someone else (bob, at" in flashed(response)
    assert load(bob).must_change_password is False


def test_saving_a_user_form_unchanged_keeps_the_version(admin_client, make_user, load):
    bob = make_user("bob", "staff")

    response = admin_client.post(edit_url(bob), data=edit_form("bob"))

    assert redirected_to(response) == LIST
    assert load(bob).version == 1


def test_a_user_changed_after_the_confirmation_page_was_opened_is_not_deleted(admin_client, make_user, load):
    bob = make_user("bob", "staff")
    page = admin_client.get(confirm_url(bob))
    admin_client.post(edit_url(bob), data=edit_form("bob", role="auditor"))

    response = admin_client.post(
        DELETE, data={"id": bob, "url": LIST, "version": opened_version(page)}, follow_redirects=True
    )

    assert "was changed after the confirmation page was opened, and was not deleted" in flashed(response)
    assert load(bob) is not None


# ------------------------------------------- the last active admin, under locks


def test_bulk_delete_locks_the_admins_as_the_single_delete_does(app, admin_client, admin_id, make_user):
    """Both take the active admins' rows in id order (PostgreSQL; SQLite has no row locks and
    a writing request holds its one write lock)."""
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        pytest.skip("row locks are PostgreSQL's")
    other = make_user("eve", "admin")
    bob = make_user("bob", "staff")

    with statements(app) as single:
        admin_client.post(DELETE, data={"id": other, "url": LIST})
    with statements(app) as bulk:
        post_action(admin_client, "delete", bob)

    for seen in (single, bulk):
        locks = [sql for sql in seen if "for no key update" in sql and "from users" in sql]
        assert len(locks) == 1 and "users.role" in locks[0] and "order by users.id" in locks[0], locks


def test_a_bulk_delete_waits_for_a_demotion_and_then_keeps_the_last_admin(app, make_user, client_of):
    """One admin is demoted (not yet committed) while the other, in a bulk delete, deletes the
    one admin left after it: counted without the demotion's locks, the delete would go through
    and leave no active admin."""
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        pytest.skip("row locks are PostgreSQL's: on SQLite writing requests take turns")
    acting = make_user("acting", "admin")
    spare = make_user("spare", "admin")  # never signed in: deletable
    client = client_of("acting")
    with app.app_context():
        demoted = _db.session.get(User, acting)
        demoted.role = "staff"
        accounts.save_user(_db.session, demoted, None, False, version_seen=demoted.version)
        _db.session.flush()
        with ThreadPoolExecutor(1) as pool:
            deleting = pool.submit(post_action, client, "delete", spare)
            time.sleep(1)
            assert not deleting.done()  # waiting for the demotion's locks
            _db.session.commit()
            response = deleting.result(timeout=60)
        with_admins = _db.session.scalars(select(User.username).where(User.role == "admin", User.is_active)).all()

    assert "That would delete the last active admin" in flashed(response)
    assert with_admins == ["spare"]
