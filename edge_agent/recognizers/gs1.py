"""GS1 barcode data through biip (the only module that imports it), as our own small dataclass."""

from dataclasses import dataclass
from datetime import date

from biip import ParseConfig, ParseError
from biip.gs1_digital_link_uris import GS1DigitalLinkURI
from biip.gs1_element_strings import GS1ElementStrings
from biip.gs1_messages import GS1Message
from biip.gtin import Gtin
from biip.symbology import SymbologyIdentifier

GS = "\x1d"
# AIM symbology ids whose data is a GS1 element string, and those that carry one bare GTIN
# with the number of digits it must have (]E0 EAN-13/UPC-A, ]E4 EAN-8, ]I1 ITF-14).
GS1_MESSAGE_SYMBOLOGIES = frozenset({"]C1", "]e0", "]d2", "]Q3"})  # not ]J1: biip lacks DotCode
GTIN_SYMBOLOGIES = {"]E0": 13, "]E4": 8, "]I1": 14}
DIGITAL_LINK_SYMBOLOGIES = frozenset({"]Q1", "]Q3", "]d1", "]d2"})
PLAIN_GTIN_DIGITS = frozenset({8, 12, 13, 14})
_CONFIG = ParseConfig(separator_chars=(GS,))


class Gs1Error(ValueError):
    """Barcode data that is not valid GS1; the message says what is wrong."""


@dataclass(frozen=True, slots=True)
class Gs1Data:
    symbology: str | None
    elements: tuple[tuple[str, str], ...] = ()
    gtin14: str | None = None
    content_gtin14: str | None = None
    content_count: int | None = None
    count: int | None = None
    lot: str | None = None
    expiry: date | None = None
    serial: str | None = None
    sscc: str | None = None


def split_symbology(raw: str) -> tuple[str | None, str]:
    """The AIM symbology id (e.g. "]C1") and the data after it; (None, raw) without one."""
    if not raw.startswith("]"):
        return None, raw
    if len(raw) < 3:
        raise Gs1Error(f"symbology identifier {raw!r} is too short")
    try:
        ident = SymbologyIdentifier.extract(raw)
    except (ParseError, ValueError, IndexError):
        raise Gs1Error(f"unknown symbology identifier {raw[:3]!r}") from None
    return ident.value, raw[len(ident.value) :]


def is_gs1(raw: str) -> bool:
    """Whether the barcode claims to carry GS1 data (so a failure to parse is a real error)."""
    symbology, data = split_symbology(raw)
    if symbology in GS1_MESSAGE_SYMBOLOGIES or symbology in GTIN_SYMBOLOGIES:
        return True
    if _is_uri(data):
        return symbology is None or symbology in DIGITAL_LINK_SYMBOLOGIES
    return symbology is None and data[:1].isdigit()


def parse_gs1(raw: str) -> Gs1Data:
    """Parse a scan (with or without AIM id, GS separators) into GS1 data; Gs1Error if invalid."""
    symbology, data = split_symbology(raw)
    if not data:
        raise Gs1Error(f"no data after symbology identifier {symbology}")
    try:
        return _parse(symbology, data, _CONFIG)
    except Gs1Error:
        raise
    except (ParseError, ValueError) as exc:
        raise Gs1Error(str(exc)) from None


def _parse(symbology: str | None, data: str, config: ParseConfig) -> Gs1Data:
    if symbology in GTIN_SYMBOLOGIES:
        return _gtin(symbology, data, GTIN_SYMBOLOGIES[symbology], config)
    if _is_uri(data) and (symbology is None or symbology in DIGITAL_LINK_SYMBOLOGIES):
        uri = GS1DigitalLinkURI.parse(data, config=config)
        return _from_elements(symbology, uri.element_strings)
    if symbology in GS1_MESSAGE_SYMBOLOGIES:
        return _from_elements(symbology, GS1Message.parse(data, config=config).element_strings)
    if symbology is not None:
        raise Gs1Error(f"symbology {symbology} does not carry GS1 data")
    if data.isdigit() and len(data) in PLAIN_GTIN_DIGITS:
        return _gtin(None, data, len(data), config)
    if data[:1].isdigit():
        return _from_elements(None, GS1Message.parse(data, config=config).element_strings)
    raise Gs1Error("not GS1 data")


def _is_uri(data: str) -> bool:
    return data[:8].lower().startswith(("http://", "https://"))


def _gtin(symbology: str | None, data: str, digits: int, config: ParseConfig) -> Gs1Data:
    if len(data) != digits or not data.isdigit():
        raise Gs1Error(f"expected {digits} digits for a GTIN, got {data!r}")
    if data.isascii() and check_digit_ok(data):
        # What biip's Gtin.parse(data).as_gtin_14() gives for a valid GTIN, at a tenth of its
        # cost (it also looks up prefix tables we do not use); biip names what is wrong.
        gtin14 = data.zfill(14)
    else:
        gtin14 = Gtin.parse(data, config=config).as_gtin_14()
    return Gs1Data(symbology=symbology, elements=(("01", gtin14),), gtin14=gtin14)


def check_digit_ok(digits: str) -> bool:
    """Whether the last of these ASCII digits is their GS1 mod-10 check digit."""
    body = digits[-2::-1]  # from the right, without the check digit: weights 3, 1, 3, ...
    total = 3 * sum(map(int, body[::2])) + sum(map(int, body[1::2]))
    return (10 - total % 10) % 10 == int(digits[-1])


def _from_elements(symbology: str | None, strings: GS1ElementStrings) -> Gs1Data:
    for es in strings:
        error = es.gtin_error or es.sscc_error
        if error:
            raise Gs1Error(f"AI ({es.ai.ai}): {error}")
    values = {es.ai.ai: es for es in strings}

    def text(ai: str) -> str | None:
        return values[ai].value if ai in values else None

    def number(ai: str) -> int | None:
        if ai not in values:
            return None
        if not values[ai].value.isdigit():
            raise Gs1Error(f"AI ({ai}): {values[ai].value!r} is not a count")
        return int(values[ai].value)

    return Gs1Data(
        symbology=symbology,
        elements=tuple((es.ai.ai, es.value) for es in strings),
        gtin14=text("01"),
        content_gtin14=text("02"),
        content_count=number("37"),
        count=number("30"),
        lot=text("10"),
        expiry=values["17"].date if "17" in values else None,
        serial=text("21"),
        sscc=text("00"),
    )
