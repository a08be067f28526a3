"""EPC decoding: the EPC bank's hex into what the portal recognizer counts (the one epcpy user).

SGTIN-96/198 name an item (GTIN-14 + serial); SSCC-96 names a pallet or case (a container, not
an item); any other EPC is mapped to a SKU through the edge config's table (keys are EPC pure
identity URI prefixes such as `urn:epc:id:grai:4012345.12345.`, or upper-case hex prefixes such
as `E28011`; the longest matching key wins), else it is an `UnknownEpc`: kept for review, never
dropped. A tag is read hundreds of times per pass, so decodes are cached (bounded).
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass

from epcpy.epc_schemes.base_scheme import TagEncodable
from epcpy.epc_schemes.sgtin import SGTIN
from epcpy.epc_schemes.sscc import SSCC
from epcpy.utils.common import ConvertException
from epcpy.utils.parsers import TAG_ENCODABLE_HEX_HEADERS, hex_to_tag_encodable

EPC_HEX = re.compile(r"^[0-9A-F]{8,124}$")  # the wire contract's Epc, upper case
URI_PREFIX = "urn:epc:id:"
CACHE_ENTRIES_MAX = 50_000
_GTIN_AT, _SERIAL_AT = len("(01)"), len("(01)") + 14 + len("(21)")


@dataclass(frozen=True, slots=True)
class Sgtin:
    gtin14: str
    serial: str


@dataclass(frozen=True, slots=True)
class Sscc:
    sscc18: str


@dataclass(frozen=True, slots=True)
class Mapped:
    sku: str
    key: str  # the table key that matched


@dataclass(frozen=True, slots=True)
class UnknownEpc:
    scheme: str | None  # epcpy's scheme name (GRAI, GIAI...) when the header is a known one
    reason: str


Decoded = Sgtin | Sscc | Mapped | UnknownEpc


class EpcMapError(ValueError):
    """A key of the edge config's EPC table that can never match."""


def check_epc_map(epc_map: Mapping[str, str]) -> None:
    """Raise EpcMapError on a key that is neither a pure identity URI prefix nor upper hex."""
    for key, sku in epc_map.items():
        if not key.startswith(URI_PREFIX) and not re.fullmatch(r"[0-9A-F]{1,124}", key):
            raise EpcMapError(
                f"epc map key {key!r}: not an EPC URI prefix ({URI_PREFIX}...) "
                "nor an upper-case hex prefix"
            )
        if not sku or any(c.isspace() for c in sku) or len(sku) > 64:
            raise EpcMapError(f"epc map key {key!r}: sku {sku!r} is empty, too long or has spaces")


class EpcDecoder:
    """Decode EPC hex strings with a bounded cache (cleared whole when it fills up)."""

    def __init__(
        self, epc_map: Mapping[str, str], cache_entries_max: int = CACHE_ENTRIES_MAX
    ) -> None:
        check_epc_map(epc_map)
        # longest key first, so the most specific prefix wins
        ordered = sorted(epc_map.items(), key=lambda kv: (-len(kv[0]), kv[0]))
        self._uri_keys = [(k, v) for k, v in ordered if k.startswith(URI_PREFIX)]
        self._hex_keys = [(k, v) for k, v in ordered if not k.startswith(URI_PREFIX)]
        self._cache: dict[str, Decoded] = {}
        self._cache_max = cache_entries_max

    def decode(self, epc_hex: str) -> Decoded:
        found = self._cache.get(epc_hex)
        if found is None:
            if len(self._cache) >= self._cache_max:
                self._cache.clear()
            found = self._cache[epc_hex] = self._decode(epc_hex)
        return found

    def _decode(self, epc_hex: str) -> Decoded:
        if not EPC_HEX.fullmatch(epc_hex):
            return UnknownEpc(None, "not 8..124 upper-case hex digits")
        uri, scheme, why = _pure_identity(epc_hex)
        if uri is not None and isinstance(scheme, SGTIN):
            element = scheme.gs1_element_string()  # (01)<gtin14>(21)<serial>
            return Sgtin(element[_GTIN_AT : _GTIN_AT + 14], element[_SERIAL_AT:])
        if uri is not None and isinstance(scheme, SSCC):
            return Sscc(scheme.gs1_key())
        for key, sku in self._uri_keys:
            if uri is not None and uri.startswith(key):
                return Mapped(sku, key)
        for key, sku in self._hex_keys:
            if epc_hex.startswith(key):
                return Mapped(sku, key)
        header = TAG_ENCODABLE_HEX_HEADERS.get(epc_hex[:2])
        name = None if header is None else header.__name__
        if uri is not None:
            return UnknownEpc(name, f"{uri} matches no key of the epc map")
        return UnknownEpc(name, why)


def _pure_identity(epc_hex: str) -> tuple[str | None, TagEncodable | None, str]:
    """(pure identity URI, epcpy scheme object, why not) of an EPC in hex."""
    if epc_hex[:2] not in TAG_ENCODABLE_HEX_HEADERS:
        return None, None, f"header {epc_hex[:2]} is no EPC TDS scheme"
    try:
        scheme = hex_to_tag_encodable(epc_hex)
    except ConvertException as exc:
        return None, None, f"not a decodable EPC: {exc}"
    except (ValueError, IndexError, KeyError, TypeError) as exc:  # epcpy's other failure modes
        return None, None, f"not a decodable EPC: {type(exc).__name__}: {exc}"
    return str(scheme.epc_uri), scheme, ""
