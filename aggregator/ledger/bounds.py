"""Plausibility bounds on a transaction: event time near our clock, a sane quantity.

An edge without a real-time clock (a Raspberry Pi after a power cut) may stamp 1970; a stuck
load cell or a bad barcode may say a billion. Outside the bounds a transaction goes to review
with the reason, or is rejected with it (`policy`).
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from aggregator.settings import BoundsSettings
from stockwire.txn import StockTransaction


@dataclass(frozen=True, slots=True)
class Bounds:
    """Built from BoundsSettings, where the defaults are (`Bounds.from_settings()`)."""

    future_skew: timedelta
    age_max: timedelta
    qty_max: int
    qty_max_per_item: Mapping[str, int] = field(default_factory=dict)  # sku or gtin -> max
    review: bool = True  # False: reject

    @classmethod
    def from_settings(cls, settings: BoundsSettings | None = None) -> "Bounds":
        settings = settings or BoundsSettings()
        return cls(
            future_skew=timedelta(seconds=settings.future_skew_s),
            age_max=timedelta(seconds=settings.age_max_s),
            qty_max=settings.qty_max,
            qty_max_per_item=dict(settings.qty_max_per_item),
            review=settings.policy == "review",
        )

    def violation(self, txn: StockTransaction, now: datetime) -> str | None:
        """Why the transaction is out of bounds, or None."""
        at = txn.occurred_at
        if at > now + self.future_skew:
            ahead_s = (at - now).total_seconds()
            return (
                f"occurred_at {at.isoformat()} is {ahead_s:.0f} s ahead of the aggregator's"
                f" clock (bounds.future_skew_s {self.future_skew.total_seconds():.0f})"
            )
        if at < now - self.age_max:
            return (
                f"occurred_at {at.isoformat()} is older than bounds.age_max_s"
                f" ({self.age_max.total_seconds():.0f} s)"
            )
        limit = self._qty_max(txn)
        if txn.qty > limit:
            item = txn.sku or txn.gtin
            return f"qty {txn.qty} of {item} is over the maximum {limit} (bounds.qty_max)"
        return None

    def _qty_max(self, txn: StockTransaction) -> int:
        for key in (txn.sku, txn.gtin):
            if key is not None and key in self.qty_max_per_item:
                return self.qty_max_per_item[key]
        return self.qty_max
