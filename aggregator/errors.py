class AggregatorError(Exception):
    """Root of the errors the aggregator raises on purpose."""


class LedgerError(AggregatorError):
    """A ledger operation cannot be done as asked; the message says why."""


class NotFoundError(LedgerError):
    pass


class StateError(LedgerError):
    """The transaction or movement is not in a state that allows this (e.g. not pending)."""


class RefusedError(LedgerError):
    """The site's rules refuse it (negative stock forbidden, a unit with no conversion)."""


class FieldError(LedgerError):
    """A value in a request cannot be taken; `field` says where (body.packs.0.gtin)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class ConflictError(FieldError):
    """The value clashes with what exists (a GTIN of another item, a code in use)."""
