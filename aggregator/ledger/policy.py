"""The site's rules for what a posting may do: unknown items, negative stock, tracking."""

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import sqlalchemy as sa

from aggregator.ledger.catalog import Location
from aggregator.ledger.count_tasks import CountRules
from aggregator.schema import locations
from aggregator.settings import LedgerSettings

UnknownItems = Literal["create", "review"]
NegativeStock = Literal["allow", "forbid"]
TrackingViolations = Literal["reject", "review"]
DEFAULT_COUNT_RULES = CountRules()


@dataclass(frozen=True, slots=True)
class Policy:
    # create: an item first seen from a sensor is made (flagged); review: its txn waits.
    unknown_items: UnknownItems = "create"
    # The site's default where no location up the tree says otherwise.
    negative_stock: NegativeStock = "allow"
    # A lot-tracked item without a lot, an expired lot received, a serial-tracked item whose
    # qty is not its number of serials: rejected with the reason, or pending in review.
    tracking_violations: TrackingViolations = "reject"
    # A person approves: the tracking rules have had their say (aggregator.ledger.tracking).
    approved: bool = False
    # A scanner count over the threshold at an open count task's line waits for approval
    # (aggregator.ledger.count_tasks); None: none waits (a person's own posting).
    count_rules: CountRules | None = DEFAULT_COUNT_RULES

    @classmethod
    def from_settings(
        cls, settings: LedgerSettings, count_rules: CountRules | None = DEFAULT_COUNT_RULES
    ) -> "Policy":
        return cls(
            unknown_items=settings.unknown_items,
            negative_stock=settings.negative_stock,
            tracking_violations=settings.tracking_violations,
            count_rules=count_rules,
        )


DEFAULT_POLICY = Policy()


def forbidding(conn: sa.Connection, places: Iterable[Location], default: str) -> set[int]:
    """The ids of the physical `places` whose balances must not go below zero: their own
    policy, else the nearest ancestor's, else the site default (one query, for ancestors)."""
    physical = [p for p in places if not p.virtual]
    above = {a for p in physical if p.negative_stock is None for a in p.ancestors()}
    inherited: dict[int, str | None] = {}
    if above:
        query = sa.select(locations.c.id, locations.c.negative_stock).where(
            locations.c.id.in_(sorted(above))
        )
        inherited = {r.id: r.negative_stock for r in conn.execute(query)}
    return {p.id for p in physical if _effective(p, inherited, default) == "forbid"}


def _effective(place: Location, inherited: dict[int, str | None], default: str) -> str:
    if place.negative_stock is not None:
        return place.negative_stock
    for ancestor in place.ancestors():
        if (policy := inherited.get(ancestor)) is not None:
            return policy
    return default
