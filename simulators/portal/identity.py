"""Unique, seed-deterministic tag identities: SGTIN-96 per unit, SSCC-96 per pallet."""

import random

from simulators.portal.epc import FILTER_POS_ITEM, FILTER_SSCC_FULL_CASE, sgtin96, sscc96

SERIAL_BLOCK = 1 << 30  # each GTIN's serials start at a seeded point below 2**38 - this


class TagMaker:
    """Hands out EPCs never handed out before in this run (so a receipt never re-uses one)."""

    def __init__(self, seed: int | str, company_prefix: str = "4012345") -> None:
        self._rng = random.Random(f"tags:{seed}")
        self._next_serial: dict[str, int] = {}
        self._company_prefix = company_prefix
        self._next_sscc = self._rng.randrange(10**8)

    def item(self, gtin14: str, company_prefix_digits: int = 7) -> bytes:
        serial = self._next_serial.get(gtin14)
        if serial is None:
            serial = self._rng.randrange(1, (1 << 38) - SERIAL_BLOCK)
        self._next_serial[gtin14] = serial + 1
        return sgtin96(gtin14, serial, company_prefix_digits, FILTER_POS_ITEM)

    def pallet(self, company_prefix: str | None = None) -> bytes:
        """A new SSCC-96 (serial references count up across every company prefix)."""
        self._next_sscc += 1
        prefix = company_prefix or self._company_prefix
        digits = 17 - len(prefix)
        serial_ref = str(self._next_sscc % 10**digits).zfill(digits)
        return sscc96(prefix, serial_ref, FILTER_SSCC_FULL_CASE)
