"""Constrained string types for names that travel in topics and the ledger."""

from typing import Annotated

from pydantic import StringConstraints

# Site and edge ids appear in MQTT topics: no '/', '+', '#', no whitespace.
Ident = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
# Physical locations (A-01-02, DOCK-1) or virtual ones prefixed with '@' (@supplier).
LocationCode = Annotated[str, StringConstraints(pattern=r"^@?[A-Za-z0-9][A-Za-z0-9_./-]{0,63}$")]
Sku = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^\S+$")]
# GTINs are carried normalised to 14 digits.
Gtin14 = Annotated[str, StringConstraints(pattern=r"^[0-9]{14}$")]
Lot = Annotated[str, StringConstraints(min_length=1, max_length=20)]
Serial = Annotated[str, StringConstraints(min_length=1, max_length=64)]
Epc = Annotated[str, StringConstraints(pattern=r"^[0-9A-Fa-f]{8,124}$")]
# A pallet or case (GS1 SSCC, 18 digits): a container, not an item.
Sscc = Annotated[str, StringConstraints(pattern=r"^[0-9]{18}$")]
# An RFID portal zone (outside, inside) or another short evidence key.
ZoneName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_-]{0,15}$")]
Uom = Annotated[str, StringConstraints(pattern=r"^[A-Z0-9]{1,8}$")]
ShortText = Annotated[str, StringConstraints(max_length=500)]
