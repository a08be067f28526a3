"""Command barcodes a person scans to drive the scan recognizer (SW:MODE:PICK, SW:LOC:A-01)."""

import re
from dataclasses import dataclass
from enum import StrEnum

from stockwire.txn import TxnKind

COMMAND_PREFIX = "SW:"
QTY_MAX = 1_000_000_000
LOT_CHARS_MAX = 20
_LOCATION = re.compile(r"^@?[A-Za-z0-9][A-Za-z0-9_./-]{0,63}$")
_QTY = re.compile(r"^[0-9]{1,10}$")


class Mode(StrEnum):
    RECEIVE = "RECEIVE"
    PICK = "PICK"
    SHIP = "SHIP"
    RETURN = "RETURN"
    COUNT = "COUNT"
    PUTAWAY = "PUTAWAY"
    TRANSFER = "TRANSFER"
    ADJUST_IN = "ADJUST-IN"
    ADJUST_OUT = "ADJUST-OUT"


KIND_OF_MODE = {
    Mode.RECEIVE: TxnKind.RECEIPT,
    Mode.PICK: TxnKind.PICK,
    Mode.SHIP: TxnKind.SHIPMENT,
    Mode.RETURN: TxnKind.RETURN,
    Mode.COUNT: TxnKind.COUNT,
    Mode.PUTAWAY: TxnKind.PUTAWAY,
    Mode.TRANSFER: TxnKind.TRANSFER,
    Mode.ADJUST_IN: TxnKind.ADJUSTMENT,
    Mode.ADJUST_OUT: TxnKind.ADJUSTMENT,
}


class CommandError(ValueError):
    """A barcode that starts with SW: but is not a valid command."""


@dataclass(frozen=True, slots=True)
class SetMode:
    mode: Mode


@dataclass(frozen=True, slots=True)
class SetLocation:
    code: str


@dataclass(frozen=True, slots=True)
class SetDestination:
    code: str


@dataclass(frozen=True, slots=True)
class SetQty:
    qty: int


@dataclass(frozen=True, slots=True)
class SetLot:
    lot: str


@dataclass(frozen=True, slots=True)
class End:
    pass


@dataclass(frozen=True, slots=True)
class Cancel:
    pass


Command = SetMode | SetLocation | SetDestination | SetQty | SetLot | End | Cancel


def is_command(data: str) -> bool:
    return data.startswith(COMMAND_PREFIX)


def parse_command(data: str) -> Command:
    """Parse `SW:<VERB>[:<arg>]`; CommandError names what is wrong."""
    verb, _, arg = data.removeprefix(COMMAND_PREFIX).partition(":")
    if verb in ("END", "CANCEL"):
        if arg:
            raise CommandError(f"SW:{verb} takes no argument, got {arg!r}")
        return End() if verb == "END" else Cancel()
    if verb == "MODE":
        return SetMode(_mode(arg))
    if verb == "LOC":
        return SetLocation(_location(verb, arg))
    if verb == "TO":
        return SetDestination(_location(verb, arg))
    if verb == "QTY":
        return SetQty(_qty(arg))
    if verb == "LOT":
        return SetLot(_lot(arg))
    raise CommandError(f"unknown command {data[:40]!r}")


def _mode(arg: str) -> Mode:
    try:
        return Mode(arg.upper())
    except ValueError:
        known = "|".join(m.value for m in Mode)
        raise CommandError(f"unknown mode {arg[:40]!r}; expected one of {known}") from None


def _location(verb: str, arg: str) -> str:
    if not _LOCATION.match(arg):
        raise CommandError(f"SW:{verb}: {arg[:70]!r} is not a location code")
    return arg


def _qty(arg: str) -> int:
    if not _QTY.match(arg) or int(arg) > QTY_MAX:
        raise CommandError(f"SW:QTY: {arg[:40]!r} is not a whole number 0..{QTY_MAX}")
    return int(arg)


def _lot(arg: str) -> str:
    if not arg or len(arg) > LOT_CHARS_MAX or not arg.isprintable():
        raise CommandError(f"SW:LOT: {arg[:40]!r} is not a lot of 1..{LOT_CHARS_MAX} characters")
    return arg
