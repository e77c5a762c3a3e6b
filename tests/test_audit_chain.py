"""The keyed audit chain and its checkpoints: HMACs that cannot be recomputed without
AUDIT_KEY, `audit-checkpoint`, `audit-verify --checkpoint`, the head on the audit page, and
migration 0007 that re-keys an existing (plain SHA-256) chain.

Real SQLite and PostgreSQL through the real app, as in test_audit.py.
"""

import hashlib
import hmac
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import flask_migrate
import pytest
from sqlalchemy import select, text

from adminapp.domain import audit, audit_chain
from adminapp.extensions import db as _db
from adminapp.models import AuditEntry, Product
from tests.support import another_app, as_dba, make_app, manage, statements, tamper

ROOT = Path(__file__).resolve().parent.parent
AUDIT = "/admin/audit/"
CHECKPOINT_PAGE = "/admin/audit/checkpoint/"


# ------------------------------------------------------------------------------ helpers


def cli(app, *args):
    return app.test_cli_runner().invoke(args=list(args))


def checkpoint_line(app) -> str:
    result = cli(app, "audit-checkpoint")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 1, result.stdout
    return lines[0]


def verify(app, *checkpoints):
    args = ["audit-verify"]
    for checkpoint in checkpoints:
        args += ["--checkpoint", checkpoint]
    return cli(app, *args)


def assert_refused(result, message):
    assert result.exit_code == 1, result.output
    assert message in result.stderr, result.stderr
    assert "Audit trail intact" not in result.stdout


def rows(app) -> list[dict]:
    with app.app_context():
        table = AuditEntry.__table__
        found = [dict(row._mapping) for row in _db.session.execute(select(table).order_by(table.c.id))]
        _db.session.remove()
    return found


def backend(app) -> str:
    return "sqlite" if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite") else "postgresql"


def rehash_from(app, first_id, hash_function):
    """What an attacker with only the database could do: recompute every hash from ``first_id`` on
    (after changing that entry), with a hash function of their choosing."""
    with app.app_context():
        dba = as_dba(_db.session)
        table = AuditEntry.__table__
        entries = [dict(row._mapping) for row in _db.session.execute(select(table).order_by(table.c.id))]
        prev = None
        for entry in entries:
            if entry["id"] >= first_id:
                entry["prev_hash"] = prev
                entry["hash"] = hash_function(prev, entry)
                _db.session.execute(
                    table.update()
                    .where(table.c.id == entry["id"])
                    .values(prev_hash=entry["prev_hash"], hash=entry["hash"]),
                    execution_options=dba,
                )
            prev = entry["hash"]
        _db.session.commit()
        _db.session.remove()


def make_changes(db, count, start=0):
    """``count`` audit entries: products created."""
    with db() as session:
        for n in range(start, start + count):
            session.add(Product(sku=f"CHK-{n}", name=f"Checked {n}", price=Decimal("1.00"), stock=1))


@pytest.fixture
def chain(app, db):
    """A chain of ten entries; returns their ids."""
    make_changes(db, 10)
    return [row["id"] for row in rows(app)]


def forged_checkpoint(app, **fields) -> str:
    """A checkpoint line made with the app's key, with fields of our choosing."""
    with app.app_context():
        real = audit_chain.take_checkpoint(_db.session)
        _db.session.remove()
        values = {"last_id": real.last_id, "hash": real.hash, "count": real.count, "at": real.at, **fields}
        unsigned = audit_chain.Checkpoint(**values)
        return audit_chain.Checkpoint(**values, mac=audit_chain._checkpoint_mac(unsigned.body)).line


# ============================================================================ the keyed hash

ENTRY = audit.entry(
    audit.Actor(user_id=7, username="zoë", remote_addr="10.0.0.2"),
    "update",
    "product",
    42,
    "Café ☕",
    {"price": [Decimal("10.50"), Decimal("9.99")]},
    at=datetime(2024, 2, 29, 16, 59, 58, 123456, tzinfo=UTC),
)


