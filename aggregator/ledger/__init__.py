"""Double-entry stock ledger: immutable movements, balances kept in the same DB transaction."""

from aggregator.ledger.apply import NegativeBalance
from aggregator.ledger.ledger import CONFLICT, GroupPosting, Ledger, Outcome, Posting

__all__ = ["CONFLICT", "GroupPosting", "Ledger", "NegativeBalance", "Outcome", "Posting"]
