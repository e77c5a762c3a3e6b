"""The audit chain's keyed hashes, and checkpoints of its head.

Each entry's ``hash`` is HMAC-SHA256(chain key, prev_hash + canonical(entry)), the chain key
derived from AUDIT_KEY, which is not in the database: whoever can write to the database can
still delete, alter or re-link entries, but cannot compute hashes that verify. Until
migration 0007 the hash was a plain SHA-256 (`legacy_hash`); that migration re-keys the chain.

What a key cannot show is entries removed from the end: the shorter chain is still a valid
chain. A checkpoint catches that. It is one line naming the head (last id, its hash, the entry
count, when it was taken) with a MAC under a second key derived from AUDIT_KEY; an auditor keeps
it, and `audit-verify --checkpoint` later checks that the chain still extends it.
"""

import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import lru_cache

from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..models import AuditEntry

HASHED_FIELDS = (
    "at",
    "user_id",
    "username",
    "action",
    "object_type",
    "object_id",
    "object_repr",
    "changes",
    "remote_addr",
)

# Built once: json.dumps would build an encoder per call, a cost that shows in a million-entry walk.
# sort_keys, separators and ensure_ascii are the chain's format: changing one breaks every stored
# hash. No check for circular references (it changes nothing in the output): entries are trees.
_CANONICAL_JSON = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, check_circular=False)


def canonical(entry: Mapping) -> str:
    """The entry's hashed fields as canonical JSON (sorted keys, UTC ISO time)."""
    values = {name: entry[name] for name in HASHED_FIELDS}
    values["at"] = values["at"].isoformat(timespec="microseconds")
    return _CANONICAL_JSON.encode(values)


def legacy_hash(prev_hash: str | None, entry: Mapping) -> str:
    """An entry's hash before migration 0007: plain SHA-256, which anyone can recompute."""
    return hashlib.sha256(((prev_hash or "") + canonical(entry)).encode()).hexdigest()


class ChainHash:
    """HMAC-SHA256 of entries under one key (RFC 2104, the key's pads hashed once).

    Copying the two padded states per entry costs about 1 µs where ``hmac.new`` costs 2.2 and
    a copied ``hmac.HMAC`` 1.6: it shows in a walk of millions of entries (and in seeding)."""

    def __init__(self, key: bytes):
        block = hashlib.sha256().block_size
        key = key if len(key) <= block else hashlib.sha256(key).digest()
        key = key.ljust(block, b"\0")
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in key))
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in key))

    def __call__(self, prev_hash: str | None, entry: Mapping) -> str:
        inner = self._inner.copy()
        inner.update(((prev_hash or "") + canonical(entry)).encode())
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.hexdigest()


# Two keys from AUDIT_KEY, one per use: a checkpoint's MAC can never pass for an entry's hash.
_CHAIN_KEY_LABEL = b"adminapp audit chain v1"
_CHECKPOINT_KEY_LABEL = b"adminapp audit checkpoint v1"


def _derived(audit_key: str, label: bytes) -> bytes:
    return hmac.new(audit_key.encode(), label, hashlib.sha256).digest()


@lru_cache(maxsize=8)
def chain_hash_for(audit_key: str) -> ChainHash:
    return ChainHash(_derived(audit_key, _CHAIN_KEY_LABEL))


def chain_hash() -> ChainHash:
    """The app's entry hash, keyed by its AUDIT_KEY (see config)."""
    return chain_hash_for(current_app.config["AUDIT_KEY"])


# --- checkpoints ---

CHECKPOINT_PREFIX = "adminapp-audit-checkpoint:"
CHECKPOINT_VERSION = CHECKPOINT_PREFIX + "v1"
_NO_HASH = "none"  # the head's hash in the checkpoint of an empty chain
_CHECKPOINT_LINE = re.compile(
    re.escape(CHECKPOINT_VERSION) + r" last_id=(?P<last_id>\d{1,19}) hash=(?P<hash>[0-9a-f]{64}|none)"
    r" count=(?P<count>\d{1,19}) at=(?P<at>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ) mac=(?P<mac>[0-9a-f]{64})"
)


class CheckpointError(ValueError):
    """Text that is not a checkpoint line this app can read."""


@dataclass(frozen=True)
class Head:
    """The chain's last entry, as the audit page shows it."""

    id: int
    hash: str
    at: datetime