def test_the_keyed_hash_is_hmac_sha256_under_a_key_derived_from_audit_key():
    """Pinned: every stored hash depends on it."""
    derived = hmac.new(b"pinned-audit-key", b"adminapp audit chain v1", hashlib.sha256).digest()
    message = ("ab" * 32 + audit_chain.canonical(ENTRY)).encode()

    assert (
        audit_chain.chain_hash_for("pinned-audit-key")("ab" * 32, ENTRY)
        == hmac.new(derived, message, hashlib.sha256).hexdigest()
        == "36591debc16df270732443f5b7eb0b880deb60c54645b3f69e94d59d8e92124c"
    )
    assert (
        audit_chain.ChainHash(b"k" * 100)(None, ENTRY)
        == hmac.new(b"k" * 100, audit_chain.canonical(ENTRY).encode(), hashlib.sha256).hexdigest()
    )  # a long key too
    assert audit_chain.chain_hash_for("another key")("ab" * 32, ENTRY) != audit_chain.chain_hash_for(
        "pinned-audit-key"
    )("ab" * 32, ENTRY)
    assert audit_chain.legacy_hash("ab" * 32, ENTRY) != audit_chain.chain_hash_for("pinned-audit-key")("ab" * 32, ENTRY)


def test_the_app_writes_keyed_hashes(app, chain):
    key = audit_chain.chain_hash_for(app.config["AUDIT_KEY"])
    prev = None
    for row in rows(app):
        assert row["prev_hash"] == prev
        assert row["hash"] == key(prev, row) != audit_chain.legacy_hash(prev, row)
        prev = row["hash"]


@pytest.mark.parametrize("recompute", ["sha256", "hmac with a wrong key"])
def test_an_entry_changed_and_the_chain_recomputed_without_the_key_is_detected(app, chain, recompute):
    """The issue: altering an entry and recomputing every later hash with the app's own (unkeyed)
    hash function used to pass audit-verify."""
    victim = chain[4]
    tamper(app, "UPDATE audit_entries SET username = 'mallory' WHERE id = :id", id=victim)
    rehash_from(
        app, victim, audit_chain.legacy_hash if recompute == "sha256" else audit_chain.chain_hash_for("a guessed key")
    )

    result = verify(app)

    assert_refused(
        result,
        f"Audit trail BROKEN at entry #{victim}: "
        + (
            "its hash is a plain SHA-256, not made with the audit key"
            if recompute == "sha256"
            else "its content does not match its hash under the audit key (it was altered, or hashed without the key)"
        ),
    )
    assert "4 entries before it are intact" in result.stderr


def test_a_whole_chain_recomputed_without_the_key_is_detected_at_its_first_entry(app, chain):
    """As an unkeyed chain from before migration 0007 would be: the message says how to key it."""
    rehash_from(app, chain[0], audit_chain.legacy_hash)
    assert_refused(
        verify(app),
        f"Audit trail BROKEN at entry #{chain[0]}: its hash is a plain SHA-256, not made "
        "with the audit key: the chain was recomputed without the key, or predates it "
        "(run `manage.py init-db`: migration 0007 keys an intact chain)",
    )


def test_the_chain_verifies_only_with_its_own_key(app, chain, tmp_path):
    with another_app(
        app.config["SQLALCHEMY_DATABASE_URI"], tmp_path / "other", AUDIT_KEY="not the chain's key"
    ) as other:
        assert_refused(verify(other), f"BROKEN at entry #{chain[0]}")
        assert verify(app).exit_code == 0


# ============================================================================ audit-checkpoint


