"""Errors a domain operation raises; their text is shown to the user as it is."""


class DomainError(Exception):
    """A rule refused the change. Nothing is saved: the view rolls back."""


class StaleVersion(DomainError):
    """The record changed after the form was opened (optimistic locking)."""


class ProductInUse(DomainError):
    """A transaction line refers to the product, so it cannot be deleted."""


class NotFound(DomainError):
    """Some of the records asked for do not exist (any more)."""


class InvalidTransaction(DomainError):
    """The transaction's lines break a rule (no lines, a product twice, an inactive product).
    ``line_problems`` maps the id of each product concerned to what is wrong with its line."""

    def __init__(self, message: str, line_problems: dict[int, str] | None = None):
        super().__init__(message)
        self.line_problems = line_problems or {}


class InsufficientStock(DomainError):
    """Posting would take more stock than there is; the message names each product.
    ``line_problems`` maps the id of each product concerned to what is wrong with its line,
    so the page can mark those lines."""

    def __init__(self, message: str, line_problems: dict[int, str] | None = None):
        super().__init__(message)
        self.line_problems = line_problems or {}


class Immutable(DomainError):
    """Posted and void transactions, and their lines, cannot be changed or deleted."""


class AlreadyPosted(Immutable):
    """Posting a transaction that is posted: what was asked is done (a repeated click, or a
    reload after the response was lost). Said as news, not as a failure."""

    flash_category = "info"


class MovementsAreFinal(Immutable):
    """A stock movement cannot be changed or deleted: a correction is a new movement."""