@dataclass(frozen=True)
class Checkpoint:
    last_id: int  # 0 for an empty chain
    hash: str | None
    count: int
    at: datetime
    mac: str = ""

    @property
    def body(self) -> str:
        """The line without its MAC: what the MAC is computed over."""
        return (
            f"{CHECKPOINT_VERSION} last_id={self.last_id} hash={self.hash or _NO_HASH} count={self.count} "
            f"at={self.at.strftime('%Y-%m-%dT%H:%M:%SZ')}"
        )

    @property
    def line(self) -> str:
        return f"{self.body} mac={self.mac}"


def head(session: Session) -> Head | None:
    """The last entry: one primary-key lookup, however long the chain."""
    row = session.execute(
        select(AuditEntry.id, AuditEntry.hash, AuditEntry.at).order_by(AuditEntry.id.desc()).limit(1)
    ).first()
    return None if row is None else Head(*row)


def take_checkpoint(session: Session) -> Checkpoint:
    """A checkpoint of the chain as it is now, with its MAC. Counts every entry (a full count)."""
    last = head(session)
    count = (
        0
        if last is None
        else session.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.id <= last.id))
    )
    unsigned = Checkpoint(
        last.id if last else 0, last.hash if last else None, count, datetime.now(UTC).replace(microsecond=0)
    )
    return replace(unsigned, mac=_checkpoint_mac(unsigned.body))


def _checkpoint_mac(body: str) -> str:
    key = _derived(current_app.config["AUDIT_KEY"], _CHECKPOINT_KEY_LABEL)
    return hmac.new(key, body.encode(), hashlib.sha256).hexdigest()


def parse_checkpoint(text: str) -> Checkpoint:
    """A checkpoint line as `take_checkpoint` writes it (surrounding blanks ignored)."""
    text = text.strip()
    if text.startswith(CHECKPOINT_PREFIX) and not text.startswith(CHECKPOINT_VERSION + " "):
        raise CheckpointError(
            f"{text.split()[0]} is not a checkpoint version this app reads (it reads {CHECKPOINT_VERSION})"
        )
    match = _CHECKPOINT_LINE.fullmatch(text)
    if match is None:
        raise CheckpointError(
            f"not a checkpoint line: expected `{CHECKPOINT_VERSION} last_id=N hash=H count=N "
            f"at=YYYY-MM-DDTHH:MM:SSZ mac=M` as `audit-checkpoint` prints it"
        )
    last_id, count, digest = int(match["last_id"]), int(match["count"]), match["hash"]
    if (last_id == 0) != (count == 0) or (last_id == 0) != (digest == _NO_HASH):
        raise CheckpointError("not a checkpoint line: its last_id, hash and count contradict each other")
    try:
        at = datetime.strptime(match["at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        raise CheckpointError(f"not a checkpoint line: {match['at']} is not a time") from None
    return Checkpoint(last_id, None if digest == _NO_HASH else digest, count, at, match["mac"])


def authentic(checkpoint: Checkpoint) -> bool:
    """Whether the checkpoint's MAC was made with this app's AUDIT_KEY."""
    return hmac.compare_digest(checkpoint.mac, _checkpoint_mac(checkpoint.body))


def extension_problem(checkpoint: Checkpoint, verdict) -> str | None:
    """Why the chain `verify` walked (with the checkpoint's last id among its marks) does not
    extend the checkpoint, or None when it does. Also None when the walk stopped at a break
    before it reached the checkpoint's entry: the break is the problem to report then."""
    if checkpoint.count == 0:
        return None  # every chain extends the empty one
    found = verdict.marks.get(checkpoint.last_id)
    if found is None:
        if not verdict.ok and verdict.broken_id <= checkpoint.last_id:
            return None
        ends = (
            f"the chain ends at entry #{verdict.last_id} and has {verdict.checked} entries"
            if verdict.checked
            else "the chain has no entries"
        )
        return f"entry #{checkpoint.last_id} named by the checkpoint is missing ({ends})"
    stored_hash, count = found
    if stored_hash != checkpoint.hash:
        return f"entry #{checkpoint.last_id}'s hash differs from the checkpoint's (the entry was replaced)"
    if count != checkpoint.count:
        fewer_or_more = "fewer" if count < checkpoint.count else "more"
        return (
            f"the chain has {fewer_or_more} entries up to #{checkpoint.last_id} than the checkpoint counted "
            f"({count}, not {checkpoint.count})"
        )
    return None
