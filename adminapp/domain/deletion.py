"""What deleting a record would do, for the confirmation page shown before it: what goes
with the record, or why the delete is refused. The refusal comes from the very check the
delete itself runs, so the page and the delete cannot disagree."""

from collections.abc import Callable
from dataclasses import dataclass, field

from .errors import DomainError

SHOWN_AT_MOST = 20  # related records listed by name; the rest are counted


@dataclass(frozen=True)
class Related:
    """A record the page names. ``object_type`` is its admin endpoint when it has a page
    of its own to link to, else None."""

    text: str
    object_type: str | None = None
    object_id: int | None = None


@dataclass
class DeletionPreview:
    refusal: str | None = None  # why it cannot be deleted; None when it can
    blocking: list[Related] = field(default_factory=list)  # records that keep it
    goes_with: list[Related] = field(default_factory=list)  # records deleted with it
    not_shown: int = 0  # how many more blocking records there are than listed


def refusal_of(*checks: Callable[[], None]) -> str | None:
    """The message of the first check that refuses, or None when all pass."""
    for check in checks:
        try:
            check()
        except DomainError as exc:
            return str(exc)
    return None