def test_audit_checkpoint_prints_one_line_naming_the_head(app, chain):
    before = datetime.now(UTC).replace(microsecond=0)
    line = checkpoint_line(app)
    head = rows(app)[-1]

    match = re.fullmatch(
        r"adminapp-audit-checkpoint:v1 last_id=(\d+) hash=([0-9a-f]{64}) count=(\d+) "
        r"at=(\S+Z) mac=([0-9a-f]{64})",
        line,
    )
    assert match, line
    assert (int(match[1]), match[2], int(match[3])) == (head["id"], head["hash"], len(chain))
    taken = datetime.strptime(match[4], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert before <= taken <= datetime.now(UTC)


def test_an_empty_chain_has_a_checkpoint_too_and_every_chain_extends_it(app, db):
    line = checkpoint_line(app)
    assert " last_id=0 hash=none count=0 " in line
    result = verify(app, line)
    assert result.exit_code == 0, result.output

    make_changes(db, 3)
    result = verify(app, line)
    assert result.exit_code == 0, result.output
    assert "Audit trail intact: 3 entries verified." in result.stdout


def test_manage_py_audit_checkpoint_writes_one_line_to_stdout(tmp_path):
    # A database with one entry, made in this process with the instance folder's audit key,
    # which manage.py reads too.
    app = make_app(f"sqlite:///{tmp_path / 'manage.db'}", tmp_path)
    runner = app.test_cli_runner()
    assert runner.invoke(args=["init-db"]).exit_code == 0
    assert runner.invoke(args=["create-user", "zoe", "--role", "admin", "--password", "Kopi-tubruk-42"]).exit_code == 0
    with app.app_context():
        _db.engine.dispose()

    checkpoint = manage(tmp_path, "audit-checkpoint")

    assert checkpoint.returncode == 0, checkpoint.stderr
    assert len(checkpoint.stdout.splitlines()) == 1 and checkpoint.stdout.endswith("\n")
    assert checkpoint.stdout.startswith("adminapp-audit-checkpoint:v1 last_id=1 ")
    checked = manage(tmp_path, "audit-verify", "--checkpoint", checkpoint.stdout.strip())
    assert checked.returncode == 0, checked.stderr


# ============================================================================ audit-verify --checkpoint


def test_a_chain_that_grew_extends_its_checkpoint(app, db, chain):
    line = checkpoint_line(app)
    make_changes(db, 4, start=100)

    result = verify(app, line)

    assert result.exit_code == 0, result.output
    assert "Audit trail intact: 14 entries verified." in result.stdout
    assert f"The checkpoint of entry #{chain[-1]} taken at " in result.stdout
    assert "(10 entries): the chain extends it." in result.stdout


def test_entries_removed_at_the_end_pass_verify_but_not_the_checkpoint(app, chain):
    line = checkpoint_line(app)
    tamper(app, "DELETE FROM audit_entries WHERE id > :id", id=chain[6])

    assert verify(app).exit_code == 0, "a shorter chain is still a valid chain: what checkpoints are for"
    result = verify(app, line)
    assert_refused(
        result,
        f"entry #{chain[-1]} named by the checkpoint is missing "
        f"(the chain ends at entry #{chain[6]} and has 7 entries)",
    )
    assert f"\nThe checkpoint of entry #{chain[-1]} taken at " in result.stderr


def test_a_chain_emptied_does_not_extend_the_checkpoint(app, chain):
    line = checkpoint_line(app)
    tamper(app, "DELETE FROM audit_entries")
    assert_refused(
        verify(app, line), f"entry #{chain[-1]} named by the checkpoint is missing (the chain has no entries)"
    )


def test_entries_removed_at_the_end_and_new_ones_written_in_their_place(app, db, chain):
    """The ids of the removed entries are used again (SQLite does it; on PostgreSQL the sequence
    is set back): the chain is valid and as long as before, but it is another chain."""
    line = checkpoint_line(app)
    tamper(app, "DELETE FROM audit_entries WHERE id > :id", id=chain[6])
    if backend(app) == "postgresql":
        tamper(app, "SELECT setval(pg_get_serial_sequence('audit_entries', 'id'), :id)", id=chain[6])
    make_changes(db, 5, start=200)
    assert verify(app).exit_code == 0

    assert_refused(
        verify(app, line), f"entry #{chain[-1]}'s hash differs from the checkpoint's (the entry was replaced)"
    )


def test_a_changed_entry_before_the_checkpoint_is_a_broken_chain(app, chain):
    line = checkpoint_line(app)
    tamper(app, "UPDATE audit_entries SET action = 'logout' WHERE id = :id", id=chain[2])
    assert_refused(verify(app, line), f"Audit trail BROKEN at entry #{chain[2]}:")


def test_a_chain_recomputed_without_the_key_fails_against_the_checkpoint(app, chain):
    line = checkpoint_line(app)
    tamper(app, "DELETE FROM audit_entries WHERE id = :id", id=chain[3])
    rehash_from(app, chain[4], audit_chain.legacy_hash)  # the gap re-linked, as an attacker would try
    assert_refused(verify(app, line), f"Audit trail BROKEN at entry #{chain[4]}:")


def test_fewer_entries_up_to_the_checkpoint_than_it_counted(app, chain):
    """Not reachable without the key (the hashes would differ first), but checked all the same."""
    line = forged_checkpoint(app, count=len(chain) + 2)
    assert_refused(
        verify(app, line), f"the chain has fewer entries up to #{chain[-1]} than the checkpoint counted (10, not 12)"
    )


def test_a_checkpoint_made_with_another_key_is_refused(app, chain, tmp_path):
    with another_app(
        app.config["SQLALCHEMY_DATABASE_URI"], tmp_path / "other", AUDIT_KEY="another installation"
    ) as other:
        foreign = checkpoint_line(other)
    assert_refused(verify(app, foreign), "its MAC is not valid (not made with this key)")


@pytest.mark.parametrize(
    "field, value", [("last_id", "3"), ("count", "3"), ("at", "2020-01-01T00:00:00Z"), ("hash", "0" * 64)]
)
def test_a_checkpoint_line_edited_by_hand_is_refused(app, chain, field, value):
    line = re.sub(rf"\b{field}=\S+", f"{field}={value}", checkpoint_line(app))
    assert_refused(verify(app, line), "its MAC is not valid (not made with this key)")


def test_a_checkpoint_file_is_checked_line_by_line(app, db, chain, tmp_path):
    first = checkpoint_line(app)
    make_changes(db, 3, start=300)
    second = checkpoint_line(app)
    records = tmp_path / "checkpoints.txt"
    records.write_text(f"# my notes\n{first}\n\nchecked on Monday\n  {second}  \n")

    result = verify(app, str(records))
    assert result.exit_code == 0, result.output
    assert result.stdout.count("the chain extends it") == 2

    tamper(app, "DELETE FROM audit_entries WHERE id > :id", id=chain[-1])  # the first still holds, the second not
    result = verify(app, str(records))
    assert_refused(result, "named by the checkpoint is missing")
    assert result.stderr.count("The checkpoint of entry") == 1


@pytest.mark.parametrize(
    "given, message",
    [
        ("adminapp-audit-checkpoint:v1 last_id=x", "not a checkpoint line: expected"),
        (
            "adminapp-audit-checkpoint:v9 last_id=1 hash="
            + "a" * 64
            + " count=1 at=2026-01-01T00:00:00Z mac="
            + "b" * 64,
            "adminapp-audit-checkpoint:v9 is not a checkpoint version this app reads",
        ),
        (
            "adminapp-audit-checkpoint:v1 last_id=0 hash="
            + "a" * 64
            + " count=0 at=2026-01-01T00:00:00Z mac="
            + "b" * 64,
            "contradict each other",
        ),
        (
            "adminapp-audit-checkpoint:v1 last_id=1 hash="
            + "a" * 64
            + " count=1 at=2026-02-30T00:00:00Z mac="
            + "b" * 64,
            "is not a time",
        ),
        ("/no/such/file", "neither a checkpoint line nor a readable file"),
    ],
)
def test_what_is_not_a_checkpoint_is_a_usage_error(app, chain, given, message):
    result = verify(app, given)
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert "Traceback" not in result.output


def test_a_file_without_checkpoint_lines_is_a_usage_error(app, chain, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("nothing here\n")
    result = verify(app, str(notes))
    assert result.exit_code == 2 and "holds no checkpoint line" in result.stderr


def test_checkpoints_cost_the_walk_no_extra_statement(app, chain, monkeypatch):
    monkeypatch.setattr(audit, "VERIFY_BATCH", 3)
    with statements(app) as plain:
        with app.app_context():
            assert audit.verify(_db.session).ok
            _db.session.remove()
    with statements(app) as marked:
        with app.app_context():
            verdict = audit.verify(_db.session, marks=[chain[0], chain[4], chain[5], chain[9], 10**9])
            _db.session.remove()
    assert len(marked) == len(plain)
    hashes = {row["id"]: row["hash"] for row in rows(app)}
    assert verdict.marks == {chain[i]: (hashes[chain[i]], i + 1) for i in (0, 4, 5, 9)}


# ============================================================================ the audit page


def test_the_audit_page_shows_the_head_and_a_checkpoint_to_record(app, chain, auditor_client):
    head, count = rows(app)[-1], len(rows(app))  # the chain and the auditor's sign-in
    listing = auditor_client.get(AUDIT)
    assert listing.status_code == 200
    panel = listing.text.split('id="chain-head"', 1)[1].split("</div>", 1)[0]
    assert f"entry #{head['id']}," in panel and head["hash"] in panel
    assert CHECKPOINT_PAGE in panel and "manage.py audit-checkpoint" in panel

    page = auditor_client.get(CHECKPOINT_PAGE)
    assert page.status_code == 200
    line = re.search(r'id="checkpoint-line"><code>([^<]+)</code>', page.text).group(1)
    assert f" last_id={head['id']} hash={head['hash']} count={count} " in line
    result = verify(app, line)
    assert result.exit_code == 0, result.output


def test_the_audit_page_of_an_empty_chain(app, admin_client):
    tamper(app, "DELETE FROM audit_entries")  # the sign-in's entry
    assert "The audit trail has no entries yet." in admin_client.get(AUDIT).text
    assert " last_id=0 hash=none count=0 " in admin_client.get(CHECKPOINT_PAGE).text


def test_the_head_costs_the_list_one_primary_key_lookup(app, chain, admin_client):
    admin_client.get(AUDIT)
    with statements(app) as seen:
        assert admin_client.get(AUDIT).status_code == 200
    heads = [
        sql
        for sql in seen
        if sql.startswith(
            "select audit_entries.id, audit_entries.hash, audit_entries.at "
            "from audit_entries order by audit_entries.id desc limit"
        )
    ]
    assert len(heads) == 1, seen


def test_staff_see_neither_the_head_nor_the_checkpoint(app, chain, staff_client):
    assert staff_client.get(CHECKPOINT_PAGE).status_code == 403
    assert staff_client.get(AUDIT).status_code == 403


# ============================================================================ migration 0007


@pytest.fixture
def at_0006(empty_database_url, tmp_path):
    """An app whose database is migrated up to 0006, before the chain was keyed."""
    app = make_app(empty_database_url, tmp_path)
    with app.app_context():
        _db.drop_all()
        flask_migrate.upgrade(directory=app.extensions["migrate"].directory, revision="0006")
    yield app
    with app.app_context():
        _db.session.remove()
        _db.drop_all()
        _db.session.execute(text("DROP TABLE IF EXISTS alembic_version"))
        _db.session.commit()
        _db.engine.dispose()


def write_legacy_chain(app, count):
    """A chain as the app wrote it before 0007: plain SHA-256 links."""
    start = datetime(2025, 1, 1, tzinfo=UTC)
    with app.app_context():
        prev, entries = None, []
        for n in range(count):
            entry = audit.entry(
                audit.Actor(username="before"),
                "update",
                "product",
                n,
                f"OLD-{n}",
                {"stock": [n, n + 1], "price": ["1.00", "2.50"]},
                at=start + timedelta(minutes=n),
            )
            entry["prev_hash"], entry["hash"] = prev, audit_chain.legacy_hash(prev, entry)
            prev = entry["hash"]
            entries.append(entry)
        _db.session.execute(AuditEntry.__table__.insert(), entries)
        _db.session.commit()
        _db.session.remove()


def upgrade(app, revision="head"):
    with app.app_context():
        flask_migrate.upgrade(directory=app.extensions["migrate"].directory, revision=revision)


def revision(app) -> str:
    with app.app_context():
        value = _db.session.execute(text("SELECT version_num FROM alembic_version")).scalar()
        _db.session.remove()
    return value


def test_migration_0007_rekeys_a_legacy_chain_and_records_its_old_head(at_0006):
    app = at_0006
    write_legacy_chain(app, 12)
    legacy = rows(app)
    assert verify(app).exit_code == 1, "the app no longer accepts an unkeyed chain"

    upgrade(app)

    after = rows(app)
    assert len(after) == 13
    for old, new in zip(legacy, after):  # the same entries, only their hashes changed
        assert {k: v for k, v in new.items() if k not in ("hash", "prev_hash")} == {
            k: v for k, v in old.items() if k not in ("hash", "prev_hash")
        }
        assert new["hash"] != old["hash"]
    keyed = after[-1]
    assert (keyed["action"], keyed["username"]) == ("audit_keyed", "system")
    assert keyed["changes"] == {
        "legacy_last_id": legacy[-1]["id"],
        "legacy_head_hash": legacy[-1]["hash"],
        "legacy_count": 12,
    }
    assert not {row["hash"] for row in after} & {row["hash"] for row in legacy}, "nothing unkeyed is left"
    result = verify(app)
    assert result.exit_code == 0, result.output
    assert "Audit trail intact: 13 entries verified." in result.stdout


def test_migration_0007_refuses_a_legacy_chain_that_does_not_verify(at_0006, capfd):
    app = at_0006
    write_legacy_chain(app, 8)
    tamper(app, "UPDATE audit_entries SET object_repr = 'forged' WHERE id = 5")
    before = rows(app)

    with pytest.raises(SystemExit):  # Flask-Migrate logs the error and exits 1
        upgrade(app)

    assert (
        "entry #5 does not verify under SHA-256, so the chain was not rewritten and nothing was changed"
        in capfd.readouterr().err
    )
    assert rows(app) == before
    assert revision(app) == "0006"


def test_migration_0007_leaves_an_empty_trail_empty(at_0006):
    upgrade(at_0006, "0007")
    assert rows(at_0006) == []
    assert revision(at_0006) == "0007"


def test_migration_0007_rekeys_in_batches(at_0006):
    """More entries than one batch: the keyset walk carries the link across batches."""
    import importlib.util

    write_legacy_chain(at_0006, 23)
    spec = importlib.util.spec_from_file_location(
        "migration_0007", ROOT / "migrations" / "versions" / "0007_audit_chain_keyed.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with at_0006.app_context():
        with _db.engine.begin() as connection:
            head = module._rehash(
                connection,
                audit_chain.legacy_hash,
                audit_chain.chain_hash_for(at_0006.config["AUDIT_KEY"]),
                "SHA-256",
                "",
                batch=5,
            )
    assert head[-1] == 23
    result = verify(at_0006)
    assert result.exit_code == 0, result.output


def test_migration_0007_downgrades_to_the_sha256_chain(at_0006):
    app = at_0006
    write_legacy_chain(app, 6)
    upgrade(app)
    with app.app_context():
        flask_migrate.downgrade(directory=app.extensions["migrate"].directory, revision="0006")

    prev = None
    for row in rows(app):  # the six entries and the audit_keyed one, linked with plain SHA-256 again
        assert row["prev_hash"] == prev and row["hash"] == audit_chain.legacy_hash(prev, row)
        prev = row["hash"]
    assert len(rows(app)) == 7 and revision(app) == "0006"
